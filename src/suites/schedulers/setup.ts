// What one scenario needs in the replay lab, derived from the resolved (address-mapped) scenario:
// which node plays which real server, the addresses and routes of every node, the fwmark rule, the
// ports the responders answer on, and the IPVS service exactly as the scenario states it. apply()
// adds it all, remove() takes it away again (best effort, so a failed scenario does not poison the
// next one on the same VM).
import type { Address } from '../../models/address';
import type { ResolvedScenario, ResolvedServer } from '../../models/scenario';
import type { DestinationSpec, ServiceKey, ServiceSpec } from '../../netlink/ipvs-types';
import { parsePrefix } from './addresses';
import type { ReplayLab } from './lab';
import { FWMARK_DEFAULT_DST } from './plumbing';

const SVC_F_PERSISTENT = 0x1;
const SVC_F_ONEPACKET = 0x4;
/** Kernel defaults of `ipvsadm --set tcp tcpfin udp`. */
export const DEFAULT_TIMEOUTS = { tcp: 900, tcpFin: 120, udp: 300 };
/** Kernel defaults of the sysctls a scenario may set (net.ipv4.vs.*). */
export const DEFAULT_VS_SYSCTLS: Record<string, number> = {
  expire_quiescent_template: 0,
  conn_reuse_mode: 1,
  expire_nodest_conn: 0,
  lblc_expiration: 86400,
  lblcr_expiration: 86400,
};
export const FWMARK_TABLE = 'vslab_replay';
/** The server nodes' drop rule while a scenario runs by first packets only. */
export const BURST_TABLE = 'vslab_burst';

/** One real server of the scenario (initial or added by an event) and the node that plays it. */
export interface ServerSlot {
  /** Scenario names this address has carried (a re-added server may be renamed). */
  names: string[];
  addr: Address;
  port: number;
  forward: 'dr' | 'nat';
  node: string;
}

function isUnspecified(a: Address): boolean {
  return a.bytes.every((b) => b === 0);
}

function hostLen(a: Address): number {
  return a.bytes.length * 8;
}

function netmaskText(prefixLen: number, family: 4 | 6): string {
  if (family === 6) return String(prefixLen);
  const m = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

export class ScenarioSetup {
  /** Real-server slots by address text. */
  readonly slots = new Map<string, ServerSlot>();
  /** Client addresses (single, as /32 or /128) and generated client prefixes. */
  readonly clientPrefixes: string[] = [];
  /** Destinations local to the director and to DR servers: single addresses and generated prefixes. */
  readonly dstAddrs: string[] = [];
  readonly dstPrefixes: string[] = [];
  readonly family: 4 | 6;
  /** The destination each flow is sent to (the VIP, its own dst, or FWMARK_DEFAULT_DST). */
  readonly flowDst: string[];
  private undo: Array<{ node: string; lines: string[] }> = [];
  private applied = false;
  private readonly burstNodes: string[] = [];

  constructor(readonly lab: ReplayLab, readonly rs: ResolvedScenario) {
    this.family = rs.options.family;
    const all: ResolvedServer[] = [...rs.servers];
    for (const e of rs.events) if (e.op === 'add') all.push(e.server);
    for (const s of all) {
      if (s.forward === 'tun') throw new Error(`${s.path}: the replayer drives real servers by direct routing or NAT; tunnelling (forward "tun") is not supported yet`);
      const cur = this.slots.get(s.addr.text);
      if (cur) {
        if (!cur.names.includes(s.name)) cur.names.push(s.name);
        continue;
      }
      const idx = this.slots.size;
      if (idx >= lab.serverNodes.length) throw new Error(`the scenario uses ${all.length}+ real-server addresses; the replay lab has only ${lab.serverNodes.length} server nodes (ReplayLab.up({servers}))`);
      this.slots.set(s.addr.text, { names: [s.name], addr: s.addr, port: s.port, forward: s.forward, node: lab.serverNodes[idx] });
    }
    // client addresses and destinations
    const genClients = new Set<string>();
    const genDsts = new Set<string>();
    for (const f of rs.source.flows) {
      if ('generate' in f) {
        genClients.add(f.generate.clients);
        if (f.generate.dsts) genDsts.add(f.generate.dsts);
      }
    }
    const inGenerated = (a: Address, set: Set<string>) => [...set].some((p) => {
      const q = parsePrefix(p);
      return q.base.family === a.family && parsePrefix(`${a.text}/${q.len}`).base.text === q.base.text;
    });
    const clients = new Set<string>();
    const dsts = new Set<string>();
    const fallbackDst = FWMARK_DEFAULT_DST[this.family];
    this.flowDst = rs.flows.map((f) => {
      if (!inGenerated(f.client, genClients)) clients.add(f.client.text);
      const d = isUnspecified(f.dst) ? fallbackDst : f.dst.text;
      if (!isUnspecified(f.dst) && inGenerated(f.dst, genDsts)) return d;
      dsts.add(d);
      return d;
    });
    if (rs.options.vip) dsts.add(rs.options.vip.text);
    this.clientPrefixes.push(...[...clients].map((c) => `${c}/${this.family === 4 ? 32 : 128}`), ...genClients);
    this.dstAddrs.push(...dsts);
    this.dstPrefixes.push(...genDsts);
  }

  /** Which slot (node) serves a scenario server name at the moment (the latest address that name was given). */
  slotOfAddress(addr: string): ServerSlot | undefined {
    return this.slots.get(addr);
  }

  /** Responder ports per node: DR servers see the flows' destination ports, NAT servers their own port. */
  portsFor(slot: ServerSlot): { tcp: number[]; udp: number[] } {
    const tcp = new Set<number>();
    const udp = new Set<number>();
    for (const f of this.rs.flows) {
      const port = slot.forward === 'nat' ? slot.port : f.dport;
      (f.proto === 'tcp' ? tcp : udp).add(port);
    }
    return { tcp: [...tcp], udp: [...udp] };
  }

  /**
   * Adds addresses, routes, the fwmark rule; starts responders where needed, or, with
   * `{ firstPacketsOnly: true }` (burst.ts), no responders: every server node drops the flows' packets
   * on arrival instead (table inet vslab_burst), so a first packet costs no answer, reset or request
   * socket in the guest once the director has scheduled and forwarded it.
   */
  async apply(opts: { firstPacketsOnly?: boolean } = {}): Promise<void> {
    if (this.applied) throw new Error('ScenarioSetup.apply() called twice');
    this.applied = true;
    const fam = this.family;
    const lab = this.lab;
    const full = fam === 4 ? 32 : 128;
    const dir4 = lab.plumbing('director', fam);
    const cli = lab.plumbing('client', fam);
    const dstAll = [...this.dstAddrs.map((d) => `${d}/${full}`), ...this.dstPrefixes];

    const plan = new Map<string, { add: string[]; del: string[] }>();
    const at = (node: string) => {
      let p = plan.get(node);
      if (!p) plan.set(node, (p = { add: [], del: [] }));
      return p;
    };
    const pair = (node: string, add: string, del: string) => {
      at(node).add.push(add);
      at(node).del.unshift(del);
    };
    for (const c of this.clientPrefixes) {
      pair('client', `route add local ${c} dev lo`, `route del local ${c} dev lo`);
      pair('director', `route add ${c} via ${cli}`, `route del ${c} via ${cli}`);
    }
    for (const d of dstAll) {
      pair('client', `route add ${d} via ${dir4}`, `route del ${d} via ${dir4}`);
      pair('director', `route add local ${d} dev lo`, `route del local ${d} dev lo`);
    }
    for (const slot of this.slots.values()) {
      const rip = `${slot.addr.text}/${hostLen(slot.addr)}`;
      pair(slot.node, `addr add ${rip} dev eth0${fam === 6 ? ' nodad' : ''}`, `addr del ${rip} dev eth0`);
      // The director reaches each real server on-link (direct routing's assumption). A neighbour entry
      // left from an earlier scenario, where this address was on another node, must go first.
      pair('director', `neigh flush to ${rip}`, `neigh flush to ${rip}`);
      pair('director', `route add ${rip} dev eth0`, `route del ${rip} dev eth0`);
      const back = slot.forward === 'nat' ? dir4 : cli;
      for (const c of this.clientPrefixes) pair(slot.node, `route add ${c} via ${back}`, `route del ${c} via ${back}`);
      // (dropped on arrival when running by first packets: no local VIP needed there)
      if (slot.forward === 'dr' && !opts.firstPacketsOnly) {
        for (const d of this.dstAddrs) pair(slot.node, `addr add ${d}/${full} dev lo`, `addr del ${d}/${full} dev lo`);
        for (const d of this.dstPrefixes) pair(slot.node, `route add local ${d} dev lo`, `route del local ${d} dev lo`);
      }
    }
    for (const [node, p] of plan) this.undo.push({ node, lines: p.del });
    for (const [node, p] of plan) await lab.ipBatch(node, p.add);

    const fwmark = this.rs.options.fwmark;
    if (fwmark !== undefined) {
      const fam4 = dstAll.filter((d) => !d.includes(':'));
      const fam6 = dstAll.filter((d) => d.includes(':'));
      const rules = [
        fam4.length ? `ip daddr { ${fam4.join(', ')} } meta mark set ${fwmark}` : '',
        fam6.length ? `ip6 daddr { ${fam6.join(', ')} } meta mark set ${fwmark}` : '',
      ].filter(Boolean);
      const ruleset = `table inet ${FWMARK_TABLE} {\n  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n}\n`;
      this.undo.push({ node: 'director', lines: [] });
      const r = await lab.node('director').exec(['nft', '-f', '-'], { input: ruleset, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`replay lab ${lab.name}: cannot load the fwmark rule on the director: ${r.stderr.trim()}\n${ruleset}`);
    }

    if (opts.firstPacketsOnly) {
      for (const slot of this.slots.values()) {
        const ports = this.portsFor(slot);
        const rules = [
          ports.tcp.length ? `    tcp dport { ${ports.tcp.join(', ')} } drop\n` : '',
          ports.udp.length ? `    udp dport { ${ports.udp.join(', ')} } drop\n` : '',
        ].join('');
        const ruleset = `table inet ${BURST_TABLE} {\n  chain pre {\n    type filter hook prerouting priority raw; policy accept;\n${rules}  }\n}\n`;
        const r = await lab.node(slot.node).exec(['nft', '-f', '-'], { input: ruleset, timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`replay lab ${lab.name}: cannot load the drop rule on ${slot.node}: ${r.stderr.trim()}\n${ruleset}`);
        this.burstNodes.push(slot.node);
      }
      return;
    }
    // responders: every server node answers on the ports its flows reach
    for (const slot of this.slots.values()) {
      const ports = this.portsFor(slot);
      const h = await lab.ensureResponder(slot.node, ports.tcp, ports.udp);
      if (ports.udp.length && slot.forward === 'dr') {
        for (const d of this.dstAddrs) await h.waitListening('udp', d, 30_000);
      }
    }
  }

  /** The IPVS service key of the scenario. */
  serviceKey(): ServiceKey {
    const o = this.rs.options;
    if (o.fwmark !== undefined) return { family: o.family, fwmark: o.fwmark };
    return { family: o.family, protocol: o.proto, address: o.vip!.text, port: o.port! };
  }

  serviceSpec(): ServiceSpec {
    const o = this.rs.options;
    const flags = (o.schedFlags ?? 0) | (o.persistence ? SVC_F_PERSISTENT : 0) | (o.onePacket ? SVC_F_ONEPACKET : 0);
    const spec: ServiceSpec = { ...this.serviceKey(), scheduler: typeof o.scheduler === 'string' ? o.scheduler : o.scheduler.name, flags };
    if (o.persistence) {
      spec.timeout = o.persistence.timeout;
      spec.netmask = netmaskText(o.persistence.prefixLen, o.family);
    }
    return spec;
  }

  destinationSpec(s: { addr: Address; port: number; weight: number; upper: number; lower: number; forward: string }): DestinationSpec {
    return {
      address: s.addr.text, port: s.port, forward: s.forward === 'nat' ? 'masq' : 'route',
      weight: s.weight, upperThreshold: s.upper, lowerThreshold: s.lower,
    };
  }

  /** Flushes IPVS, sets the timeouts and sysctls, creates the service and adds the servers in order. */
  async programDirector(): Promise<void> {
    const ipvs = this.lab.ipvs;
    await this.lab.purgeIpvs();
    const t = this.rs.source.timeouts ?? {};
    await ipvs.setTimeouts({ tcp: t.tcp ?? DEFAULT_TIMEOUTS.tcp, tcpFin: t.tcpfin ?? DEFAULT_TIMEOUTS.tcpFin, udp: t.udp ?? DEFAULT_TIMEOUTS.udp });
    // lblc_expiration / lblcr_expiration exist once their scheduler module is loaded (by addService)
    await ipvs.addService(this.serviceSpec());
    await this.writeSysctls({ ...DEFAULT_VS_SYSCTLS, ...(this.rs.source.sysctl ?? {}) }, Object.keys(this.rs.source.sysctl ?? {}));
    const key = this.serviceKey();
    // One at a time, in the scenario's order: the kernel puts each new destination at the list head.
    for (const s of this.rs.servers) await ipvs.addDestination(key, this.destinationSpec(s));
  }

  /** Writes net.ipv4.vs sysctls in the director; those in `required` must exist, others are skipped when absent. */
  private async writeSysctls(values: Record<string, number>, required: string[] = []): Promise<void> {
    const script = Object.entries(values)
      .map(([k, v]) => {
        const f = `/proc/sys/net/ipv4/vs/${k}`;
        return required.includes(k) ? `echo ${Math.trunc(v)} > ${f}` : `{ [ ! -e ${f} ] || echo ${Math.trunc(v)} > ${f}; }`;
      })
      .join(' && ');
    await this.lab.sh('director', script);
  }

  /** Takes everything away again (IPVS flushed, defaults restored); never throws. */
  async remove(): Promise<string[]> {
    const problems: string[] = [];
    const note = (e: unknown) => problems.push((e as Error).message);
    await this.lab.purgeIpvs().catch(note);
    await this.lab.ipvs.setTimeouts(DEFAULT_TIMEOUTS).catch(note);
    await this.writeSysctls(DEFAULT_VS_SYSCTLS).catch(note);
    if (this.rs.options.fwmark !== undefined) await this.lab.sh('director', `nft delete table inet ${FWMARK_TABLE}`, { tolerate: true }).catch(note);
    for (const n of this.burstNodes.splice(0)) await this.lab.sh(n, `nft delete table inet ${BURST_TABLE}`, { tolerate: true }).catch(note);
    for (const u of this.undo.splice(0)) await this.lab.ipBatch(u.node, u.lines, { tolerate: true }).catch(note);
    return problems;
  }
}

// The "nftables" director driver: LVS written in nftables, the way kube-proxy's nftables mode and nftlb
// do it (../shared/other-directors.md). NAT and Full-NAT: `dnat` in the nat prerouting hook to a map
// selected by `numgen inc` (rr, and wrr over weight-expanded slots) or `jhash` of the source (sh) or
// destination (dh) address; conntrack un-NATs the replies; Full-NAT adds the shared source-NAT table
// (fullnat-snat.ts). Counters are named nftables counters keyed on conntrack's original/reply tuples;
// connections are conntrack's table. DR (IPv4): the netdev ingress hook of every director interface
// rewrites the Ethernet addresses and forwards the frame to the real server; netdev has no conntrack, so
// a dynamic flow map (client address . port -> slot, 300 s idle timeout) keeps each flow on its server
// and is the DR connection table (per-packet numgen would break TCP). It runs on any kernel with
// nf_tables: network namespaces of this host, containers, the VM.
//
// Read-back parses the ruleset the kernel holds (`nft -j list table`), not what was sent: a rule that
// points elsewhere shows up as a difference.
import type { LabNode } from '../backend/types';
import { canonical } from '../topology/addr';
import type { Family, ForwardingMethod, LabModel, Protocol, ServiceModel } from '../topology/model';
import { diffServices, realServerKey, serviceKey } from './diff';
import { FULLNAT_TABLE, fullnatSnatRuleset, loadFullnatSnat } from './fullnat-snat';
import type { DirectorDriverDefinition } from './registry';
import {
  type ApplyResult,
  DirectorApplyError,
  type DirectorCapabilities,
  type DirectorConnection,
  type DirectorCounters,
  type DirectorDifference,
  type DirectorDriver,
  type DirectorRealServer,
  type DirectorService,
  type DirectorServiceStats,
} from './types';

export const NFT_TABLE = 'vslab_director';
/** The netdev table of DR services. */
export const NFT_DR_TABLE = 'vslab_dr';
const SCHEDULERS = ['rr', 'wrr', 'sh', 'dh'];
const METHODS: ForwardingMethod[] = ['nat', 'fullnat', 'dr'];
const DR_FLOW_TIMEOUT_S = 300;

const keyOf = serviceKey;
const rsKey = realServerKey;
/** Counter names: letters, digits and underscores only. */
const counterBase = (s: { protocol: string; vip?: string; port: number }) => `c_${s.protocol}_${canonical(s.vip!).replace(/[^0-9a-f]/gi, '_')}_${s.port}`;

export class NftablesDirector implements DirectorDriver {
  readonly kind = 'nftables';
  private caps?: Promise<DirectorCapabilities>;

  constructor(private readonly n: LabNode, private readonly model: LabModel) {}

  get node(): string {
    return this.n.name;
  }

  capabilities(): Promise<DirectorCapabilities> {
    this.caps ??= (async () => {
      const v = await this.n.exec(['nft', '--version']);
      const kernel = await this.n.exec(['cat', '/proc/sys/kernel/osrelease']);
      return {
        kind: 'nftables',
        implementation: `nftables ${v.stdout.trim().replace(/^nftables\s+/, '') || '(version unknown)'}${kernel.code === 0 ? ` (kernel ${kernel.stdout.trim()})` : ''}`,
        protocols: ['tcp', 'udp'],
        families: [4, 6],
        methods: METHODS,
        schedulers: SCHEDULERS,
        schedulerFlags: [],
        tunnelTypes: [],
        tunnelFlags: [],
        mixedFamilyTunnels: false,
        persistence: false,
        persistenceEngines: [],
        onePacket: false,
        fwmark: false,
        thresholds: false,
        weightZero: false,
        stats: true,
        rates: false,
        // Conntrack's and the rule set's counters are read live.
        countersFoldMs: 0,
        connections: true,
        // DR frames never meet conntrack: nothing counts them per service.
        statsMethods: ['nat', 'fullnat'],
      };
    })();
    return this.caps;
  }

  unsupported(s: ServiceModel): string | undefined {
    return nftablesDeclines(this.model, this.node, s);
  }

  private drRuleset(services: ServiceModel[]): string {
    const me = this.model.nodes.find((n) => n.name === this.node)!;
    const maps: string[] = [];
    const rules: string[] = [];
    for (const s of services) {
      const plan = drPlan(this.model, this.node, s)!;
      const slots: string[] = [];
      s.realServers.forEach((r, k) => { for (let i = 0; i < (s.scheduler === 'rr' ? 1 : r.weight); i++) slots.push(plan.macs[k]); });
      const map = `f${counterBase(s).slice(1)}`;
      const flow = `ip saddr . ${s.protocol} sport`;
      const pick = s.scheduler === 'rr' || s.scheduler === 'wrr' ? `numgen inc mod ${slots.length}` : `jhash ip ${s.scheduler === 'sh' ? 'saddr' : 'daddr'} mod ${slots.length} seed 0x0`;
      const match = `ip daddr ${s.vip} ${s.protocol} dport ${s.port}`;
      maps.push(`  map ${map} { type ipv4_addr . inet_service : mark; flags dynamic, timeout; timeout ${DR_FLOW_TIMEOUT_S}s; }`);
      rules.push(`    ${match} ${flow} != @${map} add @${map} { ${flow} : ${pick} }`);
      // A router's hop: the TTL goes down by one and expires at 1 (nft 1.0.6 can neither compute it nor set it
      // from a map, hence one rule per value in ttl_dec, the usual values first).
      rules.push(`    ${match} ip ttl 0-1 drop`);
      rules.push(`    ${match} meta mark set ${flow} map @${map} jump ttl_dec`);
      rules.push(`    ${match} ether saddr set ${plan.mac} ether daddr set meta mark map { ${slots.map((m, i) => `${i} : ${m}`).join(', ')} } fwd to "${plan.dev}" comment "vslab ${s.name} ${s.scheduler}"`);
    }
    const chains = me.interfaces.filter((i) => i.ipv4).map((i) => [
      `  chain in_${i.name.replace(/[^a-zA-Z0-9_]/g, '_')} {`, `    type filter hook ingress device "${i.name}" priority 0; policy accept;`, ...rules, '  }',
    ].join('\n'));
    const values = [64, 128, 255, ...Array.from({ length: 254 }, (_, k) => k + 2).filter((v) => v !== 64 && v !== 128 && v !== 255)];
    const ttl = ['  chain ttl_dec {', ...values.map((v) => `    ip ttl ${v} ip ttl set ${v - 1} return`), '  }'].join('\n');
    return [`table netdev ${NFT_DR_TABLE} {`, ...maps, ttl, ...chains, '}', ''].join('\n');
  }

  private ruleset(all: ServiceModel[]): string {
    const services = all.filter((s) => s.realServers.every((r) => r.method !== 'dr'));
    const counters: string[] = [];
    const nat: string[] = [];
    const count: string[] = [];
    for (const s of services) {
      const ipk = s.family === 4 ? 'ip' : 'ip6';
      const slots: string[] = [];
      for (const r of s.realServers) {
        const w = s.scheduler === 'rr' ? 1 : r.weight;
        for (let i = 0; i < w; i++) slots.push(`${r.addr} . ${r.port}`);
      }
      const key = s.scheduler === 'rr' || s.scheduler === 'wrr' ? `numgen inc mod ${slots.length}` : `jhash ${ipk} ${s.scheduler === 'sh' ? 'saddr' : 'daddr'} mod ${slots.length} seed 0x0`;
      nat.push(`    ${ipk} daddr ${s.vip} ${s.protocol} dport ${s.port} dnat ${ipk} to ${key} map { ${slots.map((t, i) => `${i} : ${t}`).join(', ')} } comment "vslab ${s.name} ${s.scheduler}"`);
      const base = counterBase(s);
      const svc = `ct original ${ipk} daddr ${s.vip} meta l4proto ${s.protocol} ct original proto-dst ${s.port}`;
      counters.push(`  counter ${base}_conns {}`, `  counter ${base}_in {}`, `  counter ${base}_out {}`);
      count.push(`    ${svc} ct state new counter name ${base}_conns`, `    ${svc} ct direction original counter name ${base}_in`, `    ${svc} ct direction reply counter name ${base}_out`);
      s.realServers.forEach((r, k) => {
        const rb = `${base}_r${k}`;
        const rsm = `${svc} ct reply ${ipk} saddr ${r.addr} ct reply proto-src ${r.port}`;
        counters.push(`  counter ${rb}_conns {}`, `  counter ${rb}_in {}`, `  counter ${rb}_out {}`);
        count.push(`    ${rsm} ct state new counter name ${rb}_conns`, `    ${rsm} ct direction original counter name ${rb}_in`, `    ${rsm} ct direction reply counter name ${rb}_out`);
      });
    }
    return [
      `table inet ${NFT_TABLE} {`, ...counters,
      '  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', ...nat, '  }',
      // Counted after NAT, where both directions of a connection pass (forward), like IPVS's per-service counters.
      '  chain count {', '    type filter hook forward priority filter; policy accept;', ...count, '  }',
      '}', '',
    ].join('\n');
  }

  async apply(services: ServiceModel[]): Promise<ApplyResult> {
    const problems = services.flatMap((s) => {
      if (s.director !== this.node) return [`service ${s.name} is directed by ${s.director}, not ${this.node}`];
      const why = this.unsupported(s);
      return why ? [`service ${s.name}: ${why}`] : [];
    });
    const keys = new Map<string, string>();
    for (const s of services) {
      const k = keyOf(s);
      if (keys.has(k)) problems.push(`services ${keys.get(k)} and ${s.name} are the same (${k})`);
      keys.set(k, s.name);
    }
    if (problems.length) throw new DirectorApplyError(this.node, problems);
    const before = await this.diff(services);
    const log: string[] = [];
    if (before.length) {
      // One transaction: the old table goes and the new one comes, or nothing changes.
      const dr = services.filter((s) => s.realServers.some((r) => r.method === 'dr'));
      const input = `add table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n${this.ruleset(services)}`
        + `add table netdev ${NFT_DR_TABLE}\ndelete table netdev ${NFT_DR_TABLE}\n${dr.length ? this.drRuleset(dr) : ''}`;
      const r = await this.n.exec(['nft', '-f', '-'], { input, timeoutMs: 30_000 });
      if (r.code !== 0) throw new DirectorApplyError(this.node, [`nft refused the director's ruleset: ${r.stderr.trim() || `exit ${r.code}`}`]);
      await loadFullnatSnat(this.n, fullnatSnatRuleset({ ...this.model, services }, this.node));
      log.push(`load table inet ${NFT_TABLE} (${services.length} service(s))`, `load the Full-NAT source-NAT table (inet ${FULLNAT_TABLE}) where fullnat is used`);
    }
    return { changes: before.length, log, differences: await this.diff(services) };
  }

  private async listJson(table: string, family = 'inet'): Promise<NftObject[]> {
    const r = await this.n.exec(['nft', '-j', 'list', 'table', family, table], { timeoutMs: 30_000 });
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return [];
      throw new Error(`director ${this.node}: nft -j list table ${family} ${table} exited with ${r.code}: ${r.stderr.trim()}`);
    }
    return (JSON.parse(r.stdout) as { nftables: NftObject[] }).nftables;
  }

  async readBack(services: ServiceModel[] = []): Promise<DirectorService[]> {
    const asked = new Map(services.map((s) => [keyOf(s), s]));
    const snat = new Set<string>();
    for (const o of await this.listJson(FULLNAT_TABLE)) {
      if (!o.rule || o.rule.chain !== 'postrouting') continue;
      const m = matches(o.rule.expr);
      if (m.daddr && m.dport !== undefined && o.rule.expr.some((e) => 'snat' in e)) snat.add(rsKey(m.daddr, m.dport));
    }
    const out: DirectorService[] = [];
    for (const o of await this.listJson(NFT_TABLE)) {
      if (!o.rule || o.rule.chain !== 'prerouting') continue;
      const held = serviceOfRule(o.rule, snat);
      if (!held) continue;
      const want = asked.get(keyOf(held));
      if (want) held.name = want.name;
      out.push(held);
    }
    const dr = await this.listJson(NFT_DR_TABLE, 'netdev');
    const seen = new Set<string>();
    for (const o of dr) {
      if (!o.rule) continue;
      const held = this.drServiceOfRule(o.rule, dr);
      // The same rules sit in every interface's chain; one service each.
      if (!held || seen.has(keyOf(held))) continue;
      seen.add(keyOf(held));
      const want = asked.get(keyOf(held));
      if (want) held.name = want.name;
      out.push(held);
    }
    return out;
  }

  /** A DR forwarding rule in model terms: MACs back to the real servers' addresses on that segment. */
  private drServiceOfRule(rule: NonNullable<NftObject['rule']>, all: NftObject[]): DirectorService | undefined {
    const m = matches(rule.expr);
    const daddr = rule.expr.map((e) => e.mangle).find((x) => x?.key.payload?.protocol === 'ether' && x.key.payload.field === 'daddr');
    const set = (daddr?.value as { map?: { data: { set: Array<[number, string]> } } } | undefined)?.map?.data.set;
    if (!m.daddr || m.dport === undefined || !m.protocol || !set || !rule.expr.some((e) => e.fwd)) return undefined;
    const byMac = new Map<string, string>();
    for (const n of this.model.nodes) for (const i of n.interfaces) if (i.ipv4) byMac.set(i.mac.toLowerCase(), i.ipv4.addr);
    const slots = new Map<string, number>();
    for (const [, mac] of set) slots.set(mac.toLowerCase(), (slots.get(mac.toLowerCase()) ?? 0) + 1);
    // The scheduler is how the flow map's slot is picked (nft prints that statement as text).
    const add = all.map((o) => o.rule?.expr.find((e) => typeof e === 'string' && e.startsWith('add @'))).find((e) => typeof e === 'string' && matchesSame(all, e, m)) as string | undefined;
    const labelled = /^vslab \S+ (\S+)$/.exec(rule.comment ?? '')?.[1];
    const allOne = [...slots.values()].every((n) => n === 1);
    const scheduler = !add ? 'unknown' : /numgen inc/.test(add) ? (allOne && (labelled === 'rr' || labelled === 'wrr') ? labelled : allOne ? 'rr' : 'wrr') : /jhash ip saddr/.test(add) ? 'sh' : /jhash ip daddr/.test(add) ? 'dh' : 'unknown';
    return {
      protocol: m.protocol as Protocol, family: 4, vip: canonical(m.daddr), port: m.dport, scheduler, flags: [], onePacket: false,
      realServers: [...slots].map(([mac, n]) => ({ addr: byMac.get(mac) ?? mac, family: 4 as Family, port: m.dport!, weight: n, upper: 0, lower: 0, method: 'dr' as const })),
    };
  }

  async diff(services: ServiceModel[]): Promise<DirectorDifference[]> {
    return diffServices(services, await this.readBack(services));
  }

  async stats(services: ServiceModel[] = []): Promise<DirectorServiceStats[]> {
    const values = new Map<string, { packets: number; bytes: number }>();
    for (const o of await this.listJson(NFT_TABLE)) if (o.counter) values.set(o.counter.name, { packets: o.counter.packets, bytes: o.counter.bytes });
    const held = await this.readBack(services);
    const c = (base: string): DirectorCounters => {
      const get = (n: string) => values.get(`${base}_${n}`) ?? { packets: 0, bytes: 0 };
      const [conns, inn, outt] = [get('conns'), get('in'), get('out')];
      return { conns: conns.packets, inPkts: inn.packets, outPkts: outt.packets, inBytes: inn.bytes, outBytes: outt.bytes, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
    };
    const table = await this.connections().catch(() => [] as DirectorConnection[]);
    return held.map((s) => {
      const base = counterBase(s);
      const want = services.find((x) => keyOf(x) === keyOf(s));
      return {
        service: s.name ?? keyOf(s),
        counters: c(base),
        realServers: s.realServers.map((r) => {
          // Counter names follow the model's order of real servers when the model has the service.
          const k = want ? want.realServers.findIndex((x) => rsKey(x.addr, x.port) === rsKey(r.addr, r.port)) : -1;
          const mine = table.filter((t) => !t.template && rsKey(t.realServer.addr, t.realServer.port) === rsKey(r.addr, r.port) && t.virtual.port === s.port);
          return {
            addr: r.addr, port: r.port,
            counters: k >= 0 ? c(`${base}_r${k}`) : c(''),
            activeConns: mine.filter((t) => t.state === 'ESTABLISHED').length,
            inactiveConns: mine.filter((t) => t.state !== 'ESTABLISHED').length,
            persistConns: 0,
          };
        }),
      };
    });
  }

  async connections(): Promise<DirectorConnection[]> {
    const services = await this.readBack();
    const vips = new Set(services.filter((s) => s.realServers.every((r) => r.method !== 'dr')).map((s) => keyOf(s)));
    const out: DirectorConnection[] = [];
    // DR: the flow maps (client address . port -> slot of the forwarding rule's MAC map).
    const dr = await this.listJson(NFT_DR_TABLE, 'netdev');
    for (const s of services.filter((x) => x.realServers.every((r) => r.method === 'dr'))) {
      const name = `f${counterBase(s).slice(1)}`;
      const map = dr.find((o) => o.map?.name === name)?.map;
      const macRule = dr.find((o) => o.rule && (() => { const m = matches(o.rule!.expr); return m.daddr && canonical(m.daddr) === s.vip && m.dport === s.port && m.protocol === s.protocol && o.rule!.expr.some((e) => e.fwd); })());
      const slotMacs = (macRule?.rule?.expr.map((e) => e.mangle).find((x) => x?.key.payload?.field === 'daddr')?.value as { map?: { data: { set: Array<[number, string]> } } } | undefined)?.map?.data.set ?? [];
      const byMac = new Map<string, string>();
      for (const n of this.model.nodes) for (const i of n.interfaces) if (i.ipv4) byMac.set(i.mac.toLowerCase(), i.ipv4.addr);
      for (const [el, slot] of map?.elem ?? []) {
        const [addr, port] = el.elem.val.concat;
        const mac = slotMacs.find(([k]) => k === slot)?.[1];
        out.push({
          protocol: s.protocol, family: 4, state: 'FLOW', expires: el.elem.expires ?? 0, template: false,
          client: { addr: canonical(addr), port }, virtual: { addr: s.vip!, port: s.port },
          realServer: { addr: mac ? byMac.get(mac.toLowerCase()) ?? mac : `slot ${slot}`, port: s.port, family: 4 },
        });
      }
    }
    for (const fam of ['ipv4', 'ipv6']) {
      const r = await this.n.exec(['conntrack', '-L', '-f', fam], { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`director ${this.node}: conntrack -L -f ${fam} exited with ${r.code}: ${r.stderr.trim()}`);
      for (const line of r.stdout.split('\n')) {
        const c = parseConntrackLine(line, fam === 'ipv4' ? 4 : 6);
        if (c && vips.has(keyOf({ protocol: c.protocol, vip: c.virtual.addr, port: c.virtual.port }))) out.push(c);
      }
    }
    return out;
  }

  async flush(): Promise<void> {
    const r = await this.n.exec(['nft', '-f', '-'], { input: `add table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\nadd table netdev ${NFT_DR_TABLE}\ndelete table netdev ${NFT_DR_TABLE}\n` });
    if (r.code !== 0) throw new Error(`director ${this.node}: cannot remove table inet ${NFT_TABLE}: ${r.stderr.trim()}`);
    await loadFullnatSnat(this.n, undefined);
  }

  async close(): Promise<void> {
    /* nothing held open */
  }
}

// ---- what the driver declines, and where DR frames go ------------------------------------------

/** Why the nftables driver cannot program `s` on director `node` of `model` (undefined: it can). */
export function nftablesDeclines(model: LabModel, node: string, s: ServiceModel): string | undefined {
  const methods = [...new Set(s.realServers.map((r) => r.method))];
  const other = methods.filter((m) => !METHODS.includes(m));
  if (other.length) return `method ${other.join('/')}: the nftables driver programs ${METHODS.join(", ")} (dnat with conntrack; DR in the netdev hook)`;
  if (!SCHEDULERS.includes(s.scheduler)) return `scheduler ${s.scheduler}: nftables can express ${SCHEDULERS.join(', ')} (numgen and jhash maps); per-server connection counts (lc, wlc, sed, nq, ovf, lblc, lblcr) and IPVS's other tables are beyond a rule set`;
  if (s.flags.length) return `scheduler flags ${s.flags.join(', ')}: not expressed by the nftables driver`;
  if (s.protocol !== 'tcp' && s.protocol !== 'udp') return `protocol ${s.protocol}: the nftables driver programs tcp and udp`;
  if (!s.vip || s.fwmark !== undefined) return 'fwmark services: the nftables driver programs VIP:port services only';
  if (s.persistence) return 'persistence: not expressed by the nftables driver (a dynamic affinity map would be needed)';
  if (s.onePacket) return 'one-packet scheduling: conntrack always keeps UDP flows';
  if (s.realServers.some((r) => r.upper || r.lower)) return 'connection thresholds: nftables counts connections per rule, not per server';
  if (s.realServers.some((r) => r.weight === 0)) return 'a real server of weight 0: nftables has no quiesced server (it would be absent from the map, not kept)';
  if (s.realServers.some((r) => r.family !== s.family)) return 'real servers of another address family than the service';
  if (methods.includes('dr')) {
    if (methods.length > 1) return `methods ${methods.join('/')} in one service: the nftables driver programs a service as DR or as NAT`;
    if (s.family === 6) return 'IPv6 DR: nft 1.0.6 aborts on a dynamic flow map keyed by an IPv6 address and port ("netlink_gen_expr: Assertion dreg < ctx->reg_low"), and without one a DR flow cannot be kept on its server';
    if (!drPlan(model, node, s)) return 'DR real servers must share one segment with the director (the frame is forwarded out of one device)';
  }
  return undefined;
}

/** Where a DR service's frames go: the director's interface on the real servers' segment, and each server's MAC. */
function drPlan(model: LabModel, node: string, s: ServiceModel): { dev: string; mac: string; macs: string[] } | undefined {
  const me = model.nodes.find((n) => n.name === node);
  const macs: string[] = [];
  let dev: { name: string; mac: string } | undefined;
  for (const r of s.realServers) {
    const rn = model.nodes.find((n) => n.name === r.node);
    const ri = rn?.interfaces.find((i) => i.ipv4 && canonical(i.ipv4.addr) === canonical(r.addr));
    const di = ri && me?.interfaces.find((i) => i.segment === ri.segment);
    if (!ri || !di || (dev && dev.name !== di.name)) return undefined;
    dev = di;
    macs.push(ri.mac);
  }
  return dev && { dev: dev.name, mac: dev.mac, macs };
}


// ---- reading the ruleset back --------------------------------------------------------------------

interface NftExpr {
  match?: { op: string; left: { payload?: { protocol: string; field: string } }; right: unknown };
  mangle?: { key: { payload?: { protocol: string; field: string }; meta?: { key: string } }; value: unknown };
  fwd?: { dev: string };
  dnat?: { family?: string; addr: { map?: { key: NftKey; data: { set: Array<[number, { concat: [string, number] }]> } } } };
  [k: string]: unknown;
}
type NftKey = { numgen?: { mode: string; mod: number }; jhash?: { mod: number; expr: { payload?: { field: string } } } };
interface NftObject {
  rule?: { chain: string; comment?: string; expr: Array<NftExpr & string> };
  map?: { name: string; elem?: Array<[{ elem: { val: { concat: [string, number] }; expires?: number } }, number]> };
  counter?: { name: string; packets: number; bytes: number };
}

/** Whether the textual `add @map` statement belongs to a rule matching the same VIP, protocol and port. */
function matchesSame(all: NftObject[], add: string, m: ReturnType<typeof matches>): boolean {
  return all.some((o) => {
    if (!o.rule?.expr.includes(add as NftExpr & string)) return false;
    const x = matches(o.rule.expr);
    return x.daddr === m.daddr && x.dport === m.dport && x.protocol === m.protocol;
  });
}

function matches(expr: NftExpr[]): { daddr?: string; family?: Family; protocol?: string; dport?: number } {
  const out: { daddr?: string; family?: Family; protocol?: string; dport?: number } = {};
  for (const e of expr) {
    if (typeof e !== 'object') continue; // statements nft prints as text
    const p = e.match?.left.payload;
    if (!p || e.match!.op !== '==') continue;
    if (p.field === 'daddr' && (p.protocol === 'ip' || p.protocol === 'ip6')) {
      out.daddr = String(e.match!.right);
      out.family = p.protocol === 'ip' ? 4 : 6;
    }
    if (p.field === 'dport') {
      out.protocol = p.protocol;
      out.dport = Number(e.match!.right);
    }
  }
  return out;
}

/** A dnat-to-map rule in model terms; undefined for a rule that is not one. */
function serviceOfRule(rule: NonNullable<NftObject['rule']>, snat: Set<string>): DirectorService | undefined {
  const m = matches(rule.expr);
  const map = rule.expr.find((e) => e.dnat)?.dnat?.addr.map;
  if (!m.daddr || m.dport === undefined || !m.protocol || !map) return undefined;
  const slots = new Map<string, { addr: string; port: number; n: number }>();
  for (const [, el] of map.data.set) {
    const [addr, port] = el.concat;
    const k = rsKey(addr, port);
    const cur = slots.get(k) ?? { addr: canonical(addr), port, n: 0 };
    cur.n++;
    slots.set(k, cur);
  }
  const labelled = /^vslab \S+ (\S+)$/.exec(rule.comment ?? '')?.[1];
  let scheduler: string;
  if (map.key.numgen?.mode === 'inc') {
    const allOne = [...slots.values()].every((s) => s.n === 1);
    // rr and wrr with equal weights are the same rule; the comment tells which was asked.
    scheduler = allOne && (labelled === 'rr' || labelled === 'wrr') ? labelled : allOne ? 'rr' : 'wrr';
  } else if (map.key.jhash) {
    scheduler = map.key.jhash.expr.payload?.field === 'saddr' ? 'sh' : map.key.jhash.expr.payload?.field === 'daddr' ? 'dh' : 'jhash';
  } else scheduler = map.key.numgen ? `numgen-${map.key.numgen.mode}` : 'unknown';
  const realServers: DirectorRealServer[] = [...slots.values()].map((s) => ({
    addr: s.addr, family: m.family!, port: s.port, weight: s.n, upper: 0, lower: 0,
    method: snat.has(rsKey(s.addr, s.port)) ? 'fullnat' : 'nat',
  }));
  return { protocol: m.protocol as Protocol, family: m.family!, vip: canonical(m.daddr), port: m.dport, scheduler, flags: [], onePacket: false, realServers };
}

/** One line of `conntrack -L`: "tcp 6 431999 ESTABLISHED src=C dst=VIP sport=.. dport=.. src=RS dst=.. sport=.. dport=.. [ASSURED] ...". */
export function parseConntrackLine(line: string, family: Family): DirectorConnection | undefined {
  const w = line.trim().split(/\s+/);
  if (w.length < 4 || !/^\d+$/.test(w[1]) || !/^\d+$/.test(w[2])) return undefined;
  const protocol = w[0];
  const expires = Number(w[2]);
  const state = /=/.test(w[3]) ? protocol.toUpperCase() : w[3];
  const kv = w.filter((x) => /^(src|dst|sport|dport)=/.test(x)).map((x) => x.split('=') as [string, string]);
  if (kv.length < 8) return undefined;
  const [orig, reply] = [Object.fromEntries(kv.slice(0, 4)), Object.fromEntries(kv.slice(4, 8))];
  return {
    protocol, family, expires, state, template: false,
    client: { addr: canonical(orig.src), port: Number(orig.sport) },
    virtual: { addr: canonical(orig.dst), port: Number(orig.dport) },
    realServer: { addr: canonical(reply.src), port: Number(reply.sport), family },
  };
}

export const nftablesDriver: DirectorDriverDefinition = {
  name: 'nftables',
  summary: 'LVS in nftables (kube-proxy/nftlb style): dnat to numgen/jhash maps + conntrack; NAT and Full-NAT',
  unavailable: () => undefined,
  declines: nftablesDeclines,
  open: async (lab, node) => new NftablesDirector(lab.node(node), lab.model),
};

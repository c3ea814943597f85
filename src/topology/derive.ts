// Semantic checks and derivation: from the schema-valid raw topology to the LabModel, with the
// address plan, routes and the host settings each forwarding method needs.
import {
  canonical, contains, familyOf, fromBig, hostPrefixLen, inLabSupernet, isReservedInPrefix, nthAddr, overlaps,
  parsePrefix, prefixInLabSupernet, prefixText, size, toBig, type Prefix,
} from './addr';
import type { Reporter, PathSeg } from './load';
import { normSysctl, sysctlKeyProblem, sysctlValueProblem } from './sysctl';
import type {
  Family, ForwardingMethod, InterfaceModel, LabModel, NodeImageModel, NodeModel, RealServerModel, Role, RouteModel, SegmentModel,
  ServiceModel, TunnelDeviceModel, TunnelSpec,
} from './model';
import { deriveHa, haDefaultDirector, type RawHa } from './ha';

// ---- raw (schema-valid) shapes ---------------------------------------------------------------
type RawMember = string | { node: string; ipv4?: string; ipv6?: string; mac?: string };
type RawImage = string | { name: string; command?: string[]; env?: Record<string, string | number>; files?: Array<{ from: string; to: string }> };
interface RawNode { role: Role; description?: string; sysctls?: Record<string, string | number>; routes?: Array<{ to: string; via?: string }>; derive?: boolean; image?: RawImage }

/** A node's image as the model holds it; files must stay inside the topology's folder. */
function deriveImage(raw: RawImage, at: PathSeg[], r: Reporter): NodeImageModel {
  const o = typeof raw === 'string' ? { name: raw } : raw;
  const files = (o.files ?? []).map((f, i) => {
    if (f.from.startsWith('/') || f.from.split('/').includes('..')) r.error([...at, 'files', i, 'from'], `file "${f.from}" must be a relative path inside the topology's folder`);
    if (f.to.split('/').includes('..')) r.error([...at, 'files', i, 'to'], `destination "${f.to}" must not contain ".."`);
    return { from: f.from, to: f.to };
  });
  return { ref: o.name, command: o.command, env: Object.fromEntries(Object.entries(o.env ?? {}).map(([k, v]) => [k, String(v)])), files };
}
interface RawSegment { ipv4?: string | boolean; ipv6?: string | boolean; mtu?: number; members: RawMember[] }
interface RawLink { name?: string; ipv4?: string | boolean; ipv6?: string | boolean; mtu?: number; endpoints: RawMember[] }
interface RawTunnel { type: 'ipip' | 'gue' | 'gre'; port?: number; flags?: string[] }
type RawRealServer = string | { node: string; address?: string; port?: number; weight?: number; upper?: number; lower?: number; method?: ForwardingMethod; tunnel?: RawTunnel };
interface RawService {
  name: string; protocol?: 'tcp' | 'udp' | 'sctp'; vip?: string; port?: number; fwmark?: number; family?: Family; director?: string;
  scheduler?: string; flags?: string[]; persistence?: { timeout?: number; netmask?: string | number }; onePacket?: boolean;
  method?: ForwardingMethod; tunnel?: RawTunnel; weight?: number; localAddresses?: string[]; transparent?: boolean; realServers: RawRealServer[];
}
export interface RawTopology { name: string; description?: string; mtu?: number; nodes: Record<string, RawNode>; segments?: Record<string, RawSegment>; links?: RawLink[]; services?: RawService[]; ha?: RawHa }

export const DEFAULT_GUE_PORT = 6080;
const DEFAULT_MTU = 1500;

class PoolExhausted extends Error {}

/** Allocates /24 and /64 subnets for segments that did not give one. */
class SubnetPool {
  private used: Prefix[] = [];
  private next4 = 0;
  private next6 = 1;
  reserve(p: Prefix): void { this.used.push(p); }
  isFree(p: Prefix): boolean { return !this.used.some((u) => overlaps(u, p)); }
  take(family: Family): Prefix {
    for (;;) {
      const p: Prefix = family === 4
        ? { family, base: toBig('198.18.0.0') + BigInt(this.next4++) * 256n, len: 24 }
        : { family, base: toBig('2001:db8::') + (BigInt(this.next6++) << 64n), len: 64 };
      if (family === 4 && this.next4 > 255) throw new PoolExhausted('out of IPv4 lab subnets to allocate (198.18.0.0/16 holds 255 of them)');
      if (this.isFree(p)) { this.used.push(p); return p; }
    }
  }
}

interface SegDraft { model: SegmentModel; v4?: Prefix; v6?: Prefix; at: PathSeg[]; members: Array<{ node: string; ipv4?: string; ipv6?: string; mac?: string; at: PathSeg[] }> }

function segmentOfIface(lab: { segments: SegmentModel[] }, node: NodeModel, iface: InterfaceModel): SegmentModel {
  return lab.segments.find((s) => s.name === iface.segment)!;
}

function addrOf(iface: InterfaceModel, family: Family): string | undefined {
  return family === 4 ? iface.ipv4?.addr : iface.ipv6?.addr;
}

function hostCidr(addr: string): string {
  const f = familyOf(addr) as Family;
  return `${canonical(addr)}/${hostPrefixLen(f)}`;
}

/** Reports every sysctl of a node that may not be set (see ./sysctl.ts); true when all may. */
function checkSysctls(name: string, rn: RawNode, r: Reporter, devices?: ReadonlySet<string>): boolean {
  let ok = true;
  for (const [k, v] of Object.entries(rn.sysctls ?? {})) {
    const at: PathSeg[] = ['nodes', name, 'sysctls', k];
    const kp = sysctlKeyProblem(k, devices);
    if (kp) r.error(at, kp, true);
    const vp = sysctlValueProblem(String(v));
    if (vp) r.error(at, vp);
    ok &&= !kp && !vp;
  }
  return ok;
}

function setSysctl(n: NodeModel, key: string, value: string): void {
  n.sysctls[normSysctl(key)] = value;
}

export function deriveLab(raw: RawTopology, file: string, r: Reporter, hostPrefixes: string[]): LabModel {
  const nodes: NodeModel[] = Object.entries(raw.nodes).map(([name, n], index) => ({
    name, role: n.role, index, interfaces: [], loopbackAddrs: [], routes: [], sysctls: {}, tunnels: [],
    ...(n.image ? { image: deriveImage(n.image, ['nodes', name, 'image'], r) } : {}),
    source: { file, ...r.locate(['nodes', name], true) },
  }));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const lab: LabModel = { name: raw.name, file, nodes, segments: [], services: [] };
  const labMtu = raw.mtu ?? DEFAULT_MTU;
  for (const [name, rn] of Object.entries(raw.nodes)) checkSysctls(name, rn, r);

  // ---- segments and links -------------------------------------------------------------------
  const pool = new SubnetPool();
  const hostPfx = hostPrefixes.map((h) => parsePrefix(h, true)).filter((p): p is Prefix => typeof p !== 'string');
  const drafts: SegDraft[] = [];
  const normMember = (m: RawMember, at: PathSeg[]) => (typeof m === 'string' ? { node: m, at } : { ...m, at });
  let segIndex = 1;
  for (const [name, s] of Object.entries(raw.segments ?? {})) {
    const members = s.members.map((m, i) => normMember(m, ['segments', name, 'members', i]));
    drafts.push({ model: { name, kind: 'lan', index: segIndex++, mtu: s.mtu ?? labMtu, members: [] }, at: ['segments', name], members, ...subnetsOf(s, ['segments', name]) });
  }
  (raw.links ?? []).forEach((l, i) => {
    const members = l.endpoints.map((m, j) => normMember(m, ['links', i, 'endpoints', j]));
    const name = l.name ?? `${members[0].node}-${members[1].node}`;
    if (drafts.some((d) => d.model.name === name)) r.error(['links', i], `link name "${name}" is already used by a segment or link; give it a "name"`);
    drafts.push({ model: { name, kind: 'p2p', index: segIndex++, mtu: l.mtu ?? labMtu, members: [] }, at: ['links', i], members, ...subnetsOf(l, ['links', i]) });
  });
  if (segIndex > 256) r.error(['segments'], `a lab holds at most 255 segments and links (this one has ${segIndex - 1})`);

  function subnetsOf(s: { ipv4?: string | boolean; ipv6?: string | boolean }, at: PathSeg[]): { v4?: Prefix; v6?: Prefix } {
    const out: { v4?: Prefix; v6?: Prefix } = {};
    for (const [key, fam] of [['ipv4', 4], ['ipv6', 6]] as const) {
      const v = s[key];
      if (typeof v !== 'string') continue;
      const p = parsePrefix(v);
      if (typeof p === 'string') { r.error([...at, key], p); continue; }
      if (p.family !== fam) { r.error([...at, key], `${key} must be an IPv${fam} prefix, got ${v}`); continue; }
      if (!prefixInLabSupernet(p)) { r.error([...at, key], `${v} is outside the lab ranges 198.18.0.0/15 and 2001:db8::/32 (lab traffic must stay in them)`); continue; }
      const clash = hostPfx.find((h) => overlaps(h, p));
      if (clash) { r.error([...at, key], `${v} overlaps the host's own route ${prefixText(clash)}`); continue; }
      if (!pool.isFree(p)) { r.error([...at, key], `${v} overlaps another segment's subnet`); continue; }
      pool.reserve(p);
      if (fam === 4) out.v4 = p; else out.v6 = p;
    }
    return out;
  }
  // Allocate after every explicit subnet is reserved, so allocation never takes a given one.
  for (const d of drafts) {
    const raw4 = d.at[0] === 'segments' ? raw.segments![d.at[1] as string].ipv4 : raw.links![d.at[1] as number].ipv4;
    const raw6 = d.at[0] === 'segments' ? raw.segments![d.at[1] as string].ipv6 : raw.links![d.at[1] as number].ipv6;
    try {
      if (!d.v4 && raw4 !== false && typeof raw4 !== 'string') d.v4 = pool.take(4);
      if (!d.v6 && raw6 !== false && typeof raw6 !== 'string') d.v6 = pool.take(6);
    } catch (e) {
      if (!(e instanceof PoolExhausted)) throw e;
      r.error(d.at, `${e.message}: give this ${d.model.kind === 'lan' ? 'segment' : 'link'} an explicit subnet, or "ipv4: false"`);
    }
  }

  // Members: interfaces and addresses.
  for (const d of drafts) {
    const seen = new Set<string>();
    const taken = new Set<string>();
    for (const m of d.members) {
      if (m.mac) {
        const first = parseInt(m.mac.slice(0, 2), 16);
        if (/^(00:){5}00$/.test(m.mac)) r.error([...m.at, 'mac'], `MAC ${m.mac} is the all-zero address, which an interface cannot have`);
        else if (first & 1) r.error([...m.at, 'mac'], `MAC ${m.mac} is a ${/^(ff:){5}ff$/i.test(m.mac) ? 'broadcast' : 'multicast'} address (the low bit of its first byte is set); an interface needs a unicast MAC`);
      }
      for (const [fam, a] of [[4, m.ipv4], [6, m.ipv6]] as const) {
        if (!a) continue;
        const p = fam === 4 ? d.v4 : d.v6;
        const key = fam === 4 ? 'ipv4' : 'ipv6';
        if (!p) { r.error([...m.at, key], `${d.model.kind === 'lan' ? 'segment' : 'link'} "${d.model.name}" has no IPv${fam} subnet, so ${a} cannot be placed on it`); continue; }
        if (!contains(p, a)) { r.error([...m.at, key], `address ${a} is outside its segment "${d.model.name}" (${prefixText(p)})`); continue; }
        if (isReservedInPrefix(p, a)) { r.error([...m.at, key], `address ${a} is the network or broadcast address of ${prefixText(p)}`); continue; }
        const c = canonical(a);
        if (taken.has(c)) r.error([...m.at, key], `address ${a} is used twice on segment "${d.model.name}"`);
        taken.add(c);
      }
    }
    const hostIdx: Record<Family, number> = { 4: 1, 6: 1 };
    const nextFree = (p: Prefix): string => {
      for (;;) {
        const a = nthAddr(p, hostIdx[p.family]++);
        if (BigInt(hostIdx[p.family]) >= size(p)) throw new PoolExhausted(`no free address left in ${prefixText(p)}`);
        if (!taken.has(a)) { taken.add(a); return a; }
      }
    };
    for (const m of d.members) {
      const node = byName.get(m.node);
      if (!node) { r.error(m.at, `unknown node "${m.node}" (nodes are: ${[...byName.keys()].join(', ')})`); continue; }
      if (seen.has(m.node)) { r.error(m.at, `node "${m.node}" is attached to "${d.model.name}" twice`); continue; }
      seen.add(m.node);
      const iface: InterfaceModel = {
        name: `eth${node.interfaces.length}`,
        segment: d.model.name,
        mac: m.mac?.toLowerCase() ?? macFor(d.model.index, node.index),
        mtu: d.model.mtu,
        extraAddrs: [],
      };
      try {
        if (d.v4) iface.ipv4 = { addr: m.ipv4 ? canonical(m.ipv4) : nextFree(d.v4), prefixLen: d.v4.len };
        if (d.v6) iface.ipv6 = { addr: m.ipv6 ? canonical(m.ipv6) : nextFree(d.v6), prefixLen: d.v6.len };
      } catch (e) {
        if (!(e instanceof PoolExhausted)) throw e;
        r.error(m.at, `node "${m.node}" gets no address on ${d.model.kind === 'lan' ? 'segment' : 'link'} "${d.model.name}": ${e.message} (use a larger subnet)`);
        continue;
      }
      node.interfaces.push(iface);
      d.model.members.push({ node: node.name, iface: iface.name });
    }
    if (d.model.kind === 'lan' && d.model.members.length < 1) r.error(d.at, `segment "${d.model.name}" has no members`);
    if (d.v4) d.model.ipv4 = { addr: fromBig(d.v4.base, 4), prefixLen: d.v4.len };
    if (d.v6) d.model.ipv6 = { addr: fromBig(d.v6.base, 6), prefixLen: d.v6.len };
    lab.segments.push(d.model);
  }
  const macs = new Map<string, string>();
  for (const n of nodes) for (const i of n.interfaces) {
    const other = macs.get(i.mac);
    if (other) r.error(['nodes', n.name], `MAC ${i.mac} of ${n.name}:${i.name} is also used by ${other}`, true);
    macs.set(i.mac, `${n.name}:${i.name}`);
  }
  if (r.failed) return lab;

  // ---- services ----------------------------------------------------------------------------
  const ifaceAddrs = new Map<string, string>(); // canonical addr -> node:iface
  for (const n of nodes) for (const i of n.interfaces) for (const a of [i.ipv4?.addr, i.ipv6?.addr]) if (a) ifaceAddrs.set(a, `${n.name}:${i.name}`);
  const directors = nodes.filter((n) => n.role === 'director');
  const vipKeys = new Map<string, string>();
  const svcNames = new Set<string>();
  let vipAlloc4 = 100, vipAlloc6 = 0x100;
  const fullnatPool = new Map<string, string>();
  (raw.services ?? []).forEach((s, si) => {
    const at: PathSeg[] = ['services', si];
    if (svcNames.has(s.name)) r.error([...at, 'name'], `service name "${s.name}" is used twice`);
    svcNames.add(s.name);
    const protocol = s.protocol ?? 'tcp';
    // Director
    let director: NodeModel | undefined;
    if (s.director) {
      director = byName.get(s.director);
      if (!director) return r.error([...at, 'director'], `unknown node "${s.director}"`);
      if (director.role !== 'director') return r.error([...at, 'director'], `node "${s.director}" has role ${director.role}, not director`);
    } else if (directors.length === 1) director = directors[0];
    else if (raw.ha && byName.get(haDefaultDirector(raw.ha))?.role === 'director') director = byName.get(haDefaultDirector(raw.ha))!;
    else return r.error(at, directors.length ? `the lab has ${directors.length} directors; say which one directs "${s.name}" with "director"` : `service "${s.name}" needs a node with role director`);
    // VIP / fwmark / family
    if (s.vip === undefined && s.fwmark === undefined) return r.error(at, `service "${s.name}" needs a "vip" (with "port") or a "fwmark"`);
    let family: Family = s.vip ? (familyOf(s.vip) as Family) : (s.family ?? 4);
    if (s.vip && s.family && s.family !== family) r.error([...at, 'family'], `family ${s.family} contradicts the VIP ${s.vip}`);
    let vip = s.vip ? canonical(s.vip) : undefined;
    if (vip && !inLabSupernet(vip)) r.error([...at, 'vip'], `VIP ${s.vip} is outside the lab ranges 198.18.0.0/15 and 2001:db8::/32`);
    if (vip && ifaceAddrs.has(vip)) r.error([...at, 'vip'], `VIP ${s.vip} is already the address of ${ifaceAddrs.get(vip)}`);
    if (s.vip && s.port === undefined) r.error(at, `service "${s.name}" has a VIP but no "port" (use port 0 only with persistence)`);
    if (s.vip && s.port === 0 && !s.persistence) r.error([...at, 'port'], `port 0 (all ports) is only accepted by IPVS for persistent services; add "persistence"`);
    if (s.fwmark !== undefined && s.port !== undefined && !s.vip) r.error([...at, 'port'], 'a fwmark service has no port');
    const port = s.port ?? 0;
    if (vip) {
      const key = `${protocol} ${vip} ${port}`;
      if (vipKeys.has(key)) r.error([...at, 'vip'], `VIP ${s.vip}:${port}/${protocol} is already used by service "${vipKeys.get(key)}"`);
      vipKeys.set(key, s.name);
    }
    if (s.fwmark !== undefined) {
      const key = `fwmark ${family} ${s.fwmark}`;
      if (vipKeys.has(key)) r.error([...at, 'fwmark'], `fwmark ${s.fwmark} (IPv${family}) is already used by service "${vipKeys.get(key)}"`);
      vipKeys.set(key, s.name);
      if (!vip) {
        // A fwmark service still needs an address the clients send to: give the director one.
        vip = family === 4 ? `198.19.0.${vipAlloc4++}` : `2001:db8:ffff::${(vipAlloc6++).toString(16)}`;
      }
    }
    const scheduler = s.scheduler ?? 'wlc';
    const flags = s.flags ?? [];
    flags.forEach((f, fi) => {
      const owner = f.split('-')[0];
      if ((owner === 'sh' || owner === 'mh') && owner !== scheduler) r.error([...at, 'flags', fi], `flag ${f} belongs to the ${owner} scheduler, not ${scheduler}`);
    });
    if (s.onePacket && protocol !== 'udp') r.error([...at, 'onePacket'], `one-packet scheduling only applies to UDP services (this one is ${protocol})`);
    let persistence: ServiceModel['persistence'];
    if (s.persistence) {
      const nm = s.persistence.netmask;
      let netmask = family === 4 ? '255.255.255.255' : '128';
      if (nm !== undefined) {
        if (family === 4) {
          const ok = typeof nm === 'string' && familyOf(nm) === 4 && /^1*0*$/.test(toBig(nm).toString(2).padStart(32, '0'));
          if (!ok) r.error([...at, 'persistence', 'netmask'], `netmask ${nm} is not a dotted IPv4 netmask such as 255.255.255.0`);
          else netmask = nm;
        } else {
          const len = Number(nm);
          if (!Number.isInteger(len) || len < 1 || len > 128) r.error([...at, 'persistence', 'netmask'], `an IPv6 persistence netmask is a prefix length 1-128, got ${nm}`);
          else netmask = String(len);
        }
      }
      persistence = { timeout: s.persistence.timeout ?? 360, netmask };
    }
    const svc: ServiceModel = {
      name: s.name, protocol, family, vip, port, fwmark: s.fwmark, scheduler, flags, persistence, onePacket: !!s.onePacket,
      director: director.name, realServers: [], source: { file, ...r.locate(at) },
    };
    // Real servers
    const rsSeen = new Set<string>();
    s.realServers.forEach((rs0, ri) => {
      const rat: PathSeg[] = [...at, 'realServers', ri];
      const rs = typeof rs0 === 'string' ? { node: rs0 } : rs0;
      const node = byName.get(rs.node);
      if (!node) return r.error(typeof rs0 === 'string' ? rat : [...rat, 'node'], `unknown node "${rs.node}"`);
      if (node.role !== 'real-server') return r.error(rat, `node "${rs.node}" has role ${node.role}; only real-server nodes can serve`);
      const method: ForwardingMethod = (typeof rs0 === 'string' ? undefined : rs0.method) ?? s.method ?? 'dr';
      const rport = rs.port ?? port;
      if ((method === 'dr' || method === 'tun') && rport !== port) r.error([...rat, 'port'], `${method} cannot map ports: the real server must listen on the virtual port ${port}, not ${rport}`);
      const upper = rs.upper ?? 0, lower = rs.lower ?? 0;
      if (upper > 0 && lower > upper) r.error([...rat, 'lower'], `thresholds reversed: lower ${lower} is above upper ${upper}`);
      const tun0 = (typeof rs0 === 'string' ? undefined : rs0.tunnel) ?? s.tunnel;
      let tunnel: TunnelSpec | undefined;
      if (method === 'tun') {
        tunnel = { type: tun0?.type ?? 'ipip', flags: tun0?.flags ?? [] };
        if (tunnel.type === 'gue') tunnel.port = tun0?.port ?? DEFAULT_GUE_PORT;
        else if (tun0?.port !== undefined) r.error([...rat, 'tunnel', 'port'], `a port only applies to gue tunnels, not ${tunnel.type}`);
        if (tunnel.type === 'ipip' && tunnel.flags.length) r.error([...rat, 'tunnel', 'flags'], 'checksum flags only apply to gue and gre tunnels');
      } else if (typeof rs0 !== 'string' && rs0.tunnel) r.error([...rat, 'tunnel'], `a tunnel only applies to method tun, not ${method}`);
      // The address the director uses for it.
      const shared = director!.interfaces.map((di) => di.segment).filter((seg) => node.interfaces.some((ni) => ni.segment === seg));
      let addr: string | undefined;
      if (typeof rs0 !== 'string' && rs0.address) {
        addr = canonical(rs0.address);
        const owner = node.interfaces.find((i) => i.ipv4?.addr === addr || i.ipv6?.addr === addr);
        if (!owner) return r.error([...rat, 'address'], `${rs0.address} is not an address of node "${rs.node}"`);
        if ((method === 'dr' || method === 'nat') && !shared.includes(owner.segment)) {
          return r.error([...rat, 'address'], `${method} needs the real server on a segment shared with director "${director!.name}", but ${rs0.address} is on "${owner.segment}"`);
        }
      } else {
        const onShared = node.interfaces.find((i) => shared.includes(i.segment) && addrOf(i, family));
        const any = node.interfaces.find((i) => addrOf(i, family));
        if (method === 'dr' && !onShared) return r.error(rat, `real server "${rs.node}" is unreachable for dr: direct routing needs it on an L2 segment with director "${director!.name}" (with an IPv${family} address)`);
        if (method === 'nat' && !onShared) return r.error(rat, `real server "${rs.node}" is unreachable for nat: its default route must point at director "${director!.name}", so they must share a segment (with IPv${family})`);
        const pick = onShared ?? any;
        if (!pick) return r.error(rat, `real server "${rs.node}" has no IPv${family} address for this IPv${family} service`);
        addr = addrOf(pick, family)!;
      }
      const rfam = familyOf(addr) as Family;
      if (rfam !== family && method !== 'tun') r.error([...rat, 'address'], `an IPv${family} service cannot use an IPv${rfam} real server with ${method} (only tun can cross families)`);
      const key = `${addr} ${rport}`;
      if (rsSeen.has(key)) r.error(rat, `real server ${addr}:${rport} is listed twice`);
      rsSeen.add(key);
      const weight = (typeof rs0 === 'string' ? undefined : rs0.weight) ?? s.weight ?? 1;
      svc.realServers.push({ node: node.name, addr, family: rfam, port: rport, weight, upper, lower, method, tunnel, source: { file, ...r.locate(rat) } } as RealServerModel);
    });
    // Full-NAT local addresses: one per real-server segment and family on the director.
    if (svc.realServers.some((x) => x.method === 'fullnat')) {
      svc.localAddrs = [];
      if (s.localAddresses) {
        s.localAddresses.forEach((a, ai) => {
          const c = canonical(a);
          const di = director!.interfaces.find((i) => { const seg = lab.segments.find((g) => g.name === i.segment)!; const p = familyOf(c) === 4 ? seg.ipv4 : seg.ipv6; return p && contains(parsePrefix(`${p.addr}/${p.prefixLen}`) as Prefix, c); });
          if (!di) return r.error([...at, 'localAddresses', ai], `local address ${a} is not inside any subnet of director "${director!.name}"`);
          if (ifaceAddrs.has(c)) return r.error([...at, 'localAddresses', ai], `local address ${a} is already used by ${ifaceAddrs.get(c)}`);
          ifaceAddrs.set(c, `${director!.name}:${di.name}`);
          di.extraAddrs.push(`${c}/${familyOf(c) === 4 ? di.ipv4!.prefixLen : di.ipv6!.prefixLen}`);
          svc.localAddrs!.push(c);
        });
      } else {
        for (const rsm of svc.realServers.filter((x) => x.method === 'fullnat')) {
          const rsNode = byName.get(rsm.node)!;
          const seg = rsNode.interfaces.find((i) => addrOf(i, rsm.family) === rsm.addr)!.segment;
          const di = director!.interfaces.find((i) => i.segment === seg);
          if (!di) { r.error([...at, 'realServers'], `fullnat real server "${rsm.node}" is not on a segment with the director; give "localAddresses" explicitly`); continue; }
          // One local address per director interface and family, shared by all services.
          const poolKey = `${director!.name} ${di.name} ${rsm.family}`;
          const existing = fullnatPool.get(poolKey);
          if (existing) { if (!svc.localAddrs.includes(existing)) svc.localAddrs.push(existing); continue; }
          const segM = lab.segments.find((g) => g.name === seg)!;
          const sp = rsm.family === 4 ? segM.ipv4! : segM.ipv6!;
          const p = parsePrefix(`${sp.addr}/${sp.prefixLen}`) as Prefix;
          // Take from the top of the subnet, clear of the addresses allocated from the bottom.
          let k = rsm.family === 4 ? size(p) - 2n : 0xfen;
          let la = nthAddr(p, k);
          while (ifaceAddrs.has(la)) la = nthAddr(p, --k);
          ifaceAddrs.set(la, `${director!.name}:${di.name}`);
          di.extraAddrs.push(`${la}/${p.len}`);
          fullnatPool.set(poolKey, la);
          svc.localAddrs.push(la);
        }
      }
    }
    if (s.transparent) {
      // A transparent proxy keeps the client's address on the server leg: only a proxy has a server leg.
      const other = [...new Set(svc.realServers.map((x) => x.method).filter((m) => m !== 'proxy'))];
      if (other.length) r.error([...at, 'transparent'], `"transparent" applies to method proxy only (a proxy's server leg keeps the client's address); service "${s.name}" has method ${other.join('/')}`, true);
      else svc.transparent = true;
    }
    lab.services.push(svc);
  });
  if (r.failed) return lab;

  deriveHostSettings(lab, raw, r);
  if (raw.ha && !r.failed) deriveHa(raw.ha, lab, file, r);
  return lab;
}

function macFor(seg: number, node: number): string {
  const h = (v: number) => v.toString(16).padStart(2, '0');
  return `02:56:${h(seg)}:${h((node >> 8) & 0xff)}:${h(node & 0xff)}:01`;
}

// ---- routing and per-method host settings --------------------------------------------------

/** Next hop from `from` towards any of `targets`, transiting only routers. */
function nextHop(lab: LabModel, from: NodeModel, isTarget: (n: NodeModel) => boolean, family: Family): string | undefined {
  const byName = new Map(lab.nodes.map((n) => [n.name, n]));
  const segMembers = new Map(lab.segments.map((s) => [s.name, s.members.map((m) => m.node)]));
  const first = new Map<string, string>(); // node -> first hop address from `from`
  const queue: NodeModel[] = [];
  const seen = new Set([from.name]);
  for (const i of from.interfaces) {
    if (!addrOf(i, family)) continue;
    for (const m of segMembers.get(i.segment)!) {
      if (seen.has(m)) continue;
      const n = byName.get(m)!;
      const a = n.interfaces.find((x) => x.segment === i.segment);
      const hop = a && addrOf(a, family);
      if (!hop) continue;
      seen.add(m);
      first.set(m, hop);
      queue.push(n);
    }
  }
  while (queue.length) {
    const n = queue.shift()!;
    if (isTarget(n)) return first.get(n.name);
    if (n.role !== 'router') continue;
    for (const i of n.interfaces) {
      if (!addrOf(i, family)) continue;
      for (const m of segMembers.get(i.segment)!) {
        if (seen.has(m)) continue;
        const nn = byName.get(m)!;
        if (!nn.interfaces.some((x) => x.segment === i.segment && addrOf(x, family))) continue;
        seen.add(m);
        first.set(m, first.get(n.name)!);
        queue.push(nn);
      }
    }
  }
  return undefined;
}

function deriveHostSettings(lab: LabModel, raw: RawTopology, r: Reporter): void {
  const byName = new Map(lab.nodes.map((n) => [n.name, n]));
  const derive = (n: NodeModel) => raw.nodes[n.name].derive !== false;
  const methodsOf = (n: NodeModel, fam: Family) => new Set(lab.services.flatMap((s) => s.realServers.filter((x) => x.node === n.name && x.family === fam).map((x) => x.method)));
  const vipsOfDirector = (n: NodeModel) => lab.services.filter((s) => s.director === n.name && s.vip).map((s) => s.vip!);

  for (const n of lab.nodes) {
    if (!derive(n)) continue;
    // Quiet, deterministic IPv6: no DAD delay, no router solicitations in the captures.
    for (const scope of ['all', 'default']) {
      setSysctl(n, `net/ipv6/conf/${scope}/accept_dad`, '0');
      setSysctl(n, `net/ipv6/conf/${scope}/router_solicitations`, '0');
      setSysctl(n, `net/ipv6/conf/${scope}/accept_ra`, '0');
    }
    if (n.role === 'router' || n.role === 'director') {
      setSysctl(n, 'net/ipv4/ip_forward', '1');
      setSysctl(n, 'net/ipv6/conf/all/forwarding', '1');
    }
    if (n.role === 'director') {
      // Driver-specific settings (Full-NAT's source NAT...) are the director driver's (src/director/).
      for (const v of new Set(vipsOfDirector(n))) n.loopbackAddrs.push(hostCidr(v));
    }
  }

  // Real servers: per-method settings.
  for (const s of lab.services) {
    for (const rs of s.realServers) {
      const n = byName.get(rs.node)!;
      if (!derive(n)) continue;
      if ((rs.method === 'dr' || rs.method === 'tun') && s.vip) {
        const c = hostCidr(s.vip);
        if (!n.loopbackAddrs.includes(c)) n.loopbackAddrs.push(c);
        // Do not answer ARP for the VIP held on lo, and do not announce it as a source.
        setSysctl(n, 'net/ipv4/conf/all/arp_ignore', '1');
        setSysctl(n, 'net/ipv4/conf/all/arp_announce', '2');
      }
      if (rs.method === 'tun') {
        for (const scope of ['all', 'default', ...n.interfaces.map((i) => i.name)]) setSysctl(n, `net/ipv4/conf/${scope}/rp_filter`, '0');
        for (const dev of tunnelDevices(rs, s.family)) {
          if (!n.tunnels.some((t) => t.name === dev.name && t.port === dev.port)) n.tunnels.push(dev);
          if (dev.type !== 'fou') setSysctl(n, `net/ipv4/conf/${dev.name}/rp_filter`, '0');
        }
      }
    }
  }

  // Routes.
  const prefixesOf = (fam: Family) => lab.segments.flatMap((seg) => { const p = fam === 4 ? seg.ipv4 : seg.ipv6; return p ? [{ seg, cidr: `${p.addr}/${p.prefixLen}` }] : []; });
  for (const n of lab.nodes) {
    if (!derive(n)) continue;
    for (const fam of [4, 6] as Family[]) {
      const methods = methodsOf(n, fam);
      if (methods.has('nat')) {
        if (methods.has('dr') || methods.has('tun')) {
          r.error(['nodes', n.name], `real server "${n.name}" serves IPv${fam} with nat and with ${methods.has('dr') ? 'dr' : 'tun'}: nat needs its default route via the director, which would send dr/tun replies through the director`, true);
          continue;
        }
        const s = lab.services.find((x) => x.realServers.some((y) => y.node === n.name && y.method === 'nat' && y.family === fam))!;
        const d = byName.get(s.director)!;
        const seg = n.interfaces.find((i) => d.interfaces.some((di) => di.segment === i.segment) && addrOf(i, fam));
        const via = seg && addrOf(d.interfaces.find((di) => di.segment === seg.segment)!, fam);
        if (via) n.routes.push({ to: fam === 4 ? 'default' : 'default6', family: fam, via, reason: `nat: replies return through director ${d.name}` });
        continue;
      }
      for (const { seg, cidr } of prefixesOf(fam)) {
        if (n.interfaces.some((i) => i.segment === seg.name)) continue;
        const memberNames = new Set(seg.members.map((m) => m.node));
        // Only routers carry transit traffic: directors and real servers never route for others.
        const via = nextHop(lab, n, (x) => memberNames.has(x.name) && x.role === 'router', fam);
        if (via) n.routes.push({ to: cidr, family: fam, via, reason: `reach segment ${seg.name}` });
      }
      // VIPs of directors this node is not.
      for (const s of lab.services.filter((x) => x.family === fam && x.vip && x.director !== n.name)) {
        if (n.loopbackAddrs.includes(hostCidr(s.vip!))) continue; // DR/TUN real servers hold the VIP themselves
        const to = hostCidr(s.vip!);
        if (n.routes.some((x) => x.to === to)) continue;
        const via = nextHop(lab, n, (x) => x.name === s.director, fam);
        if (via) n.routes.push({ to, family: fam, via, reason: `VIP of service ${s.name} on director ${s.director}` });
        else if (n.role === 'client') r.error(['services', lab.services.indexOf(s)], `client "${n.name}" cannot reach the VIP ${s.vip} of service "${s.name}": no path to director "${s.director}" except through another director`);
      }
    }
  }
  // Transparent proxies: the server leg comes from the client's address, so the real server's answers to
  // the clients' networks must go back through the director (whose policy routing hands them to the proxy's
  // socket; that is the proxy driver's). Only for transparent services: a plain proxy needs none.
  for (const s of lab.services.filter((x) => x.transparent)) {
    const d = byName.get(s.director)!;
    const clients = lab.nodes.filter((n) => n.role === 'client' && n.interfaces.some((i) => addrOf(i, s.family)));
    for (const rs of s.realServers) {
      const n = byName.get(rs.node)!;
      if (!derive(n)) continue;
      const rat: PathSeg[] = ['services', lab.services.indexOf(s), 'realServers', s.realServers.indexOf(rs)];
      const shared = n.interfaces.find((i) => addrOf(i, s.family) && d.interfaces.some((di) => di.segment === i.segment && addrOf(di, s.family)));
      if (!shared) { r.error(rat, `real server "${rs.node}" of transparent service "${s.name}" must share an IPv${s.family} segment with director "${d.name}" (its answers to the clients go back through it)`); continue; }
      const via = addrOf(d.interfaces.find((di) => di.segment === shared.segment)!, s.family)!;
      for (const c of clients) {
        for (const ci of c.interfaces.filter((i) => addrOf(i, s.family))) {
          const seg = lab.segments.find((g) => g.name === ci.segment)!;
          const p = s.family === 4 ? seg.ipv4 : seg.ipv6;
          if (!p) continue;
          if (n.interfaces.some((i) => i.segment === seg.name)) { r.error(rat, `real server "${rs.node}" is on segment "${seg.name}" with client "${c.name}": its answers to the transparent service "${s.name}"'s server legs (from the client's address) would bypass the director`); continue; }
          const to = `${p.addr}/${p.prefixLen}`;
          const have = n.routes.find((x) => x.to === to);
          if (have?.via === via) continue;
          if (have?.reason.startsWith('transparent proxy')) { r.error(rat, `real server "${rs.node}" would need ${to} via two directors (transparent services "${s.name}" and another)`); continue; }
          n.routes = n.routes.filter((x) => x.to !== to);
          n.routes.push({ to, family: s.family, via, reason: `transparent proxy ${s.name}: answers to client ${c.name}'s network go back through director ${d.name}` });
        }
      }
    }
  }
  // Reply paths: DR/TUN real servers must reach clients without the director.
  for (const s of lab.services) {
    const clients = lab.nodes.filter((n) => n.role === 'client' && n.interfaces.some((i) => addrOf(i, s.family)));
    for (const rs of s.realServers) {
      if (rs.method !== 'dr' && rs.method !== 'tun') continue;
      const n = byName.get(rs.node)!;
      for (const c of clients) {
        const reachable = n.interfaces.some((i) => c.interfaces.some((ci) => ci.segment === i.segment)) || nextHop(lab, n, (x) => x.name === c.name, s.family);
        if (!reachable) r.error(['services', lab.services.indexOf(s), 'realServers', s.realServers.indexOf(rs)], `real server "${rs.node}" cannot reply to client "${c.name}" directly (${rs.method} replies bypass the director): add a router between them`);
      }
    }
  }
  // User overrides last: they win over anything derived.
  for (const n of lab.nodes) {
    const rn = raw.nodes[n.name];
    const devices = new Set([...n.interfaces.map((i) => i.name), ...n.tunnels.map((t) => t.name)]);
    if (!checkSysctls(n.name, rn, r, devices)) continue;
    for (const [k, v] of Object.entries(rn.sysctls ?? {})) setSysctl(n, k, String(v));
    (rn.routes ?? []).forEach((rt, ri) => {
      const at: PathSeg[] = ['nodes', n.name, 'routes', ri];
      let family: Family;
      let to = rt.to;
      if (to === 'default' || to === 'default6') family = to === 'default' ? 4 : 6;
      else {
        const p = parsePrefix(to);
        if (typeof p === 'string') return r.error([...at, 'to'], p);
        if (!prefixInLabSupernet(p)) return r.error([...at, 'to'], `route destination ${rt.to} is outside the lab ranges 198.18.0.0/15 and 2001:db8::/32 (use default / default6 for everything else)`);
        family = p.family;
        to = prefixText(p);
      }
      if (rt.via && familyOf(rt.via) !== family) return r.error([...at, 'via'], `next hop ${rt.via} is not IPv${family} like ${rt.to}`);
      if (rt.via) {
        // The kernel only accepts a gateway it can reach directly: one on a subnet of this node.
        const via = canonical(rt.via);
        const own = n.interfaces.flatMap((i) => { const a = family === 4 ? i.ipv4 : i.ipv6; return a ? [a] : []; });
        const subnets = own.map((a) => parsePrefix(`${a.addr}/${a.prefixLen}`, true) as Prefix);
        if (own.some((a) => a.addr === via)) return r.error([...at, 'via'], `next hop ${rt.via} is ${n.name}'s own address`);
        if (!subnets.some((p) => contains(p, via))) return r.error([...at, 'via'], `next hop ${rt.via} is not on any subnet of ${n.name} (${subnets.map(prefixText).join(', ') || `it has no IPv${family} address`})`);
      }
      n.routes = n.routes.filter((x) => x.to !== to);
      n.routes.push({ to, family, via: rt.via ? canonical(rt.via) : undefined, reason: 'given in the topology' });
    });
  }
}

function tunnelDevices(rs: RealServerModel, innerFamily: Family): TunnelDeviceModel[] {
  const outer6 = rs.family === 6;
  const ipproto = innerFamily === 4 ? 4 : 41;
  switch (rs.tunnel?.type ?? 'ipip') {
    case 'ipip':
      return [outer6 || innerFamily === 6 ? { name: outer6 ? 'ip6tnl0' : 'sit0', type: outer6 ? 'ip6tnl' : 'ipip', ipproto, addrs: [] } : { name: 'tunl0', type: 'ipip', ipproto, addrs: [] }];
    case 'gue':
      return [
        { name: outer6 ? `fou6-${rs.tunnel!.port}` : `fou${rs.tunnel!.port}`, type: 'fou', port: rs.tunnel!.port, outerFamily: outer6 ? 6 : 4, ipproto, addrs: [] },
        innerFamily === 4 && !outer6 ? { name: 'tunl0', type: 'ipip', ipproto, addrs: [] } : { name: outer6 ? 'ip6tnl0' : 'sit0', type: outer6 ? 'ip6tnl' : 'ipip', ipproto, addrs: [] },
      ];
    case 'gre':
      return [{ name: outer6 ? 'ip6gre0' : 'gre0', type: outer6 ? 'ip6gre' : 'gre', ipproto, addrs: [] }];
  }
}

// Re-exported for callers that want the segment of an interface.
export { segmentOfIface };

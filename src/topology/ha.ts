// The `ha` block of a topology: several directors holding one set of services. Checked with file:line:col
// and derived into the HaModel (priorities, VRRP interface and address per director, sync interface,
// health checks), and the host settings that differ from a single director: the VIPs are not on the
// directors' lo (VRRP puts them on the master's interface on the VIP segment) and clients reach them
// on-link (every VIP lies in that segment's subnet), not through a route to one director.
import { canonical, contains, familyOf, parsePrefix, type Prefix } from './addr';
import type { PathSeg, Reporter } from './load';
import type { HaDirectorModel, HaModel, HealthCheckModel, LabModel, NodeModel } from './model';

export interface RawHa {
  directors: string[];
  segment: string;
  vrrp?: { routerId?: number; advertInterval?: number; preempt?: boolean; preemptDelay?: number; priorities?: Record<string, number> };
  sync?: boolean | { segment?: string; syncId?: number; threshold?: number; period?: number; refreshPeriod?: number };
  healthChecks?: Record<string, { type?: 'tcp'; interval?: number; timeout?: number; retries?: number }>;
}

const AT: PathSeg[] = ['ha'];

/** The director a service of an HA lab belongs to when it names none: the group's initial master. */
export function haDefaultDirector(raw: RawHa): string {
  const pr = raw.vrrp?.priorities ?? {};
  const prio = (n: string, k: number) => pr[n] ?? 150 - 10 * k;
  return raw.directors.map((n, k) => ({ n, p: prio(n, k), k })).sort((a, b) => b.p - a.p || a.k - b.k)[0].n;
}

function prefixOf(p: { addr: string; prefixLen: number } | undefined): Prefix | undefined {
  if (!p) return undefined;
  const x = parsePrefix(`${p.addr}/${p.prefixLen}`);
  return typeof x === 'string' ? undefined : x;
}

export function deriveHa(raw: RawHa, lab: LabModel, file: string, r: Reporter): void {
  const byName = new Map(lab.nodes.map((n) => [n.name, n]));
  const seg = lab.segments.find((s) => s.name === raw.segment);
  if (!seg) return r.error([...AT, 'segment'], `unknown segment "${raw.segment}"`);
  if (seg.kind !== 'lan') return r.error([...AT, 'segment'], `"${raw.segment}" is a point-to-point link; VRRP needs a LAN segment the clients share`);
  const pr = raw.vrrp?.priorities ?? {};
  for (const name of Object.keys(pr)) {
    if (!raw.directors.includes(name)) r.error([...AT, 'vrrp', 'priorities', name], `"${name}" is not one of the ha directors (${raw.directors.join(', ')})`, true);
  }
  const syncRaw = raw.sync === undefined || raw.sync === true ? {} : raw.sync === false ? undefined : raw.sync;
  const syncSegName = syncRaw?.segment ?? raw.segment;
  const syncSeg = lab.segments.find((s) => s.name === syncSegName);
  if (syncRaw?.segment !== undefined && !syncSeg) r.error([...AT, 'sync', 'segment'], `unknown segment "${syncRaw.segment}"`);
  // The kernel refuses a sync_threshold not below its period (unless the period is 0).
  const thr = syncRaw?.threshold ?? 3, per = syncRaw?.period ?? 50;
  if (syncRaw && per > 0 && thr >= per) r.error([...AT, 'sync', syncRaw.threshold !== undefined ? 'threshold' : 'period'], `sync threshold ${thr} must be below the period ${per} (or the period 0)`);

  const directors: HaDirectorModel[] = [];
  raw.directors.forEach((name, k) => {
    const at: PathSeg[] = [...AT, 'directors', k];
    const n = byName.get(name);
    if (!n) return r.error(at, `unknown node "${name}"`);
    if (n.role !== 'director') return r.error(at, `node "${name}" has role ${n.role}, not director`);
    const vi = n.interfaces.find((i) => i.segment === seg.name);
    if (!vi) return r.error(at, `director "${name}" is not on the VRRP segment "${seg.name}"`);
    if (!vi.ipv4) return r.error(at, `director "${name}" has no IPv4 address on "${seg.name}" (VRRP adverts need one)`);
    let syncIface = vi.name;
    if (syncRaw && syncSeg) {
      const si = n.interfaces.find((i) => i.segment === syncSeg.name);
      if (!si || !si.ipv4) return r.error([...AT, 'sync', 'segment'], `director "${name}" has no IPv4 address on the sync segment "${syncSeg.name}"`);
      syncIface = si.name;
    }
    directors.push({ node: name, priority: pr[name] ?? 150 - 10 * k, vrrpIface: vi.name, vrrpAddr: vi.ipv4.addr, syncIface });
  });
  const prios = new Map<number, string>();
  for (const d of directors) {
    if (prios.has(d.priority)) r.error([...AT, 'vrrp', 'priorities'], `directors "${prios.get(d.priority)}" and "${d.node}" have the same priority ${d.priority}; which one is master would depend on their addresses`);
    prios.set(d.priority, d.node);
  }
  directors.sort((a, b) => b.priority - a.priority);
  if (directors.length !== raw.directors.length) return;
  const group = new Set(directors.map((d) => d.node));
  const master = directors[0].node;

  // Services: every service of a group director belongs to the group and is held by each director.
  const vips = new Set<string>();
  const p4 = prefixOf(seg.ipv4), p6 = prefixOf(seg.ipv6);
  lab.services.forEach((s, si) => {
    if (!group.has(s.director)) return;
    const at: PathSeg[] = ['services', si];
    if (s.director !== master) r.error([...at, 'director'], `service "${s.name}" is directed by the ha group: name its initial master "${master}" (or leave "director" out)`);
    for (const [k, rs] of s.realServers.entries()) {
      if (rs.method === 'nat' || rs.method === 'fullnat') {
        r.error([...at, 'realServers', k], `${rs.method} real servers are not supported with ha yet: their replies need a gateway address that moves with the master (use dr or tun)`);
        break;
      }
      if (rs.method === 'dr') {
        const rsNode = byName.get(rs.node)!;
        const alone = directors.find((d) => !byName.get(d.node)!.interfaces.some((i) => rsNode.interfaces.some((x) => x.segment === i.segment)));
        if (alone) r.error([...at, 'realServers', k], `dr real server "${rs.node}" shares no segment with ha director "${alone.node}" (each director must reach it at layer 2)`);
      }
    }
    if (!s.vip) return r.error(at, `service "${s.name}" of the ha group needs a VIP`);
    const pfx = familyOf(s.vip) === 4 ? p4 : p6;
    if (!pfx || !contains(pfx, s.vip)) {
      return r.error([...at, 'vip'], `VIP ${s.vip} of ha service "${s.name}" must lie in the subnet of the VRRP segment "${seg.name}" (${pfx ? `${seg.ipv4 && familyOf(s.vip) === 4 ? seg.ipv4.addr : seg.ipv6?.addr}/${pfx.len}` : `it has no IPv${familyOf(s.vip)} subnet`}), so clients reach whichever director holds it`);
    }
    vips.add(`${canonical(s.vip)}/${pfx.len}`);
  });
  if (!vips.size) r.error(AT, `no service is directed by the ha group (${[...group].join(', ')})`);

  const healthChecks: Record<string, HealthCheckModel> = {};
  for (const [name, h] of Object.entries(raw.healthChecks ?? {})) {
    const svc = lab.services.find((s) => s.name === name);
    if (!svc) { r.error([...AT, 'healthChecks', name], `unknown service "${name}"`, true); continue; }
    if (!group.has(svc.director)) { r.error([...AT, 'healthChecks', name], `service "${name}" is not directed by the ha group`, true); continue; }
    if (svc.protocol !== 'tcp') { r.error([...AT, 'healthChecks', name], `a tcp health check needs a TCP service; "${name}" is ${svc.protocol}`, true); continue; }
    healthChecks[name] = { type: h.type ?? 'tcp', intervalS: h.interval ?? 1, timeoutS: h.timeout ?? 1, retries: h.retries ?? 1 };
  }
  if (r.failed) return;

  // Host settings: VIPs move with the master (VRRP), so no director holds them on lo and no node routes
  // them to one director: they are on-link on the VRRP segment.
  const vipHosts = new Set([...vips].map((v) => `${v.split('/')[0]}/${familyOf(v.split('/')[0]) === 4 ? 32 : 128}`));
  for (const n of lab.nodes) {
    if (group.has(n.name)) n.loopbackAddrs = n.loopbackAddrs.filter((a) => !vipHosts.has(a));
    n.routes = n.routes.filter((rt) => !(vipHosts.has(rt.to) && rt.reason.startsWith('VIP of service')));
  }
  clientsOnSegment(lab, seg.name, r);

  const hv = raw.vrrp ?? {};
  lab.ha = {
    directors, segment: seg.name, routerId: hv.routerId ?? 51, advertIntervalS: hv.advertInterval ?? 1,
    preempt: hv.preempt ?? true, preemptDelayS: hv.preemptDelay ?? 0,
    sync: syncRaw && syncSeg ? { segment: syncSeg.name, syncId: syncRaw.syncId ?? 0, threshold: syncRaw.threshold ?? 3, period: syncRaw.period ?? 50, refreshS: syncRaw.refreshPeriod ?? 0 } : undefined,
    healthChecks, vips: [...vips], source: { file, ...r.locate(AT, true) },
  };
}

/** Clients must be on the VRRP segment: the VIP is reached there by ARP/ND, wherever it is. */
function clientsOnSegment(lab: LabModel, segment: string, r: Reporter): void {
  for (const c of lab.nodes.filter((n: NodeModel) => n.role === 'client')) {
    if (!c.interfaces.some((i) => i.segment === segment)) r.error(['nodes', c.name], `client "${c.name}" is not on the VRRP segment "${segment}", where the ha VIPs live`, true);
  }
}

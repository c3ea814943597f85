// The ipvs director driver on a real kernel (qemu guest): programs the bundled topologies and one
// that uses every service feature, reads back, reconciles changes, reports drift and refusals.
// What the kernel holds is checked through ipvsadm's own output, not only through the driver.
import * as path from 'path';
import { test, expect, type GuestNs } from '../netlink/support/ipvs-guest';
import { IPVS_SCHEDULERS, IpvsDirector } from '../../src/director/ipvs';
import { parseIpvsadmRules, rulesToServices, type RuleService } from '../../src/director/ipvsadm-save';
import { DirectorApplyError, servicesOf } from '../../src/director/types';
import { canonicalAddress } from '../../src/netlink/address';
import { loadTopologyFile, loadTopologyText } from '../../src/topology/load';
import type { LabModel, ServiceModel } from '../../src/topology/model';

test.describe.configure({ timeout: 300_000 });

const topologies = path.join(__dirname, '..', '..', 'topologies');

const featureTopology = `
name: features
nodes:
  client1: { role: client }
  router: { role: router }
  director: { role: director }
  rs1: { role: real-server }
  rs2: { role: real-server }
  rs3: { role: real-server }
segments:
  wan: { ipv4: 198.18.0.0/24, ipv6: "2001:db8:0:1::/64", members: [client1, router] }
  lan: { ipv4: 198.18.1.0/24, ipv6: "2001:db8:0:2::/64", members: [router, director, rs1, rs2, rs3] }
services:
  - name: sticky
    protocol: tcp
    vip: 198.19.0.100
    port: 443
    scheduler: sh
    flags: [sh-port, sh-fallback]
    persistence: { timeout: 600, netmask: 255.255.255.0 }
    method: dr
    realServers:
      - { node: rs1, weight: 5, upper: 100, lower: 20 }
      - { node: rs2, weight: 0 }
      - { node: rs3 }
  - name: ops6
    protocol: udp
    vip: "2001:db8:ffff::100"
    port: 53
    scheduler: wrr
    onePacket: true
    persistence: { timeout: 30, netmask: 64 }
    method: dr
    realServers: [rs1, rs2]
  - name: marked
    protocol: tcp
    fwmark: 7
    scheduler: mh
    flags: [mh-port]
    method: tun
    tunnel: { type: gue, port: 6080, flags: [tun-remcsum] }
    realServers: [rs1, rs2, rs3]
`;

const models = (): Array<[string, LabModel]> => [
  ...['nat', 'dr', 'tun', 'fullnat', 'scale-100'].map((n): [string, LabModel] => [n, loadTopologyFile(path.join(topologies, `${n}.yaml`))]),
  ['features', loadTopologyText(featureTopology, 'features.yaml')],
];

/** What ipvsadm -S -n says the kernel holds, as a table (independent of the driver's read-back). */
async function ipvsadmTable(ns: GuestNs): Promise<RuleService[]> {
  return rulesToServices(parseIpvsadmRules(await ns.sh('ipvsadm -Sn'), 'ipvsadm -Sn')).services;
}

/** Every model service is in ipvsadm's table with the same scheduler, persistence and real servers. */
function expectTableMatches(table: RuleService[], services: ServiceModel[]) {
  expect(table).toHaveLength(services.length);
  for (const s of services) {
    const held = table.find((t) =>
      s.fwmark !== undefined ? 'fwmark' in t && t.fwmark === s.fwmark : !('fwmark' in t) && t.protocol === s.protocol && t.address === canonicalAddress(s.vip!) && t.port === s.port,
    );
    expect(held, `service ${s.name} in ipvsadm -Sn`).toBeTruthy();
    expect(held!.scheduler).toBe(s.scheduler);
    expect(held!.timeout).toBe(s.persistence?.timeout ?? 0);
    const rs = held!.destinations.map((d) => `${canonicalAddress(d.address)}:${d.port}/${d.forward}/w${d.weight}`).sort();
    const want = s.realServers
      .map((r) => `${canonicalAddress(r.addr)}:${r.port}/${r.method === 'dr' ? 'route' : r.method === 'tun' ? 'tunnel' : 'masq'}/w${r.weight}`)
      .sort();
    expect(rs, `real servers of ${s.name}`).toEqual(want);
  }
}

test('capabilities are what the kernel accepts, and probing leaves nothing behind', async ({ ns }) => {
  const d = await IpvsDirector.open(ns.host());
  const caps = await d.capabilities();
  expect(caps.implementation).toMatch(/^Linux IPVS 1\.2\.1 \(kernel \d+\.\d+/);
  expect(await ns.sh('ipvsadm -Sn')).toBe('');
  for (const sched of IPVS_SCHEDULERS) {
    const r = await ns.run(`ipvsadm -A -f 77 -s ${sched} && ipvsadm -D -f 77`);
    expect(caps.schedulers.includes(sched), `scheduler ${sched}: ipvsadm exit ${r.code} ${r.stderr}`).toBe(r.code === 0);
  }
  await ns.sh('ipvsadm -A -f 77 -s rr');
  for (const type of ['gue', 'gre'] as const) {
    const opt = type === 'gue' ? '--tun-type gue --tun-port 6080' : '--tun-type gre';
    const r = await ns.run(`ipvsadm -a -f 77 -r 198.18.9.${type === 'gue' ? 1 : 2} -i ${opt} && ipvsadm -Ln --tun-info`);
    expect(caps.tunnelTypes.includes(type), `tunnel ${type}`).toBe(r.code === 0 && r.stdout.includes(`${type}:`));
  }
  await ns.sh('ipvsadm -D -f 77');
  await d.close();
});

test('every bundled topology and a feature-rich one: applied, read back without difference, as ipvsadm sees it', async ({ ns }) => {
  const d = await IpvsDirector.open(ns.host());
  for (const [name, lab] of models()) {
    const services = servicesOf(lab.services, 'director');
    expect(services.length, name).toBeGreaterThan(0);
    const r = await d.apply(services, { mode: 'replace' });
    expect(r.differences, `${name}: differences after apply`).toEqual([]);
    expect(r.changes).toBe(1 + services.length + services.reduce((n, s) => n + s.realServers.length, 0));
    expectTableMatches(await ipvsadmTable(ns), services);
    const back = await d.readBack(services);
    expect(back.map((s) => s.name).sort()).toEqual(services.map((s) => s.name).sort());
    expect(await d.diff(services)).toEqual([]);
    // applying the same model again changes nothing
    expect((await d.apply(services)).changes, `${name}: idempotent`).toBe(0);
  }
  // the feature topology's details, through ipvsadm
  expect(await ns.sh('ipvsadm -Ln --tun-info')).toContain('FWM  7 mh (mh-port)');
  const features = loadTopologyText(featureTopology, 'features.yaml');
  await d.apply(servicesOf(features.services, 'director'), { mode: 'replace' });
  const listing = await ns.sh('ipvsadm -Ln --tun-info');
  expect(listing).toContain('TCP  198.19.0.100:443 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0');
  expect(listing).toContain('UDP  [2001:db8:ffff::100]:53 wrr persistent 30 mask 64 ops');
  expect(listing).toMatch(/Tunnel  gue:6080:r\+c/);
  expect(await ns.sh('ipvsadm -Ln --thresholds')).toMatch(/198\.18\.1\.\d+:443\s+100\s+20\s/);
  await d.close();
});

test('reconciling: only what changed is sent; real servers keep the model order as ipvsadm -R would add them', async ({ ns }) => {
  const d = await IpvsDirector.open(ns.host());
  const lab = loadTopologyFile(path.join(topologies, 'nat.yaml'));
  const services = servicesOf(lab.services, 'director');
  await d.apply(services, { mode: 'replace' });
  // kernel order is newest first: the model's last real server heads the list
  const nosort = await ns.sh('ipvsadm -Ln --nosort -t 198.19.0.100:80');
  const order = [...nosort.matchAll(/-> (\S+)/g)].map((m) => m[1]).filter((x) => x !== 'RemoteAddress:Port');
  expect(order).toEqual(services[0]!.realServers.map((r) => `${r.addr}:${r.port}`).reverse());

  const changed: ServiceModel[] = JSON.parse(JSON.stringify(services));
  const web4 = changed.find((s) => s.name === 'web4')!;
  web4.scheduler = 'wlc';
  web4.realServers[0]!.weight = 4;
  const removed = web4.realServers.pop()!;
  changed.splice(changed.findIndex((s) => s.name === 'dns6'), 1);
  const r = await d.apply(changed);
  expect(r.log.sort()).toEqual(
    [
      'delete service UDP [2001:db8:ffff::100]:53 (not in the model)',
      'edit service web4 (TCP 198.19.0.100:80)',
      `delete real server ${removed.addr}:${removed.port} from web4 (not in the model)`,
      `edit real server ${web4.realServers[0]!.addr}:${web4.realServers[0]!.port} of web4`,
    ].sort(),
  );
  expect(r.differences).toEqual([]);
  expectTableMatches(await ipvsadmTable(ns), changed);

  // drift made behind the driver's back is reported field by field
  const rs0 = web4.realServers[0]!;
  await ns.sh(`ipvsadm -e -t 198.19.0.100:80 -r ${rs0.addr}:${rs0.port} -m -w 9 && ipvsadm -E -t 198.19.0.100:80 -s rr && ipvsadm -A -t 198.19.0.200:80`);
  expect(await d.diff(changed)).toEqual([
    { service: 'TCP 198.19.0.200:80', what: 'unexpected' },
    { service: 'web4', what: 'scheduler', expected: 'wlc', actual: 'rr' },
    { service: 'web4', realServer: `${rs0.addr}:${rs0.port}`, what: 'weight', expected: 4, actual: 9 },
  ]);
  expect((await d.apply(changed)).differences).toEqual([]);
  await d.flush();
  expect(await ns.sh('ipvsadm -Sn')).toBe('');
  await d.close();
});

test('refusals: the kernel rejects, the driver names the service and why; foreign services are refused up front', async ({ ns }) => {
  const d = await IpvsDirector.open(ns.host());
  const lab = loadTopologyFile(path.join(topologies, 'nat.yaml'));
  const services: ServiceModel[] = JSON.parse(JSON.stringify(servicesOf(lab.services, 'director')));
  services[0]!.scheduler = 'nosuch';
  services[1]!.realServers[0]!.lower = 50;
  services[1]!.realServers[0]!.upper = 10;
  const e = await d.apply(services, { mode: 'replace' }).catch((x: Error) => x);
  expect(e).toBeInstanceOf(DirectorApplyError);
  const problems = (e as DirectorApplyError).problems;
  expect(problems).toContain('web4: add service TCP 198.19.0.100:80: scheduler "nosuch" not found (the kernel could not load ip_vs_nosuch) (ENOENT)');
  const rs = services[1]!.realServers[0]!;
  expect(problems).toContain(`dns4: add destination ${rs.addr}:${rs.port} to UDP 198.19.0.100:53: lower threshold 50 is above upper threshold 10 (ERANGE)`);
  const foreign = { ...services[2]!, director: 'other' };
  await expect(d.apply([foreign])).rejects.toThrow(`director director: 1 problem(s) applying the services:\n  - service web6 is directed by other, not director`);
  await d.close();
});

test('stats and connections in model terms', async ({ ns }) => {
  const d = await IpvsDirector.open(ns.host());
  await ns.sh('ip link add d0 type dummy && ip link set d0 up && ip addr add 198.18.1.1/24 dev d0 && ip addr add 198.19.0.100/32 dev lo');
  const lab = loadTopologyFile(path.join(topologies, 'nat.yaml'));
  const services = servicesOf(lab.services, 'director').filter((s) => s.name === 'web4');
  await d.apply(services, { mode: 'replace' });
  await ns.run('for i in 1 2 3 4; do socat -T1 /dev/null TCP:198.19.0.100:80,connect-timeout=1; done');
  const conns = await d.connections();
  expect(conns).toHaveLength(4);
  for (const c of conns) {
    expect(c).toMatchObject({ protocol: 'TCP', family: 4, virtual: { addr: '198.19.0.100', port: 80 }, state: 'SYN_RECV', template: false });
    expect(services[0]!.realServers.map((r) => `${r.addr}:${r.port}`)).toContain(`${c.realServer.addr}:${c.realServer.port}`);
  }
  // rr over 3 servers, 4 connections: one server got two
  const perServer = new Map<string, number>();
  for (const c of conns) perServer.set(c.realServer.addr, (perServer.get(c.realServer.addr) ?? 0) + 1);
  expect([...perServer.values()].sort()).toEqual([1, 1, 2]);
  let stats = await d.stats(services);
  for (let i = 0; i < 10 && stats[0]!.counters.conns !== 4; i++) {
    await new Promise((r) => setTimeout(r, 1000)); // counters are folded every 2 s
    stats = await d.stats(services);
  }
  expect(stats[0]!.service).toBe('web4');
  expect(stats[0]!.counters.conns).toBe(4);
  expect(stats[0]!.realServers.map((r) => r.activeConns).sort()).toEqual([1, 1, 2]);
  await d.close();
});

// The IPVS client against a real kernel (qemu guest): every attribute it sets is what ipvsadm then
// lists, saves and counts, after every operation; the kernel's refusals come back as sentences.
import * as fs from 'fs';
import * as path from 'path';
import { test, expect, type GuestNs } from './support/ipvs-guest';
import { formatIpvsadmConnections, formatIpvsadmDaemons, formatIpvsadmList, formatIpvsadmTimeouts } from '../../src/director/ipvsadm-list';
import { formatIpvsadmSave, parseIpvsadmRules } from '../../src/director/ipvsadm-save';
import type { IpvsClient, IpvsChange } from '../../src/netlink/ipvs';
import { IpvsError } from '../../src/netlink/ipvs-errors';
import type { ServiceKey } from '../../src/netlink/ipvs-types';

test.describe.configure({ timeout: 300_000 });

const rulesFile = fs.readFileSync(path.join(__dirname, '..', 'director', 'fixtures', 'rules-input.txt'), 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ipvsadm -Ln --nosort` with the service blocks in a stable order. The kernel's service order
 *  comes from a hash that mixes in the namespace, so it differs between namespaces; the order of
 *  destinations inside a service (newest first) does not. */
function blocksInStableOrder(listing: string): string {
  const lines = listing.split('\n');
  const head = lines.slice(0, 3);
  const blocks: string[][] = [];
  for (const l of lines.slice(3)) {
    if (l === '') continue;
    if (l.startsWith('  ->')) blocks[blocks.length - 1]!.push(l);
    else blocks.push([l]);
  }
  return [...head, ...blocks.sort((a, b) => a[0]!.localeCompare(b[0]!)).flat()].join('\n');
}

/** The client's view, formatted as ipvsadm would, equals what ipvsadm prints (every listing view and -S). */
async function expectParity(ns: GuestNs, c: IpvsClient, label: string) {
  const info = await c.info();
  const snap = await c.snapshot();
  for (const [flags, view] of [
    ['', 'default'],
    ['--nosort', 'default'],
    ['--tun-info', 'tun-info'],
    ['--thresholds', 'thresholds'],
    ['--persistent-conn', 'persistent-conn'],
  ] as const) {
    const theirs = await ns.sh(`ipvsadm -Ln ${flags}`);
    expect(formatIpvsadmList(info, snap, { view, nosort: flags === '--nosort' }), `${label}: ipvsadm -Ln ${flags}`).toBe(theirs);
  }
  expect(formatIpvsadmSave(snap, { flavour: 'ipvsadm' }), `${label}: ipvsadm -Sn`).toBe(await ns.sh('ipvsadm -Sn'));
  return snap;
}

const tcp: ServiceKey = { family: 4, protocol: 'tcp', address: '198.18.0.10', port: 80 };
const udp6: ServiceKey = { family: 6, protocol: 'udp', address: '2001:db8::10', port: 53 };
const mark4: ServiceKey = { family: 4, fwmark: 5 };
const mark6: ServiceKey = { family: 6, fwmark: 6 };
const sctp: ServiceKey = { family: 4, protocol: 'sctp', address: '198.18.0.12', port: 3868 };

test('every service and destination attribute: set by the client, read back, listed and saved identically by ipvsadm', async ({ ns }) => {
  const c = await ns.client();
  const steps: Array<[string, () => Promise<unknown>, (c: IpvsClient) => Promise<void>]> = [
    ['add TCP rr service', () => c.addService({ ...tcp, scheduler: 'rr' }), async () => {
      expect(await c.getService(tcp)).toMatchObject({ ...tcp, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', hashed: true });
    }],
    ['add NAT destination with weight and thresholds', () => c.addDestination(tcp, { address: '198.18.1.11', port: 8080, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 50 }), async () => {
      expect((await c.listDestinations(tcp))[0]).toMatchObject({ address: '198.18.1.11', port: 8080, family: 4, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 50 });
    }],
    ['add GUE tunnel destination with checksum', () => c.addDestination(tcp, { address: '198.18.2.13', port: 80, forward: 'tunnel', weight: 2, tunnel: { type: 'gue', port: 6080, csum: true } }), async () => {
      expect((await c.listDestinations(tcp))[0]).toMatchObject({ address: '198.18.2.13', forward: 'tunnel', tunnel: { type: 'gue', port: 6080, csum: true, remcsum: false } });
    }],
    ['add GRE tunnel destination with remote checksum', () => c.addDestination(tcp, { address: '198.18.2.14', port: 80, forward: 'tunnel', tunnel: { type: 'gre', remcsum: true } }), async () => {
      expect((await c.listDestinations(tcp))[0]).toMatchObject({ address: '198.18.2.14', tunnel: { type: 'gre', csum: false, remcsum: true } });
    }],
    ['add IPv6 tunnel destination to the IPv4 service (dest address family)', () => c.addDestination(tcp, { address: '2001:db8:1::14', port: 80, forward: 'tunnel' }), async () => {
      expect((await c.listDestinations(tcp))[0]).toMatchObject({ address: '2001:db8:1::14', family: 6, forward: 'tunnel', tunnel: { type: 'ipip' } });
    }],
    ['add DR destination with weight 0', () => c.addDestination(tcp, { address: '198.18.1.15', port: 80, forward: 'route', weight: 0 }), async () => {
      expect((await c.listDestinations(tcp))[0]).toMatchObject({ address: '198.18.1.15', forward: 'route', weight: 0 });
    }],
    ['add IPv6 UDP sh service: persistence, /64, sh flags, one-packet', () => c.addService({ ...udp6, scheduler: 'sh', flags: 0x1 | 0x4 | 0x8 | 0x10, timeout: 300, netmask: '64' }), async () => {
      expect(await c.getService(udp6)).toMatchObject({ scheduler: 'sh', flags: 0x1d, timeout: 300, netmask: '64' });
    }],
    ['add IPv6 destination with a port mapping', () => c.addDestination(udp6, { address: '2001:db8:1::11', port: 5353, forward: 'masq', weight: 10 }), async () => {
      expect((await c.listDestinations(udp6))[0]).toMatchObject({ address: '2001:db8:1::11', port: 5353, family: 6, weight: 10 });
    }],
    ['add fwmark service with /24 persistence and the sip persistence engine', () => c.addService({ ...mark4, scheduler: 'wlc', flags: 1, timeout: 60, netmask: '255.255.255.0', peName: 'sip' }), async () => {
      expect(await c.getService(mark4)).toMatchObject({ fwmark: 5, family: 4, flags: 1, timeout: 60, netmask: '255.255.255.0', peName: 'sip' });
    }],
    ['add fwmark destination (port 0)', () => c.addDestination(mark4, { address: '198.18.1.20', port: 0 }), async () => {
      expect((await c.listDestinations(mark4))[0]).toMatchObject({ address: '198.18.1.20', port: 0, forward: 'route', weight: 1 });
    }],
    ['add IPv6 fwmark mh service with mh-fallback', () => c.addService({ ...mark6, scheduler: 'mh', flags: 0x8 }), async () => {
      expect(await c.getService(mark6)).toMatchObject({ family: 6, fwmark: 6, scheduler: 'mh', flags: 0x8, netmask: '128' });
    }],
    ['add SCTP service with flag-2', () => c.addService({ ...sctp, scheduler: 'lc', flags: 0x10 }), async () => {
      expect(await c.getService(sctp)).toMatchObject({ protocol: 'sctp', scheduler: 'lc', flags: 0x10 });
    }],
    ['edit service: scheduler and persistence', () => c.editService({ ...tcp, scheduler: 'wrr', flags: 1, timeout: 1800, netmask: '255.255.0.0' }), async () => {
      expect(await c.getService(tcp)).toMatchObject({ scheduler: 'wrr', flags: 1, timeout: 1800, netmask: '255.255.0.0' });
    }],
    ['edit service flags through the mask: clear one-packet only', () => c.editService({ ...udp6, scheduler: 'sh', flags: 0, flagsMask: 0x4, timeout: 300, netmask: '64' }), async () => {
      expect((await c.getService(udp6)).flags).toBe(0x19);
    }],
    ['edit destination: weight, thresholds and method', () => c.editDestination(tcp, { address: '198.18.1.11', port: 8080, forward: 'masq', weight: 7, upperThreshold: 9, lowerThreshold: 0 }), async () => {
      const d = (await c.listDestinations(tcp)).find((x) => x.address === '198.18.1.11')!;
      expect(d).toMatchObject({ weight: 7, upperThreshold: 9, lowerThreshold: 0 });
    }],
    ['edit destination: tunnel type gue -> gre', () => c.editDestination(tcp, { address: '198.18.2.13', port: 80, forward: 'tunnel', tunnel: { type: 'gre', csum: true } }), async () => {
      expect((await c.listDestinations(tcp)).find((x) => x.address === '198.18.2.13')!.tunnel).toEqual({ type: 'gre', port: 0, csum: true, remcsum: false });
    }],
    ['delete destination', () => c.deleteDestination(tcp, { address: '198.18.1.15', port: 80 }), async () => {
      expect((await c.listDestinations(tcp)).map((d) => d.address)).not.toContain('198.18.1.15');
    }],
    ['delete service', () => c.deleteService(sctp), async () => {
      expect((await c.listServices()).length).toBe(4);
    }],
  ];
  for (const [label, op, check] of steps) {
    await op();
    await check(c);
    await expectParity(ns, c, label);
  }
  await c.flush();
  expect(await c.listServices()).toEqual([]);
  await expectParity(ns, c, 'flush');
});

test('a rule file: the client batch builds the same table, in the same kernel order, as ipvsadm -R', async ({ ns, guest }) => {
  const other = `${ns.name}-r`;
  await guest.exec(null, ['sh', '-c', `ip netns add ${other} && ip -n ${other} link set lo up`]);
  try {
    const rules = parseIpvsadmRules(rulesFile, 'rules-input.txt');
    const c = await ns.client();
    const results = await c.batch(rules.map((r) => (r as { change: IpvsChange }).change));
    expect(results.filter((r) => r !== null)).toEqual([]);
    const r = await guest.exec(other, ['ipvsadm', '-R'], { input: rulesFile });
    expect(r.code, r.stderr).toBe(0);
    const ipvsadmSide = async (args: string[]) => (await guest.exec(other, ['ipvsadm', ...args])).stdout;
    expect(blocksInStableOrder(await ns.sh('ipvsadm -Ln --nosort'))).toBe(blocksInStableOrder(await ipvsadmSide(['-Ln', '--nosort'])));
    expect(await ns.sh('ipvsadm -Ln --thresholds')).toBe(await ipvsadmSide(['-Ln', '--thresholds']));
    expect(await ns.sh('ipvsadm -Sn')).toBe(await ipvsadmSide(['-Sn']));
    await expectParity(ns, c, 'after the batch');
  } finally {
    await guest.exec(null, ['ip', 'netns', 'del', other]);
  }
});

test('each namespace has its own table: a socket talks to the namespace it was opened in', async ({ ns, guest }) => {
  const other = `${ns.name}-b`;
  await guest.exec(null, ['sh', '-c', `ip netns add ${other} && ip -n ${other} link set lo up`]);
  try {
    const a = await ns.client();
    await a.addService({ ...tcp, scheduler: 'rr' });
    expect(await ns.sh('ipvsadm -Sn')).toBe('-A -t 198.18.0.10:80 -s rr\n');
    expect((await guest.exec(other, ['ipvsadm', '-Sn'])).stdout).toBe('');
    expect((await guest.exec(null, ['ipvsadm', '-Sn'])).stdout).toBe('');
  } finally {
    await guest.exec(null, ['ip', 'netns', 'del', other]);
  }
});

test('invalid requests come back as sentences naming the operation, the object and the reason', async ({ ns }) => {
  const c = await ns.client();
  await c.addService({ ...tcp, scheduler: 'rr' });
  await c.addDestination(tcp, { address: '198.18.1.11', port: 80, forward: 'masq' });
  const fails = async (p: Promise<unknown>): Promise<IpvsError> => {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(IpvsError);
      return e as IpvsError;
    }
    throw new Error('the kernel accepted it');
  };
  const cases: Array<[() => Promise<unknown>, string, string]> = [
    [() => c.addService({ ...tcp, port: 81, scheduler: 'nosuch' }), 'ENOENT', 'add service TCP 198.18.0.10:81: scheduler "nosuch" not found (the kernel could not load ip_vs_nosuch) (ENOENT)'],
    [() => c.addService({ ...tcp, scheduler: 'rr' }), 'EEXIST', 'add service TCP 198.18.0.10:80: the service already exists (EEXIST)'],
    [() => c.addService({ ...mark4, scheduler: 'rr', flags: 1, timeout: 10, peName: 'nosuchpe' }), 'ENOENT', 'add service FWM 5: scheduler "rr" or persistence engine "nosuchpe" not found (the kernel could not load ip_vs_rr / ip_vs_pe_nosuchpe) (ENOENT)'],
    [() => c.addService({ ...udp6, scheduler: 'rr', flags: 1, timeout: 10, netmask: '129' }), 'EINVAL', 'add service UDP [2001:db8::10]:53: IPv6 persistence netmask 129 is outside 1..128 (EINVAL)'],
    [() => c.editService({ ...tcp, port: 99, scheduler: 'rr' }), 'ESRCH', 'edit service TCP 198.18.0.10:99: no such service (ESRCH)'],
    [() => c.deleteService({ ...tcp, port: 99 }), 'ESRCH', 'delete service TCP 198.18.0.10:99: no such service (ESRCH)'],
    [() => c.addDestination(tcp, { address: '198.18.1.12', port: 80, weight: 2147483648 }), 'ERANGE', 'add destination 198.18.1.12:80 to TCP 198.18.0.10:80: weight 2147483648 is out of range (0..2147483647) (ERANGE)'],
    [() => c.addDestination(tcp, { address: '198.18.1.12', port: 80, upperThreshold: 5, lowerThreshold: 10 }), 'ERANGE', 'add destination 198.18.1.12:80 to TCP 198.18.0.10:80: lower threshold 10 is above upper threshold 5 (ERANGE)'],
    [() => c.addDestination(tcp, { address: '198.18.1.11', port: 80 }), 'EEXIST', 'add destination 198.18.1.11:80 to TCP 198.18.0.10:80: the destination already exists in this service (EEXIST)'],
    [() => c.addDestination({ ...tcp, port: 99 }, { address: '198.18.1.11', port: 80 }), 'ESRCH', 'add destination 198.18.1.11:80 to TCP 198.18.0.10:99: the service does not exist (ESRCH)'],
    [() => c.editDestination(tcp, { address: '198.18.1.99', port: 80 }), 'ENOENT', 'edit destination 198.18.1.99:80 of TCP 198.18.0.10:80: no such destination in this service (ENOENT)'],
    [() => c.deleteDestination(tcp, { address: '198.18.1.99', port: 80 }), 'ENOENT', 'delete destination 198.18.1.99:80 from TCP 198.18.0.10:80: no such destination in this service (ENOENT)'],
    [() => c.addDestination(tcp, { address: '198.18.1.14', port: 80, forward: 'tunnel', tunnel: { type: 'gue' } }), 'EINVAL', 'add destination 198.18.1.14:80 to TCP 198.18.0.10:80: a GUE tunnel needs a non-zero tunnel port (EINVAL)'],
    [() => c.listDestinations({ ...tcp, port: 99 }), 'ESRCH', 'list destinations of TCP 198.18.0.10:99: no such service (ESRCH)'],
    [() => c.getService({ ...tcp, port: 99 }), 'ESRCH', 'get service TCP 198.18.0.10:99: no such service (ESRCH)'],
    [() => c.stopDaemon('master'), 'ESRCH', 'stop sync daemon master: no master sync daemon is running (ESRCH)'],
    [() => c.startDaemon({ state: 'backup', mcastInterface: 'nosuch0', syncId: 1 }), 'ENODEV', 'start sync daemon backup: no interface named "nosuch0" (ENODEV)'],
  ];
  for (const [p, code, message] of cases) {
    const e = await fails(p());
    expect(e.code).toBe(code);
    expect(e.message).toBe(message);
  }
  // a real server of the other family without tunnelling: EINVAL with the possible reasons
  const mixed = await fails(c.addDestination(tcp, { address: '2001:db8:1::14', port: 80, forward: 'masq' }));
  expect(mixed.code).toBe('EINVAL');
  expect(mixed.message).toMatch(/^add destination \[2001:db8:1::14\]:80 to TCP 198\.18\.0\.10:80: invalid destination \(.*a family different from the service without tunnelling/);
  // a batch runs every request and reports each failure in place
  const res = await c.batch([
    { op: 'addDestination', service: tcp, destination: { address: '198.18.1.12', port: 80 } },
    { op: 'addDestination', service: tcp, destination: { address: '198.18.1.11', port: 80 } },
    { op: 'addDestination', service: tcp, destination: { address: '198.18.1.13', port: 80 } },
  ]);
  expect(res.map((r) => r?.code ?? null)).toEqual([null, 'EEXIST', null]);
  expect((await c.listDestinations(tcp)).map((d) => d.address).sort()).toEqual(['198.18.1.11', '198.18.1.12', '198.18.1.13']);
  // nothing half-done: the failed requests left the table as ipvsadm sees it
  await expectParity(ns, c, 'after the failures');
});

test('info, timeouts, sync daemons: read and set like ipvsadm', async ({ ns }) => {
  const c = await ns.client();
  const info = await c.info();
  expect((await ns.sh('ipvsadm -Ln')).split('\n')[0]).toBe(`IP Virtual Server version ${info.version} (size=${info.connTableSize})`);
  expect(formatIpvsadmTimeouts(await c.getTimeouts())).toBe(await ns.sh('ipvsadm -L --timeout'));
  await c.setTimeouts({ tcp: 1000, tcpFin: 0, udp: 30 });
  expect(await c.getTimeouts()).toEqual({ tcp: 1000, tcpFin: 120, udp: 30 });
  expect(await ns.sh('ipvsadm -L --timeout')).toBe('Timeout (tcp tcpfin udp): 1000 120 30\n');
  await ns.sh('ipvsadm --set 900 60 300');
  expect(await c.getTimeouts()).toEqual({ tcp: 900, tcpFin: 60, udp: 300 });

  await ns.sh('ip link add d0 type dummy && ip link set d0 up');
  await c.startDaemon({ state: 'master', mcastInterface: 'd0', syncId: 7, syncMaxLen: 1400, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 3 });
  await ns.sh('ipvsadm --start-daemon backup --mcast-interface d0 --syncid 8');
  const daemons = await c.listDaemons();
  expect(daemons.find((d) => d.state === 'master')).toEqual({ state: 'master', mcastInterface: 'd0', syncId: 7, syncMaxLen: 1400, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 3 });
  expect(formatIpvsadmDaemons(daemons)).toBe(await ns.sh('ipvsadm -L --daemon'));
  const again = await c.startDaemon({ state: 'master', mcastInterface: 'd0', syncId: 7 }).catch((e: IpvsError) => e);
  expect((again as IpvsError).message).toBe('start sync daemon master: a master sync daemon is already running (EEXIST)');
  await c.stopDaemon('master');
  await c.stopDaemon('backup');
  expect(await c.listDaemons()).toEqual([]);
  expect(await ns.sh('ipvsadm -L --daemon')).toBe('');
});

test('statistics, zeroing and the connection table agree with ipvsadm --stats and -c', async ({ ns }) => {
  const c = await ns.client();
  await ns.sh('ip link add d0 type dummy && ip link set d0 up && ip addr add 198.18.1.1/24 dev d0 && ip addr add 198.18.0.10/32 dev lo');
  const udp: ServiceKey = { family: 4, protocol: 'udp', address: '198.18.0.10', port: 53 };
  await c.addService({ ...tcp, scheduler: 'rr', flags: 1, timeout: 120, netmask: '255.255.255.0' });
  await c.addDestination(tcp, { address: '198.18.1.11', port: 8080, forward: 'masq' });
  await c.addService({ ...udp, scheduler: 'rr' });
  await c.addDestination(udp, { address: '198.18.1.12', port: 5353, forward: 'masq' });
  // Local clients: IPVS schedules locally generated packets too. The real servers do not exist, so
  // TCP stays in SYN_RECV and UDP gets no answer: entries and counters are all we look at.
  await ns.run('for i in 1 2 3; do socat -T1 /dev/null TCP:198.18.0.10:80,connect-timeout=1; done');
  await ns.run('for i in 1 2; do echo hello | socat -T0.2 - UDP:198.18.0.10:53; done');

  // counters are folded into what netlink reports every 2 s: compare once they are stable
  let last = '';
  for (let i = 0; i < 15; i++) {
    await sleep(1000);
    const snap = await c.snapshot();
    const theirs = await ns.sh('ipvsadm -Ln --stats --exact');
    const mine = formatIpvsadmList(await c.info(), snap, { view: 'stats', exact: true });
    const tcpSvc = snap.find((s) => !('fwmark' in s) && s.protocol === 'tcp')!;
    const udpSvc = snap.find((s) => !('fwmark' in s) && s.protocol === 'udp')!;
    // wait until every packet sent has been folded into the counters (a fold may fall between two sends)
    if (mine === theirs && tcpSvc.stats.conns === 3 && udpSvc.stats.conns === 2) {
      last = mine;
      expect(udpSvc.stats.inPkts).toBe(2);
      expect(tcpSvc.destinations[0]!.stats.conns).toBe(3);
      expect(tcpSvc.destinations[0]!.activeConns).toBe(3);
      expect(udpSvc.destinations[0]!.inactiveConns).toBe(2);
      expect(tcpSvc.destinations[0]!.persistConns).toBe(1);
      break;
    }
    last = `mine:\n${mine}\nipvsadm:\n${theirs}`;
  }
  expect(last).toBe(await ns.sh('ipvsadm -Ln --stats --exact'));

  // the connection table: 3 TCP connections, 1 persistence template, 2 UDP entries
  const conns = await c.connections();
  expect(conns.filter((x) => x.protocol === 'TCP' && !x.template).map((x) => [x.state, x.destAddress, x.destPort])).toEqual([
    ['SYN_RECV', '198.18.1.11', 8080], ['SYN_RECV', '198.18.1.11', 8080], ['SYN_RECV', '198.18.1.11', 8080],
  ]);
  expect(conns.filter((x) => x.template)).toMatchObject([{ clientAddress: '198.18.0.0', clientPort: 0, virtualAddress: '198.18.0.10', virtualPort: 80, state: 'NONE' }]);
  expect(conns.filter((x) => x.protocol === 'UDP').map((x) => [x.state, x.destPort])).toEqual([['UDP', 5353], ['UDP', 5353]]);
  let same = false;
  for (let i = 0; i < 5 && !same; i++) {
    // the expiry column ticks every second: compare reads taken back to back
    const mine = formatIpvsadmConnections(await c.connections());
    same = mine === (await ns.sh('ipvsadm -Lnc'));
  }
  expect(same, 'formatted connection table equals ipvsadm -Lnc').toBe(true);
  expect((await c.connections({ sync: true })).every((x) => x.origin === 'local')).toBe(true);

  await c.zero(tcp);
  const zeroed = (await c.snapshot()).find((s) => !('fwmark' in s) && s.protocol === 'tcp')!;
  expect(zeroed.stats.conns).toBe(0);
  expect(zeroed.destinations[0]!.stats.inPkts).toBe(0);
  expect(await ns.sh('ipvsadm -Ln --stats -t 198.18.0.10:80')).toMatch(/^TCP  198\.18\.0\.10:80\s+0\s+0\s+0\s+0\s+0$/m);
  await c.zero();
  expect((await c.snapshot()).every((s) => s.stats.conns === 0)).toBe(true);
});

// ipvsadm rule files and listings. The fixtures under fixtures/ were produced by the real ipvsadm 1.31
// on a 6.12 kernel: rules-input.txt was loaded with `ipvsadm -R`, kernel-snapshot.json is what the
// IPVS client read back from that kernel, and ipvsadm-*.txt are ipvsadm's own outputs for that state.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import {
  IpvsadmParseError,
  formatIpvsadmSave,
  parseIpvsadmLine,
  parseIpvsadmRules,
  rulesToServices,
  servicesToChanges,
} from '../../src/director/ipvsadm-save';
import { formatIpvsadmConnections, formatIpvsadmDaemons, formatIpvsadmList, formatIpvsadmTimeouts, largeNumber } from '../../src/director/ipvsadm-list';
import { parseConnTable } from '../../src/netlink/ipvs-conn';

const fixture = (f: string) => fs.readFileSync(path.join(__dirname, 'fixtures', f), 'utf8');
const snapshot = () => JSON.parse(fixture('kernel-snapshot.json'));

test.describe('listings are byte-identical to ipvsadm 1.31', () => {
  const views = [
    ['ipvsadm-Ln.txt', {}],
    ['ipvsadm-Ln-stats.txt', { view: 'stats' }],
    ['ipvsadm-Ln-rate.txt', { view: 'rate' }],
    ['ipvsadm-Ln-thresholds.txt', { view: 'thresholds' }],
    ['ipvsadm-Ln-persistent-conn.txt', { view: 'persistent-conn' }],
    ['ipvsadm-Ln-tun-info.txt', { view: 'tun-info' }],
    ['ipvsadm-Ln-nosort.txt', { nosort: true }],
  ] as const;
  for (const [file, opts] of views) {
    test(file, () => {
      const { info, services } = snapshot();
      expect(formatIpvsadmList(info, services, opts)).toBe(fixture(file));
    });
  }

  test('ipvsadm -S -n (flavour "ipvsadm")', () => {
    expect(formatIpvsadmSave(snapshot().services, { flavour: 'ipvsadm' })).toBe(fixture('ipvsadm-Sn.txt'));
  });

  test('ipvsadm -L -n -c, with and without --persistent-conn, from the same /proc/net/ip_vs_conn', () => {
    const conns = parseConnTable(fixture('../../netlink/fixtures/ip_vs_conn.txt'));
    expect(formatIpvsadmConnections(conns)).toBe(fixture('ipvsadm-Lnc.txt'));
    expect(formatIpvsadmConnections(conns, { persistentConn: true })).toBe(fixture('ipvsadm-Lnc-persistent-conn.txt'));
  });

  test('print_largenum, --timeout and --daemon', () => {
    expect(largeNumber(99_999_999)).toBe(' 99999999');
    expect(largeNumber(100_000_000)).toBe('  100000K');
    expect(largeNumber(1_234_567_890)).toBe('    1234M');
    expect(largeNumber(123_456_789_012)).toBe('     123G');
    expect(largeNumber(123_456_789_012_345)).toBe('     123T');
    expect(largeNumber(123_456_789_012, true)).toBe(' 123456789012');
    expect(largeNumber(42, true)).toBe('       42');
    expect(formatIpvsadmTimeouts({ tcp: 900, tcpFin: 120, udp: 300 })).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
    expect(
      formatIpvsadmDaemons([
        { state: 'backup', mcastInterface: 'dummy0', syncId: 8, syncMaxLen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 },
        { state: 'master', mcastInterface: 'dummy0', syncId: 7, syncMaxLen: 1400, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 3 },
      ]),
    ).toBe(
      'master sync daemon (mcast=dummy0, syncid=7, maxlen=1400, group=239.1.2.3, port=9000, ttl=3)\n' +
        'backup sync daemon (mcast=dummy0, syncid=8, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    );
  });
});

test.describe('reading rule files', () => {
  test('every option of -A and -a, with ipvsadm defaults filled in', () => {
    const rules = parseIpvsadmRules(fixture('rules-input.txt'), 'rules-input.txt');
    expect(rules).toHaveLength(21);
    const first = rules[0]!;
    expect(first).toMatchObject({ line: 1, change: { op: 'addService', service: { family: 4, protocol: 'tcp', address: '198.18.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255' } } });
    expect(rules[1]!).toMatchObject({
      change: { op: 'addDestination', destination: { address: '198.18.1.11', port: 80, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 50 } },
    });
    // gue with remote checksum
    expect(rules[4]!).toMatchObject({ change: { destination: { forward: 'tunnel', weight: 2, tunnel: { type: 'gue', port: 6080, remcsum: true } } } });
    // no port: DR/TUN take the service port; default method is DR, default tunnel ipip
    expect(rules[5]!).toMatchObject({ change: { destination: { address: '198.18.1.14', port: 80, forward: 'tunnel', weight: 1, tunnel: { type: 'gre', csum: true } } } });
    expect(rules[6]!).toMatchObject({ change: { destination: { address: '2001:db8:1::14', family: 6, forward: 'tunnel', tunnel: { type: 'ipip' } } } });
    expect(rules[7]!).toMatchObject({ change: { service: { family: 6, protocol: 'udp', address: '2001:db8::10', port: 53, scheduler: 'sh', flags: 0x19, timeout: 300, netmask: '64' } } });
    expect(rules[11]!).toMatchObject({ change: { service: { family: 4, fwmark: 5, flags: 1, timeout: 60, netmask: '255.255.255.0', peName: 'sip' } } });
    expect(rules[12]!).toMatchObject({ change: { op: 'addDestination', service: { fwmark: 5 }, destination: { address: '198.18.1.20', port: 0, forward: 'route' } } });
    expect(rules[13]!).toMatchObject({ change: { service: { family: 6, fwmark: 6, scheduler: 'mh', flags: 0x8, netmask: '128' } } });
    expect(rules[14]!).toMatchObject({ change: { service: { protocol: 'udp', port: 0, scheduler: 'wrr', flags: 0x5, timeout: 360 } } });
    expect(rules[15]!).toMatchObject({ change: { service: { protocol: 'sctp', port: 3868, scheduler: 'lc', flags: 0x10 } } });
  });

  test('long options, --opt=value, attached arguments, comments, quotes and the other commands', () => {
    const r = parseIpvsadmRules(
      [
        '# a comment',
        'ipvsadm --add-service --tcp-service=198.18.0.10:80 --scheduler "wrr" --persistent 30 --netmask 255.255.0.0  # trailing',
        '-a -t198.18.0.10:80 -r 198.18.1.11:8080 --masquerading --weight 4 --u-threshold 9 --l-threshold 3',
        '-e -t 198.18.0.10:80 -r 198.18.1.11:8080 -m -w 0',
        '-d -t 198.18.0.10:80 -r 198.18.1.11:8080',
        '-E -t 198.18.0.10:80 -s rr',
        '-Z -t 198.18.0.10:80',
        '-Z',
        '-D -t 198.18.0.10:80',
        '--set 900 0 60',
        '-C',
        '',
      ].join('\n'),
      'f',
    );
    expect(r.map((x) => ('change' in x ? x.change.op : 'setTimeouts'))).toEqual([
      'addService', 'addDestination', 'editDestination', 'deleteDestination', 'editService', 'zero', 'zero', 'deleteService', 'setTimeouts', 'flush',
    ]);
    expect(r[0]).toMatchObject({ line: 2, change: { service: { scheduler: 'wrr', flags: 1, timeout: 30, netmask: '255.255.0.0' } } });
    expect(r[1]).toMatchObject({ change: { destination: { port: 8080, forward: 'masq', weight: 4, upperThreshold: 9, lowerThreshold: 3 } } });
    expect(r[8]).toMatchObject({ setTimeouts: { tcp: 900, tcpFin: 0, udp: 60 } });
  });

  test('errors name file, line and column and say what is wrong', () => {
    // err(line, token, n): the message, with the column of the n-th occurrence of `token` in the line
    // (1-based, counted here, not by the parser) substituted for "@".
    const err = (line: string) => {
      try {
        parseIpvsadmLine(line, 'rules.txt', 7);
      } catch (e) {
        expect(e).toBeInstanceOf(IpvsadmParseError);
        return (e as Error).message;
      }
      throw new Error(`no error for: ${line}`);
    };
    const at = (line: string, token: string, nth = 1) => {
      let i = -1;
      if (nth < 0) i = line.lastIndexOf(token);
      else for (let k = 0; k < nth; k++) i = line.indexOf(token, i + 1);
      return `rules.txt:7:${i + 1}:`;
    };
    const check = (line: string, token: string, msg: string, nth = 1) => expect(err(line)).toBe(`${at(line, token, nth)} ${msg}`);
    check('-a -t 198.18.0.10:80 -r 198.18.1.11 -w 70000', '70000', 'illegal weight "70000" specified (0..65535)');
    check('-A -t 198.18.0.10:80 -w 2', '-w', "Illegal 'weight' option with the 'add-service' command");
    check('-a -t 198.18.0.10:80', '-a', "You need to supply the 'real-server' option for the 'add-server' command");
    check('-A -t 198.18.0.10 -s rr', '-t', 'Zero port specified for non-persistent service');
    check('-A -t 198.18.0.10:53 -o', '-o', 'One-Packet Scheduling is only for UDP virtual services');
    check('-A -t 198.18.0.10:80 -s rr -b sh-port', 'sh-port', "incompatible scheduler flag `sh-port' (only for the sh scheduler)");
    check('-A -t 198.18.0.10:80 -b bogus', 'bogus', "invalid scheduler flag `bogus'");
    check('-A -t web.example:80', 'web.example', 'illegal virtual server address[:port] "web.example:80": "web.example" is not a numeric IPv4 or IPv6 address (host names are not resolved)');
    expect(err('-A -t 198.18.0.10:http')).toMatch(/port "http" is not a number/);
    check('-A -t [2001:db8::1] -s rr', '[2001', 'illegal virtual server address[:port] "[2001:db8::1]": use [IPv6]:port');
    check('-A -u [2001:db8::1]:53 -p 10 -M 255.255.255.0', '255.255.255.0', 'illegal ipv6 netmask "255.255.255.0" specified (1..128)');
    check('-a -t 198.18.0.10:80 -r [2001:db8::1]:80 -m', '[2001', 'Different address family is allowed only for tunneling servers');
    check('-a -t 198.18.0.10:80 -r 198.18.1.1 -m --tun-type gue', '--tun-type', 'Tunnel options conflict with forward method');
    check('-a -t 198.18.0.10:80 -r 198.18.1.1 -i --tun-type gue', '--tun-type', "You need to supply the 'tun-port' option for the 'gue' tunnel type");
    check('-a -t 198.18.0.10:80 -r 198.18.1.1 -i --tun-type gre --tun-remcsum', '--tun-remcsum', "Illegal 'tun-remcsum' option with the 'gre' tunnel type");
    check('-a -t 198.18.0.10:80 -r 198.18.1.1 -i --tun-csum', '--tun-csum', "Illegal 'tun-csum' option with the 'ipip' tunnel type");
    check('-a -t 198.18.0.10:80 -r 198.18.1.1 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum', '--tun-csum', "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type");
    check('-A -t 198.18.0.10:80 -s rr -s wrr', '-s', "multiple 'scheduler' options specified", 2);
    check('-A -a -t 198.18.0.10:80', '-a', 'multiple commands specified ("-A" and "-a")');
    check('-L -n', '-L', '"-L" (listing) cannot appear in a rule file');
    check('-A -t 198.18.0.10:80 --bogus', '--bogus', 'invalid option "--bogus"');
    check('-A -t 198.18.0.10:80 -p 0', '0', "invalid timeout value `0' specified (1..2678400 seconds)", -1);
    check('-6 -A -t 198.18.0.10:80', '-6', '-6 used before -f');
    check('--set 1 2', '--set', '--set option requires 3 timeout values (tcp tcpfin udp)');
    check('-A -t 198.18.0.10:80 -s "rr', '"', 'unterminated " quote');
  });

  test('playing a file: the resulting table, and errors ipvsadm -R would hit, with their line', () => {
    const rules = parseIpvsadmRules('-A -t 198.18.0.10:80\n-a -t 198.18.0.10:80 -r 198.18.1.11 -w 2\n-a -t 198.18.0.10:80 -r 198.18.1.12 -g\n-d -t 198.18.0.10:80 -r 198.18.1.11\n', 'p');
    const { services } = rulesToServices(rules, 'p');
    expect(services).toEqual([
      {
        family: 4, protocol: 'tcp', address: '198.18.0.10', port: 80, scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255',
        destinations: [{ address: '198.18.1.12', port: 80, family: 4, forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0 }],
      },
    ]);
    expect(() => rulesToServices(parseIpvsadmRules('-a -t 198.18.0.10:80 -r 198.18.1.11', 'q'), 'q')).toThrow('q:1:1: Service not defined');
    expect(() => rulesToServices(parseIpvsadmRules('-A -t 198.18.0.10:80\n-A -t 198.18.0.10:80', 'q'), 'q')).toThrow('q:2:1: Service already exists');
  });

  test('round trips: file -> table -> file -> table is stable; the lossless flavour keeps thresholds', () => {
    const input = fixture('rules-input.txt');
    const table1 = rulesToServices(parseIpvsadmRules(input)).services;
    const written = formatIpvsadmSave(table1);
    const table2 = rulesToServices(parseIpvsadmRules(written)).services;
    const norm = (t: typeof table1) =>
      t.map((s) => ({ ...s, destinations: [...s.destinations].sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`)) }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(norm(table2)).toEqual(norm(table1));
    expect(written).toContain('-a -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 3 -x 100 -y 50');
    expect(written).toContain('-a -t [2001:db8::10]:443 -r [2001:db8:1::21]:443 -g -w 65535 -x 2147483647 -y 1');
    // what ipvsadm itself saves loses the thresholds but otherwise reads back to the same table
    const fromIpvsadm = rulesToServices(parseIpvsadmRules(fixture('ipvsadm-Sn.txt'))).services;
    const strip = (t: typeof table1) => norm(t).map((s) => ({ ...s, destinations: s.destinations.map((d) => ({ ...d, upperThreshold: 0, lowerThreshold: 0 })) }));
    expect(strip(fromIpvsadm)).toEqual(strip(table1));
    // and the changes that rebuild it start with the service, then its real servers
    const changes = servicesToChanges(table1);
    expect(changes[0]).toMatchObject({ op: 'addService' });
    expect(changes.filter((c) => c.op === 'addDestination')).toHaveLength(11);
  });
});

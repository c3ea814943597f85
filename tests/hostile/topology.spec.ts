// Hostile topologies (issue 11): nothing a topology says may reach a host path or a host-wide setting,
// and what the kernel would refuse half-way through `vslab up` is refused at load with file:line:col.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadTopologyText, TopologyError } from '../../src/topology/load';
import { native } from '../../src/native';
import { CLI, vslabNamespaces } from '../lab/host';
import { smallTopology } from '../lab/small-topology';

const base = smallTopology('h11bad');

function diagnostics(text: string) {
  try {
    loadTopologyText(text, 'bad.yaml');
  } catch (e) {
    if (e instanceof TopologyError) return e.diagnostics;
    throw e;
  }
  return [];
}

const withSysctl = (kv: string) => base.replace('c1: { role: client }', `c1: { role: client, sysctls: { ${kv} } }`);
const withRoute = (rt: string) => base.replace('c1: { role: client }', `c1: { role: client, routes: [ ${rt} ] }`);
const withMac = (mac: string) => base.replace('members: [c1, d1]', `members: [{ node: c1, mac: "${mac}" }, d1]`);

const bad: Array<{ what: string; text: string; line: number; col: number; message: RegExp }> = [
  { what: 'a sysctl key that climbs out of /proc/sys', text: withSysctl('"../../../tmp/x/canary": PWNED'), line: 3, col: 34, message: /invalid part "\.\."/ },
  { what: 'a host-wide sysctl (kernel.hostname)', text: withSysctl('kernel.hostname: pwned'), line: 3, col: 34, message: /not a per-namespace network setting/ },
  { what: 'an absolute path outside /proc/sys/net', text: withSysctl('"/proc/sys/kernel/core_pattern": x'), line: 3, col: 34, message: /not a per-namespace network setting/ },
  { what: 'a host-wide net.core sysctl', text: withSysctl('net.core.rmem_max: 1'), line: 3, col: 34, message: /is host-wide/ },
  { what: 'an empty sysctl part', text: withSysctl('"net/ipv4//ip_forward": 1'), line: 3, col: 34, message: /invalid part ""/ },
  { what: 'an empty sysctl key', text: withSysctl('"": 1'), line: 3, col: 34, message: /must be 1 to 200 characters/ },
  { what: 'a sysctl of a device the node does not have', text: withSysctl('net.ipv4.conf.eth7.rp_filter: 0'), line: 3, col: 34, message: /names device "eth7"/ },
  { what: 'a sysctl value with a newline', text: withSysctl('net.ipv4.ip_forward: "1\\n2"'), line: 3, col: 55, message: /sysctl value/ },
  { what: 'a zero MAC', text: withMac('00:00:00:00:00:00'), line: 7, col: 60, message: /all-zero address/ },
  { what: 'a multicast MAC', text: withMac('01:00:5e:00:00:01'), line: 7, col: 60, message: /multicast address/ },
  { what: 'a broadcast MAC', text: withMac('ff:ff:ff:ff:ff:ff'), line: 7, col: 60, message: /broadcast address/ },
  { what: 'a route via an address off every subnet of the node', text: withRoute('{ to: 198.18.5.0/24, via: 10.0.0.1 }'), line: 3, col: 59, message: /next hop 10\.0\.0\.1 is not on any subnet of c1 \(198\.18\.0\.0\/24\)/ },
  { what: 'a route via the node itself', text: withRoute('{ to: 198.18.5.0/24, via: 198.18.0.1 }'), line: 3, col: 59, message: /c1's own address/ },
  { what: 'a route to a prefix outside the lab ranges', text: withRoute('{ to: 10.0.0.0/8, via: 198.18.0.2 }'), line: 3, col: 39, message: /outside the lab ranges/ },
];

for (const c of bad) {
  test(`hostile topology: ${c.what} is refused with file, line and column`, () => {
    const d = diagnostics(c.text);
    const hit = d.find((x) => c.message.test(x.message));
    expect(hit, `diagnostics were: ${JSON.stringify(d)}`).toBeTruthy();
    expect({ file: hit!.file, line: hit!.line, col: hit!.col }).toEqual({ file: 'bad.yaml', line: c.line, col: c.col });
  });
}

test('per-namespace network sysctls, unicast MACs and on-link routes are still accepted', () => {
  const text = base
    .replace('c1: { role: client }', 'c1: { role: client, sysctls: { net.ipv4.ip_forward: 1, "net/ipv6/conf/eth0/accept_ra": 0, net.core.somaxconn: 512, net.ipv4.vs.conntrack: 1 }, routes: [{ to: 198.18.5.0/24, via: 198.18.0.2 }] }')
    .replace('members: [c1, d1]', 'members: [{ node: c1, mac: "02:00:00:00:00:01" }, d1]');
  expect(diagnostics(text)).toEqual([]);
  const lab = loadTopologyText(text, 'ok.yaml');
  const c1 = lab.nodes.find((n) => n.name === 'c1')!;
  expect(c1.sysctls).toMatchObject({ 'net/ipv4/ip_forward': '1', 'net/ipv6/conf/eth0/accept_ra': '0', 'net/core/somaxconn': '512' });
  expect(c1.interfaces[0].mac).toBe('02:00:00:00:00:01');
  expect(c1.routes).toContainEqual(expect.objectContaining({ to: '198.18.5.0/24', via: '198.18.0.2' }));
});

test('the native helper refuses sysctl paths that do not resolve under /proc/sys/net/, and the host namespace', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-canary-'));
  const canary = path.join(dir, 'canary');
  fs.writeFileSync(canary, 'intact');
  const ns = `/run/netns/h11-native-${process.pid}`;
  const n = native();
  n.netnsCreate(ns);
  try {
    for (const p of [`/proc/sys/net/../../..${canary}`, `/proc/sys/net/ipv4/../../../..${canary}`, '/proc/sys/kernel/hostname', canary, '/proc/sys/net/', '/proc/sys/net//ipv4/ip_forward', '/proc/sys/net/./ipv4/ip_forward']) {
      expect(() => n.sysctlWrite(ns, [[p, 'PWNED']]), p).toThrow(/not a file under \/proc\/sys\/net\//);
    }
    expect(() => n.sysctlWrite(null, [['/proc/sys/net/ipv4/ip_forward', '0']])).toThrow(/host namespace/);
    n.sysctlWrite(ns, [['/proc/sys/net/ipv4/ip_forward', '1']]); // a good path still works
  } finally {
    n.netnsDelete(ns);
  }
  expect(fs.readFileSync(canary, 'utf8')).toBe('intact');
  fs.rmSync(dir, { recursive: true });
});

test('`vslab up` of the traversal topology exits 2, builds nothing, and the canary file survives', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-trav-'));
  const canary = path.join(dir, 'x', 'canary');
  fs.mkdirSync(path.dirname(canary));
  fs.writeFileSync(canary, 'intact');
  const rel = path.relative('/proc/sys', canary).split(path.sep).join('/'); // ../../<dir>/x/canary
  const file = path.join(dir, 'trav.yaml');
  fs.writeFileSync(file, withSysctl(`"${rel}": PWNED`));
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'up', file, '--backend', 'netns', '--director', 'none']);
  expect(r.status, r.stderr.toString()).toBe(2);
  expect(r.stderr.toString()).toContain(`${file}:3:34: sysctl key`);
  expect(fs.readFileSync(canary, 'utf8')).toBe('intact');
  expect(vslabNamespaces('h11bad')).toEqual([]);
  fs.rmSync(dir, { recursive: true });
});

test('alias bombs, deep nesting and exhausted address pools are reported where they are, fast', () => {
  const bomb = `${base}x1: &a [z, z, z, z, z, z, z, z, z, z]\nx2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nx3: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n`;
  const deep = `name: h11bad\nnodes: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
  const pool = base.replace('back: { ipv4: 198.18.1.0/24, members: [d1, rs1] }', 'back: { ipv4: 198.18.1.0/30, members: [d1, rs1, { node: c1 }] }');
  const t0 = Date.now();
  expect(diagnostics(bomb)[0]).toMatchObject({ line: 10, col: 9, message: expect.stringMatching(/aliases expand too far/) });
  expect(diagnostics(deep)).toEqual([{ file: 'bad.yaml', line: 2, col: 72, message: expect.stringMatching(/nested more than 64 levels deep/) }]);
  expect(diagnostics(pool)).toEqual([{ file: 'bad.yaml', line: 8, col: 51, message: expect.stringMatching(/node "c1" gets no address on segment "back": no free address left in 198\.18\.1\.0\/30/) }]);
  expect(Date.now() - t0).toBeLessThan(5000);
});

test('out-of-range numbers are refused at load with one error and the full path', () => {
  const svc = (rs: string) => `${base}services:\n  - { name: a, vip: 198.19.0.1, port: 80, method: nat, realServers: [${rs}] }\n`;
  expect(diagnostics(svc('{ node: rs1, weight: -1 }'))).toEqual([{ file: 'bad.yaml', line: 10, col: 91, message: '"services[0].realServers[0].weight" must be >= 0' }]);
  expect(diagnostics(svc('{ node: rs1, upper: 99999999999 }'))).toEqual([{ file: 'bad.yaml', line: 10, col: 90, message: '"services[0].realServers[0].upper" must be <= 4294967295' }]);
  expect(diagnostics(base.replace('members: [c1, d1]', 'members: [c1, 5]'))).toEqual([{ file: 'bad.yaml', line: 7, col: 47, message: '"segments.front.members[1]" has the wrong form: expected a node name or {node, ipv4, ipv6, mac}' }]);
});

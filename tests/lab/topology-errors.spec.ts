import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadTopologyText, TopologyError } from '../../src/topology/load';
import { CLI, vslabNamespaces } from './host';
import { smallTopology } from './small-topology';

const base = smallTopology('bad');

function diagnostics(text: string, hostPrefixes: string[] = []) {
  try {
    loadTopologyText(text, 'bad.yaml', { hostPrefixes });
  } catch (e) {
    if (e instanceof TopologyError) return e.diagnostics;
    throw e;
  }
  throw new Error('the topology was accepted');
}

const cases: Array<{ what: string; text: string; line: number; col: number; message: RegExp; host?: string[] }> = [
  { what: 'unknown key', text: base.replace('c1: { role: client }', 'c1: { role: client, colour: red }'), line: 3, col: 23, message: /unknown key "colour"/ },
  { what: 'wrong type', text: base + 'mtu: big\n', line: 9, col: 6, message: /"mtu" must be integer/ },
  { what: 'unknown role', text: base.replace('role: client', 'role: customer'), line: 3, col: 15, message: /must be one of: client, director, real-server, router/ },
  { what: 'address outside its segment', text: base.replace('members: [d1, rs1]', 'members: [d1, { node: rs1, ipv4: 198.18.7.5 }]'), line: 8, col: 65, message: /198\.18\.7\.5 is outside its segment "back" \(198\.18\.1\.0\/24\)/ },
  { what: 'subnet outside the lab ranges', text: base.replace('198.18.1.0/24', '10.1.0.0/24'), line: 8, col: 17, message: /outside the lab ranges/ },
  { what: 'overlap with the host routes', text: base, host: ['198.18.1.0/25'], line: 8, col: 17, message: /overlaps the host's own route 198\.18\.1\.0\/25/ },
  { what: 'unknown node in a segment', text: base.replace('[d1, rs1]', '[d1, rs9]'), line: 8, col: 46, message: /unknown node "rs9"/ },
  { what: 'VIP reused', text: base + `services:
  - { name: a, vip: 198.19.0.1, port: 80, method: nat, realServers: [rs1] }
  - { name: b, vip: 198.19.0.1, port: 80, method: nat, realServers: [rs1] }
`, line: 11, col: 21, message: /VIP 198\.19\.0\.1:80\/tcp is already used by service "a"/ },
  { what: 'VIP equal to an interface address', text: base + `services:
  - { name: a, vip: 198.18.0.1, port: 80, method: nat, realServers: [rs1] }
`, line: 10, col: 21, message: /already the address of c1:eth0/ },
  { what: 'real server unreachable for dr', text: base.replace('role: real-server }', 'role: real-server }\n  rs2: { role: real-server }').replace('segments:', 'links:\n  - endpoints: [c1, rs2]\nsegments:') + `services:
  - { name: a, vip: 198.19.0.1, port: 80, method: dr, realServers: [rs2] }
`, line: 13, col: 69, message: /real server "rs2" is unreachable for dr/ },
  { what: 'dr replies with no path to the client', text: base + `services:
  - { name: a, vip: 198.19.0.1, port: 80, method: dr, realServers: [rs1] }
`, line: 10, col: 69, message: /cannot reply to client "c1" directly/ },
  { what: 'port mapping with dr', text: base.replace('members: [d1, rs1]', 'members: [c1, d1, rs1]').replace('members: [c1, d1] }', 'members: [d1] }') + `services:
  - { name: a, vip: 198.19.0.1, port: 80, method: dr, realServers: [{ node: rs1, port: 8080 }] }
`, line: 10, col: 88, message: /dr cannot map ports/ },
  { what: 'thresholds reversed', text: base + `services:
  - { name: a, vip: 198.19.0.1, port: 80, method: nat, realServers: [{ node: rs1, upper: 5, lower: 9 }] }
`, line: 10, col: 100, message: /thresholds reversed: lower 9 is above upper 5/ },
  { what: 'scheduler flag of another scheduler', text: base + `services:
  - { name: a, vip: 198.19.0.1, port: 80, method: nat, scheduler: rr, flags: [sh-port], realServers: [rs1] }
`, line: 10, col: 79, message: /flag sh-port belongs to the sh scheduler, not rr/ },
  { what: 'YAML syntax error', text: base.replace('c1: { role: client }', 'c1: { role: client'), line: 4, col: 3, message: /YAML/ },
  { what: 'duplicate key', text: base.replace('  d1: { role: director }', '  d1: { role: director }\n  d1: { role: router }'), line: 5, col: 3, message: /YAML: Map keys must be unique/ },
];

for (const c of cases) {
  test(`bad topology: ${c.what} is reported with file, line and column`, () => {
    const d = diagnostics(c.text, c.host);
    const hit = d.find((x) => c.message.test(x.message));
    expect(hit, `diagnostics were: ${JSON.stringify(d)}`).toBeTruthy();
    expect(hit!.file).toBe('bad.yaml');
    expect({ line: hit!.line, col: hit!.col }).toEqual({ line: c.line, col: c.col });
  });
}

test('every problem in a file is reported at once, in line order', () => {
  // Schema problems are all reported together; semantic checks run once the file has the right shape.
  const d = diagnostics(base.replace('role: client', 'role: customer').replace('rs1: { role: real-server }', 'rs1: { role: real-server, weight: 3 }'));
  expect(d.length).toBe(2);
  expect(d[0].line).toBeLessThan(d[1].line);
});

test('`vslab up` of a bad file exits 2 with file:line:col and builds nothing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-bad-'));
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, base.replace('members: [d1, rs1]', 'members: [d1, { node: rs1, ipv4: 198.18.7.5 }]'));
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'up', file]);
  expect(r.status).toBe(2);
  expect(r.stderr.toString()).toContain(`${file}:8:65: address 198.18.7.5 is outside its segment`);
  expect(vslabNamespaces('bad')).toEqual([]);
  fs.rmSync(dir, { recursive: true });
});

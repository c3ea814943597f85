// The command line under careless or hostile use (issue 11): help everywhere, unknown things refused
// with exit 2, failures as a JSON object on stdout with --json, exit codes as the README says.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/cli/main';
import { resolveScenario } from '../../src/models/scenario';
import { commands } from '../../src/cli/registry';
import { CLI } from '../lab/host';

const vslab = (args: string[], opts: { input?: string; uid?: number } = {}) => {
  const cmd = opts.uid === undefined ? CLI : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', ...CLI];
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...args], { input: opts.input ?? '', timeout: 60_000 });
  return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
};

test('every subcommand answers --help with its usage and exit 0, and `vslab help <command>` says "usage:" once', async () => {
  // In-process (one spawn per subcommand would take most of a minute on a busy machine).
  const log = console.log;
  let out = '';
  console.log = (...a: unknown[]) => { out += a.join(' ') + '\n'; };
  try {
    for (const c of commands) {
      for (const args of [[c.name, '--help'], [c.name, '-h'], ['help', c.name]]) {
        out = '';
        expect(await main(args), args.join(' ')).toBe(0);
        expect(out.match(/usage:/g)?.length, `${args.join(' ')}: ${out}`).toBe(1);
      }
    }
  } finally {
    console.log = log;
  }
  // what follows `--` belongs to the command run in a node
  expect(vslab(['exec', 'h11nolab', 'c1', '--', 'ls', '--help']).err).toMatch(/no lab|h11nolab/);
});

test('unknown commands and stray arguments are refused with exit 2', () => {
  const h = vslab(['help', 'frobnicate']);
  expect(h.code).toBe(2);
  expect(h.err).toMatch(/unknown command "frobnicate"/);
  for (const args of [['ls', 'foo'], ['gc', 'foo'], ['doctor', 'foo']]) {
    const r = vslab(args);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.err).toMatch(/unexpected argument "foo"/);
  }
});

test('with --json a failure is an error object on stdout', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-cli-'));
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, 'name: h11bad\nnodes:\n  c1: { role: customer }\n');
  const r = vslab(['up', file, '--json']);
  expect(r.code).toBe(2);
  const o = JSON.parse(r.out);
  expect(o.error).toMatchObject({ code: 'bad-input', where: `${file}:3:15` });
  expect(o.error.message).toMatch(/must be one of: client, director/);
  const u = vslab(['ls', 'foo', '--json']);
  expect(u.code).toBe(2);
  expect(JSON.parse(u.out).error).toMatchObject({ code: 'usage', where: null });
  fs.rmSync(dir, { recursive: true });
});

test('a file with thousands of problems prints the first 50 and counts the rest', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-cli-'));
  const file = path.join(dir, 'many.yaml');
  fs.writeFileSync(file, `name: h11bad\nnodes:\n  c1:\n    role: client\n${Array.from({ length: 2000 }, (_, i) => `    k${i}: 1`).join('\n')}\n`);
  const t0 = Date.now();
  const r = vslab(['graph', file]);
  expect(r.code).toBe(2);
  expect(r.err.trim().split('\n').length).toBe(51);
  expect(r.err).toMatch(/… and 1950 more problem\(s\)\n$/);
  expect(Date.now() - t0).toBeLessThan(20_000);
  fs.rmSync(dir, { recursive: true });
});

test('`vslab up` as a user without root exits 3 saying so', () => {
  const r = vslab(['up', path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'), '--backend', 'netns', '--director', 'none', '--name', 'h11nonroot'], { uid: 65534 });
  expect(r.code, r.err).toBe(3);
  expect(r.err).toMatch(/needs root/);
});

test('pcap trace refuses a flow with an impossible address or port', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-cli-'));
  const f = path.join(dir, 'x.pcap');
  fs.writeFileSync(f, Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex'));
  for (const [flow, why] of [['tcp 999.1.1.1:1 > 198.18.0.1:80', /999\.1\.1\.1 is not an IPv4 or IPv6 address/], ['tcp 198.18.0.2:70000 > 198.18.0.1:80', /port 70000 is not 0-65535/], ['300 198.18.0.2:1 > 198.18.0.1:80', /protocol 300/]] as const) {
    const r = vslab(['pcap', 'trace', f, '--flow', flow]);
    expect(r.code, flow).toBe(2);
    expect(r.err).toMatch(why);
  }
  fs.rmSync(dir, { recursive: true });
});

test('predict: a recurring cache warning is printed once with its count; a bad VIP is one error', () => {
  const flows = Array.from({ length: 20000 }, (_, i) => ({ client: `198.18.${(i >> 8) & 255}.${i & 255}`, cport: 40000 }));
  const sc = { scheduler: 'lblcr', flags: [], service: { proto: 'tcp', fwmark: 1 }, servers: [{ name: 'rs1', addr: '198.18.1.11', port: 80, weight: 1 }], flows: flows.map((f, i) => ({ ...f, dst: `198.19.${(i >> 8) & 255}.${i & 255}` })) };
  const r = vslab(['predict'], { input: JSON.stringify(sc) });
  expect(r.code, r.err).toBe(0);
  const warnings = r.err.split('\n').filter((l) => /cache holds/.test(l));
  expect(warnings.length).toBe(1);
  expect(warnings[0]).toMatch(/and \d+ more time\(s\) later/);
  const bad = { scheduler: 'rr', flags: [], service: { proto: 'tcp', vip: 'localhost', port: 80 }, servers: [{ name: 'rs1', addr: '198.18.1.11', port: 80, weight: 1 }], flows: [{ client: '198.18.0.2', cport: 40000 }] };
  const b = vslab(['predict'], { input: JSON.stringify(bad) });
  expect(b.code).toBe(2);
  expect(b.err.trim().split('\n')).toEqual(['vslab predict: $.service.vip: not an IPv4 or IPv6 address: "localhost"']);
});

test('predict: a held connection\'s port reused by a later flow is refused before any simulation, with the flow\'s path', () => {
  const base = { scheduler: 'rr', flags: [], service: { proto: 'tcp', vip: '198.19.0.100', port: 80 }, servers: [{ name: 'rs1', addr: '198.18.1.11', port: 80, weight: 1 }] };
  const flows = Array.from({ length: 200_000 }, (_, i) => ({ client: `198.18.${(i >> 8) & 255}.${i & 255}`, cport: 1024 + (i >> 16) }));
  flows.push({ client: '198.18.0.0', cport: 1024 });
  // Resolving alone (no model run) finds it, naming the flow and the one it collides with.
  expect(() => resolveScenario({ ...base, flows })).toThrow(/\$\.flows\[200000\]: flow 200000: client 198\.18\.0\.0:1024 opens a connection while flow 0 on that port is still held/);
  const r = vslab(['predict'], { input: JSON.stringify({ ...base, flows }) });
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/^vslab predict: \$\.flows\[200000\]: flow 200000: .* a real client cannot reuse an open port/);
  // Not reported where it is not certain or not a reuse: a close or release in between, a wait (the entry may go),
  // an earlier flow that was not held, another port, UDP.
  const two = [{ client: '198.18.0.2', cport: 40000 }, { client: '198.18.0.2', cport: 40000 }];
  for (const ok of [
    { ...base, flows: two, events: [{ before: 1, op: 'close', flow: 0 }] },
    { ...base, flows: two, events: [{ before: 1, op: 'release' }] },
    { ...base, flows: two, events: [{ before: 1, op: 'wait', seconds: 1000 }] },
    { ...base, flows: [{ ...two[0], hold: false }, two[1]] },
    { ...base, hold: false, flows: two },
    { ...base, flows: [two[0], { ...two[1], cport: 40001 }] },
    { ...base, service: { ...base.service, proto: 'udp' }, flows: two },
  ]) expect(() => resolveScenario(ok), JSON.stringify(ok)).not.toThrow();
  // A hold event makes the later default flows held: then the reuse is found.
  expect(() => resolveScenario({ ...base, hold: false, flows: [...two, two[0]], events: [{ before: 1, op: 'hold', hold: true }] })).toThrow(/\$\.flows\[2\]: flow 2: .* while flow 1 on that port is still held/);
});

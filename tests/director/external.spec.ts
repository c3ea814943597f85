// The external adapter protocol (docs/adapter-protocol.md): every reply is validated, an error reply, a
// malformed reply, a non-JSON reply and a hung adapter are errors naming the adapter and the verb, and
// an adapter whose read-back differs from what it was asked is reported as a difference (vslab diffs,
// the adapter cannot declare agreement). The adapter runs through a LabNode; here a node that runs
// programs on this host (the scripted adapter touches no network).
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecOptions, ExecResult, LabNode } from '../../src/backend/types';
import { AdapterError, callAdapter, ExternalDirector } from '../../src/director/external';
import { directorDriver, isDirectorName } from '../../src/director/registry';
import type { RunResults } from '../../src/runner/results';
import { loadTopologyFile } from '../../src/topology/load';

const ADAPTER = path.join(__dirname, 'fixtures', 'adapters', 'scripted');

/** A node running programs here, with the scripted replies in its environment. */
function scriptedNode(replies: Record<string, string>): LabNode {
  return {
    name: 'director', workDir: '/nonexistent',
    async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...Object.fromEntries(Object.entries(replies).map(([k, v]) => [`ADAPTER_${k}`, v])) };
      const r = spawnSync(argv[0], argv.slice(1), { input: opts.input, timeout: opts.timeoutMs, env, encoding: 'utf8' });
      return { code: r.status ?? -1, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: r.error?.message.includes('ETIMEDOUT') ?? false };
    },
    spawn() { throw new Error('not used'); },
    async fetchFile() { throw new Error('not used'); },
    async readFileFrom() { throw new Error('not used'); },
  };
}

const DESCRIBE = `echo '{"protocol":"vslab-director-adapter/1","implementation":"scripted","capabilities":{"protocols":["tcp","udp"],"families":[4,6],"methods":["nat"],"schedulers":["rr","wrr"],"connections":true,"stats":true}}'`;

test('external:PATH names are accepted by the registry; a missing or non-executable adapter is refused with the path', () => {
  expect(isDirectorName('external:adapters/ipvsadm')).toBe(true);
  expect(isDirectorName('external:')).toBe(false);
  expect(directorDriver('external:/nonexistent/adapter').unavailable('netns')).toMatch(/no adapter file \/nonexistent\/adapter/);
  expect(directorDriver(`external:${path.join(__dirname, 'external.spec.ts')}`).unavailable('netns')).toMatch(/not executable/);
  expect(directorDriver(`external:${ADAPTER}`).unavailable('netns')).toBeUndefined();
});

const BAD: Array<{ name: string; reply: string; verb: 'read' | 'describe'; message: RegExp }> = [
  { name: 'a reply that is not JSON', verb: 'read', reply: 'echo hello', message: /verb read: reply is not JSON: "hello"/ },
  { name: 'a reply missing a field', verb: 'read', reply: `echo '{"services":[{"protocol":"tcp","port":80,"scheduler":"rr"}]}'`, message: /verb read: malformed reply: \/services\/0 must have required property 'realServers'/ },
  { name: 'a field of the wrong type', verb: 'read', reply: `echo '{"services":[{"protocol":"tcp","port":"80","scheduler":"rr","realServers":[]}]}'`, message: /verb read: malformed reply: \/services\/0\/port must be integer/ },
  { name: 'another protocol version', verb: 'describe', reply: `echo '{"protocol":"vslab-director-adapter/9","implementation":"x","capabilities":{"protocols":[],"families":[],"methods":[],"schedulers":[]}}'`, message: /verb describe: malformed reply: \/protocol must be equal to constant/ },
  { name: 'an error reply', verb: 'read', reply: `echo '{"error":{"code":"EBUSY","message":"table locked"}}'; exit 3`, message: /verb read: error EBUSY: table locked/ },
  { name: 'a failure without an error reply', verb: 'read', reply: 'echo "{}"; exit 2', message: /verb read: exit 2 without an \{"error"/ },
];

for (const b of BAD) {
  test(`${b.name} is an error naming the adapter and the verb`, async () => {
    const err = await callAdapter(scriptedNode({ [b.verb]: b.reply }), ADAPTER, b.verb, {}).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(AdapterError);
    expect(err!.message).toContain(`adapter ${ADAPTER}, verb ${b.verb}`);
    expect(err!.message).toMatch(b.message);
  });
}

test('an adapter declares its background classes in describe: they reach the capabilities as declared by the adapter; a built-in name or a bad pattern is refused', async () => {
  const describe = (background: unknown) => `echo '${JSON.stringify({ protocol: 'vslab-director-adapter/1', implementation: 'scripted', capabilities: { protocols: ['tcp'], families: [4], methods: ['nat'], schedulers: ['rr'], background } })}'`;
  const probe = { name: 'probe', why: 'TCP health checks to every real server', patterns: [[{ type: 'eth' }, { type: 'ipv4', src: '198.18.1.1' }, { type: 'tcp', dport: 8080, flags: 'S' }]] };
  const caps = await new ExternalDirector(scriptedNode({ describe: describe([probe]) }), ADAPTER).capabilities();
  expect(caps.background).toEqual([{ ...probe, declaredBy: `adapter ${ADAPTER}` }]);
  expect((await new ExternalDirector(scriptedNode({ describe: DESCRIBE }), ADAPTER).capabilities()).background).toBeUndefined();
  await expect(new ExternalDirector(scriptedNode({ describe: describe([{ ...probe, name: 'arp' }]) }), ADAPTER).capabilities())
    .rejects.toThrow(/verb describe: background class "arp" declared by adapter .* is already declared/);
  await expect(new ExternalDirector(scriptedNode({ describe: describe([{ ...probe, patterns: [[{ type: 'ethernet' }]] }]) }), ADAPTER).capabilities())
    .rejects.toThrow(/verb describe: malformed reply: \/capabilities\/background\/0\/patterns\/0\/0\/type must be equal to one of the allowed values/);
  await expect(new ExternalDirector(scriptedNode({ describe: describe([{ name: 'probe', patterns: probe.patterns }]) }), ADAPTER).capabilities())
    .rejects.toThrow(/malformed reply: \/capabilities\/background\/0 must have required property 'why'/);
});

test('a hung adapter is killed after the timeout and named', async () => {
  const t0 = Date.now();
  const err = await callAdapter(scriptedNode({ read: 'sleep 20' }), ADAPTER, 'read', {}, 800).then(() => undefined, (e: Error) => e);
  expect(Date.now() - t0).toBeLessThan(10_000);
  expect(err?.message).toMatch(new RegExp(`adapter ${ADAPTER.replace(/[/.]/g, '\\$&')}, verb read: no answer within 0.8 s`));
});

test('an adapter whose read-back is not what it was asked is reported as differing, whatever apply said', async () => {
  const model = loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'));
  // nat.yaml's first wrr service: a weight is something wrr cannot ignore.
  const s = model.services.find((x) => x.scheduler === 'wrr')!;
  const services = [s];
  // It claims success, and reads back the service with the first real server's weight changed and the last one gone.
  const held = { ...s, realServers: s.realServers.slice(0, -1).map((r, k) => ({ addr: r.addr, port: r.port, weight: k === 0 ? r.weight + 1 : r.weight, method: r.method })) };
  const d = new ExternalDirector(scriptedNode({ describe: DESCRIBE, apply: `echo '{"changes":1}'`, read: `echo '${JSON.stringify({ services: [{ protocol: held.protocol, vip: held.vip, port: held.port, scheduler: 'wrr', realServers: held.realServers }] })}'` }), ADAPTER);
  await d.capabilities();
  const r = await d.apply(services);
  const what = r.differences.map((x) => `${x.realServer ?? ''} ${x.what}`);
  expect(what).toContain(`${s.realServers.at(-1)!.addr}:${s.realServers.at(-1)!.port} missing`);
  expect(what).toContain(`${s.realServers[0].addr}:${s.realServers[0].port} weight`);
  expect(what).not.toContain(' scheduler');
});

test('a lying adapter (reads back what it was asked, programs rport + 1) is caught by the forwarding suite', async () => {
  test.setTimeout(600_000);
  test.skip(process.getuid?.() !== 0, 'needs root for the network namespaces of a lab');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-lying-adapter-'));
  try {
    const lying = path.join(__dirname, 'fixtures', 'adapters', 'lying-nft');
    const cli = path.join(__dirname, '..', '..', 'bin', 'vslab.js');
    const run = spawnSync(process.execPath, [cli, 'test', 'suites/forwarding/nat.spec.ts', '--director', `external:${lying}`, '--backend', 'netns', '--workers', '1',
      '--grep', 'tcp4: handshake and data on every hop, port mapped', '--out', out, '--json'], { encoding: 'utf8', cwd: path.join(__dirname, '..', '..'), timeout: 540_000 });
    expect(run.status, run.stderr.slice(-2000)).toBe(1);
    const r = JSON.parse(run.stdout) as RunResults;
    expect(r.tests.map((t) => `${t.id} ${t.status}`)).toEqual(['forwarding.nat.tcp4-handshake-and-data-on-every-hop-port-mapped failed']);
    const failed = r.statements.filter((x) => x.status === 'failed').map((x) => x.id);
    expect(failed.length, 'statements broken').toBeGreaterThan(0);
    test.info().annotations.push({ type: 'note', description: `statements broken: ${failed.join(', ')}` });
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('a malformed and a hanging adapter stop a suite run with an error naming the adapter and the verb', async () => {
  test.setTimeout(900_000);
  test.skip(process.getuid?.() !== 0, 'needs root for the network namespaces of a lab');
  const cli = path.join(__dirname, '..', '..', 'bin', 'vslab.js');
  const cases = [
    { adapter: path.join(__dirname, 'fixtures', 'adapters', 'malformed-apply'), message: /verb apply: malformed reply: \/changes must be integer/ },
    { adapter: path.join(__dirname, 'fixtures', 'adapters', 'hanging-apply'), message: /verb apply: no answer within 3 s \(killed\)/ },
  ];
  for (const c of cases) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-bad-adapter-'));
    try {
      const t0 = Date.now();
      const run = spawnSync(process.execPath, [cli, 'test', 'suites/forwarding/nat.spec.ts', '--director', `external:${c.adapter}`, '--backend', 'netns', '--workers', '1',
        '--grep', 'tcp4: handshake and data on every hop, port mapped', '--out', out, '--json'],
      { encoding: 'utf8', cwd: path.join(__dirname, '..', '..'), timeout: 420_000, env: { ...process.env, VSLAB_ADAPTER_TIMEOUT_MS: '3000' } });
      expect(run.status, run.stderr.slice(-2000)).toBe(1);
      const r = JSON.parse(run.stdout) as RunResults;
      const t = r.tests.find((x) => x.id === 'forwarding.nat.tcp4-handshake-and-data-on-every-hop-port-mapped')!;
      expect(t.status).toBe('failed');
      expect(t.reason).toContain(`adapter ${c.adapter}, verb apply:`);
      expect(t.reason).toMatch(c.message);
      expect(t.reason).not.toMatch(/\n\s+at /);
      test.info().annotations.push({ type: 'note', description: `${path.basename(c.adapter)}: ${((Date.now() - t0) / 1000).toFixed(0)} s, "${t.reason}"` });
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
});

import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { CLI, vslabNamespaces } from './host';

// vslab as a user runs it: no test-only variables (such as another file's VM name prefix) inherited.
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VSLAB_')));
const vslab = (...args: string[]) => spawnSync(CLI[0], [...CLI.slice(1), ...args], { encoding: 'utf8', timeout: 120_000, env: userEnv });
const topo = (f: string) => path.join(__dirname, '..', '..', 'topologies', f);
test.describe.configure({ mode: 'serial' });

test('up --json, ls, exec, down: a lab persists between commands and goes away completely', () => {
  const up = vslab('up', topo('nat.yaml'), '--name', 'cli-nat', '--json');
  expect(up.status, up.stderr).toBe(0);
  const info = JSON.parse(up.stdout);
  try {
    expect(info.name).toBe('cli-nat');
    expect(info.nodes.map((n: { name: string }) => n.name)).toEqual(['client1', 'director', 'rs1', 'rs2', 'rs3']);
    expect(typeof info.readyMs).toBe('number');
    const ls = JSON.parse(vslab('ls', '--json').stdout);
    expect(ls.find((l: { name: string }) => l.name === 'cli-nat')).toMatchObject({ backend: 'netns', alive: true });
    const ex = vslab('exec', 'cli-nat', 'rs2', '--', 'ip', '-br', 'addr', 'show', 'eth0');
    expect(ex.status).toBe(0);
    expect(ex.stdout).toContain('198.18.1.3/24');
    const fail = vslab('exec', 'cli-nat', 'rs2', '--', 'sh', '-c', 'exit 7');
    expect(fail.status).toBe(7);
    const again = vslab('up', topo('nat.yaml'), '--name', 'cli-nat');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('already up');
  } finally {
    const down = vslab('down', 'cli-nat', '--json');
    expect(down.status).toBe(0);
  }
  expect(vslabNamespaces('cli-nat')).toEqual([]);
  expect(JSON.parse(vslab('ls', '--json').stdout).find((l: { name: string }) => l.name === 'cli-nat')).toBeUndefined();
});

test('usage errors exit 2 and say what is wrong', () => {
  expect(vslab('up').status).toBe(2);
  const r = vslab('up', topo('nat.yaml'), '--bogus');
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/bogus/);
  expect(vslab('down', 'no-such-lab').stderr).toMatch(/no lab named no-such-lab/);
  expect(vslab('exec', 'no-such-lab', 'x', '--', 'true').status).toBe(2);
  expect(vslab('frobnicate').status).toBe(2);
});

test('graph draws every node, segment and service path as mermaid and dot', () => {
  const m = vslab('graph', topo('dr.yaml'));
  expect(m.status).toBe(0);
  expect(m.stdout.startsWith('graph LR')).toBe(true);
  for (const n of ['client1', 'router', 'director', 'rs1', 'rs2', 'rs3', 'seg_wan', 'seg_lan']) expect(m.stdout).toContain(n);
  expect(m.stdout).toContain('web4 tcp/80 dr');
  const d = vslab('graph', topo('nat.yaml'), '--format', 'dot');
  expect(d.stdout).toMatch(/^graph "nat" \{/);
  expect(d.stdout).toContain('"rs3" -- "seg:back"');
});

test('doctor reports tools and kernel features with a fix for each missing one', () => {
  const r = vslab('doctor', '--json');
  expect(r.status).toBe(0);
  const d = JSON.parse(r.stdout);
  const names = d.checks.map((c: { name: string }) => c.name);
  for (const n of ['root', 'tool tcpdump', 'kernel netns+veth', 'kernel ip_vs', 'kernel ipip', 'kernel nftables', 'kvm', 'docker daemon']) expect(names).toContain(n);
  for (const c of d.checks) if (!c.ok) expect(c.fix ?? c.detail).toBeTruthy();
  const ipvs = d.checks.find((c: { name: string }) => c.name === 'kernel ip_vs');
  expect(d.backend.kernelIpvs).toContain(ipvs.ok ? 'netns' : 'vm');
});

for (const variant of [
  { name: 'kernel IPVS (the default director)', args: [] as string[], director: 'ipvs' },
  { name: 'the nftables stand-in on the namespace backend', args: ['--backend', 'netns', '--director', 'nftables'], director: 'nftables' },
]) {
  test(`the main job drives traffic through the default NAT lab with ${variant.name} and prints a results table`, () => {
    test.skip(variant.director === 'ipvs' && process.env.VSLAB_SKIP_VM === '1', 'VSLAB_SKIP_VM=1: the VM is skipped on request');
    const r = vslab('run', ...variant.args, '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.director).toBe(variant.director);
    expect(out.summary.failed).toBe(0);
    expect(out.results.length).toBe(4);
    for (const s of out.results) {
      expect(s.status).toBe('passed');
      expect(s.answered).toBe(s.connections);
      for (const rs of ['rs1', 'rs2', 'rs3']) expect(s.perServer[rs]).toBe(s.expected[rs]);
    }
    expect(vslabNamespaces('nat')).toEqual([]);
  });
}

test('up --backend vm programs kernel IPVS on the director from the topology', () => {
  test.skip(process.env.VSLAB_SKIP_VM === '1', 'VSLAB_SKIP_VM=1: the VM is skipped on request');
  const up = vslab('up', topo('nat.yaml'), '--backend', 'vm', '--name', 'cli-vm', '--json');
  expect(up.status, up.stderr).toBe(0);
  try {
    const info = JSON.parse(up.stdout);
    expect(info.director).toMatchObject({ driver: 'ipvs', differences: [] });
    const l = vslab('exec', 'cli-vm', 'director', '--', 'ipvsadm', '-Ln');
    expect(l.status).toBe(0);
    expect(l.stdout).toContain('TCP  198.19.0.100:80 rr');
    expect(l.stdout).toContain('-> 198.18.1.4:8080              Masq    1');
    expect(l.stdout).toContain('TCP  [2001:db8:ffff::100]:80 wrr');
  } finally {
    expect(vslab('down', 'cli-vm').status).toBe(0);
  }
  expect(vslab('gc', '--json').stdout).toContain('"clean": true');
});

test('a persistent VM lab whose qemu was killed shows as orphaned and gc removes all of it', async () => {
  test.skip(process.env.VSLAB_SKIP_VM === '1', 'VSLAB_SKIP_VM=1: the VM is skipped on request');
  const up = vslab('up', topo('nat.yaml'), '--backend', 'vm', '--director', 'none', '--name', 'cli-vmkill', '--json');
  expect(up.status, up.stderr).toBe(0);
  const state = JSON.parse(require('fs').readFileSync('/run/vslab/labs/cli-vmkill.json', 'utf8'));
  const qemu = Number(state.extra.qemuPid);
  expect(qemu).toBeGreaterThan(0);
  process.kill(qemu, 'SIGKILL');
  await expect.poll(() => { try { process.kill(qemu, 0); return true; } catch { return false; } }, { timeout: 10_000 }).toBe(false);
  const ls = JSON.parse(vslab('ls', '--json').stdout);
  expect(ls.find((l: { name: string }) => l.name === 'cli-vmkill')).toMatchObject({ alive: false });
  const dry = JSON.parse(vslab('gc', '--dry-run', '--json').stdout);
  const kinds = dry.found.filter((i: { lab: string }) => i.lab === 'cli-vmkill').map((i: { kind: string }) => i.kind).sort();
  expect(kinds).toEqual(expect.arrayContaining(['lab-state', 'vm-rundir']));
  const gc = JSON.parse(vslab('gc', '--json').stdout);
  expect(gc.clean).toBe(true);
  expect(JSON.parse(vslab('ls', '--json').stdout).find((l: { name: string }) => l.name === 'cli-vmkill')).toBeUndefined();
});

import { test, expect } from '@playwright/test';
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as path from 'path';
import { upNetnsLab } from '../../src/backend/netns';
import { gc } from '../../src/backend/gc';
import { hostGuardRoutes, readLabStates } from '../../src/backend/registry';
import { loadTopologyFile, loadTopologyText } from '../../src/topology/load';
import { CLI, hostSnapshot, vslabNamespaces } from './host';

const topo = (f: string) => path.join(__dirname, '..', '..', 'topologies', f);
test.describe.configure({ mode: 'serial' });

for (const f of ['nat.yaml', 'dr.yaml', 'fullnat.yaml', 'scale-100.yaml']) {
  test(`up/down of ${f} leaves links, namespaces, routes and nftables of the host as they were`, async () => {
    const before = hostSnapshot();
    const lab = await upNetnsLab(loadTopologyFile(topo(f)), { ephemeral: true });
    try {
      expect(vslabNamespaces(lab.name).length).toBeGreaterThanOrEqual(lab.model.nodes.length);
      // While a lab is up the lab supernets are unreachable from the host namespace.
      expect(hostGuardRoutes().sort()).toEqual(['198.18.0.0/15', '2001:db8::/32']);
      const probe = spawnSync('ip', ['route', 'get', '198.18.1.2']);
      expect(probe.status).not.toBe(0);
      expect(probe.stderr.toString()).toMatch(/No route to host|unreachable/i);
      // Every node has its addresses.
      for (const n of lab.model.nodes.slice(0, 6)) {
        const r = await lab.node(n.name).exec(['ip', '-br', 'addr']);
        for (const i of n.interfaces) if (i.ipv4) expect(r.stdout).toContain(`${i.ipv4.addr}/${i.ipv4.prefixLen}`);
      }
    } finally {
      await lab.down();
    }
    expect(hostSnapshot()).toEqual(before);
    expect(vslabNamespaces(lab.name)).toEqual([]);
  });
}

test('a NAT lab: the client reaches the director, the real servers route via the director, IPv4 and IPv6', async () => {
  const lab = await upNetnsLab(loadTopologyFile(topo('nat.yaml')), { ephemeral: true });
  try {
    for (const dst of ['198.18.0.2', '198.19.0.100', '2001:db8:ffff::100']) {
      const r = await lab.node('client1').exec(['ping', '-c1', '-W2', dst]);
      expect(r.code, `ping ${dst}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    const route = await lab.node('rs2').exec(['ip', 'route', 'get', '198.18.0.1']);
    expect(route.stdout).toContain('via 198.18.1.1');
  } finally {
    await lab.down();
  }
});

test('two labs from the same topology run side by side under different names', async () => {
  const model = loadTopologyFile(topo('nat.yaml'));
  const a = await upNetnsLab(model, { ephemeral: true });
  const b = await upNetnsLab(model, { ephemeral: true });
  try {
    expect(a.name).not.toBe(b.name);
    for (const lab of [a, b]) {
      const r = await lab.node('client1').exec(['ping', '-c1', '-W2', '198.19.0.100']);
      expect(r.code).toBe(0);
    }
    await a.down();
    // The guard stays while the other lab is up.
    expect(hostGuardRoutes().length).toBe(2);
    const r = await b.node('client1').exec(['ping', '-c1', '-W2', '198.18.0.2']);
    expect(r.code).toBe(0);
  } finally {
    await a.down().catch(() => {});
    await b.down();
  }
  // The guard goes with the last lab (another process's lab on this host keeps it, rightly).
  expect(hostGuardRoutes().length).toBe(readLabStates().length ? 2 : 0);
});

test('traffic flows client -> router -> real server in a topology without a director', async () => {
  const model = loadTopologyText(`
name: routed
nodes:
  c1: { role: client }
  r1: { role: router }
  s1: { role: real-server }
segments:
  left: { members: [c1, r1] }
links:
  - endpoints: [r1, s1]
`, 'routed.yaml');
  const lab = await upNetnsLab(model, { ephemeral: true });
  try {
    const s1 = model.nodes.find((n) => n.name === 's1')!.interfaces[0];
    const server = lab.node('s1').spawn(['socat', 'TCP6-LISTEN:7000,ipv6only=0,reuseaddr', 'SYSTEM:echo from-s1']);
    await expect.poll(async () => (await lab.node('s1').exec(['ss', '-Hltn', 'sport = :7000'])).stdout, { timeout: 10_000 }).toContain('7000');
    const r = await lab.node('c1').exec(['socat', '-T5', '-', `TCP4:${s1.ipv4!.addr}:7000`], { timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe('from-s1');
    const path6 = await lab.node('c1').exec(['ip', '-6', 'route', 'get', s1.ipv6!.addr]);
    expect(path6.stdout).toContain(`via ${model.nodes.find((n) => n.name === 'r1')!.interfaces[0].ipv6!.addr}`);
    server.kill();
    // TTL shows the router hop: the reply from s1 arrives with 63.
    const ping = await lab.node('c1').exec(['ping', '-c1', '-W2', s1.ipv4!.addr]);
    expect(ping.stdout).toMatch(/ttl=63/);
  } finally {
    await lab.down();
  }
});

test('gc removes what a SIGKILLed `vslab up` left, and only that', async () => {
  const keep = await upNetnsLab(loadTopologyFile(topo('nat.yaml')), { ephemeral: true });
  try {
    const child = spawn(CLI[0], [...CLI.slice(1), 'up', topo('dr.yaml'), '--name', 'gc-victim'], { env: { ...process.env, VSLAB_TEST_PAUSE_BEFORE_READY_MS: '60000' }, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => { if (d.toString().includes('paused before ready')) resolve(); });
      child.on('exit', () => reject(new Error('vslab up exited before pausing')));
    });
    expect(vslabNamespaces('gc-victim').length).toBe(7);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const dry = await gc(true);
    expect(dry.found.filter((i) => i.lab === 'gc-victim' && i.kind === 'namespace').length).toBe(7);
    expect(dry.found.some((i) => i.lab === keep.name)).toBe(false);
    expect(vslabNamespaces('gc-victim').length).toBe(7);
    const out = execFileSync(CLI[0], [...CLI.slice(1), 'gc', '--json']).toString();
    const report = JSON.parse(out);
    expect(report.removed.filter((i: { lab: string }) => i.lab === 'gc-victim').length).toBeGreaterThanOrEqual(8);
    expect(report.clean).toBe(true);
    expect(report.remaining.labsUp).toContain(keep.name);
    expect(report.remaining.labsUp).not.toContain('gc-victim');
    expect(vslabNamespaces('gc-victim')).toEqual([]);
    // The lab that is up was not touched.
    expect((await keep.node('client1').exec(['ping', '-c1', '-W2', '198.18.0.2'])).code).toBe(0);
  } finally {
    await keep.down();
  }
});

test('a tunnel lab on a host without ipip fails cleanly, says what to do, and leaves nothing', async () => {
  test.skip(execFileSync('ip', ['-br', 'link']).toString().includes('tunl0') || require('fs').existsSync('/sys/module/ipip'), 'this host has ipip: the tunnel lab would come up');
  const before = hostSnapshot();
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'up', topo('tun.yaml'), '--name', 'tun-nohost']);
  expect(r.status).toBe(1);
  expect(r.stderr.toString()).toMatch(/tunnel.*--backend vm/s);
  expect(vslabNamespaces('tun-nohost')).toEqual([]);
  expect(hostSnapshot()).toEqual(before);
});

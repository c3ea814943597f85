// The docker backend on the real daemon: every lab leaves host and daemon as they were, containers
// carry the lab's labels, user images run as nodes, gc recovers a SIGKILLed bring-up.
import { test, expect } from '@playwright/test';
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { upLab } from '../../src/backend';
import { upDockerLab, type DockerLab } from '../../src/backend/docker';
import { docker, LABEL_LAB, LABEL_NODE } from '../../src/backend/docker/engine';
import { ensureBaseImage } from '../../src/backend/docker/images';
import { gc } from '../../src/backend/gc';
import { loadTopologyFile, loadTopologyText } from '../../src/topology/load';
import { CLI, hostSnapshot as fullSnapshot, vslabNamespaces } from '../lab/host';
import { hostGuardRoutes, readLabStates } from '../../src/backend/registry';

const topo = (f: string) => path.join(__dirname, '..', '..', 'topologies', f);
test.describe.configure({ mode: 'serial' });

/** The host's state but for what other people's labs on this machine may add or remove meanwhile: vslab's guard
 *  routes and other labs' namespaces (each test checks its own lab's namespaces are gone, and the guard below). */
function hostSnapshot() {
  const s = fullSnapshot();
  const noGuard = (t: string) => t.split('\n').filter((l) => !/ proto 245\b/.test(l)).join('\n');
  return { ...s, routes4: noGuard(s.routes4), routes6: noGuard(s.routes6), netns: [] };
}
/** With no lab up anywhere, no guard route may remain. */
function guardGoneWithLastLab(): void {
  if (!readLabStates().length) expect(hostGuardRoutes()).toEqual([]);
}

/** The daemon's containers, to prove a lab leaves the daemon as it found it: every container but the vslab labs of
 *  other people sharing this machine (labs not named h13…, which come and go meanwhile); a bystander container
 *  that is no vslab lab's stays in the comparison. */
async function daemonContainers(): Promise<string[]> {
  return (await docker().listContainers({ all: true }))
    .filter((c) => !c.Labels?.[LABEL_LAB] || c.Labels[LABEL_LAB].startsWith('h13'))
    .map((c) => `${c.Id} ${c.Names.join(',')}`).sort();
}
function forwarding(): string {
  return ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'].map((k) => execFileSync('sysctl', ['-n', k]).toString().trim()).join(' ');
}
async function labContainers(lab: string) {
  return docker().listContainers({ all: true, filters: { label: [`${LABEL_LAB}=${lab}`] } });
}

test.beforeAll(async () => {
  test.setTimeout(300_000);
  await ensureBaseImage(); // built once per input hash; reused afterwards
});

// tun.yaml needs ipip/gre in the host kernel: its clear refusal is checked with the CLI below.
for (const f of ['nat.yaml', 'dr.yaml', 'fullnat.yaml', 'scale-100.yaml']) {
  test(`up/down of ${f} on docker leaves host links, namespaces, routes, nftables, forwarding and the daemon's containers as they were`, async () => {
    test.setTimeout(f === 'scale-100.yaml' ? 400_000 : 120_000); // 102 containers: about a minute up on a loaded 2-core machine
    const before = { host: hostSnapshot(), fwd: forwarding(), containers: await daemonContainers() };
    const lab = await upDockerLab(loadTopologyFile(topo(f)), { ephemeral: true, namePrefix: 'h13-' });
    try {
      const cs = await labContainers(lab.name);
      expect(cs.map((c) => c.Labels[LABEL_NODE]).sort()).toEqual(lab.model.nodes.map((n) => n.name).sort());
      for (const c of cs) expect(c.HostConfig.NetworkMode).toBe('none');
      // Every node has its addresses, read inside the container's namespace.
      for (const n of lab.model.nodes) {
        const r = await lab.node(n.name).exec(['ip', '-br', 'addr']);
        for (const i of n.interfaces) if (i.ipv4) expect(r.stdout).toContain(`${i.ipv4.addr}/${i.ipv4.prefixLen}`);
      }
      // Nothing of the lab's links is in the host namespace.
      expect(hostSnapshot().links).toBe(before.host.links);
    } finally {
      await lab.down();
    }
    expect(hostSnapshot()).toEqual(before.host);
    expect(forwarding()).toBe(before.fwd);
    expect(await daemonContainers()).toEqual(before.containers);
    expect(vslabNamespaces(lab.name)).toEqual([]);
    guardGoneWithLastLab();
  });
}

test('a docker NAT lab carries IPv4 and IPv6: the client reaches the director and real servers route through it', async () => {
  const lab = await upDockerLab(loadTopologyFile(topo('nat.yaml')), { ephemeral: true, name: 'h13-v6' });
  try {
    for (const dst of ['198.18.0.2', '198.19.0.100', '2001:db8:0:1::2', '2001:db8:ffff::100']) {
      const r = await lab.node('client1').exec(['ping', '-c1', '-W3', dst]);
      expect(r.code, `ping ${dst}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    // IPv6 is on inside the containers (Docker turns it off by default).
    const v6 = await lab.node('rs1').execInImage(['cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6']);
    expect(v6.stdout.trim()).toBe('0');
    const route = await lab.node('rs2').exec(['ip', 'route', 'get', '198.18.0.1']);
    expect(route.stdout).toContain('via 198.18.1.1');
  } finally {
    await lab.down();
  }
});

test('two docker labs of the same topology run side by side', async () => {
  const model = loadTopologyFile(topo('nat.yaml'));
  const [a, b] = await Promise.all([upDockerLab(model, { ephemeral: true, name: 'h13-first' }), upDockerLab(model, { ephemeral: true, name: 'h13-second' })]);
  try {
    expect(a.name).not.toBe(b.name);
    for (const lab of [a, b]) expect((await lab.node('client1').exec(['ping', '-c1', '-W3', '198.19.0.100'])).code).toBe(0);
    await a.down();
    expect(await labContainers(a.name)).toEqual([]);
    expect((await labContainers(b.name)).length).toBe(5);
    expect((await b.node('client1').exec(['ping', '-c1', '-W3', '198.18.0.2'])).code).toBe(0);
  } finally {
    await a.down().catch(() => undefined);
    await b.down();
  }
});

test('a node runs a user image: its own command, environment and files; the client reaches its service', async () => {
  test.setTimeout(120_000);
  const base = await ensureBaseImage();
  // The user's image: built from a Dockerfile whose FROM is local (nothing is pulled).
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'h13-ctx-'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nRUN mkdir -p /www\nLABEL h13.test=user-image\n`);
  const tar = spawn('tar', ['-C', ctx, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const out = await docker().buildImage(tar.stdout as unknown as NodeJS.ReadableStream, { t: 'vslab-h13-user:1' });
  await new Promise((res, rej) => docker().modem.followProgress(out, (e: Error | null) => (e ? rej(e) : res(undefined))));
  fs.rmSync(ctx, { recursive: true, force: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h13-topo-'));
  fs.writeFileSync(path.join(dir, 'index.html'), 'hello from a user image\n');
  fs.writeFileSync(path.join(dir, 'lab.yaml'), `
name: h13-userimg
nodes:
  c1: { role: client }
  s1:
    role: real-server
    image:
      name: vslab-h13-user:1
      command: ["sh", "-c", "echo $GREETING > /www/greeting; exec httpd -f -p 8080 -h /www"]
      env: { GREETING: hi-there }
      files:
        - { from: index.html, to: /www/index.html }
segments:
  net: { ipv4: 198.18.7.0/24, ipv6: 2001:db8:0:7::/64, members: [c1, s1] }
`);
  try {
    const lab = (await upLab(loadTopologyFile(path.join(dir, 'lab.yaml')), { backend: 'docker', ephemeral: true })) as DockerLab;
    try {
      const s1 = lab.model.nodes.find((n) => n.name === 's1')!.interfaces[0].ipv4!.addr;
      let body = '';
      for (let i = 0; i < 20 && !body.includes('hello'); i++) {
        body = (await lab.node('c1').exec(['busybox', 'wget', '-q', '-O-', `http://${s1}:8080/index.html`], { timeoutMs: 5000 })).stdout;
        if (!body.includes('hello')) await new Promise((r) => setTimeout(r, 250));
      }
      expect(body).toBe('hello from a user image\n');
      expect((await lab.node('s1').execInImage(['cat', '/www/greeting'])).stdout).toBe('hi-there\n');
    } finally {
      await lab.down();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await docker().getImage('vslab-h13-user:1').remove().catch(() => undefined);
  }
});

test('an image that is not in the daemon, or one that exits at once, is a clear error and leaves nothing', async () => {
  const before = { host: hostSnapshot(), containers: await daemonContainers() };
  const text = (image: string) => `
name: h13-badimg
nodes:
  c1: { role: client }
  s1: { role: real-server, image: ${image} }
segments:
  net: { ipv4: 198.18.7.0/24, members: [c1, s1] }
`;
  await expect(upLab(loadTopologyText(text('vslab-h13-nowhere:404'), '/tmp/h13-bad.yaml'), { backend: 'docker', ephemeral: true }))
    .rejects.toThrow(/node s1: image vslab-h13-nowhere:404 is not in the local Docker daemon, and vslab never pulls/);
  const base = await ensureBaseImage();
  await expect(upLab(loadTopologyText(text(`{ name: "${base}", command: ["true"] }`), '/tmp/h13-bad.yaml'), { backend: 'docker', ephemeral: true }))
    .rejects.toThrow(/node s1: the container of image .* exited at once .*must keep running/);
  // The node's command names a program the image does not have: the error names the image, the node and the program.
  await expect(upLab(loadTopologyText(text(`{ name: "${base}", command: ["haproxy", "-f", "/etc/haproxy/haproxy.cfg"] }`), '/tmp/h13-bad.yaml'), { backend: 'docker', ephemeral: true }))
    .rejects.toThrow(new RegExp(`node s1: image ${base.replace(/[/.]/g, '\\$&')} \\(node s1\\) has no program haproxy`));
  await expect(upLab(loadTopologyText(text(`{ name: "${base}", command: ["/opt/lb/bin/balancer"] }`), '/tmp/h13-bad.yaml'), { backend: 'docker', ephemeral: true }))
    .rejects.toThrow(/has no program \/opt\/lb\/bin\/balancer/);
  expect(hostSnapshot()).toEqual(before.host);
  expect(await daemonContainers()).toEqual(before.containers);
});

test('the CLI: up --backend docker --json, ls, exec, down; a tunnel lab says it cannot run on this host', async () => {
  test.setTimeout(120_000);
  const before = { host: hostSnapshot(), containers: await daemonContainers() };
  const vslab = (...a: string[]) => spawnSync(CLI[0], [...CLI.slice(1), ...a], { encoding: 'utf8' });
  const up = vslab('up', topo('nat.yaml'), '--backend', 'docker', '--name', 'h13-cli', '--json');
  expect(up.status, up.stderr).toBe(0);
  try {
    const out = JSON.parse(up.stdout);
    expect(out.backend).toBe('docker');
    expect((await labContainers('h13-cli')).length).toBe(5);
    const ls = JSON.parse(vslab('ls', '--json').stdout);
    expect(ls.find((l: { name: string }) => l.name === 'h13-cli')).toMatchObject({ backend: 'docker', alive: true });
    const ex = vslab('exec', 'h13-cli', 'client1', '--', 'ping', '-c1', '-W3', '198.19.0.100');
    expect(ex.status, ex.stderr).toBe(0);
    // exec runs the image's programs in the container: its filesystem (the work mount), its busybox, input piped in,
    // output and exit code passed back.
    const own = spawnSync(CLI[0], [...CLI.slice(1), 'exec', 'h13-cli', 'rs1', '--', 'sh', '-c', 'test -d /vslab/work && cat && echo to-stderr >&2; exit 7'], { input: 'from stdin\n', encoding: 'utf8' });
    expect(own.status, own.stderr).toBe(7);
    expect(own.stdout).toBe('from stdin\n');
    expect(own.stderr).toBe('to-stderr\n');
    // The containers run without the daemon's networking (no prestart hook per start) yet have their own namespace
    // and the /etc/hosts the daemon would have mounted: localhost resolves for images that name it.
    const hosts = vslab('exec', 'h13-cli', 'rs1', '--', 'cat', '/etc/hosts');
    expect(hosts.stdout).toMatch(/^127\.0\.0\.1\tlocalhost\n::1\tlocalhost/);
    const inspect = await docker().getContainer((await labContainers('h13-cli'))[0].Id).inspect();
    expect((inspect.Config as { NetworkDisabled?: boolean }).NetworkDisabled).toBe(true);
    expect(fs.readlinkSync(`/proc/${inspect.State.Pid}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    // A program the image lacks (vslab's base has no tcpdump): exit 127 and a message naming the image and program;
    // --host runs the host's program in the node's network namespace.
    const none = vslab('exec', 'h13-cli', 'client1', '--', 'tcpdump', '--version');
    expect(none.status).toBe(127);
    expect(none.stderr).toMatch(/image vslab\/base:[0-9a-f]{16} \(node client1\) has no program tcpdump/);
    const host = vslab('exec', '--host', 'h13-cli', 'client1', '--', 'tcpdump', '--version');
    expect(host.status, host.stderr).toBe(0);
    const hostNs = vslab('exec', '--host', 'h13-cli', 'client1', '--', 'ip', '-br', 'addr');
    expect(hostNs.stdout).toMatch(/ 198\.18\.0\.\d+\/24/);
  } finally {
    const down = vslab('down', 'h13-cli');
    expect(down.status, down.stderr).toBe(0);
  }
  expect(await labContainers('h13-cli')).toEqual([]);
  if (!fs.existsSync('/sys/module/ipip')) {
    const tun = vslab('up', topo('tun.yaml'), '--backend', 'docker', '--name', 'h13-tun');
    expect(tun.status).toBe(1);
    expect(tun.stderr).toMatch(/tunnel.*--backend vm/s);
  }
  expect(hostSnapshot()).toEqual(before.host);
  expect(await daemonContainers()).toEqual(before.containers);
});

test('vslab run --backend docker passes with the nftables director in a container', async () => {
  test.setTimeout(180_000);
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'run', '--backend', 'docker', '--json'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.backend).toBe('docker');
  expect(out.director).toBe('nftables');
  expect(out.summary).toMatchObject({ failed: 0 });
  expect(out.summary.passed).toBeGreaterThanOrEqual(4);
});

test('gc removes the containers of a SIGKILLed `vslab up --backend docker`, and only those', async () => {
  test.setTimeout(120_000);
  const keep = await upDockerLab(loadTopologyFile(topo('nat.yaml')), { ephemeral: true, name: 'h13-keep' });
  // Someone else's container, labelled like no vslab lab: gc must leave it.
  const base = await ensureBaseImage();
  const other = await docker().createContainer({ name: `h13-bystander-${process.pid}`, Image: base, Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none', Init: true } });
  try {
    const child = spawn(CLI[0], [...CLI.slice(1), 'up', topo('dr.yaml'), '--backend', 'docker', '--name', 'h13-victim'], { env: { ...process.env, VSLAB_TEST_PAUSE_BEFORE_READY_MS: '60000' }, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => { if (d.toString().includes('paused before ready')) resolve(); });
      child.on('exit', () => reject(new Error('vslab up exited before pausing')));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const victims = await labContainers('h13-victim');
    expect(victims.length).toBe(6);
    const dry = await gc(true);
    expect(dry.found.filter((i) => i.lab === 'h13-victim' && i.kind === 'container').length).toBe(6);
    expect(dry.found.some((i) => i.lab === keep.name)).toBe(false);
    // Only the victim's leftovers are removed (--lab): on a machine several people share, a full gc would also take
    // what their own killed labs left, which is theirs to remove.
    const report = JSON.parse(execFileSync(CLI[0], [...CLI.slice(1), 'gc', '--lab', 'h13-victim', '--json']).toString());
    expect(report.removed.filter((i: { kind: string; lab: string }) => i.lab === 'h13-victim' && i.kind === 'container').length).toBe(6);
    expect(report.removed.every((i: { lab?: string }) => i.lab === 'h13-victim')).toBe(true);
    expect(report.clean).toBe(true);
    expect((await gc(true)).found.filter((i) => i.lab === 'h13-victim')).toEqual([]);
    expect(await labContainers('h13-victim')).toEqual([]);
    expect(vslabNamespaces('h13-victim')).toEqual([]);
    expect((await other.inspect()).Id).toBeTruthy();
    expect((await keep.node('client1').exec(['ping', '-c1', '-W3', '198.18.0.2'])).code).toBe(0);
  } finally {
    await other.remove({ force: true });
    await keep.down();
  }
});

test("a node names vslab's director image: it carries nftables, haproxy, nginx, keepalived, ipvsadm and conntrack", async () => {
  // Built once per input hash with mmdebstrap (minutes the first time), then reused from the daemon.
  test.setTimeout(900_000);
  const lab = await upLab(loadTopologyText(`
name: h13-dirimg
nodes:
  c1: { role: client }
  d1: { role: router, image: vslab/director }
segments:
  net: { ipv4: 198.18.7.0/24, members: [c1, d1] }
`, '/tmp/h13-dirimg.yaml'), { backend: 'docker', ephemeral: true }) as DockerLab;
  try {
    expect(lab.node('d1').container.image).toMatch(/^vslab\/director:[0-9a-f]{16}$/);
    // ipvsadm is only looked for: it cannot run where the host kernel has no IPVS.
    for (const argv of [['nft', '--version'], ['haproxy', '-v'], ['nginx', '-v'], ['keepalived', '--version'], ['sh', '-c', 'command -v ipvsadm'], ['conntrack', '--version']]) {
      const r = await lab.node('d1').execInImage(argv);
      expect(r.code, `${argv.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    // Its programs work in the lab: nft inside the container programs the node's own namespace.
    const r = await lab.node('d1').execInImage(['nft', 'add', 'table', 'inet', 'h13']);
    expect(r.code, r.stderr).toBe(0);
    expect((await lab.node('d1').exec(['nft', 'list', 'tables'])).stdout).toContain('table inet h13');
  } finally {
    await lab.down();
  }
});

test('gc --lab takes a lab name, and not with --images', () => {
  const vslab = (...a: string[]) => spawnSync(CLI[0], [...CLI.slice(1), ...a], { encoding: 'utf8' });
  const bad = vslab('gc', '--dry-run', '--lab', '../Etc');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('--lab "../Etc": not a lab name');
  const both = vslab('gc', '--dry-run', '--lab', 'h13-x', '--images');
  expect(both.status).toBe(2);
  expect(both.stderr).toContain('not with --lab');
  const dry = vslab('gc', '--dry-run', '--lab', 'h13-nothing-here', '--json');
  expect(dry.status, dry.stderr).toBe(0);
  expect(JSON.parse(dry.stdout).found).toEqual([]);
});

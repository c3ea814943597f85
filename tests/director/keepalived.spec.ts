// The keepalived director driver without a lab: the keepalived.conf it writes for the forwarding suite's
// labs and for a model using every setting it renders (flags, one-packet, persistence granularity,
// thresholds, tunnel types and checksum options per real server, fwmark), which keepalived itself accepts
// (keepalived --config-test, when this host has keepalived); Full-NAT declined with the reason; the
// registry, the suite's guest tools and capabilities wiring. Kernel read-back is exercised by the
// forwarding suite run with --director keepalived (docs/matrix.md).
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { keepalivedDirectorConfig, keepalivedDriver } from '../../src/director/keepalived';
import { directorDriver, DIRECTOR_NAMES } from '../../src/director/registry';
import { suiteGuestTools, SUITES_ROOT } from '../../src/runner/run';
import { loadTopologyFile } from '../../src/topology/load';
import type { LabModel, ServiceModel } from '../../src/topology/model';

const TOPOS = path.join(__dirname, '..', '..', 'suites', 'forwarding', 'topologies');
const hasKeepalived = spawnSync('keepalived', ['--version'], { stdio: 'ignore' }).status === 0;

function configTest(conf: string): { code: number | null; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-kad-'));
  try {
    const f = path.join(dir, 'keepalived.conf');
    fs.writeFileSync(f, conf);
    const r = spawnSync('keepalived', ['--config-test', '--use-file', f], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const blocks = (conf: string) => conf.split('\n\n').filter((b) => b.startsWith('virtual_server'));

test('registered, with keepalived copied into the guests of a forwarding run against it only', () => {
  expect(DIRECTOR_NAMES).toContain('keepalived');
  expect(directorDriver('keepalived')).toBe(keepalivedDriver);
  const fwd = [path.join(SUITES_ROOT, 'forwarding')];
  expect(suiteGuestTools(fwd, 'keepalived')).toEqual(['keepalived']);
  expect(suiteGuestTools(fwd, 'ipvs')).toEqual([]);
  expect(suiteGuestTools(fwd, 'external:adapters/ipvsadm')).toEqual([]);
  expect(suiteGuestTools([path.join(SUITES_ROOT, 'ha')], 'ipvs')).toEqual(['keepalived']);
});

for (const topo of ['nat', 'dr', 'tun', 'fullnat']) {
  test(`suites/forwarding/topologies/${topo}.yaml: one virtual_server per service it can express${hasKeepalived ? ', accepted by keepalived --config-test' : ''}`, () => {
    const m = loadTopologyFile(path.join(TOPOS, `${topo}.yaml`));
    const services = m.services.filter((s) => !keepalivedDriver.declines!(m, s.director, s));
    if (topo === 'fullnat') {
      expect(services).toEqual([]);
      expect(keepalivedDriver.declines!(m, m.services[0].director, m.services[0])).toMatch(/Full-NAT is not expressible in keepalived.conf/);
      return;
    }
    expect(services.length).toBe(m.services.length);
    const conf = keepalivedDirectorConfig(m, 'director', services);
    expect(blocks(conf)).toHaveLength(services.length);
    for (const s of services) {
      const b = blocks(conf).find((x) => x.startsWith(`virtual_server ${s.vip} ${s.port} {`) && x.includes(`protocol ${s.protocol.toUpperCase()}`));
      expect(b, s.name).toBeDefined();
      expect(b).toContain(`lb_algo ${s.scheduler}`);
      for (const r of s.realServers) expect(b).toContain(`real_server ${r.addr} ${r.port} {`);
      // Health checks off: the forwarding labs ask for none.
      expect(b).not.toMatch(/_CHECK/);
    }
    if (topo === 'tun') expect(conf).toContain('lvs_method TUN type gue port 6080');
    if (hasKeepalived) {
      const t = configTest(conf);
      expect(t.code, t.out).toBe(0);
    }
  });
}

test('every setting of the model it renders, and keepalived accepts it', () => {
  const base = loadTopologyFile(path.join(TOPOS, 'tun.yaml'));
  const rs = base.services[0].realServers;
  const svc = (over: Partial<ServiceModel>): ServiceModel => ({ ...base.services[0], flags: [], onePacket: false, ...over });
  const services: ServiceModel[] = [
    svc({ name: 'a', scheduler: 'sh', flags: ['sh-port', 'sh-fallback'], persistence: { timeout: 300, netmask: '255.255.255.0' } }),
    svc({ name: 'b', protocol: 'udp', port: 53, scheduler: 'wrr', onePacket: true, realServers: [{ ...rs[0], port: 53, weight: 3, upper: 100, lower: 10 }, { ...rs[1], port: 53, weight: 0, tunnel: { type: 'gre', flags: ['tun-csum'] } }] }),
    svc({ name: 'c', vip: undefined, fwmark: 7, family: 4, scheduler: 'rr', realServers: rs.map((r) => ({ ...r, port: 0 })) }),
  ];
  const model: LabModel = { ...base, services };
  const conf = keepalivedDirectorConfig(model, 'director', services);
  const [a, b, c] = blocks(conf);
  expect(a).toMatch(/\n  sh-port\n  sh-fallback\n/);
  expect(a).toContain('persistence_timeout 300\n  persistence_granularity 255.255.255.0');
  expect(b).toContain('\n  ops\n');
  expect(b).toMatch(/real_server \S+ 53 \{\n    weight 3\n    uthreshold 100\n    lthreshold 10\n/);
  expect(b).toMatch(/weight 0\n    lvs_method TUN type gre csum\n/);
  expect(c).toMatch(/^virtual_server fwmark 7 \{/);
  expect(c).toContain('ip_family inet');
  expect(c).not.toContain('protocol');
  expect(c).toMatch(/real_server [0-9.]+ \{/);
  if (hasKeepalived) {
    const t = configTest(conf);
    expect(t.code, t.out).toBe(0);
  }
});

test('health checks only when the topology asks for them (the ha block), as TCP_CHECKs', () => {
  const m = loadTopologyFile(path.join(TOPOS, 'nat.yaml'));
  const s = m.services[0];
  const withChecks: LabModel = { ...m, ha: { directors: [], segment: 'front', routerId: 1, advertIntervalS: 1, preempt: true, preemptDelayS: 0, healthChecks: { [s.name]: { type: 'tcp', intervalS: 2, timeoutS: 1, retries: 1 } }, vips: [] } };
  const [checked, other] = blocks(keepalivedDirectorConfig(withChecks, 'director', [s, m.services[1]]));
  expect(checked).toContain('delay_loop 2');
  expect(checked.match(/TCP_CHECK \{/g)).toHaveLength(s.realServers.length);
  expect(other).not.toContain('TCP_CHECK');
});

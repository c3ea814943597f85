// The proxy drivers (haproxy, nginx): configuration rendered from the model, nginx's configuration parsed
// back to the model, which services each driver
// (and kernel IPVS) declines, and on a real netns lab: apply, read back with no difference, a killed proxy
// read back as holding nothing, stats from haproxy's socket. The programs' own checks (haproxy -c, nginx -t)
// run only inside the lab's director node (apply): nginx -t binds its listen addresses, lab addresses.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { upNetnsLab } from '../../src/backend/netns';
import { diffServices } from '../../src/director/diff';
import { HaproxyDirector, haproxyConfig, haproxyDeclines } from '../../src/director/haproxy';
import { ipvsDeclines } from '../../src/director/ipvs';
import { NginxDirector, nginxConfig, nginxDeclines, parseNginxStreams } from '../../src/director/nginx';
import { loadTopologyFile } from '../../src/topology/load';
import type { ServiceModel } from '../../src/topology/model';

const TOPO = path.join(__dirname, '..', '..', 'suites', 'proxy', 'topologies', 'proxy.yaml');
const model = loadTopologyFile(TOPO);
const has = (p: string) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;

test('haproxy configuration: one frontend and backend per service, the declared balance algorithms', () => {
  const cfg = haproxyConfig(model.services, '/tmp/x');
  expect(cfg).toContain('bind [2001:db8:ffff::100]:80');
  expect(cfg).toContain('bind 198.19.0.100:81');
  expect(cfg).toMatch(/backend tcp_198\.19\.0\.100_82\n {2}balance source/);
  expect(cfg).toMatch(/server rs1-0 198\.18\.1\.\d+:8081 weight 3/);
});

test('nginx configuration parses back to the model it came from', () => {
  const services = model.services.filter((s) => !nginxDeclines(model, s.director, s));
  const text = nginxConfig(services, '/tmp/x');
  expect(diffServices(services, parseNginxStreams(text))).toEqual([]);
  // A changed weight or another balancing method shows up as a difference.
  const lied = text.replace('hash $remote_addr consistent;', 'least_conn;').replace(/weight=3;/, 'weight=4;');
  expect(diffServices(services, parseNginxStreams(lied)).map((d) => d.what).sort()).toEqual(['scheduler', 'weight']);
});

test('what each driver declines, with the reason', () => {
  const tcp4 = model.services.find((s) => s.name === 'tcp4')!;
  const nat: ServiceModel = { ...tcp4, realServers: tcp4.realServers.map((r) => ({ ...r, method: 'nat' })) };
  expect(ipvsDeclines(tcp4)).toMatch(/method proxy: kernel IPVS forwards packets/);
  expect(ipvsDeclines(nat)).toBeUndefined();
  expect(haproxyDeclines(model, 'director', nat)).toMatch(/method nat: haproxy is a proxy/);
  expect(haproxyDeclines(model, 'director', { ...tcp4, scheduler: 'lblc' })).toMatch(/scheduler lblc: haproxy has static-rr \(≈ rr\)/);
  expect(haproxyDeclines(model, 'director', { ...tcp4, scheduler: 'ovf' })).toMatch(/needs an upper threshold/);
  expect(nginxDeclines(model, 'director', { ...tcp4, scheduler: 'rr' })).toMatch(/scheduler rr: nginx has round-robin \(≈ wrr\)/);
  expect(nginxDeclines(model, 'director', { ...tcp4, protocol: 'udp' })).toMatch(/protocol udp/);
});

test.describe('on a netns lab', () => {
  test.describe.configure({ mode: 'serial', timeout: 120_000 });
  for (const kind of ['haproxy', 'nginx'] as const) {
    test(`${kind}: apply, read back without difference, stop, read back nothing`, async () => {
      test.skip(!has(kind), `${kind} is not installed`);
      const lab = await upNetnsLab(model, { name: `h14p${kind}${process.pid}`, ephemeral: true });
      const d = kind === 'haproxy' ? new HaproxyDirector(lab.node('director'), model) : new NginxDirector(lab.node('director'), model);
      try {
        const services = model.services.filter((s) => !d.unsupported(s));
        const r = await d.apply(services);
        expect(r.differences).toEqual([]);
        expect(r.changes).toBeGreaterThan(0);
        expect((await d.readBack(services)).map((s) => s.name).sort()).toEqual(services.map((s) => s.name).sort());
        expect((await d.apply(services)).changes).toBe(0);
        if (kind === 'haproxy') {
          const st = await d.stats(services);
          expect(st.find((s) => s.service === 'wrr4')?.realServers.map((x) => x.port)).toEqual([8081, 8081]);
        }
        await d.flush();
        expect(await d.readBack(services)).toEqual([]);
        expect((await d.diff(services)).filter((x) => x.what === 'missing')).toHaveLength(services.length);
      } finally {
        await d.close();
        await lab.down();
      }
    });
  }
});

// The proxy drivers (haproxy, nginx): configuration rendered from the model, nginx's configuration parsed
// back to the model, which services each driver
// (and kernel IPVS) declines, and on a real netns lab: apply, read back with no difference, a killed proxy
// read back as holding nothing, stats from haproxy's socket. The programs' own checks (haproxy -c, nginx -t)
// run only inside the lab's director node (apply): nginx -t binds its listen addresses, lab addresses.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { upNetnsLab } from '../../src/backend/netns';
import { diffServices } from '../../src/director/diff';
import { HaproxyDirector, haproxyBalances, haproxyConfig, haproxyDeclines, haproxyTransparentBackends } from '../../src/director/haproxy';
import { ipvsDeclines } from '../../src/director/ipvs';
import { NginxDirector, nginxConfig, nginxDeclines, parseNginxStreams } from '../../src/director/nginx';
import { missingTransparentRouting, TPROXY } from '../../src/director/proxy-common';
import type { DirectorCapabilities } from '../../src/director/types';
import { planFlow } from '../../src/oracle/flow-checks';
import { unmetRequirement } from '../../suites/fixtures';
import { loadTopologyFile, loadTopologyText } from '../../src/topology/load';
import type { ServiceModel } from '../../src/topology/model';

const TOPO = path.join(__dirname, '..', '..', 'suites', 'proxy', 'topologies', 'proxy.yaml');
const model = loadTopologyFile(TOPO);
const TRANSPARENT = path.join(__dirname, '..', '..', 'suites', 'proxy', 'topologies', 'transparent.yaml');
const tmodel = loadTopologyFile(TRANSPARENT);
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

test.describe('transparent variant', () => {
  const tsvc = (name: string) => tmodel.services.find((s) => s.name === name)!;

  test('topology: transparent only on method proxy, with a file:line error otherwise', () => {
    const text = fs.readFileSync(TRANSPARENT, 'utf8');
    expect(tsvc('ttcp4').transparent).toBe(true);
    expect(tsvc('plain4').transparent).toBeUndefined();
    const nat = text.replace(/method: proxy, transparent: true/g, 'method: nat, transparent: true');
    expect(() => loadTopologyText(nat, 'bad.yaml')).toThrow(/bad\.yaml:24:\d+: "transparent" applies to method proxy only .* service "ttcp4" has method nat/);
  });

  test('derivation: routes to the clients\' segment via the director, only for real servers of transparent services', () => {
    const routes = (m: typeof model, node: string) => m.nodes.find((n) => n.name === node)!.routes.filter((r) => r.to === '198.18.0.0/24' || r.to === '2001:db8:0:1::/64');
    for (const rs of ['rs1', 'rs2']) {
      expect(routes(tmodel, rs).map((r) => `${r.to} via ${r.via}`).sort()).toEqual(['198.18.0.0/24 via 198.18.1.1', '2001:db8:0:1::/64 via 2001:db8:0:2::1']);
    }
    expect(routes(tmodel, 'rs3')).toEqual([]); // plain4 only: a plain proxy's real server answers the director's own address
    for (const rs of ['rs1', 'rs2', 'rs3']) expect(routes(model, rs)).toEqual([]); // proxy.yaml: no transparent service
    // The same lab with transparent turned off derives no such route.
    const off = loadTopologyText(fs.readFileSync(TRANSPARENT, 'utf8').replace(/, transparent: true/g, ''), 'off.yaml');
    for (const rs of ['rs1', 'rs2']) expect(routes(off, rs)).toEqual([]);
  });

  test('oracle: a transparent server leg is planned from the client\'s address, whatever the real server reported', () => {
    const flow = { service: 'ttcp4', client: 'client1', clientAddr: '198.18.0.1', clientPort: 20000, realServer: 'rs1' };
    const ok = planFlow(tmodel, { ...flow, leg: { addr: '198.18.0.1', port: 44776 } });
    const lied = planFlow(tmodel, { ...flow, leg: { addr: '198.18.1.1', port: 44776 } }); // the director's own address
    for (const p of [ok, lied]) {
      const toRs = p.c2s.filter((h) => h.ip.dst === p.rip);
      expect(toRs.length).toBeGreaterThan(0);
      expect(new Set(toRs.map((h) => h.ip.src))).toEqual(new Set(['198.18.0.1']));
      // The real server's answers end at the director (its policy routing), never on the client's link.
      const back = p.s2c.filter((h) => h.ip.src === p.rip);
      expect(back.map((h) => h.link.split(':')[0]).every((n) => n === 'rs1' || n === 'director')).toBe(true);
    }
    // A plain proxy's leg keeps what the real server saw.
    const plain = planFlow(tmodel, { ...flow, service: 'plain4', realServer: 'rs3', leg: { addr: '198.18.1.1', port: 40000 } });
    expect(new Set(plain.c2s.filter((h) => h.ip.dst === plain.rip).map((h) => h.ip.src))).toEqual(new Set(['198.18.1.1']));
  });

  test('haproxy configuration: usesrc clientip in the transparent backends only; the read-back parse catches a backend without it', () => {
    const cfg = haproxyConfig(tmodel.services, '/tmp/x');
    expect(cfg).toMatch(/backend tcp_198\.19\.0\.100_80\n {2}balance roundrobin\n {2}source 0\.0\.0\.0 usesrc clientip\n/);
    expect(cfg).toMatch(/backend tcp_2001:db8:ffff::100_80\n {2}balance roundrobin\n {2}source \[::\] usesrc clientip\n/);
    expect(cfg).not.toMatch(/backend tcp_198\.19\.0\.100_81\n {2}balance roundrobin\n {2}source/);
    expect([...haproxyTransparentBackends(cfg)].sort()).toEqual(['tcp_198.19.0.100_80', 'tcp_2001:db8:ffff::100_80']);
    const without = cfg.replace('  source 0.0.0.0 usesrc clientip\n', '');
    expect([...haproxyTransparentBackends(without)]).toEqual(['tcp_2001:db8:ffff::100_80']);
    // Another source (the proxy's own address) is not transparent.
    expect([...haproxyTransparentBackends(cfg.replace('source [::] usesrc clientip', 'source [::]'))]).toEqual(['tcp_198.19.0.100_80']);
  });

  test('haproxy configuration: each backend\'s balance is read back from the file (haproxy 2.6 reports random(2) as algo "unknown")', () => {
    const dist = loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'distribution', 'topologies', 'proxy.yaml'));
    const cfg = haproxyConfig(dist.services, '/tmp/x');
    const balances = haproxyBalances(cfg);
    expect(balances.get('tcp_198.19.0.100_85')).toBe('random(2)');
    expect(balances.get('tcp_198.19.0.100_84')).toBe('first');
    expect(balances.get('tcp_198.19.0.100_83')).toBe('leastconn');
    expect(balances.size).toBe(dist.services.length);
    // A frontend has no balance of its own.
    expect([...balances.keys()].every((b) => cfg.includes(`backend ${b}\n`))).toBe(true);
  });

  test('nginx configuration: proxy_bind $remote_addr transparent in the transparent servers only; parsed back, a server without it differs', () => {
    const services = tmodel.services;
    const text = nginxConfig(services, '/tmp/x');
    expect(text.match(/proxy_bind \$remote_addr transparent;/g)).toHaveLength(2);
    expect(diffServices(services, parseNginxStreams(text))).toEqual([]);
    const without = text.replace('proxy_bind $remote_addr transparent;', '');
    expect(diffServices(services, parseNginxStreams(without))).toEqual([{ service: 'ttcp4', what: 'transparent', expected: true, actual: false }]);
    // A plain service held as transparent differs too.
    const plain = nginxConfig(services.map((s) => ({ ...s, transparent: true })), '/tmp/x');
    expect(diffServices(services, parseNginxStreams(plain))).toEqual([{ service: 'plain4', what: 'transparent', expected: false, actual: true }]);
  });

  test('a director without transparent proxying makes a transparent test not applicable, with the reason', () => {
    const c: DirectorCapabilities = {
      kind: 'x', implementation: 'x 1', protocols: ['tcp'], families: [4, 6], methods: ['proxy'], schedulers: ['wrr'], schedulerFlags: [], tunnelTypes: [], tunnelFlags: [],
      mixedFamilyTunnels: false, persistence: false, persistenceEngines: [], onePacket: false, fwmark: false, thresholds: false, weightZero: false, stats: false, rates: false, connections: false,
    };
    expect(unmetRequirement(c, { method: 'proxy', transparent: true })).toMatch(/cannot open the server leg from the client's address/);
    expect(unmetRequirement({ ...c, transparent: true }, { method: 'proxy', transparent: true })).toBeUndefined();
    expect(ipvsDeclines(tsvc('ttcp4'))).toMatch(/method proxy/);
  });

  test.describe('on a netns lab', () => {
    test.describe.configure({ mode: 'serial', timeout: 120_000 });
    for (const kind of ['haproxy', 'nginx'] as const) {
      test(`${kind}: transparent services and the director's routing applied, read back, a missing piece is a difference, flush removes the routing`, async () => {
        test.skip(!has(kind), `${kind} is not installed`);
        const lab = await upNetnsLab(tmodel, { name: `h14t-${kind.slice(0, 2)}${process.pid}`, ephemeral: true });
        const node = lab.node('director');
        const d = kind === 'haproxy' ? new HaproxyDirector(node, tmodel) : new NginxDirector(node, tmodel);
        try {
          expect((await d.capabilities()).transparent).toBe(true);
          const services = tmodel.services;
          const r = await d.apply(services);
          expect(r.differences).toEqual([]);
          expect(r.log.some((l) => /nft -f -/.test(l))).toBe(true);
          const held = await d.readBack(services);
          expect(held.filter((s) => s.transparent).map((s) => s.name).sort()).toEqual(['ttcp4', 'ttcp6']);
          for (const f of [4, 6] as const) expect(await missingTransparentRouting(node, f)).toEqual([]);
          // The kernel loses the socket mark: both transparent services differ, the plain one does not.
          expect((await node.exec(['nft', 'delete', 'table', 'inet', TPROXY.nftTable])).code).toBe(0);
          const diff = await d.diff(services);
          expect(diff.map((x) => `${x.service} ${x.what}`).sort()).toEqual(['ttcp4 transparent routing', 'ttcp6 transparent routing']);
          expect(String(diff[0].actual)).toMatch(/socket transparent 1/);
          // apply() repairs it.
          expect((await d.apply(services)).differences).toEqual([]);
          // The IPv6 local route alone missing: only the IPv6 service differs.
          expect((await node.exec(['ip', '-6', 'route', 'flush', 'table', String(TPROXY.table)])).code).toBe(0);
          expect((await d.diff(services)).map((x) => `${x.service} ${x.what}`)).toEqual(['ttcp6 transparent routing']);
          expect((await d.apply(services)).differences).toEqual([]);
          if (kind === 'haproxy') {
            // The configuration haproxy runs from without usesrc: the read-back says not transparent.
            const file = `${node.workDir}/vslab-haproxy/haproxy.conf`;
            expect((await node.exec(['sed', '-i', '/usesrc clientip/d', file])).code).toBe(0);
            expect((await d.diff(services)).map((x) => `${x.service} ${x.what}`).sort()).toEqual(['ttcp4 transparent', 'ttcp6 transparent']);
          }
          await d.flush();
          expect((await node.exec(['ip', '-4', 'rule', 'show'])).stdout).not.toMatch(new RegExp(`^${TPROXY.pref}:`, 'm'));
          expect((await node.exec(['ip', '-6', 'route', 'show', 'table', String(TPROXY.table)])).stdout.trim()).toBe('');
          expect((await node.exec(['nft', 'list', 'table', 'inet', TPROXY.nftTable])).code).not.toBe(0);
        } finally {
          await d.close();
          await lab.down();
        }
      });
    }
  });
});

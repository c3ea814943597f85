// The faulty directors, without a VM: every fault plans actions for at least one suite lab; together they
// target every statement of spec/forwarding.yaml; and every nftables ruleset they load is accepted by a
// real kernel (checked with `nft -c` in a scratch namespace of this host holding the director's interface
// names — nothing is applied anywhere).
import { test, expect } from '@playwright/test';
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';
import { FAULTS, listFaults, planFault } from '../../src/director/faults';
import { fullnatSnatRuleset } from '../../src/director/fullnat-snat';
import { loadStatements } from '../../src/runner/spec';
import { loadTopologyFile } from '../../src/topology/load';
import type { LabModel } from '../../src/topology/model';

const TOPO = path.join(__dirname, '..', '..', 'suites', 'forwarding', 'topologies');
const LABS: Record<string, LabModel> = {
  ...Object.fromEntries(['nat', 'dr', 'tun', 'fullnat'].map((m) => [m, loadTopologyFile(path.join(TOPO, `${m}.yaml`))])),
  // The proxy suite's faults (method proxy) sabotage its lab and target spec/proxy.yaml.
  proxy: loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'proxy', 'topologies', 'proxy.yaml')),
};
// A fault of the transparent proxy's director routing concerns the transparent lab (the plain proxy lab has none).
const TRANSPARENT_LAB = loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'proxy', 'topologies', 'transparent.yaml'));
const labsOf = (f: { suiteFiles?: string[] }): Record<string, LabModel> => (f.suiteFiles?.includes('transparent') ? { ...LABS, proxy: TRANSPARENT_LAB } : LABS);
const PROXY_SPEC = loadStatements(path.join(__dirname, '..', '..', 'spec', 'proxy.yaml'));
const SPEC = loadStatements(path.join(__dirname, '..', '..', 'spec', 'forwarding.yaml'));
// The HA suite's faults (src/ha/faults.ts) sabotage its lab and target its statements.
const HA_LAB = loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'ha', 'topologies', 'ha-dr.yaml'));
const HA_SPEC = loadStatements(path.join(__dirname, '..', '..', 'spec', 'ha.yaml'));
// The distribution suite's faults (a wrong scheduler) sabotage its NAT lab and target spec/distribution.yaml.
const DIST_LABS: Record<string, LabModel> = { 'schedulers-nat': loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'distribution', 'topologies', 'nat.yaml')) };
const DIST_SPEC = loadStatements(path.join(__dirname, '..', '..', 'spec', 'distribution.yaml'));
const NS = `vslabfw-faults-${process.pid}`;

test('every fault sabotages the labs of the methods it names, and only those', () => {
  for (const f of FAULTS) {
    // A distribution lab is looked at for the faults that name it (the forwarding faults of its method act on it too).
    const dist = Object.fromEntries(Object.entries(DIST_LABS).filter(([k]) => f.suiteFiles?.includes(k)));
    for (const [method, model] of Object.entries({ ...labsOf(f), ...dist })) {
      const actions = planFault(f, model);
      if ([...f.methods, ...(f.suiteFiles ?? [])].includes(method as never)) expect(actions.length, `${f.name} on the ${method} lab`).toBeGreaterThan(0);
      else expect(actions, `${f.name} must leave the ${method} lab alone`).toEqual([]);
    }
  }
  // The transparent routing fault leaves a lab without transparent services alone.
  expect(planFault(FAULTS.find((f) => f.name === 'proxy-transparent-unrouted')!, LABS.proxy)).toEqual([]);
});

test('faults target existing statements, and every statement is the target of some fault', () => {
  const ids = new Set([...SPEC.statements, ...HA_SPEC.statements, ...PROXY_SPEC.statements, ...DIST_SPEC.statements].map((s) => s.id));
  for (const f of listFaults()) for (const t of f.targets) expect(ids.has(t), `${f.name} targets ${t}`).toBe(true);
  const targeted = new Set(listFaults().flatMap((f) => f.targets));
  const untargeted = SPEC.statements.map((s) => s.id).filter((id) => !targeted.has(id));
  // Statements no fault aims at directly must still be broken by one in the mutation matrix; list them.
  expect(untargeted).toEqual([]); // FWD-COM-001: proxy-transparent-unrouted (its packets are unexplained)
});

test.describe('nftables rulesets are valid for a real kernel', () => {
  test.beforeAll(() => {
    if (process.getuid?.() !== 0) return;
    execFileSync('ip', ['netns', 'add', NS]);
    // Interfaces named like the directors' (eth0, eth1), so `device "eth0"` chains resolve.
    execFileSync('ip', ['-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  });
  test.afterAll(() => {
    if (process.getuid?.() === 0) spawnSync('ip', ['netns', 'del', NS]);
  });
  for (const f of FAULTS) {
    test(f.name, () => {
      test.skip(process.getuid?.() !== 0, 'needs root for a scratch network namespace');
      let checked = 0;
      for (const [method, model] of Object.entries(f.suiteFiles?.includes('ha') ? { ha: HA_LAB } : { ...LABS, ...DIST_LABS })) {
        for (const a of planFault(f, model)) {
          if (a.argv[0] !== 'nft') {
            expect(['ip', 'sh'], `${f.name}: ${a.what}`).toContain(a.argv[0]);
            continue;
          }
          // The Full-NAT table a fault replaces or deletes must exist first, as it does on the director.
          const director = model.nodes.find((n) => n.name === a.node)!;
          const snat = fullnatSnatRuleset(model, director.name);
          const prelude = snat && /vslab_fullnat/.test(a.input ?? a.argv.join(' ')) ? snat : '';
          const input = a.argv.includes('-f') ? a.input ?? '' : `${a.argv.slice(1).join(' ')}\n`;
          const r = spawnSync('ip', ['netns', 'exec', NS, 'nft', '-c', '-f', '-'], { input: prelude + input, encoding: 'utf8' });
          expect(r.status, `${f.name} on the ${method} lab (${a.what}):\n${r.stderr}\n${input}`).toBe(0);
          checked++;
        }
      }
      if (!f.plan(LABS[f.methods[0]] ?? DIST_LABS[f.suiteFiles?.[0] ?? ''] ?? HA_LAB).some((a) => a.argv[0] === 'nft')) test.info().annotations.push({ type: 'note', description: 'route changes only' });
      else expect(checked).toBeGreaterThan(0);
    });
  }
});

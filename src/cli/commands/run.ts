// The main job on the embedded default: bring up the NAT lab, program its director, send
// connections from the client through the director to every real server, print a results table
// and take the lab down. Until the conformance suites land this is the quick start's proof that
// a lab carries traffic end to end.
import * as path from 'path';
import { BACKEND_KINDS, isBackendKind, upLab } from '../../backend';
import { hostRoutedPrefixes } from '../../backend/registry';
import type { BackendKind, RunningLab } from '../../backend/types';
import { runClient, startResponder, type ResponderHandle } from '../../traffic';
import { programDirectors } from '../../director/program';
import { DIRECTOR_NAMES, directorDriver, isDirectorName } from '../../director/registry';
import { loadTopologyFile } from '../../topology/load';
import type { ServiceModel } from '../../topology/model';
import { parse, printJson, progressPrinter } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab run [--topology FILE] [--backend vm|netns|docker] [--director NAME] [--kernel K] [--connections N] [--json]';
export const DEFAULT_TOPOLOGY = path.resolve(__dirname, '..', '..', '..', 'topologies', 'nat.yaml');

interface ServiceResult {
  service: string; protocol: string; vip: string; port: number; family: number; scheduler: string; method: string;
  connections: number; answered: number; perServer: Record<string, number>; expected: Record<string, number>;
  status: 'passed' | 'failed' | 'not-applicable'; reason?: string;
}

async function startResponders(lab: RunningLab, services: ServiceModel[]): Promise<ResponderHandle[]> {
  const ports = new Map<string, { tcp: Set<number>; udp: Set<number> }>();
  for (const s of services) for (const r of s.realServers) {
    const p = ports.get(r.node) ?? { tcp: new Set<number>(), udp: new Set<number>() };
    (s.protocol === 'udp' ? p.udp : p.tcp).add(r.port);
    ports.set(r.node, p);
  }
  const handles = [...ports].map(([node, p]) => startResponder(lab.node(node), { name: node, tcp: [...p.tcp], udp: [...p.udp] }));
  await Promise.all(handles.map((h) => h.ready));
  return handles;
}

export const command: CliCommand = {
  name: 'run',
  summary: 'the main job: bring up the default NAT lab, drive traffic through its director, print the results',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { topology: { type: 'string' }, backend: { type: 'string' }, director: { type: 'string' }, kernel: { type: 'string' }, connections: { type: 'string' }, json: { type: 'boolean' } }, usage);
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}\nusage: ${usage}`);
    // The default director is kernel IPVS, the reference implementation: in a VM when this host lacks it;
    // on a backend sharing this host's kernel without IPVS, nftables.
    const ipvsOn = (b: string) => !directorDriver('ipvs').unavailable(b as BackendKind);
    const directorKind = values.director ?? (values.backend && values.backend !== 'vm' && !ipvsOn(values.backend) ? 'nftables' : 'ipvs');
    if (!isDirectorName(directorKind)) throw new UsageError(`unknown director "${directorKind}" (${DIRECTOR_NAMES.join(', ')})`);
    const backend = (values.backend ?? (directorDriver(directorKind).unavailable('netns') ? 'vm' : 'netns')) as BackendKind;
    if (!isBackendKind(backend)) throw new UsageError(`unknown backend "${backend}" (${BACKEND_KINDS.join(', ')})`);
    const unavailable = directorDriver(directorKind).unavailable(backend);
    if (unavailable) throw new UsageError(`--director ${directorKind}: ${unavailable}`);
    const perCycle = Number(values.connections ?? '0');
    if (!Number.isInteger(perCycle) || perCycle < 0) throw new UsageError('--connections takes a whole number');
    const progress = progressPrinter(!!values.json);
    const model = loadTopologyFile(values.topology ?? DEFAULT_TOPOLOGY, { hostPrefixes: hostRoutedPrefixes() });
    const director = model.nodes.find((n) => n.role === 'director');
    const client = model.nodes.find((n) => n.role === 'client');
    if (!director || !client) throw new UsageError(`${model.file}: the main job needs a director and a client`);
    progress(`bringing up ${model.name} (${model.nodes.length} nodes)`);
    const lab = await upLab(model, { backend, ephemeral: true, progress, kernel: values.kernel });
    const results: ServiceResult[] = [];
    let responders: ResponderHandle[] = [];
    try {
      progress(`programming the director (${directorKind})`);
      const [p] = await programDirectors(directorKind, lab);
      if (p && p.result.differences.length) throw new Error(`the director does not hold what was asked: ${JSON.stringify(p.result.differences)}`);
      await p?.driver.close();
      // Counting per real server checks rr/wrr exactly over whole cycles; other schedulers need the scheduler suites.
      const plan: { supported: ServiceModel[]; unsupported: Array<{ service: string; reason: string }> } = { supported: [], unsupported: [] };
      for (const s of model.services.filter((x) => x.director === director.name)) {
        const why = p?.unsupported.get(s.name);
        if (why) plan.unsupported.push({ service: s.name, reason: why });
        else if ((s.scheduler === 'rr' || s.scheduler === 'wrr') && !s.persistence && s.vip && s.protocol !== 'sctp') plan.supported.push(s);
        else plan.unsupported.push({ service: s.name, reason: `scheduler ${s.scheduler}${s.persistence ? ' with persistence' : ''}: the main job checks rr/wrr distributions only` });
      }
      responders = await startResponders(lab, plan.supported);
      for (const u of plan.unsupported) {
        const s = model.services.find((x) => x.name === u.service)!;
        results.push({ service: s.name, protocol: s.protocol, vip: s.vip ?? `fwmark ${s.fwmark}`, port: s.port, family: s.family, scheduler: s.scheduler, method: s.realServers[0].method, connections: 0, answered: 0, perServer: {}, expected: {}, status: 'not-applicable', reason: u.reason });
      }
      for (const s of plan.supported) {
        progress(`service ${s.name}: connecting`);
        const weights = s.realServers.map((r) => (s.scheduler === 'rr' ? (r.weight > 0 ? 1 : 0) : r.weight));
        const cycle = weights.reduce((a, b) => a + b, 0);
        const n = Math.max(perCycle, 1) * cycle * (perCycle ? 1 : 2);
        const perServer: Record<string, number> = {};
        const expected: Record<string, number> = {};
        s.realServers.forEach((r, i) => { expected[r.node] = (weights[i] * n) / cycle; perServer[r.node] = 0; });
        // Connections one after another, so the scheduler's order is what the counts show.
        const report = await runClient(lab.node(client.name), { target: { address: s.vip!, port: s.port }, proto: s.protocol === 'udp' ? 'udp' : 'tcp', count: n, sequential: true, timeoutMs: 3000 });
        const answered = report.summary.outcomes.answered;
        for (const [who, k] of Object.entries(report.summary.servers)) perServer[who] = (perServer[who] ?? 0) + k;
        const failures = Object.entries(report.summary.outcomes).filter(([k, v]) => k !== 'answered' && v > 0).map(([k, v]) => `${v} ${k}`).join(', ');
        const ok = answered === n && Object.keys(expected).every((k) => perServer[k] === expected[k]) && Object.keys(perServer).every((k) => k in expected);
        results.push({ service: s.name, protocol: s.protocol, vip: s.vip!, port: s.port, family: s.family, scheduler: s.scheduler, method: s.realServers[0].method, connections: n, answered, perServer, expected, status: ok ? 'passed' : 'failed', reason: ok ? undefined : answered < n ? `${n - answered} of ${n} connections not answered (${failures})` : 'distribution differs from the scheduler' });
      }
    } finally {
      await Promise.all(responders.map((r) => r.stop().catch(() => undefined)));
      progress('taking the lab down');
      await lab.down();
    }
    const summary = { passed: results.filter((r) => r.status === 'passed').length, failed: results.filter((r) => r.status === 'failed').length, notApplicable: results.filter((r) => r.status === 'not-applicable').length };
    if (values.json) printJson({ lab: model.name, backend, director: directorKind, readyMs: lab.readyMs, results, summary });
    else {
      console.log(`lab ${model.name} (${backend}) ready in ${lab.readyMs.toFixed(1)} ms; director: ${directorKind}`);
      console.log(`${'SERVICE'.padEnd(8)} ${'PROTO'.padEnd(6)} ${'VIP:PORT'.padEnd(26)} ${'SCHED'.padEnd(6)} ${'METHOD'.padEnd(8)} ${'ANSWERED'.padEnd(9)} ${'PER REAL SERVER (seen/expected)'.padEnd(34)} RESULT`);
      for (const r of results) {
        const dist = Object.keys({ ...r.expected, ...r.perServer }).map((k) => `${k} ${r.perServer[k] ?? 0}/${r.expected[k] ?? 0}`).join('  ');
        const vp = r.family === 6 ? `[${r.vip}]:${r.port}` : `${r.vip}:${r.port}`;
        console.log(`${r.service.padEnd(8)} ${r.protocol.padEnd(6)} ${vp.padEnd(26)} ${r.scheduler.padEnd(6)} ${r.method.padEnd(8)} ${`${r.answered}/${r.connections}`.padEnd(9)} ${dist.padEnd(34)} ${r.status.toUpperCase()}${r.reason ? ` (${r.reason})` : ''}`);
      }
      console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.notApplicable} not applicable`);
    }
    return summary.failed ? 1 : 0;
  },
};

// The main job on the embedded default: bring up the NAT lab, program its director, send
// connections from the client through the director to every real server, print a results table
// and take the lab down. Until the conformance suites land this is the quick start's proof that
// a lab carries traffic end to end.
import * as path from 'path';
import { upLab } from '../../backend';
import { hostRoutedPrefixes } from '../../backend/registry';
import type { BackendKind, NodeProcess, RunningLab } from '../../backend/types';
import { nftablesNatRuleset } from '../../director/nftables-nat';
import { loadTopologyFile } from '../../topology/load';
import type { ServiceModel } from '../../topology/model';
import { parse, printJson, progressPrinter } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab run [--topology FILE] [--backend netns] [--connections N] [--json]';
export const DEFAULT_TOPOLOGY = path.resolve(__dirname, '..', '..', '..', 'topologies', 'nat.yaml');

interface ServiceResult {
  service: string; protocol: string; vip: string; port: number; family: number; scheduler: string; method: string;
  connections: number; answered: number; perServer: Record<string, number>; expected: Record<string, number>;
  status: 'passed' | 'failed' | 'not-applicable'; reason?: string;
}

async function startResponders(lab: RunningLab, services: ServiceModel[]): Promise<NodeProcess[]> {
  const procs: NodeProcess[] = [];
  const seen = new Set<string>();
  for (const s of services) for (const r of s.realServers) {
    const key = `${r.node} ${s.protocol} ${r.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const listen = s.protocol === 'udp' ? `UDP6-RECVFROM:${r.port},ipv6only=0,fork,reuseaddr` : `TCP6-LISTEN:${r.port},ipv6only=0,fork,reuseaddr`;
    const p = lab.node(r.node).spawn(['socat', listen, `SYSTEM:echo ${r.node}`]);
    procs.push(p);
  }
  // socat binds before it accepts; give the listeners a moment and verify they are up.
  for (const node of new Set(services.flatMap((s) => s.realServers.map((r) => r.node)))) {
    for (let i = 0; i < 50; i++) {
      const ss = await lab.node(node).exec(['ss', '-Hlnptu']);
      const want = [...seen].filter((k) => k.startsWith(node + ' ')).length;
      if ((ss.stdout.match(/socat/g) ?? []).length >= want) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return procs;
}

async function connect(lab: RunningLab, client: string, s: ServiceModel): Promise<string | undefined> {
  const target = s.family === 6 ? `[${s.vip}]` : s.vip!;
  const addr = s.protocol === 'udp' ? `UDP${s.family === 6 ? '6' : '4'}:${target}:${s.port}` : `TCP${s.family === 6 ? '6' : '4'}:${target}:${s.port}`;
  const r = await lab.node(client).exec(['socat', '-T2', '-', addr], { input: s.protocol === 'udp' ? 'hello\n' : '', timeoutMs: 10_000 });
  const who = r.stdout.trim();
  return r.code === 0 && who ? who : undefined;
}

export const command: CliCommand = {
  name: 'run',
  summary: 'the main job: bring up the default NAT lab, drive traffic through its director, print the results',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { topology: { type: 'string' }, backend: { type: 'string' }, connections: { type: 'string' }, json: { type: 'boolean' } }, usage);
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}\nusage: ${usage}`);
    const backend = (values.backend ?? 'netns') as BackendKind;
    if (backend !== 'netns') throw new UsageError('run supports --backend netns for now');
    const perCycle = Number(values.connections ?? '0');
    if (!Number.isInteger(perCycle) || perCycle < 0) throw new UsageError('--connections takes a whole number');
    const progress = progressPrinter(!!values.json);
    const model = loadTopologyFile(values.topology ?? DEFAULT_TOPOLOGY, { hostPrefixes: hostRoutedPrefixes() });
    const director = model.nodes.find((n) => n.role === 'director');
    const client = model.nodes.find((n) => n.role === 'client');
    if (!director || !client) throw new UsageError(`${model.file}: the main job needs a director and a client`);
    progress(`bringing up ${model.name} (${model.nodes.length} nodes)`);
    const lab = await upLab(model, { backend, ephemeral: true, progress });
    const results: ServiceResult[] = [];
    let procs: NodeProcess[] = [];
    try {
      const plan = nftablesNatRuleset(model, director.name);
      progress('programming the director (nftables NAT: this host has no IPVS)');
      const nft = await lab.node(director.name).exec(['nft', '-f', '-'], { input: plan.ruleset });
      if (nft.code !== 0) throw new Error(`the director refused its ruleset: ${nft.stderr.trim()}`);
      procs = await startResponders(lab, plan.supported);
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
        let answered = 0;
        for (let i = 0; i < n; i++) {
          const who = await connect(lab, client.name, s);
          if (who) { answered++; perServer[who] = (perServer[who] ?? 0) + 1; }
        }
        const ok = answered === n && Object.keys(expected).every((k) => perServer[k] === expected[k]) && Object.keys(perServer).every((k) => k in expected);
        results.push({ service: s.name, protocol: s.protocol, vip: s.vip!, port: s.port, family: s.family, scheduler: s.scheduler, method: s.realServers[0].method, connections: n, answered, perServer, expected, status: ok ? 'passed' : 'failed', reason: ok ? undefined : answered < n ? `${n - answered} of ${n} connections got no answer` : 'distribution differs from the scheduler' });
      }
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.wait()));
      progress('taking the lab down');
      await lab.down();
    }
    const summary = { passed: results.filter((r) => r.status === 'passed').length, failed: results.filter((r) => r.status === 'failed').length, notApplicable: results.filter((r) => r.status === 'not-applicable').length };
    if (values.json) printJson({ lab: model.name, backend, director: 'nftables-nat', readyMs: lab.readyMs, results, summary });
    else {
      console.log(`lab ${model.name} (${backend}) ready in ${lab.readyMs.toFixed(1)} ms; director: nftables NAT (kernel IPVS needs --backend vm)`);
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

// The "keepalived" director driver: the lab's services written as a keepalived.conf (one `virtual_server`
// block per service, rendered by src/ha/keepalived.ts, the HA group's renderer), keepalived started in the
// director node with its health-checker process only (no VRRP: one director), and the result read back
// from kernel IPVS with the ipvs driver's netlink client. It answers "does my keepalived configuration
// produce the LVS I think?": diff() compares what the kernel holds after keepalived programmed it with the
// model, never keepalived's own idea of it.
//
// Health checks are off unless the topology asks for them (a service named in the `ha.healthChecks` of the
// model): a real server without a checker is kept in by keepalived. Full-NAT is declined: keepalived
// writes IPVS masquerading only; the source NAT behind it is not something keepalived.conf says.
//
// apply() writes the file and starts keepalived (or, when this lab's keepalived already runs, sends it
// SIGHUP, the way an operator reloads it), then waits until the kernel holds what the model asks, or a
// time limit passes and the remaining differences are returned. keepalived runs with --dont-release-ipvs:
// close() stops it and leaves the kernel's table as it programmed it (close() does not change the
// director), so a test worker that replaces a failed one reads back the same IPVS table (a keepalived
// that removed its services on SIGTERM emptied the lab for every later test of the run).
import { spawnSync } from 'child_process';
import type { BackendKind, LabNode, NodeProcess, RunningLab } from '../backend/types';
import { virtualServerBlock } from '../ha/keepalived';
import type { ExpectedLayer } from '../packet/expect';
import type { LabModel, ServiceModel } from '../topology/model';
import { directorHost } from './host';
import { hostHasIpvs, IpvsDirector } from './ipvs';
import type { DirectorDriverDefinition } from './registry';
import {
  type ApplyResult,
  DirectorApplyError,
  type DirectorCapabilities,
  type DirectorConnection,
  type DirectorDifference,
  type DirectorDriver,
  type DirectorService,
  type DirectorServiceStats,
} from './types';

/** How long keepalived may take to program IPVS after a start or reload (ms). */
const CONVERGE_MS = 60_000;

const FULLNAT_REASON = 'keepalived writes IPVS masquerading only (lb_kind NAT): the source NAT of Full-NAT is not expressible in keepalived.conf';

/** The keepalived.conf for `services` of director `node` (pure). */
export function keepalivedDirectorConfig(model: LabModel, node: string, services: ServiceModel[]): string {
  const out = [
    `# vslab: keepalived director driver, director ${node} of lab ${model.name} (generated from ${model.file})`,
    'global_defs {',
    `  router_id vslab-${node}`,
    '  lvs_flush',
    '}',
  ];
  for (const s of services) out.push('', ...virtualServerBlock(s, model.ha?.healthChecks[s.name]));
  return out.join('\n') + '\n';
}

export class KeepalivedDirector implements DirectorDriver {
  readonly kind = 'keepalived';
  private caps?: Promise<DirectorCapabilities>;
  private proc?: NodeProcess;
  /** How the keepalived this driver started ended (undefined while it runs). */
  private exit?: { code: number | null; signal: string | null };
  private log = '';

  private constructor(
    private readonly n: LabNode,
    private readonly model: LabModel,
    private readonly labName: string,
    readonly ipvs: IpvsDirector,
  ) {}

  static async open(lab: RunningLab, node: string): Promise<KeepalivedDirector> {
    const n = lab.node(node);
    return new KeepalivedDirector(n, lab.model, lab.name, await IpvsDirector.open(directorHost(n)));
  }

  get node(): string {
    return this.n.name;
  }

  /** Where this lab's keepalived of this node keeps its file and pid files (inside the node's machine). */
  private get dir(): string {
    return `/tmp/vslab-kad-${this.labName}-${this.n.name}`;
  }

  capabilities(): Promise<DirectorCapabilities> {
    this.caps ??= (async () => {
      const k = await this.ipvs.capabilities();
      const v = await this.n.exec(['keepalived', '--version'], { timeoutMs: 30_000 });
      const version = /Keepalived v(\S+)/.exec(v.stdout + v.stderr)?.[1];
      if (!version) throw new Error(`director ${this.node}: keepalived --version answered no version (exit ${v.code}): ${(v.stderr || v.stdout).trim().slice(0, 300)}`);
      return {
        ...k,
        kind: 'keepalived',
        implementation: `keepalived ${version} on ${k.implementation}`,
        methods: k.methods.filter((m) => m !== 'fullnat'),
        // keepalived.conf has persistence_engine, but the Lab model has no way to ask for it.
        persistenceEngines: [],
        ...(this.checkBackground().length ? { background: this.checkBackground() } : {}),
      };
    })();
    return this.caps;
  }

  /**
   * TCP_CHECK probes when the topology asks for health checks: TCP between the director and each checked
   * real server's port, counted as their own class by the packet accounting (never as stray packets).
   */
  private checkBackground(): NonNullable<DirectorCapabilities['background']> {
    const checked = this.model.services.filter((s) => s.director === this.node && this.model.ha?.healthChecks[s.name]);
    const patterns = checked.flatMap((s) => s.realServers.flatMap((r): ExpectedLayer[][] => {
      const ip = r.family === 4 ? 'ipv4' as const : 'ipv6' as const;
      return [
        [{ type: 'eth' }, { type: ip, dst: r.addr }, { type: 'tcp', dport: r.port }],
        [{ type: 'eth' }, { type: ip, src: r.addr }, { type: 'tcp', sport: r.port }],
      ];
    }));
    if (!patterns.length) return [];
    return [{
      name: 'keepalived-tcp-check', declaredBy: 'driver keepalived', patterns,
      why: 'keepalived TCP_CHECK health checks: a TCP connection from the director to each checked real server\'s port every delay_loop',
    }];
  }

  unsupported(s: ServiceModel): string | undefined {
    // keepalived's own limits, then the kernel's (a scheduler module it lacks).
    return declines(s) ?? this.ipvs.unsupported(s);
  }

  private async running(): Promise<boolean> {
    const r = await this.n.exec(['sh', '-c', `[ -f ${this.dir}/keepalived.pid ] && kill -0 $(cat ${this.dir}/keepalived.pid)`], { timeoutMs: 30_000 });
    return r.code === 0;
  }

  private async must(argv: string[], what: string, input?: string): Promise<string> {
    const r = await this.n.exec(argv, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
    if (r.code !== 0) throw new DirectorApplyError(this.node, [`${what}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`]);
    return r.stdout;
  }

  async apply(services: ServiceModel[]): Promise<ApplyResult> {
    const foreign = services.filter((s) => s.director !== this.node);
    if (foreign.length) throw new DirectorApplyError(this.node, foreign.map((s) => `service ${s.name} is directed by ${s.director}, not ${this.node}`));
    const declined = services.map((s) => [s.name, declines(s)] as const).filter(([, why]) => why);
    if (declined.length) throw new DirectorApplyError(this.node, declined.map(([n, why]) => `service ${n}: ${why}`));
    const conf = keepalivedDirectorConfig(this.model, this.node, services);
    const file = `${this.dir}/keepalived.conf`;
    await this.must(['sh', '-c', `mkdir -p ${this.dir} && cat > ${file}`], 'writing keepalived.conf', conf);
    // keepalived's own check of the file first: a file it rejects is an error saying why, not a silent empty table.
    const t = await this.n.exec(['keepalived', '--config-test', '--use-file', file], { timeoutMs: 60_000 });
    if (t.code !== 0) throw new DirectorApplyError(this.node, [`keepalived --config-test rejects ${file} (exit ${t.code}): ${(t.stderr || t.stdout).trim().slice(0, 2000)}`]);
    const log: string[] = [];
    if (await this.running()) {
      await this.must(['sh', '-c', `kill -HUP $(cat ${this.dir}/keepalived.pid)`], 'reloading keepalived (SIGHUP)');
      log.push(`reload keepalived (SIGHUP) with ${services.length} virtual_server block(s)`);
    } else {
      await this.must(['sh', '-c', `kill -9 $(cat ${this.dir}/*.pid 2>/dev/null) 2>/dev/null; rm -f ${this.dir}/*.pid; true`], 'clearing an earlier keepalived');
      this.proc = this.n.spawn(['keepalived', '--check', '--dont-fork', '--dont-release-ipvs', '--log-console', '--log-detail', '--use-file', file,
        '--pid', `${this.dir}/keepalived.pid`, '--checkers_pid', `${this.dir}/checkers.pid`]);
      const keep = (b: Buffer | string) => { this.log = (this.log + b.toString()).slice(-32 * 1024); };
      this.proc.stdout.on('data', keep);
      this.proc.stderr.on('data', keep);
      this.exit = undefined;
      const proc = this.proc;
      void proc.wait().then((e) => { if (this.proc === proc) this.exit = e; }, () => undefined);
      log.push(`start keepalived --check with ${services.length} virtual_server block(s)`);
    }
    const differences = await this.converge(services);
    return { changes: services.length, log, differences };
  }

  /** Waits until the kernel holds `services` as asked (keepalived programs IPVS asynchronously); the differences left at the time limit. */
  private async converge(services: ServiceModel[]): Promise<DirectorDifference[]> {
    const deadline = Date.now() + CONVERGE_MS;
    for (;;) {
      const d = await this.ipvs.diff(services);
      if (!d.length || Date.now() > deadline) return d;
      if (this.exit) {
        throw new DirectorApplyError(this.node, [`keepalived exited (${this.exit.signal ?? `code ${this.exit.code}`}) before programming IPVS; its output:\n${this.log.slice(-3000) || '(none)'}`]);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  readBack(services?: ServiceModel[]): Promise<DirectorService[]> {
    return this.ipvs.readBack(services);
  }

  diff(services: ServiceModel[]): Promise<DirectorDifference[]> {
    return this.ipvs.diff(services);
  }

  stats(services?: ServiceModel[]): Promise<DirectorServiceStats[]> {
    return this.ipvs.stats(services);
  }

  connections(): Promise<DirectorConnection[]> {
    return this.ipvs.connections();
  }

  /** An empty keepalived.conf, reloaded: keepalived removes its services (IPVS is not flushed behind its back). */
  async flush(): Promise<void> {
    const r = await this.apply([]);
    if (r.differences.length) throw new DirectorApplyError(this.node, [`keepalived left services after reloading an empty configuration: ${JSON.stringify(r.differences)}`]);
  }

  /** Stops this lab's keepalived (it leaves IPVS as it is: --dont-release-ipvs) and releases the netlink client. */
  async close(): Promise<void> {
    try {
      await this.n.exec(['sh', '-c', `[ -f ${this.dir}/keepalived.pid ] && kill -TERM $(cat ${this.dir}/keepalived.pid); true`], { timeoutMs: 30_000 });
      if (this.proc) await Promise.race([this.proc.wait(), new Promise((r) => setTimeout(r, 10_000))]);
    } finally {
      await this.ipvs.close();
    }
  }
}

function declines(s: ServiceModel): string | undefined {
  if (s.realServers.some((r) => r.method === 'fullnat')) return FULLNAT_REASON;
  return undefined;
}

/** keepalived on this host (the vm backend copies it into the guest; netns runs the host's). */
function keepalivedOnHost(): boolean {
  return spawnSync('keepalived', ['--version'], { stdio: 'ignore' }).status === 0;
}

export const keepalivedDriver: DirectorDriverDefinition = {
  name: 'keepalived',
  summary: 'keepalived.conf virtual_server blocks (health checks when the topology asks), keepalived --check on the director, read back from kernel IPVS',
  guestTools: ['keepalived'],
  unavailable: (backend: BackendKind) => {
    if (!keepalivedOnHost()) return 'keepalived is not installed on this host (scripts/setup.sh installs it; the vm backend copies it into the guest)';
    if (backend !== 'vm' && !hostHasIpvs()) return `keepalived programs kernel IPVS, which this host kernel lacks, and --backend ${backend} runs on the host kernel: use --backend vm`;
    return undefined;
  },
  declines: (_model, _node, s) => declines(s),
  open: (lab, node) => KeepalivedDirector.open(lab, node),
};

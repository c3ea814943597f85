// What the proxy drivers (haproxy.ts, nginx.ts) share: which services a proxy can take, the proxy process
// in the director node (config file in the node's work directory, started with node.spawn, stopped by the
// driver), the listening sockets read back from the node's kernel (`ss`), the capabilities that make every
// packet-forwarding test not applicable, and the health-check background class.
import * as fs from 'fs';
import * as path from 'path';
import type { BackendKind, LabNode, NodeProcess } from '../backend/types';
import { canonical } from '../topology/addr';
import type { Family, LabModel, ServiceModel } from '../topology/model';
import type { BackgroundClass } from '../oracle/accounting';
import type { ExpectedLayer } from '../packet/expect';
import { DirectorApplyError, type DirectorCapabilities, type DirectorDifference } from './types';

/** Why a proxy driver cannot take `s` (undefined when it can). `schedulers`: model scheduler -> the proxy's name. */
export function proxyDeclines(impl: string, schedulers: Record<string, string>, s: ServiceModel): string | undefined {
  const methods = [...new Set(s.realServers.map((r) => r.method))];
  if (methods.some((m) => m !== 'proxy')) return `method ${methods.filter((m) => m !== 'proxy').join('/')}: ${impl} is a proxy (two TCP connections); it forwards no packets, so it has only method proxy`;
  if (s.protocol !== 'tcp') return `protocol ${s.protocol}: the ${impl} driver proxies tcp (mode tcp / stream over TCP)`;
  if (!s.vip || s.fwmark !== undefined) return `fwmark services: a proxy listens on VIP:port`;
  if (!schedulers[s.scheduler]) return `scheduler ${s.scheduler}: ${impl} has ${Object.entries(schedulers).map(([m, p]) => `${p} (≈ ${m})`).join(', ')}`;
  if (s.flags.length) return `scheduler flags ${s.flags.join(', ')}: not expressed by the ${impl} driver`;
  if (s.persistence) return `persistence: not expressed by the ${impl} driver (stick tables / sticky are not mapped)`;
  if (s.onePacket) return 'one-packet scheduling: a proxy has connections, not packets';
  if (s.realServers.some((r) => r.weight === 0)) return `a real server of weight 0: the ${impl} driver does not map quiescing`;
  if (s.realServers.some((r) => r.family !== s.family)) return 'real servers of another address family than the service';
  return undefined;
}

/** Capabilities of a proxy: method proxy only; none of the packet-forwarding features. */
export function proxyCapabilities(kind: string, implementation: string, schedulers: string[], extra: Partial<DirectorCapabilities>): DirectorCapabilities {
  return {
    kind, implementation, protocols: ['tcp'], families: [4, 6], methods: ['proxy'], schedulers, schedulerFlags: [],
    tunnelTypes: [], tunnelFlags: [], mixedFamilyTunnels: false, persistence: false, persistenceEngines: [], onePacket: false,
    fwmark: false, thresholds: false, weightZero: false, stats: false, rates: false, connections: false, ...extra,
  };
}

/**
 * Health checks: off unless VSLAB_PROXY_CHECK_MS names an interval (100..60000 ms). When on, the probes
 * are TCP connections from a director address to every real server's port, a background class the packet
 * accounting counts (the flows' own server legs are explained first).
 */
export function healthCheckInterval(): number | undefined {
  const v = process.env.VSLAB_PROXY_CHECK_MS;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100 || n > 60_000) throw new Error(`VSLAB_PROXY_CHECK_MS=${JSON.stringify(v)}: must be an interval in ms, 100..60000`);
  return n;
}

export function healthCheckClass(model: LabModel, node: string, declaredBy: string): BackgroundClass {
  const me = model.nodes.find((n) => n.name === node);
  const mine = (me?.interfaces ?? []).flatMap((i) => [i.ipv4?.addr, i.ipv6?.addr]).filter((a): a is string => !!a);
  const patterns: ExpectedLayer[][] = [];
  for (const s of model.services.filter((x) => x.director === node)) {
    for (const r of s.realServers) {
      for (const a of mine.filter((x) => x.includes(':') === r.addr.includes(':'))) {
        const ip = r.family === 4 ? 'ipv4' : 'ipv6';
        patterns.push([{ type: 'eth' }, { type: ip, src: a, dst: r.addr }, { type: 'tcp', dport: r.port }]);
        patterns.push([{ type: 'eth' }, { type: ip, src: r.addr, dst: a }, { type: 'tcp', sport: r.port }]);
      }
    }
  }
  return { name: 'health-check', why: 'TCP connect health checks from the proxy to each real server port (VSLAB_PROXY_CHECK_MS)', declaredBy, patterns };
}

/** Proxy names carry the service key: "<proto>_<vip>_<port>" (haproxy and nginx accept these characters). */
export function proxyName(s: { protocol: string; vip?: string; port: number }): string {
  return `${s.protocol}_${canonical(s.vip!)}_${s.port}`;
}

export function parseProxyName(name: string): { protocol: string; vip: string; port: number } | undefined {
  const m = /^(tcp|udp)_(.+)_(\d+)$/.exec(name);
  return m ? { protocol: m[1], vip: canonical(m[2]), port: Number(m[3]) } : undefined;
}

export const hostPort = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

/** TCP sockets listening in the node, read from its kernel (`ss -ltnH`): "addr port" keys. */
export async function listeningSockets(n: LabNode): Promise<Set<string>> {
  const r = await n.exec(['ss', '-ltnH'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`ss -ltnH in ${n.name} exited with ${r.code}: ${r.stderr.trim()}`);
  const out = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w.length < 4) continue;
    const local = w[3];
    const i = local.lastIndexOf(':');
    const addr = local.slice(0, i).replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    out.add(`${addr === '*' ? '*' : canonical(addr)} ${local.slice(i + 1)}`);
  }
  return out;
}

/** One proxy process in a node: its config written into the node, started in the foreground, stopped on demand. */
export class ProxyProcess {
  private proc?: NodeProcess;
  private log = '';

  constructor(private readonly n: LabNode, readonly program: string, readonly dir: string) {}

  get configFile(): string {
    return `${this.dir}/${this.program}.conf`;
  }

  async writeConfig(text: string): Promise<void> {
    const r = await this.n.exec(['sh', '-c', `mkdir -p "$1" && cat > "$1/$2"`, 'sh', this.dir, `${this.program}.conf`], { input: text, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`writing ${this.configFile} in ${this.n.name}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  /** Starts argv (the program in the foreground); waits until `ready` says so or the program exits. */
  async start(argv: string[], ready: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    await this.stop();
    this.log = '';
    const p = this.n.spawn(argv);
    this.proc = p;
    const keep = (d: Buffer) => { if (this.log.length < 16_384) this.log += d.toString(); };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    let exited: { code: number | null } | undefined;
    void p.wait().then((x) => { exited = x; });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`${this.program} in ${this.n.name} exited with ${exited.code} at start: ${this.log.trim() || '(no output)'}`);
      if (await ready()) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`${this.program} in ${this.n.name} was not ready within ${timeoutMs} ms: ${this.log.trim() || '(no output)'}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get running(): boolean {
    return !!this.proc;
  }

  output(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = undefined;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await p.wait();
    clearTimeout(t);
  }
}

/** Why a proxy program cannot run on `backend` here: netns runs it from this host, docker from the director image (it has both), the VM guest has neither. */
export function proxyUnavailable(program: string, backend: BackendKind): string | undefined {
  if (backend === 'vm') return `${program} is not in the VM guest image (the proxies run on the host kernel: use --backend netns or docker)`;
  if (backend === 'docker') return undefined;
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  if (!dirs.some((d) => d && fs.existsSync(path.join(d, program)))) return `${program} is not installed on this host (apt-get install ${program === 'nginx' ? 'nginx-light libnginx-mod-stream' : program})`;
  return undefined;
}

/** apply()'s first step for a proxy: a service of another director, or one this proxy cannot express, refuses the whole apply. */
export function refuseForeignOrUnsupported(node: string, services: ServiceModel[], unsupported: (s: ServiceModel) => string | undefined): void {
  const problems = services.flatMap((s) => {
    if (s.director !== node) return [`service ${s.name} is directed by ${s.director}, not ${node}`];
    const why = unsupported(s);
    return why ? [`service ${s.name}: ${why}`] : [];
  });
  if (problems.length) throw new DirectorApplyError(node, problems);
}

// ---- the transparent variant: the director's host settings ----------------------------------------------
// A transparent proxy's server leg comes from the client's address (IP_TRANSPARENT: haproxy `usesrc
// clientip`, nginx `proxy_bind $remote_addr transparent`). The real servers answer that address through the
// director (derived routes, src/topology/derive.ts); the director must then deliver those answers to the
// proxy's socket instead of forwarding them to the client: packets that belong to a transparent socket are
// marked in prerouting (nft `socket transparent 1`), and marked packets are routed by a table whose only
// route is "everything is local". These settings are the proxy driver's: applied with the services, read
// back with them, removed by flush/close.

export const TPROXY = { mark: 1, table: 100, pref: 100, nftTable: 'vslab_tproxy' } as const;

/** The nftables ruleset that marks packets of transparent sockets (loaded atomically, replacing an older one). */
export function tproxyRuleset(): string {
  return [
    `add table inet ${TPROXY.nftTable}`, `delete table inet ${TPROXY.nftTable}`,
    `table inet ${TPROXY.nftTable} {`,
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    meta l4proto tcp socket transparent 1 meta mark set ${TPROXY.mark} accept`,
    '  }',
    '}', '',
  ].join('\n');
}

async function run(n: LabNode, argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await n.exec(argv, { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Applies the director's transparent-proxy routing for `families` (idempotent); the lines done, for the log. */
export async function applyTransparentRouting(n: LabNode, families: Family[]): Promise<string[]> {
  const log: string[] = [];
  const must = async (argv: string[], input?: string) => {
    const r = await run(n, argv, input);
    if (r.code !== 0) throw new DirectorApplyError(n.name, [`transparent proxy routing: "${argv.join(' ')}" failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`]);
    log.push(argv.join(' '));
  };
  await must(['nft', '-f', '-'], tproxyRuleset());
  for (const f of families) {
    const v = `-${f}`;
    // One rule of ours at our preference: drop any earlier copy first.
    while ((await run(n, ['ip', v, 'rule', 'del', 'pref', String(TPROXY.pref)])).code === 0) { /* removed one */ }
    await must(['ip', v, 'rule', 'add', 'pref', String(TPROXY.pref), 'fwmark', String(TPROXY.mark), 'lookup', String(TPROXY.table)]);
    await must(['ip', v, 'route', 'replace', 'local', f === 4 ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', String(TPROXY.table)]);
  }
  return log;
}

/**
 * Before a proxy's configuration is (re)written: the transparent routing for the families of the transparent
 * services asked, or its removal when none is asked and it was there. Returns whether it is there now; the
 * lines done go to `log`.
 */
export async function syncTransparentRouting(n: LabNode, services: ServiceModel[], present: boolean, log: string[]): Promise<boolean> {
  const families = [...new Set(services.filter((s) => s.transparent).map((s) => s.family))];
  if (families.length) {
    log.push(...await applyTransparentRouting(n, families));
    return true;
  }
  if (present) {
    await removeTransparentRouting(n);
    log.push('remove the transparent proxy routing');
  }
  return false;
}

/** Removes what applyTransparentRouting put in the node (whatever is there of it). */
export async function removeTransparentRouting(n: LabNode): Promise<void> {
  await run(n, ['nft', 'delete', 'table', 'inet', TPROXY.nftTable]);
  for (const v of ['-4', '-6']) {
    while ((await run(n, ['ip', v, 'rule', 'del', 'pref', String(TPROXY.pref)])).code === 0) { /* removed one */ }
    await run(n, ['ip', v, 'route', 'flush', 'table', String(TPROXY.table)]);
  }
}

/** The pieces of the transparent routing for `family` the node's kernel does not hold (empty: all there). */
export async function missingTransparentRouting(n: LabNode, family: Family): Promise<string[]> {
  const missing: string[] = [];
  const nft = await run(n, ['nft', 'list', 'table', 'inet', TPROXY.nftTable]);
  if (nft.code !== 0 || !/hook prerouting priority mangle/.test(nft.stdout) || !new RegExp(`socket transparent 1 meta mark set 0x0*${TPROXY.mark.toString(16)}\\b`).test(nft.stdout)) {
    missing.push(`nft table inet ${TPROXY.nftTable}: socket transparent 1 meta mark set ${TPROXY.mark} (prerouting, priority mangle)`);
  }
  const v = `-${family}`;
  const rules = await run(n, ['ip', v, 'rule', 'show']);
  if (!new RegExp(`^${TPROXY.pref}:\\s+from all fwmark 0x0*${TPROXY.mark.toString(16)} lookup ${TPROXY.table}\\s*$`, 'm').test(rules.stdout)) {
    missing.push(`ip ${v} rule pref ${TPROXY.pref} fwmark ${TPROXY.mark} lookup ${TPROXY.table}`);
  }
  const routes = await run(n, ['ip', v, 'route', 'show', 'table', String(TPROXY.table)]);
  if (!/^local (default|0\.0\.0\.0\/0|::\/0) dev lo\b/m.test(routes.stdout)) missing.push(`ip ${v} route local default dev lo table ${TPROXY.table}`);
  return missing;
}

/** The differences of the transparent routing for the transparent services asked (one per service whose family lacks a piece). */
export async function transparentRoutingDifferences(n: LabNode, services: ServiceModel[]): Promise<DirectorDifference[]> {
  const out: DirectorDifference[] = [];
  const byFamily = new Map<Family, string[]>();
  for (const s of services.filter((x) => x.transparent)) {
    if (!byFamily.has(s.family)) byFamily.set(s.family, await missingTransparentRouting(n, s.family));
    const missing = byFamily.get(s.family)!;
    if (missing.length) out.push({ service: s.name, what: 'transparent routing', expected: 'held', actual: `missing: ${missing.join('; ')}` });
  }
  return out;
}

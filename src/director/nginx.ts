// The "nginx" director driver: nginx's stream module as the implementation under test (a proxy: method
// proxy, docs/proxy.md). Each service becomes an `upstream` named after the service key and a `server`
// block listening on VIP:port with proxy_pass to it; nginx runs in the foreground in the director node
// (node.spawn) with its prefix, pid and config in the node's work directory. Read-back: `nginx -T` (the
// configuration as nginx parsed it) for upstreams, balancing method and weights, and the node's kernel
// for the listening sockets (`ss`): a server block nobody listens for is not held. Open-source nginx
// exposes no per-upstream counters (stub_status is HTTP-only and global) and no connection table.
//
// Scheduler mapping: wrr -> round-robin (nginx's default, smooth weighted), wlc -> least_conn,
// sh -> hash $remote_addr consistent (ketama: sticky per client address, not IPVS's table), twos ->
// random two least_conn. Health checks: open-source nginx has passive checks only (max_fails), no probes.
import type { LabNode } from '../backend/types';
import { canonical } from '../topology/addr';
import type { Family, LabModel, ServiceModel } from '../topology/model';
import { diffServices, serviceKey } from './diff';
import {
  hostPort, listeningSockets, proxyCapabilities, proxyDeclines, proxyName, ProxyProcess, proxyUnavailable, refuseForeignOrUnsupported,
  removeTransparentRouting, syncTransparentRouting, transparentRoutingDifferences,
} from './proxy-common';
import type { DirectorDriverDefinition } from './registry';
import {
  type ApplyResult, DirectorApplyError, type DirectorCapabilities, type DirectorConnection, type DirectorDifference,
  type DirectorDriver, type DirectorService, type DirectorServiceStats,
} from './types';

/** Model scheduler -> nginx upstream balancing directive ('' = the default weighted round-robin). */
export const NGINX_SCHEDULERS: Record<string, string> = { wrr: '', wlc: 'least_conn', sh: 'hash $remote_addr consistent', twos: 'random two least_conn' };
const NAMES: Record<string, string> = { wrr: 'round-robin', wlc: 'least_conn', sh: 'hash $remote_addr consistent', twos: 'random two least_conn' };
export const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export function nginxDeclines(_model: LabModel, _node: string, s: ServiceModel): string | undefined {
  const why = proxyDeclines('nginx', NAMES, s);
  if (why) return why;
  if (s.realServers.some((r) => r.upper || r.lower)) return 'connection thresholds: the nginx driver does not map max_conns';
  return undefined;
}

/** The nginx configuration for `services` (pure). */
export function nginxConfig(services: ServiceModel[], dir: string, streamModule = STREAM_MODULE, halfClose = true): string {
  const out = [
    '# written by vslab (src/director/nginx.ts)',
    `load_module ${streamModule};`, 'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, 'error_log stderr notice;',
    'events { worker_connections 1024; }', 'stream {',
  ];
  for (const s of services) {
    // proxy_pass would read "a:b" as host:port: the upstream's name has no colons.
    const name = proxyName(s).replace(/:/g, '-');
    out.push(`  upstream ${name} {`);
    if (NGINX_SCHEDULERS[s.scheduler]) out.push(`    ${NGINX_SCHEDULERS[s.scheduler]};`);
    for (const r of s.realServers) out.push(`    server ${hostPort(r.addr, r.port)} weight=${r.weight};`);
    // proxy_half_close (off by default): without it nginx closes the server leg as soon as the real server
    // sends its FIN, before the client has closed (measured: PROXY-004 fails, docs/proxy.md).
    out.push('  }', '  server {', `    listen ${hostPort(s.vip!, s.port)}${s.family === 6 ? ' ipv6only=on' : ''};`, `    proxy_pass ${name};`, `    proxy_half_close ${halfClose ? 'on' : 'off'};`);
    // Transparent: connect from the client's address (IP_TRANSPARENT); no port given, so the kernel picks it.
    if (s.transparent) out.push('    proxy_bind $remote_addr transparent;');
    out.push('  }');
  }
  out.push('}', '');
  return out.join('\n');
}

export class NginxDirector implements DirectorDriver {
  readonly kind = 'nginx';
  private caps?: Promise<DirectorCapabilities>;
  private readonly proc: ProxyProcess;
  /** nginx new enough for proxy_bind ... transparent (1.11.0), learnt by capabilities(). */
  private tproxy?: boolean;
  /** The director's transparent routing is in place (applied by this driver). */
  private routing = false;

  constructor(private readonly n: LabNode, private readonly model: LabModel) {
    this.proc = new ProxyProcess(n, 'nginx', `${n.workDir}/vslab-nginx`);
  }

  get node(): string {
    return this.n.name;
  }

  capabilities(): Promise<DirectorCapabilities> {
    this.caps ??= (async () => {
      const v = await this.n.exec(['nginx', '-v']);
      const version = /nginx\/(\S+)/.exec(v.stderr + v.stdout)?.[1] ?? '(version unknown)';
      // proxy_bind's "transparent" parameter: nginx 1.11.0 and later (Linux: IP_TRANSPARENT).
      const [maj, min] = version.split('.').map(Number);
      this.tproxy = maj > 1 || (maj === 1 && min >= 11);
      return proxyCapabilities('nginx', `nginx ${version} (stream)`, Object.keys(NGINX_SCHEDULERS), { transparent: this.tproxy });
    })();
    return this.caps;
  }

  unsupported(s: ServiceModel): string | undefined {
    if (s.transparent && this.tproxy === false) return 'transparent proxy: proxy_bind ... transparent needs nginx 1.11.0 or later';
    return nginxDeclines(this.model, this.node, s);
  }

  private argv(...extra: string[]): string[] {
    return ['nginx', '-e', 'stderr', '-p', this.proc.dir, '-c', this.proc.configFile, ...extra];
  }

  async apply(services: ServiceModel[]): Promise<ApplyResult> {
    refuseForeignOrUnsupported(this.node, services, (s) => this.unsupported(s));
    const before = this.proc.running ? await this.diff(services) : [{ service: '*', what: 'not running' }];
    const log: string[] = [];
    if (before.length) {
      // The director's routing for transparent server legs first (the proxy's first connection needs it).
      this.routing = await syncTransparentRouting(this.n, services, this.routing, log);
      await this.proc.writeConfig(nginxConfig(services, this.proc.dir));
      const check = await this.n.exec(this.argv('-t', '-q'), { timeoutMs: 30_000 });
      if (check.code !== 0) throw new DirectorApplyError(this.node, [`nginx refused the configuration: ${(check.stderr || check.stdout).trim()}`]);
      const want = services.map((s) => `${canonical(s.vip!)} ${s.port}`);
      await this.proc.start(this.argv(), async () => {
        const l = await listeningSockets(this.n);
        return want.every((w) => l.has(w));
      });
      log.push(`start nginx with ${services.length} stream server(s) (${this.proc.configFile})`);
    }
    return { changes: before.length, log, differences: await this.diff(services) };
  }

  async readBack(services: ServiceModel[] = []): Promise<DirectorService[]> {
    if (!this.proc.running) return [];
    const asked = new Map(services.map((s) => [serviceKey(s), s]));
    const listening = await listeningSockets(this.n);
    const t = await this.n.exec(this.argv('-T', '-q'), { timeoutMs: 30_000 });
    if (t.code !== 0) throw new Error(`nginx -T in ${this.node} exited with ${t.code}: ${t.stderr.trim()}`);
    const out: DirectorService[] = [];
    for (const held of parseNginxStreams(t.stdout)) {
      if (!listening.has(`${held.vip} ${held.port}`)) continue;
      const want = asked.get(serviceKey(held));
      if (want) held.name = want.name;
      out.push(held);
    }
    return out;
  }

  /** The services as nginx parses them, and (transparent services) the director's routing for them as the kernel holds it. */
  async diff(services: ServiceModel[]): Promise<DirectorDifference[]> {
    const out = diffServices(services, await this.readBack(services));
    if (this.proc.running) out.push(...await transparentRoutingDifferences(this.n, services));
    return out;
  }

  /** Open-source nginx keeps no per-upstream counters (capabilities say stats: false). */
  async stats(): Promise<DirectorServiceStats[]> {
    return [];
  }

  async connections(): Promise<DirectorConnection[]> {
    return [];
  }

  async flush(): Promise<void> {
    await this.proc.stop();
    await this.unroute();
  }

  /** The proxy process is the driver's: it stops with it; so is its routing. */
  async close(): Promise<void> {
    await this.proc.stop();
    await this.unroute();
  }

  private async unroute(): Promise<void> {
    if (!this.routing) return;
    this.routing = false;
    await removeTransparentRouting(this.n);
  }
}

/** The stream services of an `nginx -T` dump, in model terms (servers whose proxy_pass names an upstream of the dump). */
export function parseNginxStreams(dump: string): DirectorService[] {
  const text = dump.replace(/#[^\n]*/g, '');
  const upstreams = new Map<string, { scheduler: string; servers: Array<{ addr: string; port: number; weight: number }> }>();
  for (const m of text.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)) {
    const body = m[2];
    const servers = [...body.matchAll(/server\s+(\[[^\]]+\]|[^\s:;]+):(\d+)([^;]*);/g)].map((x) => ({
      addr: canonical(x[1].replace(/^\[|\]$/g, '')), port: Number(x[2]), weight: Number(/weight=(\d+)/.exec(x[3])?.[1] ?? 1),
    }));
    const scheduler = /\brandom\s+two\b/.test(body) ? 'twos' : /\bhash\s+\$remote_addr\s+consistent\b/.test(body) ? 'sh'
      : /\bleast_conn\b/.test(body) ? 'wlc' : /\b(hash|ip_hash|random)\b/.test(body) ? 'nginx:other' : 'wrr';
    upstreams.set(m[1], { scheduler, servers });
  }
  const out: DirectorService[] = [];
  for (const m of text.matchAll(/server\s*\{([^}]*)\}/g)) {
    const listen = /listen\s+(\[[^\]]+\]|[^\s:;]+):(\d+)/.exec(m[1]);
    const pass = /proxy_pass\s+([^;\s]+)\s*;/.exec(m[1]);
    const up = pass && upstreams.get(pass[1]);
    if (!listen || !up) continue;
    const vip = canonical(listen[1].replace(/^\[|\]$/g, ''));
    const family: Family = vip.includes(':') ? 6 : 4;
    out.push({
      protocol: 'tcp', family, vip, port: Number(listen[2]), scheduler: up.scheduler, flags: [], onePacket: false,
      ...(/(^|[\s;{])proxy_bind\s+\$remote_addr\s+transparent\s*;/.test(m[1]) ? { transparent: true } : {}),
      realServers: up.servers.map((r) => ({ ...r, family: (r.addr.includes(':') ? 6 : 4) as Family, upper: 0, lower: 0, method: 'proxy' as const })),
    });
  }
  return out;
}

export const nginxDriver: DirectorDriverDefinition = {
  name: 'nginx',
  summary: 'nginx stream module: a proxy (method proxy), scheduler mapping wrr/wlc/sh/twos, read back from nginx -T and the listening sockets',
  unavailable: (backend) => proxyUnavailable('nginx', backend),
  declines: nginxDeclines,
  open: async (lab, node) => new NginxDirector(lab.node(node), lab.model),
};

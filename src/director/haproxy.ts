// The "haproxy" director driver: haproxy in `mode tcp` as the implementation under test (a proxy: method
// proxy, docs/proxy.md). The model's services become one frontend (bind VIP:port) and one backend each,
// named after the service key; haproxy runs in the foreground in the director node (node.spawn), with a
// stats socket in the node's work directory. Read-back asks haproxy itself: `show stat` (backends, their
// balance algorithm, counters) and `show servers state` (servers, addresses, ports, weights), and the
// node's kernel for the listening sockets (`ss`): a frontend nobody listens for is not held.
//
// Scheduler mapping (declared, checked statistically by suites/proxy): rr -> static-rr with equal weights,
// wrr -> roundrobin, wlc -> leastconn, sh -> source, ovf -> first (maxconn = the real server's upper
// threshold), twos -> random(2). Health checks are off unless VSLAB_PROXY_CHECK_MS is set (then `check
// inter N` on every server, and the probes are a declared background class).
import type { LabNode } from '../backend/types';
import { canonical } from '../topology/addr';
import type { Family, LabModel, ServiceModel } from '../topology/model';
import { diffServices, serviceKey } from './diff';
import {
  healthCheckClass, healthCheckInterval, hostPort, listeningSockets, parseProxyName, proxyCapabilities, proxyDeclines, proxyName, ProxyProcess,
  proxyUnavailable, refuseForeignOrUnsupported, removeTransparentRouting, syncTransparentRouting, transparentRoutingDifferences,
} from './proxy-common';
import type { DirectorDriverDefinition } from './registry';
import {
  type ApplyResult, DirectorApplyError, type DirectorCapabilities, type DirectorConnection, type DirectorCounters, type DirectorDifference,
  type DirectorDriver, type DirectorService, type DirectorServiceStats,
} from './types';

/** Model scheduler -> haproxy `balance` algorithm. */
export const HAPROXY_SCHEDULERS: Record<string, string> = { rr: 'static-rr', wrr: 'roundrobin', wlc: 'leastconn', sh: 'source', ovf: 'first', twos: 'random(2)' };

export function haproxyDeclines(_model: LabModel, _node: string, s: ServiceModel): string | undefined {
  const why = proxyDeclines('haproxy', HAPROXY_SCHEDULERS, s);
  if (why) return why;
  if (s.scheduler === 'ovf' && s.realServers.some((r) => !r.upper)) return 'scheduler ovf (haproxy first) needs an upper threshold on every real server (its maxconn)';
  if (s.scheduler !== 'ovf' && s.realServers.some((r) => r.upper || r.lower)) return 'connection thresholds: the haproxy driver maps an upper threshold to maxconn only for ovf (first)';
  return undefined;
}

/** The haproxy configuration for `services` (pure). */
export function haproxyConfig(services: ServiceModel[], dir: string, checkMs?: number): string {
  const out = [
    '# written by vslab (src/director/haproxy.ts)',
    'global', `  stats socket ${dir}/haproxy.sock mode 600 level admin`, '  maxconn 4096',
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '',
  ];
  for (const s of services) {
    const name = proxyName(s);
    const rr = s.scheduler === 'rr';
    out.push(`frontend ${name}`, `  bind ${hostPort(s.vip!, s.port)}`, `  default_backend ${name}`, '');
    out.push(`backend ${name}`, `  balance ${HAPROXY_SCHEDULERS[s.scheduler]}`);
    // Transparent: connect from the client's address (IP_TRANSPARENT); the port is the kernel's choice.
    // (haproxy reads a bare "::" as host:port: the IPv6 wildcard is written in brackets.)
    if (s.transparent) out.push(`  source ${s.family === 6 ? '[::]' : '0.0.0.0'} usesrc clientip`);
    s.realServers.forEach((r, k) => {
      const opts = [`weight ${rr ? 1 : r.weight}`];
      if (s.scheduler === 'ovf') opts.push(`maxconn ${r.upper}`);
      if (checkMs) opts.push(`check inter ${checkMs}`);
      out.push(`  server ${r.node}-${k} ${hostPort(r.addr, r.port)} ${opts.join(' ')}`);
    });
    out.push('');
  }
  return out.join('\n');
}

/**
 * The backends whose connections come from the client's address (`source <any> usesrc clientip`), in a
 * haproxy configuration: haproxy's runtime API (stats socket) does not show a backend's source, so the
 * read-back takes it from the configuration file the running haproxy was started with, in the node.
 */
export function haproxyTransparentBackends(config: string): Set<string> {
  return new Set([...backendLines(config)].filter(([, lines]) => lines.some((l) => /^source\s+\S+\s+usesrc\s+clientip$/.test(l))).map(([b]) => b));
}

/**
 * The `balance` argument of each backend of a haproxy configuration. haproxy 2.6 reports `balance random(2)`
 * as algo "unknown" in `show stat` (measured), so the read-back takes that one from the configuration file.
 */
export function haproxyBalances(config: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [b, lines] of backendLines(config)) {
    const m = lines.map((l) => /^balance\s+(\S+)/.exec(l)).find((x) => x);
    if (m) out.set(b, m[1]);
  }
  return out;
}

/** The lines (comments stripped, trimmed) of each backend or listen section. */
function backendLines(config: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let backend: string | undefined;
  for (const raw of config.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const section = /^(global|defaults|frontend|backend|listen|resolvers|peers|userlist|program)\b\s*(\S*)/.exec(line);
    if (section && !/^\s/.test(raw)) {
      backend = section[1] === 'backend' || section[1] === 'listen' ? section[2] : undefined;
      if (backend) out.set(backend, []);
      continue;
    }
    if (backend && line) out.get(backend)!.push(line);
  }
  return out;
}

export class HaproxyDirector implements DirectorDriver {
  readonly kind = 'haproxy';
  private caps?: Promise<DirectorCapabilities>;
  private readonly proc: ProxyProcess;
  private readonly checkMs = healthCheckInterval();
  /** haproxy built with TPROXY (haproxy -vv), learnt by capabilities(). */
  private tproxy?: boolean;
  /** The director's transparent routing is in place (applied by this driver). */
  private routing = false;

  constructor(private readonly n: LabNode, private readonly model: LabModel) {
    this.proc = new ProxyProcess(n, 'haproxy', `${n.workDir}/vslab-haproxy`);
  }

  get node(): string {
    return this.n.name;
  }

  capabilities(): Promise<DirectorCapabilities> {
    this.caps ??= (async () => {
      const v = await this.n.exec(['haproxy', '-v']);
      const version = /version (\S+)/.exec(v.stdout)?.[1] ?? '(version unknown)';
      const vv = await this.n.exec(['haproxy', '-vv']);
      this.tproxy = /(^|\s)\+(LINUX_)?TPROXY\b/m.test(vv.stdout);
      return proxyCapabilities('haproxy', `haproxy ${version} (mode tcp)`, Object.keys(HAPROXY_SCHEDULERS), {
        thresholds: false, transparent: this.tproxy,
        ...(this.checkMs ? { background: [healthCheckClass(this.model, this.node, 'driver haproxy')] } : {}),
      });
    })();
    return this.caps;
  }

  unsupported(s: ServiceModel): string | undefined {
    if (s.transparent && this.tproxy === false) return 'transparent proxy: this haproxy was built without TPROXY (haproxy -vv has no +TPROXY), so it cannot use usesrc clientip';
    return haproxyDeclines(this.model, this.node, s);
  }

  private async cli(command: string): Promise<string> {
    const r = await this.n.exec(['socat', '-t', '5', '-', `UNIX-CONNECT:${this.proc.dir}/haproxy.sock`], { input: `${command}\n`, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`haproxy in ${this.node}: "${command}" on its stats socket failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  async apply(services: ServiceModel[]): Promise<ApplyResult> {
    refuseForeignOrUnsupported(this.node, services, (s) => this.unsupported(s));
    const before = this.proc.running ? await this.diff(services) : [{ service: '*', what: 'not running' }];
    const log: string[] = [];
    if (before.length) {
      // The director's routing for transparent server legs first (the proxy's first connection needs it).
      this.routing = await syncTransparentRouting(this.n, services, this.routing, log);
      await this.proc.writeConfig(haproxyConfig(services, this.proc.dir, this.checkMs));
      // Not -q: haproxy -q says nothing about what it refused.
      const check = await this.n.exec(['haproxy', '-c', '-f', this.proc.configFile], { timeoutMs: 30_000 });
      if (check.code !== 0) throw new DirectorApplyError(this.node, [`haproxy refused the configuration: ${(check.stderr + check.stdout).split('\n').filter((l) => /ALERT/.test(l)).join(' | ').trim() || `exit ${check.code}`}`]);
      const want = services.map((s) => `${canonical(s.vip!)} ${s.port}`);
      await this.proc.start(['haproxy', '-db', '-f', this.proc.configFile], async () => {
        const l = await listeningSockets(this.n);
        return want.every((w) => l.has(w)) && (await this.cli('show info').then(() => true, () => false));
      });
      log.push(`start haproxy with ${services.length} frontend(s) (${this.proc.configFile})`);
    }
    return { changes: before.length, log, differences: await this.diff(services) };
  }

  async readBack(services: ServiceModel[] = []): Promise<DirectorService[]> {
    if (!this.proc.running) return [];
    const asked = new Map(services.map((s) => [serviceKey(s), s]));
    const listening = await listeningSockets(this.n);
    const stat = parseCsv(await this.cli('show stat'));
    const state = (await this.cli('show servers state')).split('\n').filter((l) => /^\d/.test(l)).map((l) => l.trim().split(/\s+/));
    const conf = await this.n.exec(['cat', this.proc.configFile], { timeoutMs: 30_000 });
    if (conf.code !== 0) throw new Error(`haproxy in ${this.node}: its configuration ${this.proc.configFile} cannot be read: ${conf.stderr.trim()}`);
    const transparent = haproxyTransparentBackends(conf.stdout);
    const balances = haproxyBalances(conf.stdout);
    const out: DirectorService[] = [];
    for (const be of stat.filter((r) => r.svname === 'BACKEND')) {
      const key = parseProxyName(be.pxname);
      const fe = stat.find((r) => r.pxname === be.pxname && r.svname === 'FRONTEND');
      // A frontend haproxy does not listen for is not held, whatever its name says.
      if (!key || !fe || !listening.has(`${key.vip} ${key.port}`)) continue;
      const family: Family = key.vip.includes(':') ? 6 : 4;
      const servers = state.filter((w) => w[1] === be.pxname).map((w) => ({
        addr: canonical(w[4]), family: (w[4].includes(':') ? 6 : 4) as Family, port: Number(w[18]), weight: Number(w[7]),
        upper: 0, lower: 0, method: 'proxy' as const,
      }));
      for (const srv of servers) {
        const row = stat.find((r) => r.pxname === be.pxname && r.addr === hostPort(srv.addr, srv.port));
        if (be.algo === 'first' && row?.slim) srv.upper = Number(row.slim);
      }
      // "unknown" is what haproxy 2.6's stats say for random(N): the configuration says which.
      const algo = be.algo === 'unknown' && /^random(\(\d+\))?$/.test(balances.get(be.pxname) ?? '') ? balances.get(be.pxname) : be.algo;
      const scheduler = schedulerOf(algo, servers.map((s) => s.weight));
      const held: DirectorService = { protocol: 'tcp', family, vip: key.vip, port: key.port, scheduler, flags: [], onePacket: false, realServers: servers };
      if (transparent.has(be.pxname)) held.transparent = true;
      const want = asked.get(serviceKey(held));
      if (want) held.name = want.name;
      out.push(held);
    }
    return out;
  }

  /** The services as haproxy holds them, and (transparent services) the director's routing for them as the kernel holds it. */
  async diff(services: ServiceModel[]): Promise<DirectorDifference[]> {
    const out = diffServices(services, await this.readBack(services));
    if (this.proc.running) out.push(...await transparentRoutingDifferences(this.n, services));
    return out;
  }

  /** haproxy counts sessions and bytes (not packets): conns = stot, inBytes = bin, outBytes = bout. */
  async stats(services: ServiceModel[] = []): Promise<DirectorServiceStats[]> {
    if (!this.proc.running) return [];
    const stat = parseCsv(await this.cli('show stat'));
    const held = await this.readBack(services);
    const c = (r?: Record<string, string>): DirectorCounters => ({
      conns: Number(r?.stot || 0), inPkts: 0, outPkts: 0, inBytes: Number(r?.bin || 0), outBytes: Number(r?.bout || 0), cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0,
    });
    return held.map((s) => {
      const name = proxyName(s);
      return {
        service: s.name ?? serviceKey(s),
        counters: c(stat.find((r) => r.pxname === name && r.svname === 'BACKEND')),
        realServers: s.realServers.map((r) => {
          const row = stat.find((x) => x.pxname === name && x.addr === hostPort(r.addr, r.port));
          return { addr: r.addr, port: r.port, counters: c(row), activeConns: Number(row?.scur || 0), inactiveConns: 0, persistConns: 0 };
        }),
      };
    });
  }

  async connections(): Promise<DirectorConnection[]> {
    return [];
  }

  async flush(): Promise<void> {
    await this.proc.stop();
    await this.unroute();
  }

  /** The proxy process is the driver's: it stops with it (it would otherwise hold the lab's namespace); so is its routing. */
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

function schedulerOf(algo: string | undefined, weights: number[]): string {
  const same = weights.every((w) => w === weights[0]);
  switch (algo) {
    case 'static-rr': return same ? 'rr' : 'wrr';
    case 'roundrobin': return 'wrr';
    case 'leastconn': return 'wlc';
    case 'source': return 'sh';
    case 'first': return 'ovf';
    case 'random': // haproxy's default number of draws is 2
    case 'random(2)': return 'twos';
    default: return `haproxy:${algo ?? 'unknown'}`;
  }
}

/** `show stat` CSV ("# pxname,svname,...") as objects. */
export function parseCsv(text: string): Array<Record<string, string>> {
  const lines = text.split('\n').filter((l) => l.trim());
  const head = lines.find((l) => l.startsWith('# '));
  if (!head) throw new Error(`haproxy "show stat" gave no header: ${text.slice(0, 200)}`);
  const cols = head.slice(2).split(',');
  return lines.filter((l) => !l.startsWith('#')).map((l) => {
    const v = l.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, v[i] ?? '']));
  });
}

export const haproxyDriver: DirectorDriverDefinition = {
  name: 'haproxy',
  summary: 'haproxy mode tcp: a proxy (method proxy), scheduler mapping rr/wrr/wlc/sh/ovf/twos, read back from its stats socket',
  unavailable: (backend) => proxyUnavailable('haproxy', backend),
  declines: haproxyDeclines,
  open: async (lab, node) => new HaproxyDirector(lab.node(node), lab.model),
};

// An HA group at run time: keepalived on every director of the lab's `ha` block, the long-lived flow tools,
// and the fault actions (kill/restore a director, fail/restore a real server, drain/restore one, partition
// and heal the sync link). Every action runs inside a lab node and is stamped with that machine's wall
// clock (the clock of the captures), so failover times are read against the packets.
import * as path from 'path';
import type { LabNode, NodeProcess, RunningLab } from '../backend/types';
import type { HaDirectorModel, HaModel, RealServerModel, ServiceModel } from '../topology/model';
import { keepalivedConfig, groupServices, type KeepalivedOptions } from './keepalived';
import type { StreamReportEvent, StreamUpEvent } from './stream';

export type HaActionKind = 'start-director' | 'kill-director' | 'restore-director' | 'fail-real-server' | 'restore-real-server'
  | 'drain-real-server' | 'undrain-real-server' | 'partition-sync' | 'heal-sync';

export interface HaAction {
  action: HaActionKind;
  target: string;
  /** Wall clock of the lab machine when the action took effect, ms. */
  at: number;
  command: string;
}

const RUN_DIR = (lab: string, node: string) => `/tmp/vslab-ha-${lab}-${node}`;
const STREAM_JS = path.resolve(__dirname, '..', '..', 'dist', 'ha', 'stream.js');

async function must(node: LabNode, argv: string[], what: string, input?: string): Promise<string> {
  const r = await node.exec(argv, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0) throw new Error(`${node.name}: ${what} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** Wall clock minus /proc/uptime of the lab machine, ms (busybox date has no sub-second format). */
const clockOffsets = new WeakMap<RunningLab, Promise<number>>();
function clockOffset(lab: RunningLab, node: LabNode): Promise<number> {
  let p = clockOffsets.get(lab);
  if (!p) {
    p = must(node, [process.execPath, '-e', 'const u = require("fs").readFileSync("/proc/uptime", "utf8"); console.log(Date.now() - Math.round(parseFloat(u) * 1000))'], 'reading the clock')
      .then((out) => Number(out.trim()));
    clockOffsets.set(lab, p);
  }
  return p;
}

/** Runs a shell script in a node and returns the lab machine's wall clock (ms, 10 ms steps) just before it. */
/**
 * Shell: SIGKILL the keepalived processes named by the pid files in `dir` — only processes that are keepalived: a
 * pid file left by an earlier keepalived can name a recycled pid (seen: the capture's tcpdump on the director was
 * killed that way, and its test lost its capture).
 */
function killKeepalived(dir: string): string {
  return `for f in ${dir}/*.pid; do p=$(cat "$f" 2>/dev/null) || continue; [ "$(cat /proc/$p/comm 2>/dev/null)" = keepalived ] && kill -9 "$p" 2>/dev/null; done`;
}

async function stamped(lab: RunningLab, node: LabNode, script: string, what: string): Promise<number> {
  const offset = await clockOffset(lab, node);
  const out = await must(node, ['sh', '-c', `cat /proc/uptime; ${script}`], what);
  return offset + Math.round(parseFloat(out.split('\n')[0]) * 1000);
}

export class HaGroup {
  readonly actions: HaAction[] = [];
  private readonly keepalived = new Map<string, NodeProcess>();
  private readonly logs = new Map<string, string>();
  readonly ha: HaModel;

  constructor(readonly lab: RunningLab, readonly opts: KeepalivedOptions = {}) {
    if (!lab.model.ha) throw new Error(`lab ${lab.name} has no ha block`);
    this.ha = lab.model.ha;
  }

  director(name: string): HaDirectorModel {
    const d = this.ha.directors.find((x) => x.node === name);
    if (!d) throw new Error(`"${name}" is not a director of the ha group (${this.ha.directors.map((x) => x.node).join(', ')})`);
    return d;
  }

  /** Writes each director's keepalived.conf, sets the sync sysctls and starts keepalived everywhere. */
  async start(): Promise<void> {
    for (const d of this.ha.directors) {
      // A keepalived an earlier test worker started in the run's shared VM is kept (restarting it would
      // flush IPVS and re-elect); a dead one is started again.
      if (await this.running(d.node)) continue;
      await this.startDirector(d.node, 'start-director');
    }
  }

  /** keepalived of this lab runs on the director (its pid file names a live process). */
  private async running(name: string): Promise<boolean> {
    const dir = RUN_DIR(this.lab.name, name);
    const r = await this.lab.node(name).exec(['sh', '-c', `[ -f ${dir}/keepalived.pid ] && kill -0 $(cat ${dir}/keepalived.pid)`]);
    return r.code === 0;
  }

  private async startDirector(name: string, action: HaActionKind): Promise<number> {
    const d = this.director(name);
    const node = this.lab.node(d.node);
    const dir = RUN_DIR(this.lab.name, d.node);
    await must(node, ['sh', '-c', `mkdir -p ${dir} && cat > ${dir}/keepalived.conf`], 'writing keepalived.conf', keepalivedConfig(this.lab.model, d.node, this.opts));
    // ip_vs is loaded by the lab (kernel IPVS); its sysctls are per namespace.
    if (this.ha.sync) {
      const s = this.ha.sync;
      await must(node, ['sh', '-c', `modprobe ip_vs 2>/dev/null; echo "${s.threshold} ${s.period}" > /proc/sys/net/ipv4/vs/sync_threshold && echo ${s.refreshS} > /proc/sys/net/ipv4/vs/sync_refresh_period`], 'setting net.ipv4.vs.sync_threshold and sync_refresh_period');
    }
    // Whatever is left of an earlier keepalived of this director goes first (all of its processes at once,
    // so the parent cannot respawn a child).
    const at = await stamped(this.lab, node, `${killKeepalived(dir)}; rm -f ${dir}/*.pid; true`, 'clearing an earlier keepalived');
    const proc = node.spawn(['keepalived', '--dont-fork', '--log-console', '--log-detail', '--use-file', `${dir}/keepalived.conf`,
      '--pid', `${dir}/keepalived.pid`, '--vrrp_pid', `${dir}/vrrp.pid`, '--checkers_pid', `${dir}/checkers.pid`]);
    let log = '';
    const keep = (b: Buffer | string) => { log = (log + b.toString()).slice(-64 * 1024); this.logs.set(d.node, log); };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    void proc.wait().catch(() => undefined);
    this.keepalived.set(d.node, proc);
    this.actions.push({ action, target: d.node, at, command: `keepalived -f ${dir}/keepalived.conf` });
    return at;
  }

  /** keepalived's output of a director (for failure messages). */
  log(name: string): string {
    return this.logs.get(name) ?? '';
  }

  /** Which directors hold the VIPs now (normally exactly one). */
  async holders(): Promise<string[]> {
    const out: string[] = [];
    const vip = this.ha.vips[0].split('/')[0];
    for (const d of this.ha.directors) {
      // A killed director keeps the address on its interface, but nothing reaches it: it holds nothing.
      const r = await this.lab.node(d.node).exec(['sh', '-c', `nft list table netdev vslab_ha_down >/dev/null 2>&1 && echo DOWN; ip -o addr show dev ${d.vrrpIface}`]);
      if (r.code === 0 && !r.stdout.startsWith('DOWN') && r.stdout.split(/\s+/).some((w) => w.split('/')[0] === vip)) out.push(d.node);
    }
    return out;
  }

  /** Waits until `name` (or, without a name, any one director) alone holds the VIPs. */
  async waitMaster(name?: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let h: string[] = [];
    while (Date.now() < deadline) {
      h = await this.holders();
      if (h.length === 1 && (!name || h[0] === name)) return h[0];
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`no single VRRP master${name ? ` "${name}"` : ''} within ${timeoutMs} ms (VIP held by: ${h.join(', ') || 'nobody'})\n${this.ha.directors.map((d) => `--- keepalived on ${d.node}:\n${this.log(d.node).slice(-3000)}`).join('\n')}`);
  }

  /** Waits until every director's IPVS holds each group service (keepalived programs them; its health
   *  checks then decide which real servers stay) and, with `realServers`, every real server of each with a
   *  weight (the checks found them serving: a service without any answers the client's SYN with an ICMP port
   *  unreachable). */
  async waitProgrammed(timeoutMs = 30_000, realServers = false): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const services = groupServices(this.lab.model);
    const head = (s: ServiceModel) => `${s.protocol.toUpperCase()}  ${s.family === 6 ? `[${s.vip}]` : s.vip}:${s.port} `;
    const held = (out: string) => services.every((s) => {
      const at = out.indexOf(head(s));
      if (at < 0) return false;
      if (!realServers) return true;
      // The service's block: its real-server lines ("  -> ADDR:PORT  Forward Weight ..."), each with a weight.
      const block = out.slice(at).split('\n').slice(1);
      const end = block.findIndex((l) => !/^\s+->/.test(l));
      const lines = block.slice(0, end < 0 ? undefined : end);
      return s.realServers.every((r) => lines.some((l) => {
        const m = /^\s+->\s+(\S+)\s+\S+\s+(\d+)/.exec(l);
        return !!m && m[1] === `${r.family === 6 ? `[${r.addr}]` : r.addr}:${r.port}` && Number(m[2]) > 0;
      }));
    });
    for (const d of this.ha.directors) {
      for (;;) {
        const r = await this.lab.node(d.node).exec(['ipvsadm', '-Ln']);
        if (r.code === 0 && held(r.stdout)) break;
        if (Date.now() > deadline) throw new Error(`director ${d.node}: keepalived did not program IPVS${realServers ? ' with every real server in' : ''} within ${timeoutMs} ms (ipvsadm -Ln:\n${r.stdout}${r.stderr})\n${this.log(d.node).slice(-3000)}`);
        await new Promise((res) => setTimeout(res, 300));
      }
    }
  }

  /**
   * Cuts every link of a node at its own end: all frames in and out dropped (netdev ingress and egress), as
   * a pulled cable would, while the captures on its interfaces keep running (a link set down would end them).
   */
  private cutScript(node: string, ifaces: string[], table: string): string {
    const chains = ifaces.flatMap((i) => (['ingress', 'egress'] as const).map((h) => `chain ${h}_${i} { type filter hook ${h} device "${i}" priority -500; policy drop; }`));
    return `nft -f - <<'EOF'\ntable netdev ${table} {\n${chains.map((c) => `  ${c}`).join('\n')}\n}\nEOF`;
  }

  private ifacesOf(node: string): string[] {
    return this.lab.model.nodes.find((n) => n.name === node)!.interfaces.map((i) => i.name);
  }

  /** A crashed director: nothing enters or leaves it any more, then its keepalived dies without a word. */
  async killDirector(name: string): Promise<number> {
    this.director(name);
    const node = this.lab.node(name);
    const dir = RUN_DIR(this.lab.name, name);
    const script = `${this.cutScript(name, this.ifacesOf(name), 'vslab_ha_down')}\n${killKeepalived(dir)}; true`;
    const at = await stamped(this.lab, node, script, 'killing the director');
    this.keepalived.get(name)?.kill('SIGKILL');
    this.keepalived.delete(name);
    this.actions.push({ action: 'kill-director', target: name, at, command: `cut every link of ${name} (nft netdev drop), kill -9 keepalived` });
    return at;
  }

  /** The director comes back: links restored, keepalived started again (it joins as backup; preemption decides). */
  async restoreDirector(name: string): Promise<number> {
    await must(this.lab.node(name), ['nft', 'delete', 'table', 'netdev', 'vslab_ha_down'], 'restoring the links');
    return this.startDirector(name, 'restore-director');
  }

  private realServer(rs: string): string {
    const n = this.lab.model.nodes.find((x) => x.name === rs);
    if (!n || n.role !== 'real-server') throw new Error(`"${rs}" is not a real server of lab ${this.lab.name}`);
    return n.name;
  }

  /** A real server fails: its links are cut (no answer, no reset). */
  async failRealServer(rs: string): Promise<number> {
    const at = await stamped(this.lab, this.lab.node(this.realServer(rs)), this.cutScript(rs, this.ifacesOf(rs), 'vslab_ha_down'), 'failing the real server');
    this.actions.push({ action: 'fail-real-server', target: rs, at, command: `cut every link of ${rs} (nft netdev drop)` });
    return at;
  }

  async restoreRealServer(rs: string): Promise<number> {
    const cmd = 'nft delete table netdev vslab_ha_down';
    const at = await stamped(this.lab, this.lab.node(this.realServer(rs)), cmd, 'restoring the real server');
    this.actions.push({ action: 'restore-real-server', target: rs, at, command: cmd });
    return at;
  }

  /** Weight 0 on every director (quiesced: no new connections, established ones continue). */
  async drain(rs: string, weight = 0): Promise<number> {
    let first = 0;
    const cmds: string[] = [];
    for (const s of groupServices(this.lab.model)) {
      const r = s.realServers.find((x: RealServerModel) => x.node === rs);
      if (!r || !s.vip || r.method === 'proxy') continue;
      const fam = s.family === 6 ? `[${s.vip}]:${s.port}` : `${s.vip}:${s.port}`;
      const rip = r.family === 6 ? `[${r.addr}]:${r.port}` : `${r.addr}:${r.port}`;
      const flag = { dr: '-g', tun: '-i', nat: '-m', fullnat: '-m' }[r.method];
      const w = weight < 0 ? r.weight : weight;
      cmds.push(`ipvsadm -e ${s.protocol === 'udp' ? '-u' : s.protocol === 'sctp' ? '--sctp-service' : '-t'} ${fam} -r ${rip} ${flag} -w ${w}`);
    }
    if (!cmds.length) throw new Error(`"${rs}" serves no service of the ha group`);
    for (const d of this.ha.directors) {
      // Every director whose keepalived runs — also one a test worker before this one started (this group's
      // map knows only its own: asking it made a drain after a worker restart change nothing, at time 0).
      if (!(await this.running(d.node))) continue;
      const at = await stamped(this.lab, this.lab.node(d.node), cmds.join(' && '), `setting the weight of ${rs}`);
      first ||= at;
    }
    if (!first) throw new Error(`no director of the ha group runs keepalived: the weight of ${rs} was not set`);
    this.actions.push({ action: weight < 0 ? 'undrain-real-server' : 'drain-real-server', target: rs, at: first, command: cmds.join('; ') });
    return first;
  }

  /** The time now on `node`, in the captures' time base (as fault actions are stamped). */
  now(node: string): Promise<number> {
    return stamped(this.lab, this.lab.node(node), 'true', 'reading the clock');
  }

  /** Restores the model's weight. */
  undrain(rs: string): Promise<number> {
    return this.drain(rs, -1);
  }

  /** Cuts the sync segment at every director; VRRP continues on its own segment. */
  async partitionSync(up = false): Promise<number> {
    if (!this.ha.sync) throw new Error('the ha group has no connection sync to partition');
    if (this.ha.sync.segment === this.ha.segment) throw new Error(`sync runs over the VRRP segment "${this.ha.segment}": partitioning it would partition VRRP too`);
    let first = 0;
    for (const d of this.ha.directors) {
      const cmd = up ? 'nft delete table netdev vslab_ha_partition' : this.cutScript(d.node, [d.syncIface], 'vslab_ha_partition');
      const at = await stamped(this.lab, this.lab.node(d.node), cmd, up ? 'healing the sync link' : 'partitioning the sync link');
      first ||= at;
    }
    this.actions.push({ action: up ? 'heal-sync' : 'partition-sync', target: this.ha.sync.segment, at: first, command: `${up ? 'restore' : 'cut'} ${this.ha.directors.map((d) => `${d.node}:${d.syncIface}`).join(', ')}` });
    return first;
  }

  healSync(): Promise<number> {
    return this.partitionSync(true);
  }

  /** Stops keepalived everywhere (SIGTERM: it removes the VIPs and its IPVS services). */
  async stop(): Promise<void> {
    for (const [name, p] of this.keepalived) {
      p.kill('SIGTERM');
      await Promise.race([p.wait().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
      this.keepalived.delete(name);
    }
  }
}

// ---- long-lived flows --------------------------------------------------------------------------

export interface StreamServers {
  stop(): Promise<void>;
}

/** An echo server on every real server of `service` (the port given in the model). */
export async function startStreamServers(lab: RunningLab, service: string): Promise<StreamServers> {
  const s = lab.model.services.find((x) => x.name === service);
  if (!s) throw new Error(`lab ${lab.name} has no service "${service}"`);
  const procs: NodeProcess[] = [];
  try {
    // In parallel: a node start in a TCG guest on a busy host can take tens of seconds.
    await Promise.all(s.realServers.map(async (r) => {
      // Already serving (started by an earlier worker in the run's shared VM): kept.
      const busy = await lab.node(r.node).exec(['ss', '-Htln', `sport = :${r.port}`]);
      if (busy.code === 0 && busy.stdout.trim()) return;
      const p = lab.node(r.node).spawn([process.execPath, STREAM_JS, 'serve', '--name', r.node, '--port', String(r.port)]);
      procs.push(p);
      await firstLine(p, 120_000, `stream server on ${r.node}`);
    }));
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
  return { async stop() { for (const p of procs) { p.kill('SIGTERM'); await p.wait().catch(() => undefined); } } };
}

function firstLine(p: NodeProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const t = setTimeout(() => reject(new Error(`${what}: nothing within ${timeoutMs} ms; stderr: ${err.trim()}`)), timeoutMs);
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) { clearTimeout(t); resolve(buf.slice(0, nl)); }
    });
    void p.wait().then((st) => { clearTimeout(t); reject(new Error(`${what} exited (code ${st.code}): ${err.trim()}`)); }, () => undefined);
  });
}

export interface StreamClient {
  up: StreamUpEvent;
  /** Stops sending, waits for the echoes in flight and returns the per-flow report. */
  stop(): Promise<StreamReportEvent>;
}

/** N long-lived flows from `client` to the service's VIP, source ports sport... */
export async function startStreamClient(lab: RunningLab, client: string, service: string, flows: number, sport: number, intervalMs = 50): Promise<StreamClient> {
  const s = lab.model.services.find((x) => x.name === service);
  if (!s?.vip) throw new Error(`lab ${lab.name} has no service "${service}" with a VIP`);
  const target = s.family === 6 ? `[${s.vip}]:${s.port}` : `${s.vip}:${s.port}`;
  const p = lab.node(client).spawn([process.execPath, STREAM_JS, 'client', '--target', target, '--flows', String(flows), '--sport', String(sport), '--interval', String(intervalMs)]);
  const lines: string[] = [];
  let buf = '';
  let err = '';
  const waiters: Array<() => void> = [];
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    for (const w of waiters.splice(0)) w();
  });
  const exited = p.wait();
  const next = (event: string, timeoutMs: number): Promise<unknown> => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`stream client on ${client}: no "${event}" within ${timeoutMs} ms; stderr: ${err.trim()}`)), timeoutMs);
    const look = () => {
      const l = lines.find((x) => x.includes(`"event":"${event}"`));
      if (l) { clearTimeout(t); resolve(JSON.parse(l)); } else waiters.push(look);
    };
    void exited.then((st) => { if (!lines.some((x) => x.includes(`"event":"${event}"`))) { clearTimeout(t); reject(new Error(`stream client on ${client} exited (code ${st.code}) before "${event}": ${err.trim()}`)); } }, () => undefined);
    look();
  });
  const up = (await next('up', 120_000)) as StreamUpEvent;
  return {
    up,
    async stop() {
      p.stdin.write('stop\n');
      // The report comes after the last echoes (3 s at most) — a starved TCG guest has taken more than 30 s. Once
      // the "stop" line did not arrive (seen: a client still sending into the next test's capture 2 minutes
      // later): SIGTERM asks the same; a client that still gives nothing is killed, never left running.
      let rep: StreamReportEvent;
      try {
        rep = (await next('report', 60_000)) as StreamReportEvent;
      } catch {
        p.kill('SIGTERM');
        try {
          rep = (await next('report', 60_000)) as StreamReportEvent;
        } catch (e) {
          p.kill('SIGKILL');
          throw e;
        }
      }
      await Promise.race([exited.catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
      return rep;
    },
  };
}

// A virtual service as the kernel runs it, for predicting scheduler choices connection by
// connection: the destination list in kernel order (new destinations at the head,
// __ip_vs_update_dest in ip_vs_ctl.c), the trash of deleted destinations, per-destination counters
// and the OVERLOAD flag (ip_vs_bind_dest / ip_vs_unbind_dest in ip_vs_conn.c), the connection table
// with the TCP/UDP states that decide active vs inactive accounting (ip_vs_proto_tcp.c,
// ip_vs_proto_udp.c), persistence templates (ip_vs_sched_persist in ip_vs_core.c), one-packet
// scheduling, connection reuse for a new SYN on an old entry (ip_vs_in_hook) and the timers that
// expire connections and templates.
//
// Time is a model clock in seconds that only moves when advance() is called; everything between two
// advances happens "at once". Timer expiries that fall close to an action are reported through
// warnings, because the real kernel's timer slack and the replayer's own latency could order them
// differently.

import { type Address, maskAddress } from './address';
import { Dest, destKey, type ForwardMethod } from './dest';
import { SeededRandom } from './prng';
import type { Choice, SchedPacket, Scheduler, SchedulerFactory, SchedulerHost, SchedulerName } from './scheduler';
import { SCHEDULER_FACTORIES } from './schedulers';

export type Protocol = 'tcp' | 'udp';

/** IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_ONEPACKET (uapi ip_vs.h). */
export const SVC_F_PERSISTENT = 0x1;
export const SVC_F_ONEPACKET = 0x4;

/** TCP state timeouts (ip_vs_proto_tcp.c tcp_timeouts) and UDP (ip_vs_proto_udp.c), seconds. */
export const TIMEOUTS = {
  /** A fresh entry before its first state transition (ip_vs_conn_new arms 3 s). */
  NONE: 3,
  SYN_RECV: 60,
  ESTABLISHED: 900,
  FIN_WAIT: 120,
  TIME_WAIT: 120,
  UDP: 300,
  /** expire_later re-arm of a template that still controls connections (ip_vs_conn_expire). */
  TEMPLATE_KEEPALIVE: 60,
} as const;

export type ConnState = 'NONE' | 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT' | 'TIME_WAIT' | 'UDP';

/**
 * The three timeouts `ipvsadm --set tcp tcpfin udp` changes (IPVS_CMD_SET_CONFIG, seconds; per network
 * namespace): ESTABLISHED, FIN_WAIT and UDP. Omitted ones keep the kernel defaults. TIME_WAIT,
 * SYN_RECV and the template keepalive cannot be set.
 */
export interface ProtocolTimeouts {
  tcp?: number;
  tcpfin?: number;
  udp?: number;
}

/** Timeout per connection state, from the defaults and what `ipvsadm --set` changed. */
export function stateTimeouts(t: ProtocolTimeouts = {}): Record<ConnState, number> {
  return {
    NONE: TIMEOUTS.NONE,
    SYN_RECV: TIMEOUTS.SYN_RECV,
    ESTABLISHED: t.tcp || TIMEOUTS.ESTABLISHED,
    FIN_WAIT: t.tcpfin || TIMEOUTS.FIN_WAIT,
    TIME_WAIT: TIMEOUTS.TIME_WAIT,
    UDP: t.udp || TIMEOUTS.UDP,
  };
}

/** Active states of the model (tcp_state_active_table: also SYN_SENT and SYNACK, never reached here). */
function isActiveState(s: ConnState): boolean {
  return s === 'SYN_RECV' || s === 'ESTABLISHED';
}

export interface Sysctls {
  /** net.ipv4.vs.expire_quiescent_template (default 0). */
  expireQuiescentTemplate: boolean;
  /** net.ipv4.vs.conn_reuse_mode (default 1). */
  connReuseMode: number;
  /** net.ipv4.vs.expire_nodest_conn (default 0). */
  expireNodestConn: boolean;
  /** lblc_expiration / lblcr_expiration in seconds (default 86400). */
  lblcExpiration: number;
  lblcrExpiration: number;
}

export const DEFAULT_SYSCTLS: Sysctls = {
  expireQuiescentTemplate: false,
  connReuseMode: 1,
  expireNodestConn: false,
  lblcExpiration: 86400,
  lblcrExpiration: 86400,
};

export interface ServiceOptions {
  scheduler: SchedulerName | { name: string; factory: SchedulerFactory };
  /** Service flags: SCHED1..3 bits (sh/mh fallback/port); PERSISTENT/ONEPACKET are derived below. */
  schedFlags?: number;
  family: 4 | 6;
  /** Protocol of a normal service; for a fwmark service the default protocol of flows. */
  proto: Protocol;
  vip?: Address;
  port?: number;
  fwmark?: number;
  persistence?: { timeout: number; prefixLen: number };
  onePacket?: boolean;
  sysctls?: Partial<Sysctls>;
  /** Seed of the generator random schedulers (twos) draw from. */
  seed?: number;
  /** Seconds of replayer drift allowed before an expiry counts as too close to call (default 5). */
  timingMargin?: number;
  /** Compute the exact pick distribution of random schedulers for every flow (costly: O(N^2)). */
  recordChoices?: boolean;
  /** `ipvsadm --set tcp tcpfin udp` in force (kernel defaults for omitted ones). */
  timeouts?: ProtocolTimeouts;
}

export interface DestSpec {
  name: string;
  addr: Address;
  port: number;
  weight: number;
  upper?: number;
  lower?: number;
  forward?: ForwardMethod;
}

export interface DestEdit {
  weight?: number;
  upper?: number;
  lower?: number;
}

export interface FlowSpec {
  client: Address;
  cport: number;
  /** Packet destination address: the VIP, or any address for a fwmark service. */
  dst: Address;
  dport: number;
  proto: Protocol;
  /** Keep the TCP connection open after the handshake (true) or close it at once (false). */
  hold: boolean;
}

export class Template {
  nControl = 0;
  /** Connections it controls (cp->control == this). */
  readonly controlled = new Set<Conn>();
  /** Invalidated by check_template: never matched again, lives until its timer. */
  invalid = false;
  /** When its last controlled connection was released (for timing warnings). */
  lastReleaseAt = -Infinity;
  expires: number;
  /** Upper bound of how late the kernel may fire this timer (accumulates over re-arms). */
  slack: number;
  constructor(readonly key: string, public dest: Dest, public timeout: number, now: number) {
    this.expires = now + timeout;
    this.slack = timerSlack(timeout);
  }
}

export class Conn {
  template: Template | null = null;
  expires: number;
  slack: number;
  closed = false;
  constructor(readonly key: string | number, readonly proto: Protocol, public dest: Dest, public state: ConnState, now: number, timeouts: Record<ConnState, number>) {
    this.expires = now + timeouts[state];
    this.slack = timerSlack(timeouts[state]);
  }
  /** In the service's connection table (false once expired or replaced). */
  live = false;
  get active(): boolean {
    return isActiveState(this.state);
  }
}

export type FlowVia =
  | 'scheduler' // a new connection, chosen by the scheduler
  | 'template' // a new connection, destination taken from a persistence template
  | 'existing' // the packet matched a live connection entry (same client address/port)
  | 'unavailable' // the scheduler found no destination (ICMP port unreachable in the kernel)
  | 'dropped'; // matched an entry whose destination was deleted (expire_nodest_conn=0): dropped

export interface FlowOutcome {
  dest: Dest | null;
  via: FlowVia;
  conn: Conn | null;
  /** For a random scheduler: the exact distribution of this pick given the state before it. */
  choices?: Choice[];
}

/**
 * Upper bound of how late a kernel timer armed for `seconds` may fire: the timer wheel's
 * granularity at that range is at most about 1/8 of the timeout (kernel/time/timer.c levels),
 * plus a jiffy.
 */
export function timerSlack(seconds: number): number {
  return seconds * 0.13 + 0.02;
}

function protoNumber(p: Protocol): number {
  return p === 'tcp' ? 6 : 17;
}

export class ServiceModel implements SchedulerHost {
  readonly list: Dest[] = [];
  readonly trash = new Map<string, Dest>();
  readonly conns = new Map<string | number, Conn>();
  readonly templates = new Map<string, Template>();
  /** Templates invalidated by check_template but still alive (for persistConns accounting). */
  private readonly deadTemplates = new Set<Template>();
  readonly scheduler: Scheduler;
  readonly flags: number;
  readonly random: SeededRandom;
  readonly sysctls: Sysctls;
  readonly options: ServiceOptions;
  private readonly warningList: Array<{ text: string; count: number }> = [];
  private readonly warningKinds = new Map<string, { text: string; count: number }>();
  private clock = 0;
  private readonly timingMargin: number;
  private readonly fastKeys: boolean;
  private readonly recordChoices: boolean;
  /** Timeout of each connection state in this service's namespace, and the matching timer slack. */
  readonly timeouts: Record<ConnState, number>;
  private readonly slackOf: Record<ConnState, number>;

  constructor(opts: ServiceOptions) {
    this.timeouts = stateTimeouts(opts.timeouts);
    this.slackOf = Object.fromEntries(Object.entries(this.timeouts).map(([k, v]) => [k, timerSlack(v)])) as Record<ConnState, number>;
    this.options = opts;
    this.sysctls = { ...DEFAULT_SYSCTLS, ...(opts.sysctls ?? {}) };
    this.flags = (opts.schedFlags ?? 0) | (opts.persistence ? SVC_F_PERSISTENT : 0) | (opts.onePacket ? SVC_F_ONEPACKET : 0);
    this.random = new SeededRandom(opts.seed ?? 1);
    this.timingMargin = opts.timingMargin ?? 5;
    this.fastKeys = opts.family === 4 && opts.fwmark === undefined;
    this.recordChoices = !!opts.recordChoices;
    const factory = typeof opts.scheduler === 'string' ? SCHEDULER_FACTORIES[opts.scheduler] : opts.scheduler.factory;
    if (!factory) throw new Error(`unknown scheduler ${String(opts.scheduler)}`);
    this.scheduler = factory(this);
  }

  // ---- SchedulerHost ----
  now(): number {
    return this.clock;
  }
  get lblcExpiration(): number {
    return this.sysctls.lblcExpiration;
  }
  get lblcrExpiration(): number {
    return this.sysctls.lblcrExpiration;
  }
  warn(message: string, kind?: string): void {
    const seen = kind === undefined ? undefined : this.warningKinds.get(kind);
    if (seen) { seen.count++; return; }
    const w = { text: `t=${this.clock}s: ${message}`, count: 1 };
    this.warningList.push(w);
    if (kind !== undefined) this.warningKinds.set(kind, w);
  }
  /** Warnings in the order first raised; a recurring kind once, with its count. */
  get warnings(): string[] {
    return this.warningList.map((w) => (w.count > 1 ? `${w.text} (and ${w.count - 1} more time(s) later)` : w.text));
  }

  get isFwmark(): boolean {
    return this.options.fwmark !== undefined;
  }

  private reindex(): void {
    for (let i = 0; i < this.list.length; i++) this.list[i].listIndex = i;
  }

  findDest(name: string): Dest | undefined {
    return this.list.find((d) => d.name === name);
  }

  // ---- control plane: ipvsadm -a / -e / -d ----

  /** ip_vs_add_dest: a new destination (or one revived from the trash) goes to the list head. */
  addDest(spec: DestSpec): Dest {
    const key = destKey(spec.addr, spec.port);
    if (this.list.some((d) => d.key === key)) throw new Error(`destination ${key} already exists in the service (EEXIST)`);
    checkThresholds(spec.upper ?? 0, spec.lower ?? 0, spec.weight);
    let d = this.trash.get(key);
    if (d) {
      this.trash.delete(key);
      // __ip_vs_update_dest(add=1) on the revived object: counters and the overload flag survive.
      d.weight = spec.weight;
      d.lastWeight = spec.weight;
      if ((spec.upper ?? 0) === 0 || (spec.upper ?? 0) > d.uThreshold) d.overload = false;
      d.uThreshold = spec.upper ?? 0;
      d.lThreshold = spec.lower ?? 0;
      d.forward = spec.forward ?? d.forward;
      if (d.name !== spec.name) (d as { name: string }).name = spec.name;
    } else {
      d = new Dest({ name: spec.name, addr: spec.addr, port: spec.port, weight: spec.weight, uThreshold: spec.upper, lThreshold: spec.lower, forward: spec.forward });
    }
    d.available = true;
    this.list.unshift(d);
    this.reindex();
    this.scheduler.addDest?.(d);
    return d;
  }

  /** ip_vs_edit_dest: fields not given keep their values (a replayer must send them all). */
  editDest(name: string, edit: DestEdit): Dest {
    const d = this.findDest(name);
    if (!d) throw new Error(`no destination named ${name} in the service (ENOENT)`);
    const weight = edit.weight ?? d.weight;
    const upper = edit.upper ?? d.uThreshold;
    const lower = edit.lower ?? d.lThreshold;
    checkThresholds(upper, lower, weight);
    if (weight !== 0) d.lastWeight = weight;
    d.weight = weight;
    if (upper === 0 || upper > d.uThreshold) d.overload = false;
    d.uThreshold = upper;
    d.lThreshold = lower;
    this.scheduler.updDest?.(d);
    return d;
  }

  /** ip_vs_del_dest: unlink (AVAILABLE cleared), scheduler del_dest, park in the trash. */
  removeDest(name: string): Dest {
    const d = this.findDest(name);
    if (!d) throw new Error(`no destination named ${name} in the service (ENOENT)`);
    const at = d.listIndex;
    d.available = false;
    this.list.splice(at, 1);
    this.reindex();
    d.listIndex = at; // del_dest sees where it was (rr moves its cursor to the predecessor)
    this.scheduler.delDest?.(d);
    d.listIndex = -1;
    this.trash.set(d.key, d);
    if (this.sysctls.expireNodestConn) {
      // since v5.9 a delayed work expires all connections of unavailable destinations shortly after
      for (const c of [...this.conns.values()]) if (c.dest === d) this.expireConn(c);
    }
    return d;
  }

  // ---- accounting (ip_vs_bind_dest / ip_vs_unbind_dest) ----

  private bindConn(d: Dest, active: boolean): void {
    if (active) d.activeConns++;
    else d.inactConns++;
    this.overloadOnBind(d);
  }

  private bindTemplate(d: Dest): void {
    d.persistConns++;
    this.overloadOnBind(d);
  }

  private overloadOnBind(d: Dest): void {
    if (d.uThreshold !== 0 && d.totalConns >= d.uThreshold) d.overload = true;
  }

  private overloadOnUnbind(d: Dest): void {
    const total = d.totalConns;
    if (d.lThreshold !== 0) {
      if (total < d.lThreshold) d.overload = false;
    } else if (d.uThreshold !== 0) {
      if (total * 4 < d.uThreshold * 3) d.overload = false;
    } else {
      d.overload = false;
    }
  }

  private unbindConn(c: Conn): void {
    if (c.active) c.dest.activeConns--;
    else c.dest.inactConns--;
    this.overloadOnUnbind(c.dest);
  }

  private unbindTemplate(t: Template): void {
    t.dest.persistConns--;
    this.overloadOnUnbind(t.dest);
  }

  /** A protocol state change moves the connection between the active and inactive counters. */
  private setState(c: Conn, s: ConnState): void {
    const was = c.active;
    c.state = s;
    const now = isActiveState(s);
    if (was && !now) {
      c.dest.activeConns--;
      c.dest.inactConns++;
    } else if (!was && now) {
      c.dest.inactConns--;
      c.dest.activeConns++;
    }
    c.expires = this.clock + this.timeouts[s];
    c.slack = this.slackOf[s];
  }

  private expireConn(c: Conn): void {
    if (c.live) {
      this.conns.delete(c.key);
      c.live = false;
    }
    this.finishConn(c);
  }

  private insertConn(c: Conn): void {
    this.conns.set(c.key, c);
    c.live = true;
  }

  /** ip_vs_conn_expire of an unlinked entry: release its control and its destination. */
  private finishConn(c: Conn): void {
    const t = c.template;
    if (t) {
      t.nControl--;
      t.controlled.delete(c);
      t.lastReleaseAt = this.clock;
      c.template = null;
    }
    this.unbindConn(c);
  }

  // ---- data plane ----

  connKey(f: FlowSpec): string | number {
    if (this.fastKeys) {
      // IPv4, one VIP:port: protocol, client address and port identify the entry.
      return (f.proto === 'udp' ? 2 ** 48 : 0) + f.client.fold * 65536 + f.cport;
    }
    // A short string of 16-bit units: protocol, client bytes, client port, destination bytes, port.
    const u: number[] = [protoNumber(f.proto)];
    // (IPv4: the two halves of the fold are the address's 16-bit units, without asking for its bytes.)
    pushUnits(u, f.client);
    u.push(f.cport);
    pushUnits(u, f.dst);
    u.push(f.dport);
    return String.fromCharCode.apply(null, u);
  }

  /** One packet object reused for every decision (schedulers do not keep it). */
  private readonly pkt: SchedPacket = { saddr: null!, sport: 0, daddr: null!, dport: 0, proto: 'tcp' };

  private packetOf(f: FlowSpec): SchedPacket {
    const p = this.pkt;
    p.saddr = f.client;
    p.sport = f.cport;
    p.daddr = f.dst;
    p.dport = f.dport;
    p.proto = f.proto;
    return p;
  }

  private pick(f: FlowSpec, choose: ((choices: Choice[]) => Dest | null) | undefined, out: { choices?: Choice[] }): Dest | null {
    const pkt = this.packetOf(f);
    if ((choose || this.recordChoices) && !this.scheduler.deterministic && this.scheduler.choices) {
      out.choices = this.scheduler.choices(pkt);
      if (choose) return choose(out.choices);
    }
    return this.scheduler.schedule(pkt);
  }

  /** Whether the flow's packet can start a connection on an old entry (is_new_conn_expected). */
  private newConnExpected(c: Conn): boolean {
    if (c.template) return false;
    if (c.proto !== 'tcp') return false;
    if (c.state === 'TIME_WAIT') return true;
    return (this.sysctls.connReuseMode & 2) !== 0 && c.state === 'FIN_WAIT' && c.dest.forward !== 'nat';
  }

  /**
   * A client opens a flow (TCP: SYN then, with hold, the rest of the handshake; UDP: one datagram).
   * Returns which destination got it and how.
   */
  openFlow(f: FlowSpec, choose?: (choices: Choice[]) => Dest | null): FlowOutcome {
    const onePacket = !!this.options.onePacket && f.proto === 'udp';
    const key = this.connKey(f);
    let c = onePacket ? undefined : this.conns.get(key);
    let expireAfterSchedule: Conn | null = null;
    if (c) {
      let resched = false;
      // is_new_conn(): a TCP SYN (a UDP datagram never starts a "new" connection on an entry), and
      // since "ipvs: Fix reuse connection if RS weight is 0" (~v5.16) never for an entry controlled
      // by a template; the weight-0 rule no longer depends on conn_reuse_mode.
      if (f.proto === 'tcp' && !c.template) {
        if (this.sysctls.expireNodestConn && c.dest.weight === 0) resched = true;
        else if (this.sysctls.connReuseMode !== 0 && this.newConnExpected(c)) resched = true;
      }
      if (resched) {
        // ip_vs_conn_expire_now(): the old entry goes at the next timer tick, i.e. after this
        // packet was scheduled, so its counters still count for this decision.
        expireAfterSchedule = c;
        this.conns.delete(key);
        c.live = false;
        c = undefined;
      }
    }
    if (c && !c.dest.available) {
      if (!this.sysctls.expireNodestConn) return { dest: null, via: 'dropped', conn: c };
      this.expireConn(c);
      c = undefined;
    }
    if (c) {
      // The packet belongs to a live entry: same destination, state follows the packet.
      if (c.proto === 'tcp') {
        if (!c.closed) throw new ScenarioConflict(`client ${f.client.text}:${f.cport} opens a connection while its previous one on that port is still open; a real client cannot reuse an open port`);
        // (FIN_WAIT / TIME_WAIT, not rescheduled) + SYN -> SYN_RECV, handshake -> ESTABLISHED
        this.setState(c, 'SYN_RECV');
        this.setState(c, 'ESTABLISHED');
        c.closed = false;
        if (!f.hold) this.closeConn(c);
      } else {
        c.expires = this.clock + this.timeouts.UDP;
        c.slack = this.slackOf.UDP;
      }
      return { dest: c.dest, via: 'existing', conn: c };
    }
    const outcome = this.schedule(f, onePacket, choose);
    if (expireAfterSchedule) this.finishConn(expireAfterSchedule);
    return outcome;
  }

  private schedule(f: FlowSpec, onePacket: boolean, choose?: (choices: Choice[]) => Dest | null): FlowOutcome {
    const picked: { choices?: Choice[] } = {};
    let dest: Dest | null;
    let via: FlowVia = 'scheduler';
    let template: Template | null = null;
    if (this.options.persistence) {
      const tkey = this.templateKey(f);
      template = this.templates.get(tkey) ?? null;
      if (template && !this.checkTemplate(template)) {
        this.templates.delete(tkey);
        template.invalid = true;
        this.deadTemplates.add(template);
        template = null;
      }
      if (template) {
        dest = template.dest;
        via = 'template';
      } else {
        dest = this.pick(f, choose, picked);
        if (!dest) return { dest: null, via: 'unavailable', conn: null, choices: picked.choices };
        template = new Template(tkey, dest, this.options.persistence.timeout, this.clock);
        this.templates.set(tkey, template);
        this.bindTemplate(dest);
      }
    } else {
      dest = this.pick(f, choose, picked);
      if (!dest) return { dest: null, via: 'unavailable', conn: null, choices: picked.choices };
    }
    const choices = picked.choices;
    // ip_vs_conn_new: bound with IP_VS_CONN_F_INACTIVE (state NONE), then the protocol state machine runs.
    const c = new Conn(this.connKey(f), f.proto, dest, 'NONE', this.clock, this.timeouts);
    this.bindConn(dest, false);
    if (template) {
      c.template = template;
      template.nControl++;
      template.controlled.add(c);
      // ip_vs_conn_put(ct) re-arms the template timer with its current timeout
      template.expires = this.clock + template.timeout;
      template.slack = timerSlack(template.timeout);
    }
    if (onePacket) {
      // Not hashed; released right after the packet is sent (timer 0).
      this.finishConn(c);
      return { dest, via, conn: null, choices };
    }
    if (f.proto === 'tcp') {
      this.setState(c, 'SYN_RECV');
      this.setState(c, 'ESTABLISHED');
      this.insertConn(c);
      if (!f.hold) this.closeConn(c);
    } else {
      this.setState(c, 'UDP');
      this.insertConn(c);
    }
    return { dest, via, conn: c, choices };
  }

  /** ip_vs_check_template. */
  private checkTemplate(t: Template): boolean {
    const d = t.dest;
    if (!d.available) return false;
    if (this.sysctls.expireQuiescentTemplate && d.weight === 0) return false;
    return true;
  }

  templateKey(f: FlowSpec): string {
    const p = this.options.persistence!;
    const snet = maskAddress(f.client, p.prefixLen);
    if (this.isFwmark) return `0|${snet.text}|fwmark:${this.options.fwmark}|0`;
    // normal service, packet dport == service port: <protocol, snet, 0, vaddr, vport> (FTP: vport 0)
    const vport = this.options.port === 21 ? 0 : f.dport;
    return `${protoNumber(f.proto)}|${snet.text}|${f.dst.text}|${vport}`;
  }

  /** The client closes a TCP connection: FIN_WAIT (DR/TUN, the director sees one direction) or TIME_WAIT (NAT). */
  closeConn(c: Conn): void {
    if (c.proto !== 'tcp' || c.closed) return;
    if (!c.live) return; // already expired or replaced
    c.closed = true;
    this.setState(c, c.dest.forward === 'nat' ? 'TIME_WAIT' : 'FIN_WAIT');
  }

  // ---- time ----

  /** Moves the clock forward, firing connection and template timers in time order. */
  advance(seconds: number): void {
    if (!(seconds >= 0)) throw new Error(`cannot advance time by ${seconds} s`);
    const target = this.clock + seconds;
    type Ev = { at: number; conn?: Conn; tpl?: Template };
    const events: Ev[] = [];
    for (const c of this.conns.values()) if (c.expires <= target) events.push({ at: c.expires, conn: c });
    const allTemplates = [...this.templates.values(), ...this.deadTemplates];
    for (const t of allTemplates) if (t.expires <= target) events.push({ at: t.expires, tpl: t });
    events.sort((a, b) => a.at - b.at || (a.conn ? 0 : 1) - (b.conn ? 0 : 1));
    while (events.length) {
      const ev = events.shift()!;
      this.clock = ev.at;
      if (ev.conn) {
        const c = ev.conn;
        if (!c.live || c.expires !== ev.at) continue;
        this.expireConn(c);
      } else if (ev.tpl) {
        const t = ev.tpl;
        if (t.expires !== ev.at) continue;
        if (t.nControl > 0) {
          let soonest = Infinity;
          for (const c of t.controlled) soonest = Math.min(soonest, c.expires);
          if (soonest - ev.at < t.slack + timerSlack(Math.max(this.timeouts.TIME_WAIT, this.timeouts.FIN_WAIT))) {
            this.warn(`template ${t.key} on ${t.dest.name} fires at ${ev.at.toFixed(1)} s, ${Math.max(0, soonest - ev.at).toFixed(1)} s before its last connection expires: whether it lives 60 s longer depends on timer order`);
          }
          // expire_later: timeout becomes 60 s and the timer is re-armed from now
          t.timeout = TIMEOUTS.TEMPLATE_KEEPALIVE;
          t.expires = ev.at + t.timeout;
          t.slack += timerSlack(t.timeout);
          if (t.expires <= target) {
            let i = events.findIndex((e) => e.at > t.expires);
            if (i < 0) i = events.length;
            events.splice(i, 0, { at: t.expires, tpl: t });
          }
        } else {
          if (ev.at - t.lastReleaseAt < t.slack) {
            this.warn(`template ${t.key} on ${t.dest.name} fires at ${ev.at.toFixed(1)} s, ${(ev.at - t.lastReleaseAt).toFixed(1)} s after its last connection expired: whether it lives 60 s longer depends on timer order`);
          }
          if (this.templates.get(t.key) === t) this.templates.delete(t.key);
          this.deadTemplates.delete(t);
          this.unbindTemplate(t);
        }
      }
    }
    this.clock = target;
    this.checkTimingAround(target);
  }

  /** Warns about timers whose firing relative to `t` the kernel could order differently. */
  private checkTimingAround(t: number): void {
    const near = (expires: number, slack: number) => expires > t - slack && expires <= t + this.timingMargin;
    let n = 0;
    let example = '';
    for (const c of this.conns.values()) {
      if (near(c.expires, c.slack)) {
        n++;
        example ||= `connection ${c.key} (${c.state}) on ${c.dest.name} expires at ${c.expires.toFixed(1)} s`;
      }
    }
    for (const tpl of [...this.templates.values(), ...this.deadTemplates]) {
      if (near(tpl.expires, tpl.slack)) {
        n++;
        example ||= `template ${tpl.key} on ${tpl.dest.name} expires at ${tpl.expires.toFixed(1)} s`;
      }
    }
    if (n) this.warn(`${n} timer(s) expire too close to t=${t}s to call (timer slack / replay margin ${this.timingMargin}s), e.g. ${example}`);
  }

  /** Counter snapshot per destination (listed ones in kernel order, then trashed ones). */
  snapshot(): { name: string; weight: number; active: number; inactive: number; persist: number; overload: boolean; available: boolean }[] {
    const all = [...this.list, ...this.trash.values()];
    return all.map((d) => ({ name: d.name, weight: d.weight, active: d.activeConns, inactive: d.inactConns, persist: d.persistConns, overload: d.overload, available: d.available }));
  }
}

/** ip_vs_add_dest / ip_vs_edit_dest validation (ERANGE). */
/** The scenario asks for something a real client cannot do. */
/** An address as 16-bit units in network order. */
function pushUnits(u: number[], a: Address): void {
  if (a.family === 4) {
    u.push(a.fold >>> 16, a.fold & 0xffff);
    return;
  }
  const b = a.bytes;
  for (let i = 0; i < b.length; i += 2) u.push((b[i] << 8) | b[i + 1]);
}

export class ScenarioConflict extends Error {
  override name = 'ScenarioConflict';
}

export function checkThresholds(upper: number, lower: number, weight: number): void {
  if (weight < 0) throw new Error(`weight ${weight} is negative (the kernel answers ERANGE)`);
  if (lower > upper) throw new Error(`lower threshold ${lower} is above upper threshold ${upper} (the kernel answers ERANGE)`);
}

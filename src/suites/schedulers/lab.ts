// The lab a scheduler scenario is replayed in: kernel IPVS in a VM, one client node, one director,
// and a pool of real-server nodes, all on one LAN segment whose own ("plumbing") addresses are kept
// out of every scenario's way. Everything a scenario needs -- its client addresses, the VIP, each
// real server's address, routes, the fwmark rule -- is added before the scenario and removed after,
// so one VM serves many scenarios (one per test worker).
//
//   client ──┐
//   director ┼── lan 198.19.100.0/24, 2001:db8:fe::/64
//   s1..sN ──┘
//
// Client addresses: the client node holds every address a scenario uses as a local route on lo
// (single addresses and whole generated prefixes alike) with ip_nonlocal_bind, so a flow binds its
// exact source address and port. Real servers are reached by direct routing (the scenario's default)
// or NAT: the VIP (and any fwmark destination) is local on each server, which answers the client
// straight over the LAN; NAT servers route their replies back through the director instead.
//
// The programs the lab runs per flow are static C programs of the guest image (guest/flows): the flow
// driver in the client node (driver-client.ts) and a responder on each server node (ensureResponder),
// so a replayed flow costs the guest's one TCG vCPU ~1 ms of userland instead of two Node event loops.
import { IpvsDirector } from '../../director/ipvs';
import { directorHost, type DirectorHost } from '../../director/host';
import type { IpvsClient } from '../../netlink/ipvs';
import { realisePlanInGuest, upVmLab, VmLab, VmNode } from '../../backend/vm';
import { GUEST_RESPOND } from '../../backend/vm/agent-build';
import type { ExecOptions, ExecResult, NodeProcess, SpawnOptions } from '../../backend/types';
import { loadTopologyText } from '../../topology/load';
import { startResponder, type ResponderHandle } from '../../traffic';
import { DriverClient } from './driver-client';
import { PLUMBING_V4, PLUMBING_V6 } from './plumbing';

export { PLUMBING_V4, PLUMBING_V6 };

/** Default number of real-server nodes: the largest shipped scenario uses 20 servers. */
export const DEFAULT_SERVER_NODES = 20;

export interface ReplayLabOptions {
  /** Real-server nodes to create (default 20). */
  servers?: number;
  /** Kernel: "bookworm" (6.1, default), "backports" (6.12) or an image path. */
  kernel?: string;
  /** Modules image for a kernel given as an image path (as `vslab up --modules`). */
  modules?: string;
  /** The lab's name (default ss-<pid>-<n>); VMs are named with $VSLAB_VM_NAME_PREFIX. */
  name?: string;
  /** Guest memory in MiB (default 512; more when sibling labs share the guest, see `sibling`). */
  memoryMiB?: number;
  /**
   * The guest's clock (VmBootOptions.clock): 'warp' lets a scenario's waits pass on the guest's clock in
   * seconds of real time, but the whole guest jumps, so no sibling lab may share it (see `wait`).
   */
  clock?: 'real' | 'warp';
  progress?: (msg: string) => void;
}

/** The topology of a replay lab with `servers` real-server nodes (s1..sN). */
export function replayTopology(servers: number, name = 'schedreplay'): string {
  if (!(servers >= 1 && servers <= 200)) throw new RangeError(`a replay lab needs 1..200 real-server nodes, not ${servers}`);
  const names = Array.from({ length: servers }, (_, i) => `s${i + 1}`);
  const lines = [
    `name: ${name}`,
    'description: Scheduler scenario replay lab (client, director, real servers on one LAN; scenario addresses added per run).',
    'nodes:',
    // tcp_max_tw_buckets 0: no TIME_WAIT entry keeps a scenario's client port or server socket busy for
    // the next scenario (which may use the very same 4-tuple).
    '  client: { role: client, sysctls: { net.ipv4.ip_nonlocal_bind: 1, net.ipv6.ip_nonlocal_bind: 1, net.ipv4.tcp_max_tw_buckets: 0 } }',
    // NAT servers route replies through the director, which must not tell them the client is on-link.
    '  director: { role: director, sysctls: { net.ipv4.conf.all.send_redirects: 0, net.ipv4.conf.default.send_redirects: 0 } }',
    ...names.map((n) => `  ${n}: { role: real-server, sysctls: { net.ipv4.conf.all.arp_ignore: 1, net.ipv4.conf.all.arp_announce: 2, net.ipv4.tcp_max_tw_buckets: 0 } }`),
    'segments:',
    '  lan:',
    `    ipv4: ${PLUMBING_V4.prefix}`,
    `    ipv6: ${PLUMBING_V6.prefix}`,
    `    members: [client, director, ${names.join(', ')}]`,
  ];
  return lines.join('\n') + '\n';
}

let labCounter = 0;

/**
 * A node of a sibling lab: every program it runs gets a lower CPU priority in the guest (renice 5), so
 * the test running in the foreground keeps the guest's vCPU when a sibling's scenario has work to do
 * (its flows' 3 s timeouts then hold in the foreground) and the sibling still gets about a quarter of it when both want it.
 */
class LowPriorityNode extends VmNode {
  override exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return super.exec(lowPriority(argv), opts);
  }

  override spawn(argv: string[], opts?: SpawnOptions): NodeProcess {
    return super.spawn(lowPriority(argv), opts);
  }
}

/** `sh -c 'renice …; exec "$@"'`: the program keeps the pid (signals reach it), at nice 5. */
function lowPriority(argv: string[]): string[] {
  return ['sh', '-c', 'renice -n 5 -p $$ >/dev/null && exec "$@"', 'sh', ...argv];
}

/** A long-lived responder on one real-server node, listening on a set of ports. */
interface ServerResponder {
  handle: ResponderHandle;
  tcp: Set<number>;
  udp: Set<number>;
}

export class ReplayLab {
  private readonly responders = new Map<string, ServerResponder>();
  private readonly lowPriorityNodes = new Map<string, VmNode>();
  private driverClient: DriverClient | null = null;
  private kernelRelease = '';
  private schedulerList: Promise<string[]> | undefined;

  private constructor(
    readonly lab: VmLab,
    readonly serverNodes: string[],
    private readonly host: DirectorHost,
    readonly director: IpvsDirector,
    /** False for a sibling lab: the VM belongs to the lab it was built beside. */
    private readonly ownsGuest = true,
  ) {}

  /** Boots the VM and builds the lab (about 5-10 s on an idle machine, more under load). */
  static async up(opts: ReplayLabOptions = {}): Promise<ReplayLab> {
    const servers = opts.servers ?? DEFAULT_SERVER_NODES;
    const name = opts.name ?? `ss-${process.pid}-${++labCounter}`;
    const model = loadTopologyText(replayTopology(servers, name), `<replay lab ${name}>`);
    const lab = await upVmLab(model, { name, ephemeral: true, kernel: opts.kernel, modules: opts.modules, memoryMiB: opts.memoryMiB, progress: opts.progress, boot: { bootTimeoutMs: 150_000, clock: opts.clock } });
    try {
      return await ReplayLab.open(lab, model, true);
    } catch (e) {
      await lab.down().catch(() => undefined);
      throw e;
    }
  }

  private static async open(lab: VmLab, model: VmLab['model'], ownsGuest: boolean): Promise<ReplayLab> {
    const host = directorHost(lab.node('director'));
    try {
      const director = await IpvsDirector.open(host);
      const rl = new ReplayLab(lab, model.nodes.filter((n) => n.role === 'real-server').map((n) => n.name), host, director, ownsGuest);
      rl.kernelRelease = (await lab.node('director').exec(['cat', '/proc/sys/kernel/osrelease'])).stdout.trim();
      return rl;
    } catch (e) {
      host.close();
      throw e;
    }
  }

  /**
   * Another replay lab in this lab's VM: its own namespaces (client, director, servers, LAN), so its own
   * IPVS table, timeouts and net.ipv4.vs sysctls (all per network namespace), and its own responders and
   * flow driver. Scenarios in sibling labs run at the same time without seeing each other: a scenario that
   * sleeps (a `wait` event, a timeout to expire) costs wall time, not the guest's CPU, so others run
   * meanwhile. The sibling lives as long as the VM (it is not registered as a lab of its own); `down()`
   * on it stops its tools only.
   */
  async sibling(name: string, servers = this.serverNodes.length): Promise<ReplayLab> {
    const model = loadTopologyText(replayTopology(servers, name), `<replay lab ${name}>`);
    const t0 = Date.now();
    await realisePlanInGuest(this.lab.guest, model, name);
    return ReplayLab.open(new VmLab(name, model, Date.now() - t0, this.lab.guest), model, false);
  }

  get name(): string {
    return this.lab.name;
  }

  /**
   * Lets `seconds` pass for the scenario (a `wait` event): on the host's clock, or in a 'warp' guest by moving
   * the guest's clock, every timer due on the way firing in order (VmGuest.advanceClock). Resolves with the
   * seconds that passed on the guest's clock.
   */
  async wait(seconds: number): Promise<number> {
    if (this.lab.guest.clock === 'warp') return this.lab.guest.advanceClock(seconds);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return seconds;
  }

  get ipvs(): IpvsClient {
    return this.director.client;
  }

  /** The guest kernel's release (e.g. 6.1.0-50-amd64). */
  get kernel(): string {
    return this.kernelRelease;
  }

  node(name: string): VmNode {
    const n = this.lab.node(name);
    if (this.ownsGuest) return n;
    let low = this.lowPriorityNodes.get(name);
    if (!low) this.lowPriorityNodes.set(name, (low = new LowPriorityNode(n.name, n.ns, n.guest)));
    return low;
  }

  /** The LAN address of a node (IPv4 or IPv6), a next hop for scenario routes. */
  plumbing(node: string, family: 4 | 6): string {
    const n = this.lab.model.nodes.find((x) => x.name === node);
    const i = n?.interfaces[0];
    const a = family === 4 ? i?.ipv4?.addr : i?.ipv6?.addr;
    if (!a) throw new Error(`replay lab ${this.name}: node ${node} has no IPv${family} LAN address`);
    return a;
  }

  /** Runs `ip -force -batch -` in a node; returns the failed lines' messages (none expected). */
  async ipBatch(node: string, lines: string[], opts: { tolerate?: boolean } = {}): Promise<void> {
    if (!lines.length) return;
    const r = await this.node(node).exec(['ip', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 60_000 });
    if (r.code !== 0 && !opts.tolerate) {
      throw new Error(`replay lab ${this.name}: ip -batch in node ${node} failed (${r.code}): ${(r.stderr || r.stdout).trim()}\ncommands:\n${lines.join('\n')}`);
    }
  }

  /** A shell command line in a node; throws with its output when it fails. */
  async sh(node: string, script: string, opts: { tolerate?: boolean; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.node(node).exec(['sh', '-c', script], { timeoutMs: opts.timeoutMs ?? 60_000 });
    if (r.code !== 0 && !opts.tolerate) throw new Error(`replay lab ${this.name}: \`${script}\` in node ${node} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /**
   * Deletes every IPVS service and every connection entry and template. `ipvsadm -C` alone leaves
   * connections (and their templates) in the table until their timers fire, and a later scenario
   * reusing a client port would follow them. With expire_nodest_conn=1 the kernel (5.9+) deletes the
   * entries of removed destinations right after the flush; this waits until the table is empty.
   */
  async purgeIpvs(timeoutMs = 20_000): Promise<void> {
    const vs = '/proc/sys/net/ipv4/vs/expire_nodest_conn';
    const before = (await this.sh('director', `cat ${vs}`)).trim();
    await this.sh('director', `echo 1 > ${vs}`);
    try {
      await this.ipvs.flush();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const left = await this.ipvs.connections();
        if (left.length === 0) break;
        if (Date.now() > deadline) {
          throw new Error(`replay lab ${this.name}: ${left.length} IPVS connection entries survive a flush with expire_nodest_conn=1 (e.g. ${JSON.stringify(left[0])})`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await this.sh('director', `echo ${before || 0} > ${vs}`);
    }
  }

  /**
   * Aborts every TCP connection of these nodes (ss -K: a reset, no FIN_WAIT or TIME_WAIT left), so a
   * held connection of one scenario cannot occupy a 4-tuple the next scenario uses.
   */
  async killConnections(nodes: string[]): Promise<void> {
    for (const n of nodes) await this.sh(n, 'ss -K -t state connected >/dev/null', { tolerate: true });
  }

  /** Schedulers this kernel can load (probed once). */
  async schedulers(): Promise<string[]> {
    this.schedulerList ??= this.director.capabilities().then((c) => c.schedulers);
    return this.schedulerList;
  }

  /** Makes sure a responder answers on `node` for these ports (restarting it with the union if needed). */
  async ensureResponder(node: string, tcp: number[], udp: number[]): Promise<ResponderHandle> {
    const cur = this.responders.get(node);
    if (cur && tcp.every((p) => cur.tcp.has(p)) && udp.every((p) => cur.udp.has(p))) return cur.handle;
    const tcpSet = new Set([...(cur?.tcp ?? []), ...tcp]);
    const udpSet = new Set([...(cur?.udp ?? []), ...udp]);
    if (cur) await cur.handle.stop().catch(() => undefined);
    // vslab-respond (guest/flows): answers like the Node responder, at a fraction of the guest's CPU per
    // connection, and on UDP from every address at once (no rescan for a VIP added later).
    const handle = startResponder(this.node(node), { name: node, tcp: [...tcpSet], udp: [...udpSet], log: false, readyTimeoutMs: 60_000, tools: { responder: GUEST_RESPOND } });
    this.responders.set(node, { handle, tcp: tcpSet, udp: udpSet });
    await handle.ready;
    return handle;
  }

  /** The responder running on a node, if any. */
  responder(node: string): ResponderHandle | undefined {
    return this.responders.get(node)?.handle;
  }

  /** The flow driver in the client node (started on first use, kept for later scenarios). */
  async driver(): Promise<DriverClient> {
    if (!this.driverClient || this.driverClient.exited) {
      this.driverClient = await DriverClient.start(this.node('client'));
    }
    return this.driverClient;
  }

  /** Stops the traffic tools and the VM. */
  async down(): Promise<void> {
    const stops: Promise<unknown>[] = [...this.responders.values()].map((r) => r.handle.stop().catch(() => undefined));
    if (this.driverClient) stops.push(this.driverClient.stop().catch(() => undefined));
    await Promise.race([Promise.all(stops), new Promise((r) => setTimeout(r, 10_000))]);
    this.responders.clear();
    this.host.close();
    if (this.ownsGuest) await this.lab.down();
  }
}

// Executes a lab plan (plan.ts) in network namespaces of this host's kernel, over batched rtnetlink
// through the native setns helper: one batch per namespace per phase, no process per operation.
// Used by the netns backend (namespaces in /run/netns) and the docker backend (containers' namespaces).
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import { execInNetns } from './nsnode';
import type { NetOp } from './plan';
import { linkIndexes, newAddr, newBridge, newVeth, routeMsg, RtnlBatch, RTM, setUp } from './rtnl';

export const NETNS_DIR = '/run/netns';

/** Where the plan's namespaces are: a file for each, and which of them the executor must create. */
export interface NamespaceResolver {
  /** The namespace's file on this host (default /run/netns/NAME). */
  path(ns: string): string;
  /** Whether the executor creates it (default yes); a container's namespace already exists. */
  create(ns: string): boolean;
}

export const RUN_NETNS: NamespaceResolver = { path: (ns) => path.join(NETNS_DIR, ns), create: () => true };

/** Executes a plan's operations in namespaces of this host's kernel. Throws naming the failing operation. */
export async function executePlan(ops: NetOp[], where: NamespaceResolver = RUN_NETNS): Promise<void> {
  const nsPath = (ns: string) => where.path(ns);
  const fds = new Map<string, number>();
  const nsFds = new Map<string, number>();
  const fdOf = (ns: string) => { let fd = fds.get(ns); if (fd === undefined) { fd = native().netlinkOpen(nsPath(ns), 0); fds.set(ns, fd); } return fd; };
  const nsFdOf = (ns: string) => { let fd = nsFds.get(ns); if (fd === undefined) { fd = fs.openSync(nsPath(ns), 'r'); nsFds.set(ns, fd); } return fd; };
  const byNs = <T extends NetOp>(kind: T['op']) => {
    const m = new Map<string, T[]>();
    for (const o of ops) if (o.op === kind) { const l = m.get(o.ns) ?? []; l.push(o as T); m.set(o.ns, l); }
    return m;
  };
  try {
    // 1. namespaces
    for (const o of ops) if (o.op === 'netns' && where.create(o.ns)) native().netnsCreate(nsPath(o.ns));
    // 2. namespace-wide sysctls (before devices); device sysctls come after their devices exist
    const sysctls = byNs<Extract<NetOp, { op: 'sysctl' }>>('sysctl');
    const early = (k: string) => !/\/conf\//.test(k) || /\/conf\/(all|default)\//.test(k);
    for (const [ns, l] of sysctls) native().sysctlWrite(nsPath(ns), l.filter((s) => early(s.key)).map((s) => [`/proc/sys/${s.key}`, s.value]));
    // 3. bridges, then veths (created in their node's namespace, the peer placed directly in its own)
    for (const [ns, l] of byNs<Extract<NetOp, { op: 'bridge' }>>('bridge')) { const b = new RtnlBatch(); for (const o of l) b.add(newBridge(o.name, o.mtu)); b.run(fdOf(ns), ns); }
    for (const [ns, l] of byNs<Extract<NetOp, { op: 'veth' }>>('veth')) {
      const b = new RtnlBatch();
      for (const o of l) b.add(newVeth(o.name, o.mac, o.mtu, o.peerName, nsFdOf(o.peerNs), o.peerMac));
      b.run(fdOf(ns), ns);
    }
    // 4. per namespace: up (+ bridge ports), addresses, routes
    const masters = new Map<string, string>(); // "ns dev" -> master
    for (const o of ops) if (o.op === 'veth' && o.peerMaster) masters.set(`${o.peerNs} ${o.peerName}`, o.peerMaster);
    const nsList = [...new Set(ops.filter((o) => o.op === 'netns').map((o) => o.ns))];
    const tunnels = byNs<Extract<NetOp, { op: 'tunnel' }>>('tunnel');
    for (const ns of nsList) {
      const nsOps = ops.filter((o) => o.ns === ns);
      if (!nsOps.some((o) => o.op === 'up' || o.op === 'addr' || o.op === 'route')) continue;
      const fd = fdOf(ns);
      const idx = linkIndexes(fd);
      const b = new RtnlBatch();
      for (const o of nsOps) if (o.op === 'up') b.add(setUp(o.dev, masters.has(`${ns} ${o.dev}`) ? idx.get(masters.get(`${ns} ${o.dev}`)!) : undefined));
      for (const o of nsOps) if (o.op === 'addr') {
        const i = idx.get(o.dev);
        if (i === undefined) throw new Error(`in ${ns}: no device ${o.dev} to put ${o.cidr} on`);
        b.add(newAddr(i, o.dev, o.cidr));
      }
      b.run(fd, ns);
      if (tunnels.has(ns)) await createTunnels(ns, nsPath(ns), tunnels.get(ns)!);
      const late = (sysctls.get(ns) ?? []).filter((s) => !early(s.key));
      if (late.length) native().sysctlWrite(nsPath(ns), late.map((s) => [`/proc/sys/${s.key}`, s.value]));
      const rb = new RtnlBatch();
      for (const o of nsOps) if (o.op === 'route') rb.add(routeMsg(RTM.NEWROUTE, o.to, { via: o.via }));
      rb.run(fd, ns);
    }
    // 5. nftables rulesets
    for (const o of ops) if (o.op === 'nft') {
      const r = await execInNetns(nsPath(o.ns), ['nft', '-f', '-'], { input: o.ruleset, timeoutMs: 20_000 });
      if (r.code !== 0) throw new Error(`in ${o.ns}: nft refused the ruleset: ${r.stderr.trim()}`);
    }
  } finally {
    for (const fd of fds.values()) native().netlinkClose(fd);
    for (const fd of nsFds.values()) fs.closeSync(fd);
  }
}

/** Tunnel receivers need kernel modules (ipip, fou, ip_gre) that only some kernels have; iproute2 configures them. */
async function createTunnels(ns: string, file: string, ops: Array<Extract<NetOp, { op: 'tunnel' }>>): Promise<void> {
  const lines: string[] = [];
  for (const { dev } of ops) {
    if (dev.type === 'fou') lines.push(`fou add port ${dev.port} gue${dev.outerFamily === 6 ? ' -6' : ''}`);
    else lines.push(`link set ${dev.name} up`);
    for (const a of dev.addrs) lines.push(`addr add ${a} dev ${dev.name}`);
  }
  const r = await execInNetns(file, ['ip', '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 20_000 });
  if (r.code !== 0) {
    const missing = /Cannot find device "(tunl0|gre0|ip6tnl0|ip6gre0|sit0)"|does not exist|not supported|Unknown device/.test(r.stderr);
    throw new Error(`in ${ns}: cannot set up tunnel receivers (${ops.map((o) => o.dev.name).join(', ')}): ${r.stderr.trim()}` +
      (missing ? '. This kernel lacks the tunnel modules (ipip/fou/ip_gre); this host cannot carry tunnel labs: use --backend vm to run them in a VM kernel that has them.' : ''));
  }
}

// Realises a lab plan (NetOp[], src/backend/plan.ts) inside a VM guest: the operations are rendered
// into one dash script of `ip -batch` blocks (one per namespace and phase), sysctl writes and nft
// rulesets, run by the guest agent in a single round trip. The phases and their order are those of
// the netns backend's executePlan, so both backends build the same lab.
import type { NetOp } from '../plan';
import { isEarlySysctl } from '../plan';

type Op<K extends NetOp['op']> = Extract<NetOp, { op: K }>;

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const ADDR = /^[0-9A-Fa-f:.]+$/;
const CIDR = /^[0-9A-Fa-f:.]+\/\d{1,3}$/;
const SYSCTL_KEY = /^[A-Za-z0-9_.\-/]+$/;
const SYSCTL_VALUE = /^[A-Za-z0-9 _.:,\-/]*$/;

/** Tunnel device types and the module that creates their fallback device in every namespace. */
const TUNNEL_MODULES: Record<string, string> = { ipip: 'ipip', ip6tnl: 'ip6_tunnel', gre: 'ip_gre', ip6gre: 'ip6_gre', fou: 'fou' };

function check(value: string | number | undefined, re: RegExp, what: string): string {
  const v = String(value ?? '');
  if (!re.test(v)) throw new Error(`plan for the VM guest: ${what} ${JSON.stringify(v)} is not valid here`);
  return v;
}

/** A quoted here-document with a delimiter that cannot occur in the body. */
function heredoc(body: string): { start: string; end: string } {
  let tag = 'VSLAB_EOF';
  for (let i = 0; body.split('\n').includes(tag); i++) tag = `VSLAB_EOF_${i}`;
  return { start: `<<'${tag}'`, end: `${body.replace(/\n*$/, '')}\n${tag}` };
}

function ipBatch(ns: string | null, lines: string[], what: string): string {
  if (!lines.length) return '';
  const h = heredoc(lines.join('\n'));
  return `ip ${ns ? `-n ${ns} ` : ''}-batch - ${h.start} || fail ${JSON.stringify(what)}\n${h.end}\n`;
}

function sysctlBlock(ns: string, items: Array<Op<'sysctl'>>, what: string): string {
  if (!items.length) return '';
  const body = items.map((s) => `echo "${check(s.value, SYSCTL_VALUE, 'sysctl value')}" > /proc/sys/${check(s.key, SYSCTL_KEY, 'sysctl key')}`).join(' && ');
  // busybox nsenter + busybox sh: two static programs, cheaper under TCG than `ip netns exec` + dash
  return `nsenter --net=/run/netns/${ns} busybox sh -c ${shellQuote(body)} || fail ${JSON.stringify(what)}\n`;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function routeTo(o: Op<'route'>): string {
  if (o.to === 'default') return 'default';
  if (o.to === 'default6') return '::/0';
  return check(o.to, CIDR, 'route destination');
}

/** Render the whole plan as one dash script (exits non-zero naming the failing step). */
export function renderPlanScript(ops: NetOp[]): string {
  const byNs = <K extends NetOp['op']>(kind: K): Map<string, Array<Op<K>>> => {
    const m = new Map<string, Array<Op<K>>>();
    for (const o of ops) if (o.op === kind) m.set(o.ns, [...(m.get(o.ns) ?? []), o as Op<K>]);
    return m;
  };
  for (const o of ops) check(o.ns, NAME, 'namespace name');
  const out: string[] = [
    '#!/bin/sh',
    '# vslab lab plan, rendered for a VM guest',
    'fail() { echo "vslab: lab setup failed: $1" >&2; exit 1; }',
  ];

  const tunnelTypes = [...new Set(ops.filter((o): o is Op<'tunnel'> => o.op === 'tunnel').map((o) => o.dev.type))];
  if (tunnelTypes.length) {
    const mods = tunnelTypes.map((t) => TUNNEL_MODULES[t] ?? check(t, /^$/, 'tunnel type'));
    out.push(`modprobe -a ${mods.join(' ')} || fail ${JSON.stringify(`loading tunnel modules ${mods.join(' ')}`)}`);
  }

  // 1. namespaces
  out.push(ipBatch(null, ops.filter((o) => o.op === 'netns').map((o) => `netns add ${o.ns}`), 'creating namespaces'));

  // 2. namespace-wide sysctls, before any device exists
  const sysctls = byNs('sysctl');
  for (const [ns, l] of sysctls) out.push(sysctlBlock(ns, l.filter((s) => isEarlySysctl(s.key)), `sysctls in ${ns}`));

  // 3. bridges, then veth pairs (created in their node's namespace, the peer placed in its own)
  for (const [ns, l] of byNs('bridge')) {
    out.push(ipBatch(ns, l.map((o) => `link add ${check(o.name, NAME, 'bridge name')} mtu ${Number(o.mtu)} type bridge`), `creating bridges in ${ns}`));
  }
  for (const [ns, l] of byNs('veth')) {
    out.push(ipBatch(ns, l.map((o) => {
      const peerMac = o.peerMac ? ` address ${check(o.peerMac, MAC, 'MAC')}` : '';
      return `link add ${check(o.name, NAME, 'device name')} address ${check(o.mac, MAC, 'MAC')} mtu ${Number(o.mtu)} type veth ` +
        `peer name ${check(o.peerName, NAME, 'device name')}${peerMac} mtu ${Number(o.mtu)} netns ${check(o.peerNs, NAME, 'namespace name')}`;
    }), `creating veth pairs in ${ns}`));
  }

  // 4. per namespace: up (bridge ports with their master), addresses, tunnels, device sysctls, routes
  const masters = new Map<string, string>();
  for (const o of ops) if (o.op === 'veth' && o.peerMaster) masters.set(`${o.peerNs} ${o.peerName}`, check(o.peerMaster, NAME, 'bridge name'));
  const tunnels = byNs('tunnel');
  for (const ns of [...new Set(ops.filter((o) => o.op === 'netns').map((o) => o.ns))]) {
    const nsOps = ops.filter((o) => o.ns === ns);
    const lines: string[] = [];
    for (const o of nsOps) {
      if (o.op !== 'up') continue;
      const master = masters.get(`${ns} ${o.dev}`);
      lines.push(`link set ${check(o.dev, NAME, 'device name')}${master ? ` master ${master}` : ''} up`);
    }
    for (const o of nsOps) if (o.op === 'addr') lines.push(`addr add ${check(o.cidr, CIDR, 'address')} dev ${check(o.dev, NAME, 'device name')}`);
    out.push(ipBatch(ns, lines, `bringing up devices and addresses in ${ns}`));
    const tl: string[] = [];
    for (const { dev } of tunnels.get(ns) ?? []) {
      if (dev.type === 'fou') tl.push(`fou add port ${Number(dev.port)} gue${dev.outerFamily === 6 ? ' -6' : ''}`);
      else tl.push(`link set ${check(dev.name, NAME, 'tunnel device')} up`);
      for (const a of dev.addrs) tl.push(`addr add ${check(a, /^[0-9A-Fa-f:.]+(\/\d{1,3})?$/, 'tunnel address')} dev ${check(dev.name, NAME, 'tunnel device')}`);
    }
    out.push(ipBatch(ns, tl, `setting up tunnel receivers in ${ns}`));
    out.push(sysctlBlock(ns, (sysctls.get(ns) ?? []).filter((s) => !isEarlySysctl(s.key)), `device sysctls in ${ns}`));
    out.push(ipBatch(ns, nsOps.filter((o): o is Op<'route'> => o.op === 'route').map((o) =>
      `route add ${routeTo(o)}${o.via ? ` via ${check(o.via, ADDR, 'gateway')}` : ''}`), `adding routes in ${ns}`));
  }

  // 5. nftables rulesets
  for (const o of ops) {
    if (o.op !== 'nft') continue;
    const h = heredoc(o.ruleset);
    out.push(`ip netns exec ${o.ns} nft -f - ${h.start} || fail ${JSON.stringify(`nft refused the ruleset in ${o.ns}`)}\n${h.end}\n`);
  }
  out.push('exit 0\n');
  return out.filter(Boolean).join('\n');
}

/** The namespaces a plan creates (to remove them again). */
export function planNamespaces(ops: NetOp[]): string[] {
  return ops.filter((o): o is Op<'netns'> => o.op === 'netns').map((o) => o.ns);
}

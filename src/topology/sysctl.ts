// Which sysctls a topology may set. A node's sysctls are written as files under /proc/sys inside its
// network namespace, so a key must name a per-namespace networking setting: anything else is either a
// host-wide setting (kernel.*, vm.*, the init-namespace-only net.core knobs) or, with "..", "/" or
// empty segments, a path that is not a sysctl at all.

/** Top-level groups under net/ whose entries are per network namespace. */
const NET_GROUPS = new Set(['ipv4', 'ipv6', 'core', 'netfilter', 'unix', 'mptcp']);
/** The net.core entries a non-initial network namespace has (the rest are host-wide). */
const NET_CORE_LOCAL = new Set(['somaxconn', 'txrehash', 'xfrm_aevent_etime', 'xfrm_aevent_rseqth', 'xfrm_larval_drop', 'xfrm_acq_expires']);
/** Per-device subtrees: net.ipv4.conf.<dev>.*, net.ipv6.neigh.<dev>.* ... */
const PER_DEVICE = new Set(['conf', 'neigh']);
const SEGMENT = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const VALUE = /^[A-Za-z0-9 _.:,\-/]{0,256}$/;

/** "net.ipv4.ip_forward", "net/ipv4/ip_forward" or "/proc/sys/net/ipv4/ip_forward" -> "net/ipv4/ip_forward". */
export function normSysctl(key: string): string {
  return key.includes('/') ? key.replace(/^\/?proc\/sys\//, '') : key.replace(/\./g, '/');
}

/**
 * Why `key` may not be set on a node whose devices are `devices` (undefined when it may).
 * Device names in per-device keys must be all, default, lo or one of the node's devices (checked when
 * `devices` is given: the derived devices are known only after derivation).
 */
export function sysctlKeyProblem(key: string, devices?: ReadonlySet<string>): string | undefined {
  if (key.length === 0 || key.length > 200) return `sysctl key "${key.slice(0, 60)}" must be 1 to 200 characters`;
  const segs = normSysctl(key).split('/');
  const bad = segs.find((s) => !SEGMENT.test(s));
  if (bad !== undefined) return `sysctl key "${key}" has an invalid part ${JSON.stringify(bad)} (parts are letters, digits, "_" and "-"; no "..", no empty parts)`;
  if (segs[0] !== 'net' || segs.length < 3) return `sysctl key "${key}" is not a per-namespace network setting: only net.ipv4.*, net.ipv6.*, net.core.*, net.netfilter.*, net.unix.* and net.mptcp.* keys can be set on a node`;
  if (!NET_GROUPS.has(segs[1])) return `sysctl key "${key}": net.${segs[1]} is not per network namespace (allowed: ${[...NET_GROUPS].map((g) => `net.${g}`).join(', ')})`;
  if (segs[1] === 'core' && (segs.length !== 3 || !NET_CORE_LOCAL.has(segs[2]))) return `sysctl key "${key}" is host-wide; the net.core keys a namespace has are ${[...NET_CORE_LOCAL].join(', ')}`;
  if ((segs[1] === 'ipv4' || segs[1] === 'ipv6') && PER_DEVICE.has(segs[2])) {
    if (segs.length < 5) return `sysctl key "${key}" must name a device and a setting (net.${segs[1]}.${segs[2]}.<device>.<setting>)`;
    const dev = segs[3];
    if (devices && dev !== 'all' && dev !== 'default' && dev !== 'lo' && !devices.has(dev)) {
      return `sysctl key "${key}" names device "${dev}", which this node does not have (it has: all, default, lo${devices.size ? ', ' + [...devices].join(', ') : ''})`;
    }
  }
  return undefined;
}

export function sysctlValueProblem(value: string): string | undefined {
  return VALUE.test(value) ? undefined : `sysctl value ${JSON.stringify(value.slice(0, 60))} may hold only letters, digits, spaces and _ . : , - / (at most 256 characters)`;
}

// Removing one lab from a guest that holds several (the run's shared VM): every process running in the
// lab's namespaces is killed, then the namespaces go, and with them their links, addresses, routes,
// nftables tables and IPVS services. The guest and its other labs are untouched, so the next lab built
// there starts clean (a half-built lab left behind made every later build fail with "File exists").
import { NS_PREFIX, NS_SEP } from '../plan';
import type { VmGuest } from './guest';

const LAB = /^[A-Za-z0-9_.-]{1,64}$/;

/** The dash script that removes lab `labName`'s namespaces and processes from a guest (pure). */
export function renderLabTeardown(labName: string): string {
  if (!LAB.test(labName) || labName.includes(NS_SEP)) throw new Error(`lab name ${JSON.stringify(labName)} is not valid here`);
  const prefix = `${NS_PREFIX}${labName}${NS_SEP}`;
  return [
    'left=""',
    // `ip netns list` prints "NAME" or "NAME (id: N)": the first word is the name (read splits it).
    'for ns in $(ip netns list | while read -r name rest; do echo "$name"; done); do',
    `  case "$ns" in ${prefix}*)`,
    '    for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null; done',
    '    ip netns delete "$ns" || left="$left $ns";;',
    '  esac',
    'done',
    // Say what could not be removed: the caller reports it instead of pretending the guest is clean.
    '[ -z "$left" ] || { echo "namespaces left:$left" >&2; exit 1; }',
    '',
  ].join('\n');
}

/** Removes lab `labName` from `guest`, leaving every other lab there as it was. */
export async function removeLabFromGuest(guest: VmGuest, labName: string): Promise<void> {
  const r = await guest.exec(null, ['sh', '-s'], { input: renderLabTeardown(labName), timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`cannot remove lab ${labName} from VM ${guest.name}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`);
}

/** The lab's namespaces still in the guest (what a clean removal leaves: none). */
export async function labNamespacesInGuest(guest: VmGuest, labName: string): Promise<string[]> {
  const r = await guest.exec(null, ['ip', 'netns', 'list']);
  if (r.code !== 0) throw new Error(`cannot list namespaces in VM ${guest.name}: ${r.stderr.trim()}`);
  const prefix = `${NS_PREFIX}${labName}${NS_SEP}`;
  return r.stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(prefix));
}

// Full-NAT's source NAT on a director: mainline IPVS (and the nftables director's dnat) only rewrite the
// destination; the source becomes one of the service's local addresses here, in an nftables postrouting
// table (inet vslab_fullnat), the way kube-proxy pairs IPVS with SNAT. The drivers that need it load it on
// their node (src/director/ipvs.ts, src/director/nftables.ts); the faults act on the same table.
import { familyOf } from '../topology/addr';
import type { LabModel } from '../topology/model';
import type { LabNode } from '../backend/types';

export const FULLNAT_TABLE = 'vslab_fullnat';

/** The director's Full-NAT source-NAT ruleset, or undefined when none of its services uses fullnat. */
export function fullnatSnatRuleset(lab: LabModel, directorName: string): string | undefined {
  const director = lab.nodes.find((n) => n.name === directorName);
  if (!director) return undefined;
  const rules: string[] = [];
  for (const s of lab.services.filter((x) => x.director === director.name && x.localAddrs?.length)) {
    for (const rs of s.realServers.filter((x) => x.method === 'fullnat')) {
      // The local address on the real server's segment, else any of the right family.
      const la = s.localAddrs!.find((a) => familyOf(a) === rs.family && director.interfaces.some((i) => i.extraAddrs.some((e) => e.startsWith(a + '/')) && lab.nodes.find((n) => n.name === rs.node)!.interfaces.some((ri) => ri.segment === i.segment)))
        ?? s.localAddrs!.find((a) => familyOf(a) === rs.family);
      if (!la) continue;
      const ipk = rs.family === 4 ? 'ip' : 'ip6';
      const l4 = s.protocol === 'sctp' ? 'sctp' : s.protocol;
      rules.push(`    ${ipk} daddr ${rs.addr} ${l4} dport ${rs.port} snat ${ipk} to ${la} comment "service ${s.name} -> ${rs.node}"`);
    }
  }
  if (!rules.length) return undefined;
  return [`table inet ${FULLNAT_TABLE} {`, '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;', ...rules, '  }', '}', ''].join('\n');
}

/** Loads (or replaces) the Full-NAT table on the node; removes it when `ruleset` is undefined. */
export async function loadFullnatSnat(node: LabNode, ruleset: string | undefined): Promise<void> {
  // "add table" first so the delete never fails on a node that has none yet.
  const input = `add table inet ${FULLNAT_TABLE}\ndelete table inet ${FULLNAT_TABLE}\n${ruleset ?? ''}`;
  const r = await node.exec(['nft', '-f', '-'], { input, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`director ${node.name}: nft refused the Full-NAT source-NAT table: ${r.stderr.trim() || `exit ${r.code}`}`);
}

// A NAT director made of nftables rules (dnat to a numgen-selected real server; conntrack un-NATs
// replies). It runs on any kernel with nf_tables, so the quick start works on hosts without IPVS.
// It implements rr and wrr exactly (numgen inc over weight-expanded slots), NAT and Full-NAT only.
import type { LabModel, ServiceModel } from '../topology/model';

export interface NftPlan {
  ruleset: string;
  supported: ServiceModel[];
  unsupported: Array<{ service: string; reason: string }>;
}

export function nftablesNatRuleset(lab: LabModel, director: string): NftPlan {
  const supported: ServiceModel[] = [];
  const unsupported: Array<{ service: string; reason: string }> = [];
  const rules: string[] = [];
  for (const s of lab.services.filter((x) => x.director === director)) {
    const methods = new Set(s.realServers.map((r) => r.method));
    if ([...methods].some((m) => m !== 'nat' && m !== 'fullnat')) { unsupported.push({ service: s.name, reason: `method ${[...methods].join('/')}: this director only does nat and fullnat` }); continue; }
    if (s.scheduler !== 'rr' && s.scheduler !== 'wrr') { unsupported.push({ service: s.name, reason: `scheduler ${s.scheduler}: nftables can express rr and wrr only` }); continue; }
    if (!s.vip || s.fwmark !== undefined) { unsupported.push({ service: s.name, reason: 'fwmark services are not supported' }); continue; }
    if (s.persistence) { unsupported.push({ service: s.name, reason: 'persistence is not supported' }); continue; }
    const slots: string[] = [];
    for (const r of s.realServers) {
      const w = s.scheduler === 'rr' ? (r.weight > 0 ? 1 : 0) : r.weight;
      for (let i = 0; i < w; i++) slots.push(`${r.addr} . ${r.port}`);
    }
    if (!slots.length) { unsupported.push({ service: s.name, reason: 'every real server has weight 0' }); continue; }
    const ipk = s.family === 4 ? 'ip' : 'ip6';
    const map = slots.map((t, i) => `${i} : ${s.family === 6 ? t.replace(/^(\S+) \. /, '$1 . ') : t}`).join(', ');
    rules.push(`    ${ipk} daddr ${s.vip} ${s.protocol} dport ${s.port} dnat ${ipk} to numgen inc mod ${slots.length} map { ${map} } comment "service ${s.name}"`);
    supported.push(s);
  }
  const ruleset = ['table inet vslab_director {', '  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', ...rules, '  }', '}', ''].join('\n');
  return { ruleset, supported, unsupported };
}

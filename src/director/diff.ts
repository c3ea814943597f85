// What differs between the services a model asks for and those a director holds (in model terms), for
// drivers whose read-back is all they have (nftables, external adapters). Kernel IPVS has its own, finer
// diff (ipvs.ts: flags, persistence, tunnels, thresholds).
import { canonical } from '../topology/addr';
import type { ServiceModel } from '../topology/model';
import type { DirectorDifference, DirectorService } from './types';

/** A service's key as both sides see it: protocol, VIP (or fwmark) and port. */
export const serviceKey = (s: { protocol: string; vip?: string; port: number; fwmark?: number }): string =>
  s.vip ? `${s.protocol}/${canonical(s.vip)}/${s.port}` : `fwmark/${s.fwmark}`;
export const realServerKey = (addr: string, port: number): string => `${canonical(addr)}:${port}`;

/**
 * Real servers asked and held, paired by `key`: the unpaired go to `out` as "missing" / "unexpected";
 * the pairs are returned for the caller's field-by-field comparison.
 */
export function pairRealServers<W extends { addr: string; port: number }, G extends { addr: string; port: number }>(
  want: { name: string; realServers: W[] }, got: { realServers: G[] }, key: (addr: string, port: number) => string, out: DirectorDifference[],
): Array<[string, W, G]> {
  const gotRs = new Map(got.realServers.map((r) => [key(r.addr, r.port), r]));
  const wantRs = new Map(want.realServers.map((r) => [key(r.addr, r.port), r]));
  for (const [rid] of gotRs) if (!wantRs.has(rid)) out.push({ service: want.name, realServer: rid, what: 'unexpected' });
  const pairs: Array<[string, W, G]> = [];
  for (const [rid, r] of wantRs) {
    const g = gotRs.get(rid);
    if (g) pairs.push([rid, r, g]);
    else out.push({ service: want.name, realServer: rid, what: 'missing' });
  }
  return pairs;
}

export function diffServices(asked: ServiceModel[], held: DirectorService[]): DirectorDifference[] {
  const out: DirectorDifference[] = [];
  const heldBy = new Map(held.map((s) => [serviceKey(s), s]));
  const askedBy = new Map(asked.map((s) => [serviceKey(s), s]));
  for (const [k] of heldBy) if (!askedBy.has(k)) out.push({ service: k, what: 'unexpected' });
  for (const [k, want] of askedBy) {
    const got = heldBy.get(k);
    if (!got) {
      out.push({ service: want.name, what: 'missing', expected: k });
      continue;
    }
    const field = (what: string, expected: unknown, actual: unknown, rs?: string) => {
      if (JSON.stringify(expected) !== JSON.stringify(actual)) out.push({ service: want.name, ...(rs ? { realServer: rs } : {}), what, expected, actual });
    };
    field('scheduler', want.scheduler, got.scheduler);
    field('flags', [...want.flags].sort(), [...got.flags].sort());
    field('persistence', want.persistence?.timeout ?? 0, got.persistence?.timeout ?? 0);
    field('transparent', !!want.transparent, !!got.transparent);
    for (const [rid, r, g] of pairRealServers(want, got, realServerKey, out)) {
      // rr ignores weights: a director may hold any weight > 0 as "one turn each".
      if (want.scheduler === 'rr' && r.weight > 0 && g.weight > 0) { /* same */ } else field('weight', r.weight, g.weight, rid);
      field('upper', r.upper, g.upper, rid);
      field('lower', r.lower, g.lower, rid);
      field('method', r.method, g.method, rid);
    }
  }
  return out;
}

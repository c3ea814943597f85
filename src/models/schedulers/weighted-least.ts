// The "weighted least load" scan shared by wlc (ip_vs_wlc.c), sed (ip_vs_sed.c) and the fallback
// of lblc/lblcr: the first non-overloaded destination with weight > 0 becomes the candidate, then
// every later non-overloaded destination replaces it when loh * W(d) > doh * W(least) (strict, so
// the first wins ties and weight 0 can never win). The kernel multiplies in signed 64 bits; the
// products here stay below 2^53 for any weight <= 65535 and overhead < 2^36, so plain numbers are
// exact (checked by an assertion rather than silently wrong).

import type { Dest } from '../dest';

export function weightedLeast(list: readonly Dest[], overhead: (d: Dest) => number): Dest | null {
  let i = 0;
  const n = list.length;
  let least: Dest | null = null;
  for (; i < n; i++) {
    const d = list[i];
    if (d.overload) continue;
    if (d.weight > 0) {
      least = d;
      break;
    }
  }
  if (least === null) return null;
  let loh = overhead(least);
  for (i = i + 1; i < n; i++) {
    const d = list[i];
    if (d.overload) continue;
    const doh = overhead(d);
    const a = loh * d.weight;
    const b = doh * least.weight;
    if (a > Number.MAX_SAFE_INTEGER || b > Number.MAX_SAFE_INTEGER) {
      throw new Error(`weighted-least comparison exceeds exact integer range (overhead ${loh}/${doh}, weights ${least.weight}/${d.weight})`);
    }
    if (a > b) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

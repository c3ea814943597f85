// Scenario addresses in the replay lab. A scenario may use any address; the lab only uses
// 198.18.0.0/15 and 2001:db8::/32 (and keeps its own LAN, the "plumbing", to itself). Addresses
// that are already fine are used as they are, so the kernel hashes exactly what the scenario says.
// Others are moved, a whole prefix at a time (a generated client range keeps its host bits), into
// free blocks of the lab ranges; the replayer then predicts with the moved scenario (hashing
// schedulers depend on the addresses) and maps addresses back when it reports.
import { type Address, addressFromBytes, maskAddress, parseAddress } from '../../models/address';
import type { Scenario, ScenarioEvent, ScenarioFlow, ScenarioServer } from '../../models/scenario';
import { FWMARK_DEFAULT_DST, PLUMBING_V4, PLUMBING_V6 } from './plumbing';

export interface Prefix {
  base: Address;
  len: number;
}

export function parsePrefix(text: string): Prefix {
  const m = /^([^/]+)(?:\/([0-9]{1,3}))?$/.exec(text);
  if (!m) throw new Error(`not an address or prefix: ${JSON.stringify(text)}`);
  const a = parseAddress(m[1]);
  const len = m[2] === undefined ? a.bytes.length * 8 : Number(m[2]);
  if (len > a.bytes.length * 8) throw new Error(`prefix length ${len} too long for ${a.text}`);
  return { base: maskAddress(a, len), len };
}

export function formatPrefix(p: Prefix): string {
  return `${p.base.text}/${p.len}`;
}

export function prefixContains(p: Prefix, a: Address): boolean {
  return p.base.family === a.family && maskAddress(a, p.len).text === p.base.text;
}

/** Whether two prefixes share any address. */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.base.family !== b.base.family) return false;
  const len = Math.min(a.len, b.len);
  return maskAddress(a.base, len).text === maskAddress(b.base, len).text;
}

/** The ranges lab addresses must come from. */
export const LAB_RANGES: Prefix[] = [parsePrefix('198.18.0.0/15'), parsePrefix('2001:db8::/32')];
/** The replay lab's own LAN and the addresses it uses itself. */
export const PLUMBING: Prefix[] = [parsePrefix(PLUMBING_V4.prefix), parsePrefix(PLUMBING_V6.prefix), parsePrefix(FWMARK_DEFAULT_DST[4]), parsePrefix(FWMARK_DEFAULT_DST[6])];
/** Where moved prefixes go (tried in order, first free aligned block). */
const POOLS: Prefix[] = [parsePrefix('198.18.160.0/19'), parsePrefix('198.19.32.0/19'), parsePrefix('2001:db8:f000::/36')];

/** Every address or prefix a raw scenario names, with where (for messages). */
export function scenarioPrefixes(sc: Scenario): { prefix: Prefix; where: string }[] {
  const out: { prefix: Prefix; where: string }[] = [];
  const add = (text: string | undefined, where: string) => {
    if (text !== undefined) out.push({ prefix: parsePrefix(text), where });
  };
  add(sc.service.vip, '$.service.vip');
  sc.servers.forEach((s, i) => add(s.addr, `$.servers[${i}].addr`));
  (sc.events ?? []).forEach((e, i) => {
    if (e.op === 'add') add(e.server.addr, `$.events[${i}].server.addr`);
  });
  sc.flows.forEach((f, i) => {
    if ('generate' in f) {
      add(f.generate.clients, `$.flows[${i}].generate.clients`);
      add(f.generate.dsts, `$.flows[${i}].generate.dsts`);
    } else {
      add(f.client, `$.flows[${i}].client`);
      add(f.dst, `$.flows[${i}].dst`);
    }
  });
  return out;
}

function usable(p: Prefix): boolean {
  return LAB_RANGES.some((r) => r.base.family === p.base.family && r.len <= p.len && prefixContains(r, p.base)) && !PLUMBING.some((q) => prefixesOverlap(p, q));
}

function addHost(block: Address, a: Address, fromLen: number): Address {
  // keep a's host bits below fromLen, put block's network bits above
  const out = new Uint8Array(block.bytes);
  const bits = a.bytes.length * 8;
  for (let bit = fromLen; bit < bits; bit++) {
    if (a.bytes[bit >> 3] & (0x80 >> (bit & 7))) out[bit >> 3] |= 0x80 >> (bit & 7);
  }
  return addressFromBytes(out);
}

export class AddressMap {
  /** Moved prefixes: scenario prefix -> lab prefix of the same length. */
  readonly moves: { from: Prefix; to: Prefix }[] = [];

  get identity(): boolean {
    return this.moves.length === 0;
  }

  /** The lab address for a scenario address (unchanged unless it lies in a moved prefix). */
  toLab(text: string): string {
    const a = parseAddress(text);
    const m = this.moves.find((x) => prefixContains(x.from, a));
    return m ? addHost(m.to.base, a, m.to.len).text : a.text;
  }

  /** The scenario address for a lab address. */
  toScenario(text: string): string {
    const a = parseAddress(text);
    const m = this.moves.find((x) => prefixContains(x.to, a));
    return m ? addHost(m.from.base, a, m.from.len).text : a.text;
  }

  prefixToLab(text: string): string {
    const p = parsePrefix(text);
    const m = this.moves.find((x) => x.from.len <= p.len && prefixContains(x.from, p.base));
    return m ? `${addHost(m.to.base, p.base, m.to.len).text}/${p.len}` : formatPrefix(p);
  }

  describe(): string {
    return this.identity ? 'addresses used as given' : this.moves.map((m) => `${formatPrefix(m.from)} -> ${formatPrefix(m.to)}`).join(', ');
  }
}

/** Plans the moves for a scenario; throws when the pools cannot hold what must move. */
export function planAddressMap(sc: Scenario): AddressMap {
  const items = scenarioPrefixes(sc);
  const map = new AddressMap();
  const keep = items.filter((x) => usable(x.prefix)).map((x) => x.prefix);
  // Largest blocks first; a single address inside a prefix that moves goes with it.
  const bad = items.filter((x) => !usable(x.prefix)).sort((a, b) => a.prefix.len - b.prefix.len);
  const taken: Prefix[] = [...keep, ...PLUMBING];
  for (const { prefix, where } of bad) {
    if (map.moves.some((m) => m.from.len <= prefix.len && prefixContains(m.from, prefix.base))) continue;
    let placed: Prefix | null = null;
    for (const pool of POOLS) {
      if (pool.base.family !== prefix.base.family || pool.len > prefix.len) continue;
      const size = 2 ** Math.min(32, prefix.len - pool.len);
      for (let k = 0; k < size && !placed; k++) {
        const cand = blockAt(pool, prefix.len, k);
        if (!taken.some((t) => prefixesOverlap(t, cand))) placed = cand;
      }
      if (placed) break;
    }
    if (!placed) throw new Error(`${where}: ${formatPrefix(prefix)} is outside the lab ranges (198.18.0.0/15, 2001:db8::/32) or overlaps the replay lab's LAN, and no free block of that size is left to move it to`);
    map.moves.push({ from: prefix, to: placed });
    taken.push(placed);
  }
  return map;
}

/** The k-th block of length `len` inside `pool` (k counted from the pool's start). */
function blockAt(pool: Prefix, len: number, k: number): Prefix {
  const out = new Uint8Array(pool.base.bytes);
  // add k at bit position len-1 (the block index bits are pool.len..len-1)
  let carry = k;
  for (let bit = len - 1; bit >= pool.len && carry > 0; bit--) {
    if (carry & 1) out[bit >> 3] |= 0x80 >> (bit & 7);
    carry = Math.floor(carry / 2);
  }
  return { base: addressFromBytes(out), len };
}

/** The scenario with every address moved into the lab (the same object when nothing moves). */
export function mapScenario(sc: Scenario, map: AddressMap): Scenario {
  if (map.identity) return sc;
  const a = (t: string) => map.toLab(t);
  const server = (s: ScenarioServer): ScenarioServer => ({ ...s, addr: a(s.addr) });
  const service = { ...sc.service } as Scenario['service'];
  if (service.vip !== undefined) service.vip = a(service.vip);
  return {
    ...sc,
    service,
    servers: sc.servers.map(server),
    flows: sc.flows.map((f) => {
      if ('generate' in f) {
        const g = { ...f.generate, clients: map.prefixToLab(f.generate.clients) };
        if (g.dsts !== undefined) g.dsts = map.prefixToLab(g.dsts);
        return { generate: g };
      }
      const out: ScenarioFlow = { ...f, client: a(f.client) };
      if (f.dst !== undefined) out.dst = a(f.dst);
      return out;
    }),
    events: sc.events?.map((e): ScenarioEvent => (e.op === 'add' ? { ...e, server: server(e.server) } : e)),
  };
}

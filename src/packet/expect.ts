// Expected packets with don't-care masks (in the spirit of PTF's Mask), evaluated against the decoded
// packets captured on a link; on a mismatch a field-by-field diff of the closest packet, layer by layer.
// Expectations are plain JSON so a run can save them next to its pcaps and re-evaluate them offline.
import { decodeFrame, type DecodeOptions } from './decode';
import type { DecodedPacket, Layer, LayerType } from './layers';

/** An expected layer: a type plus any decoded fields to compare. Fields left out are not compared. */
export type ExpectedLayer = { type: LayerType } & { [field: string]: unknown };

export interface PacketExpectation {
  /** Unique within its test, e.g. "syn-client-to-vip". */
  id: string;
  description?: string;
  /** Link the packet is expected on (or absent from): "node:iface". */
  link: string;
  /** Expected layers in wire order; the seen packet must have the same layer types in the same order
   *  (a trailing payload layer of the seen packet is ignored unless one is expected). */
  layers: ExpectedLayer[];
  /** Don't-care masks: "ipv4.id", "eth" (whole layer), "*.checksum", "ipv4[1].ttl" (second ipv4 layer),
   *  "tcp.options.timestamp" (that option), "tcp.options.timestamp.tsval" (a field of it). */
  ignore?: string[];
  /** 'present' (default): at least count.min (default 1) and at most count.max matching packets; 'absent': none. */
  mode?: 'present' | 'absent';
  count?: { min?: number; max?: number };
  /** Only packets with timestamps within [after, before] ("seconds.nanoseconds"). */
  after?: string;
  before?: string;
}

export type FieldStatus = 'ok' | 'mismatch' | 'ignored' | 'missing';

export interface FieldDiff {
  field: string;
  expected: unknown;
  seen: unknown;
  status: FieldStatus;
}

export interface LayerDiff {
  /** Position in the packet's layer list. */
  index: number;
  expectedType?: LayerType;
  seenType?: LayerType;
  /** The whole layer is masked. */
  ignored?: boolean;
  fields: FieldDiff[];
}

export interface PacketDiff {
  mismatches: number;
  layers: LayerDiff[];
}

export interface PacketRef {
  index?: number;
  ts?: string;
}

export interface ExpectationResult {
  id: string;
  link: string;
  mode: 'present' | 'absent';
  ok: boolean;
  /** One-line explanation of the verdict. */
  reason: string;
  /** Packets on the link (within the time window) that were compared. */
  candidates: number;
  matched: PacketRef[];
  /** present + failed: the closest candidate and its diff. absent + failed: the first offending packet. */
  closest?: { packet: PacketRef; diff: PacketDiff };
}

interface Mask {
  text: string;
  layer: string;
  occurrence?: number;
  path: string[];
}

export function parseMask(text: string): Mask {
  const m = /^(\*|[a-z0-9]+)(?:\[(\d+)\])?((?:\.[A-Za-z0-9_]+)*)$/.exec(text);
  if (!m) throw new Error(`mask "${text}" is not of the form layer[.field...], layer[N].field or *.field (e.g. "ipv4.id", "tcp.options.timestamp")`);
  return { text, layer: m[1], occurrence: m[2] !== undefined ? Number(m[2]) : undefined, path: m[3] ? m[3].slice(1).split('.') : [] };
}

function masksFor(masks: Mask[], type: string, occurrence: number): Mask[] {
  return masks.filter((m) => (m.layer === '*' || m.layer === type) && (m.occurrence === undefined || m.occurrence === occurrence));
}

function isPrefix(prefix: string[], path: string[]): boolean {
  if (prefix.length > path.length) return false;
  return prefix.every((p, i) => p === path[i]);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Applies option-level masks ("options.<name>" drops those options, "options.<name>.<field>" drops a field). */
function maskOptions(value: unknown, masks: Mask[]): unknown {
  if (!Array.isArray(value)) return value;
  const drop = new Set<string>();
  const dropField = new Map<string, string[]>();
  for (const m of masks) {
    if (m.path[0] !== 'options' || m.path.length < 2) continue;
    if (m.path.length === 2) drop.add(m.path[1]);
    else {
      const l = dropField.get(m.path[1]) ?? [];
      l.push(m.path[2]);
      dropField.set(m.path[1], l);
    }
  }
  if (!drop.size && !dropField.size) return value;
  return value
    .filter((o) => !(o && typeof o === 'object' && drop.has(String((o as { name?: unknown }).name))))
    .map((o) => {
      const name = o && typeof o === 'object' ? String((o as { name?: unknown }).name) : '';
      const fields = dropField.get(name);
      if (!fields) return o;
      const c = { ...(o as Record<string, unknown>) };
      for (const f of fields) delete c[f];
      return c;
    });
}

/**
 * A ones' complement checksum has two zeros: 0x0000 and 0xffff verify alike (RFC 1624: a kernel that updates
 * a checksum incrementally may write either, where a checksum computed afresh is 0x0000). Not for UDP, whose
 * 0x0000 means "no checksum" (a computed zero is sent as 0xffff, RFC 768).
 */
function onesComplementZeros(type: string, key: string, a: unknown, b: unknown): boolean {
  return key === 'checksum' && type !== 'udp' && (a === 0 || a === 0xffff) && (b === 0 || b === 0xffff);
}

/** Compares one seen packet with the expected layers under the masks. */
export function diffPacket(expected: ExpectedLayer[], seen: DecodedPacket, ignore: string[] = []): PacketDiff {
  const masks = ignore.map(parseMask);
  let seenLayers: Layer[] = seen.layers;
  const wantPayload = expected.some((l) => l.type === 'payload');
  if (!wantPayload) seenLayers = seenLayers.filter((l) => l.type !== 'payload');
  const layers: LayerDiff[] = [];
  let mismatches = 0;
  const occurrences = new Map<string, number>();
  const n = Math.max(expected.length, seenLayers.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i];
    const s = seenLayers[i] as (Layer & Record<string, unknown>) | undefined;
    if (!e || !s || e.type !== s.type) {
      const ld: LayerDiff = { index: i, expectedType: e?.type, seenType: s?.type, fields: [] };
      const typeMasked = e && masksFor(masks, e.type, occurrences.get(e.type) ?? 0).some((m) => m.path.length === 0) && s !== undefined;
      if (!typeMasked) mismatches++;
      ld.fields.push({ field: 'type', expected: e?.type ?? '(no layer)', seen: s?.type ?? '(no layer)', status: typeMasked ? 'ignored' : 'mismatch' });
      layers.push(ld);
      continue;
    }
    const occ = occurrences.get(e.type) ?? 0;
    occurrences.set(e.type, occ + 1);
    const lm = masksFor(masks, e.type, occ);
    const ld: LayerDiff = { index: i, expectedType: e.type, seenType: s.type, fields: [] };
    if (lm.some((m) => m.path.length === 0)) {
      ld.ignored = true;
      layers.push(ld);
      continue;
    }
    for (const key of Object.keys(e)) {
      if (key === 'type') continue;
      const ev = e[key];
      if (ev === undefined) continue;
      const sv = s[key];
      if (lm.some((m) => isPrefix(m.path, [key]))) {
        ld.fields.push({ field: key, expected: ev, seen: sv, status: 'ignored' });
        continue;
      }
      if (sv === undefined) {
        ld.fields.push({ field: key, expected: ev, seen: undefined, status: 'missing' });
        mismatches++;
        continue;
      }
      const equal = key === 'options' ? deepEqual(maskOptions(ev, lm), maskOptions(sv, lm)) : deepEqual(ev, sv) || onesComplementZeros(e.type, key, ev, sv);
      ld.fields.push({ field: key, expected: ev, seen: sv, status: equal ? 'ok' : 'mismatch' });
      if (!equal) mismatches++;
    }
    layers.push(ld);
  }
  return { mismatches, layers };
}

export function tsCompare(a: string, b: string): number {
  const [as, an = '0'] = a.split('.');
  const [bs, bn = '0'] = b.split('.');
  if (as !== bs) return Number(as) - Number(bs);
  return Number(an.padEnd(9, '0')) - Number(bn.padEnd(9, '0'));
}

/**
 * Evaluates one expectation against decoded packets of all links (decode with `payload: true` when the
 * expectation compares payloads). `links` lists the captured links, so that a link without a capture is
 * reported as such rather than as "no packet seen".
 */
export function evaluateExpectation(exp: PacketExpectation, packets: DecodedPacket[], links?: string[]): ExpectationResult {
  const mode = exp.mode ?? 'present';
  const ignore = exp.ignore ?? [];
  ignore.forEach(parseMask); // report a bad mask even when there are no candidates
  const base = { id: exp.id, link: exp.link, mode } as const;
  const captured = links ?? [...new Set(packets.map((p) => p.link ?? ''))];
  if (!captured.includes(exp.link)) {
    return { ...base, ok: false, candidates: 0, matched: [], reason: `no capture of link ${exp.link} (captured: ${captured.join(', ') || 'none'})` };
  }
  const candidates = packets.filter((p) => (p.link ?? '') === exp.link
    && (exp.after === undefined || (p.ts !== undefined && tsCompare(p.ts, exp.after) >= 0))
    && (exp.before === undefined || (p.ts !== undefined && tsCompare(p.ts, exp.before) <= 0)));
  const matched: PacketRef[] = [];
  let closest: { packet: PacketRef; diff: PacketDiff } | undefined;
  let firstMatch: { packet: PacketRef; diff: PacketDiff } | undefined;
  for (const p of candidates) {
    const d = diffPacket(exp.layers, p, ignore);
    const ref = { index: p.index, ts: p.ts };
    if (d.mismatches === 0) {
      matched.push(ref);
      if (!firstMatch) firstMatch = { packet: ref, diff: d };
    } else if (!closest || d.mismatches < closest.diff.mismatches) closest = { packet: ref, diff: d };
  }
  const min = exp.count?.min ?? 1;
  const max = exp.count?.max;
  if (mode === 'absent') {
    const ok = matched.length === 0;
    return {
      ...base, ok, candidates: candidates.length, matched,
      reason: ok ? `no matching packet among ${candidates.length} on ${exp.link}` : `${matched.length} matching packet(s) on ${exp.link}, expected none (first #${firstMatch?.packet.index})`,
      ...(ok ? {} : { closest: firstMatch }),
    };
  }
  const ok = matched.length >= min && (max === undefined || matched.length <= max);
  let reason: string;
  if (ok) reason = `${matched.length} matching packet(s) on ${exp.link}${matched[0]?.index !== undefined ? ` (first #${matched[0].index})` : ''}`;
  else if (matched.length > 0) reason = `${matched.length} matching packet(s) on ${exp.link}, expected ${max === undefined ? `at least ${min}` : `${min}..${max}`}`;
  else if (candidates.length === 0) reason = `no packet at all on ${exp.link}${exp.after || exp.before ? ' in the time window' : ''}`;
  else reason = `no matching packet among ${candidates.length} on ${exp.link}; closest #${closest?.packet.index} differs in ${closest?.diff.mismatches} field(s)`;
  return { ...base, ok, candidates: candidates.length, matched, reason, ...(ok || !closest ? {} : { closest }) };
}

/** A full (PTF-style) expectation from a built packet: every decoded field is compared except the masks. */
export function expectationFromPacket(args: { id: string; link: string; packet: Uint8Array; linkType?: number; ignore?: string[]; mode?: 'present' | 'absent'; description?: string; decode?: DecodeOptions }): PacketExpectation {
  const d = decodeFrame(args.packet, args.linkType ?? 1, { ...args.decode, payload: true });
  if (d.error) throw new Error(`expected packet for ${args.id} does not decode cleanly: ${d.error}`);
  return {
    id: args.id,
    ...(args.description ? { description: args.description } : {}),
    link: args.link,
    layers: d.layers as unknown as ExpectedLayer[],
    ...(args.ignore?.length ? { ignore: args.ignore } : {}),
    ...(args.mode ? { mode: args.mode } : {}),
  };
}

function show(v: unknown): string {
  if (v === undefined) return '(absent)';
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((o) => o && typeof o === 'object' && 'name' in (o as object))) {
    return '[' + v.map((o) => {
      const { kind: _k, name, len: _l, ...rest } = o as Record<string, unknown>;
      const extra = Object.entries(rest).map(([k, x]) => `${k}=${typeof x === 'object' ? JSON.stringify(x) : x}`).join(' ');
      return extra ? `${name} ${extra}` : String(name);
    }).join(', ') + ']';
  }
  return JSON.stringify(v);
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

export interface RenderOptions {
  /** ANSI colours. */
  color?: boolean;
  /** Also list fields that matched (default: only mismatches, missing and ignored). */
  all?: boolean;
}

/** Terminal rendering of a result: verdict line, then per layer each field's expected vs seen. */
export function renderResult(r: ExpectationResult, opts: RenderOptions = {}): string {
  const red = (s: string) => (opts.color ? `\x1b[31m${s}\x1b[0m` : s);
  const green = (s: string) => (opts.color ? `\x1b[32m${s}\x1b[0m` : s);
  const dim = (s: string) => (opts.color ? `\x1b[2m${s}\x1b[0m` : s);
  const lines = [`${r.ok ? green('PASS') : red('FAIL')} ${r.id} [${r.mode} on ${r.link}]: ${r.reason}`];
  if (!r.closest) return lines.join('\n');
  const c = r.closest;
  lines.push(`  ${r.mode === 'absent' ? 'offending' : 'closest'} packet #${c.packet.index ?? '?'}${c.packet.ts ? ` at ${c.packet.ts}` : ''}:`);
  lines.push(dim(`    ${'layer'.padEnd(10)} ${'field'.padEnd(12)} ${'expected'.padEnd(34)} seen`));
  for (const l of c.diff.layers) {
    const name = l.expectedType === l.seenType ? String(l.expectedType) : `${l.expectedType ?? '-'}/${l.seenType ?? '-'}`;
    if (l.ignored) {
      lines.push(dim(`    ${name.padEnd(10)} ${'(all)'.padEnd(12)} ignored`));
      continue;
    }
    const shown = l.fields.filter((f) => opts.all || f.status !== 'ok');
    const okCount = l.fields.filter((f) => f.status === 'ok').length;
    if (!shown.length) {
      lines.push(dim(`    ${name.padEnd(10)} ${okCount ? `${okCount} field(s) equal` : '(layer type only)'}`));
      continue;
    }
    for (const f of shown) {
      const mark = f.status === 'ok' ? '  ' : f.status === 'ignored' ? '~ ' : '✗ ';
      const text = `${mark}${name.padEnd(10)} ${f.field.padEnd(12)} ${clip(show(f.expected), 34).padEnd(34)} ${f.status === 'ignored' ? `${clip(show(f.seen), 40)} (ignored)` : clip(show(f.seen), 60)}`;
      lines.push('  ' + (f.status === 'mismatch' || f.status === 'missing' ? red(text) : f.status === 'ignored' ? dim(text) : text));
    }
    if (!opts.all && okCount) lines.push(dim(`      ${''.padEnd(10)} (+${okCount} equal)`));
  }
  return lines.join('\n');
}

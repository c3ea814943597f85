// Per-protocol and per-flow counts over a capture, on the fast path (no per-field objects), so it
// streams files of millions of packets with bounded memory (one map entry per flow).
import type { CaptureReader } from '../capture/reader';
import { ipv4ToString, ipv6ToString } from './addr';
import { E_NONE, FrameScan, L_IPV4, LAYER_COUNT, LAYER_NAMES, scanFrame, type ScanOptions } from './scan';

export interface FlowStats {
  /** Protocol number of the innermost IP layer. */
  proto: number;
  /** Endpoints in the direction of the flow's first packet. */
  src: string;
  sport: number;
  dst: string;
  dport: number;
  packets: number;
  bytes: number;
  /** Packets from dst to src. */
  packetsBack: number;
  firstIndex: number;
}

export interface CaptureStats {
  packets: number;
  /** Bytes on the wire (sum of original lengths). */
  bytes: number;
  capturedBytes: number;
  firstTs?: [number, number];
  lastTs?: [number, number];
  /** Layer type -> packets containing at least one such layer. */
  protocols: Record<string, number>;
  /** Packets whose headers were malformed or cut short. */
  malformed: number;
  /** Packets without an IP flow (ARP, unknown ethertypes...). */
  nonIp: number;
  flowCount: number;
  /** Largest flows by packets (both directions counted). */
  topFlows: FlowStats[];
  interfaces: string[];
}

interface FlowEntry {
  proto: number;
  /** Raw address bytes (latin1) and ports of the first packet's source and destination. */
  a: string;
  ap: number;
  b: string;
  bp: number;
  v6: boolean;
  packets: number;
  bytes: number;
  back: number;
  first: number;
}

/** Streams the reader to its end and counts. */
export function captureStats(r: CaptureReader, opts: ScanOptions & { top?: number } = {}): CaptureStats {
  const s = new FrameScan(opts);
  const layerCounts = new Float64Array(LAYER_COUNT);
  const seen = new Uint8Array(LAYER_COUNT);
  const flows = new Map<string, FlowEntry>();
  let packets = 0, bytes = 0, captured = 0, malformed = 0, nonIp = 0;
  let firstTs: [number, number] | undefined;
  let lastTs: [number, number] | undefined;
  while (r.next()) {
    const d = r.data;
    scanFrame(s, d, r.dataOff, r.capLen, r.linkType, r.origLen);
    if (packets === 0) firstTs = [r.tsSec, r.tsNsec];
    packets++;
    bytes += r.origLen;
    captured += r.capLen;
    if (s.error !== E_NONE) malformed++;
    seen.fill(0);
    for (let i = 0; i < s.n; i++) {
      const t = s.type[i];
      if (!seen[t]) {
        seen[t] = 1;
        layerCounts[t]++;
      }
    }
    if (s.ip < 0) {
      nonIp++;
      continue;
    }
    const o = s.off[s.ip];
    const v6 = s.type[s.ip] !== L_IPV4;
    const src = v6 ? d.toString('latin1', o + 8, o + 24) : d.toString('latin1', o + 12, o + 16);
    const dst = v6 ? d.toString('latin1', o + 24, o + 40) : d.toString('latin1', o + 16, o + 20);
    const sp = s.sport;
    const dp = s.dport;
    const forward = src < dst || (src === dst && sp <= dp);
    const key = forward ? `${s.proto}|${src}|${sp}|${dst}|${dp}` : `${s.proto}|${dst}|${dp}|${src}|${sp}`;
    let f = flows.get(key);
    if (!f) {
      f = { proto: s.proto, a: src, ap: sp, b: dst, bp: dp, v6, packets: 0, bytes: 0, back: 0, first: packets - 1 };
      flows.set(key, f);
    }
    f.packets++;
    f.bytes += r.origLen;
    if (src !== f.a || sp !== f.ap) f.back++;
  }
  if (packets > 0) lastTs = [r.tsSec, r.tsNsec];
  const protocols: Record<string, number> = {};
  for (let t = 1; t < LAYER_COUNT; t++) if (layerCounts[t] > 0) protocols[LAYER_NAMES[t]] = layerCounts[t];
  const top = [...flows.values()].sort((x, y) => y.packets - x.packets || x.first - y.first).slice(0, opts.top ?? 20);
  const addr = (raw: string, v6: boolean) => {
    const b = Buffer.from(raw, 'latin1');
    return v6 ? ipv6ToString(b, 0) : ipv4ToString(b, 0);
  };
  return {
    packets, bytes, capturedBytes: captured, firstTs, lastTs, protocols, malformed, nonIp,
    flowCount: flows.size,
    topFlows: top.map((f) => ({ proto: f.proto, src: addr(f.a, f.v6), sport: f.ap, dst: addr(f.b, f.v6), dport: f.bp, packets: f.packets, bytes: f.bytes, packetsBack: f.back, firstIndex: f.first })),
    interfaces: r.interfaces.map((_, i) => r.interfaceName(i)),
  };
}

// `vslab pcap json|show|stats|merge|trace <file>`: read pcap/pcapng captures (streamed, any size).
import type { Writable } from 'stream';
import { CaptureFormatError, CaptureOutputError } from '../../capture/errors';
import { isIP } from 'net';
import { mergeCaptures } from '../../capture/merge';
import { openCaptureFile } from '../../capture/open';
import type { CaptureReader } from '../../capture/reader';
import { decodeCapture, decodeCurrent } from '../../packet/capturefile';
import { PacketDecoder } from '../../packet/decode';
import { formatPacketLine } from '../../packet/format';
import { renderJourney, traceFlow, type FlowTuple } from '../../packet/journey';
import { captureStats } from '../../packet/stats';
import { UsageError, type CliCommand } from '../command';

const USAGE = `usage:
  vslab pcap json  <file> [--payload] [--link NAME] [--count N] [--gue-port N] [--vxlan-port N]
      JSON array of packets: {index, ts, link, len, capLen, layers: [{type, ...fields}], truncated?, error?}
  vslab pcap show  <file> [--link NAME] [--count N] [--gue-port N]
      one line per packet, like tcpdump -nn
  vslab pcap stats <file> [--top N] [--json] [--gue-port N]
      packets per protocol and per flow, streaming (millions of packets are fine)
  vslab pcap merge -o <out.pcapng> <file>[=node:iface] ...
      merge captures by timestamp into one pcapng whose interfaces are named node:iface
  vslab pcap trace <file> --flow "<tcp|udp|icmp> <src>:<sport> > <dst>:<dport>" [--json] [--window SEC] [--gue-port N]
      follow one client connection across all links (NAT/Full-NAT rewrites, tunnels)
Files may be pcap (µs or ns, either byte order) or pcapng. A corrupt file is reported with its byte offset (exit 2).`;

export interface Io {
  out: Writable;
  err: Writable;
}

/** Buffered writer that respects back-pressure and stops quietly when the reader goes away (EPIPE). */
class Output {
  private parts: string[] = [];
  private size = 0;
  closed = false;
  constructor(private readonly stream: Writable) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') this.closed = true;
    });
  }
  async write(s: string): Promise<void> {
    if (this.closed) return;
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (!this.size || this.closed) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((res) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('error', done);
          this.stream.off('close', done);
          res();
        };
        this.stream.on('drain', done);
        this.stream.on('error', done);
        this.stream.on('close', done);
      });
    }
  }
}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--link', '--count', '--gue-port', '--vxlan-port', '--top', '-o', '--flow', '--window']);
const BOOL_FLAGS = new Set(['--payload', '--json']);

function parseArgs(args: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (VALUE_FLAGS.has(a)) {
      if (i + 1 >= args.length) throw new UsageError(`${a} needs a value\n${USAGE}`);
      flags.set(a, args[++i]);
    } else if (BOOL_FLAGS.has(a)) flags.set(a, true);
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}\n${USAGE}`);
    else positional.push(a);
  }
  return { positional, flags };
}

function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const v = p.flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max} (got ${v})`);
  return n;
}

function decodeOpts(p: Parsed): { guePort?: number; vxlanPort?: number } {
  const o: { guePort?: number; vxlanPort?: number } = {};
  const g = intFlag(p, '--gue-port', 0, 65535);
  const v = intFlag(p, '--vxlan-port', 0, 65535);
  if (g !== undefined) o.guePort = g;
  if (v !== undefined) o.vxlanPort = v;
  return o;
}

function open(file: string | undefined): CaptureReader {
  if (!file) throw new UsageError(`a capture file is required\n${USAGE}`);
  try {
    return openCaptureFile(file);
  } catch (e) {
    throw asInputError(e, file);
  }
}

function asInputError(e: unknown, file: string): Error {
  if (e instanceof CaptureFormatError || e instanceof CaptureOutputError) return new UsageError(e.message);
  const err = e as NodeJS.ErrnoException;
  if (err && err.code && err.syscall) return new UsageError(`cannot read ${file}: ${err.message}`);
  return e as Error;
}

/** Iterates packets, applying --link and --count; the callback gets the decoded packet. */
async function eachPacket(r: CaptureReader, p: Parsed, dec: PacketDecoder, f: (pkt: ReturnType<typeof decodeCurrent>) => Promise<boolean | void>): Promise<void> {
  const link = p.flags.get('--link');
  const count = intFlag(p, '--count', 0, Number.MAX_SAFE_INTEGER);
  let n = 0;
  try {
    while ((count === undefined || n < count) && r.next()) {
      if (typeof link === 'string' && r.interfaceName(r.ifIndex) !== link) continue;
      n++;
      if ((await f(decodeCurrent(r, dec))) === false) break;
    }
  } catch (e) {
    throw asInputError(e, r.file);
  }
}

async function cmdJson(p: Parsed, io: Io): Promise<number> {
  const r = open(p.positional[0]);
  const out = new Output(io.out);
  const dec = new PacketDecoder({ ...decodeOpts(p), payload: p.flags.has('--payload') });
  try {
    await out.write('[');
    let first = true;
    await eachPacket(r, p, dec, async (pkt) => {
      await out.write((first ? '\n' : ',\n') + JSON.stringify(pkt));
      first = false;
      return !out.closed;
    });
    await out.write(first ? ']\n' : '\n]\n');
    await out.flush();
  } finally {
    r.close();
  }
  return 0;
}

async function cmdShow(p: Parsed, io: Io): Promise<number> {
  const r = open(p.positional[0]);
  const out = new Output(io.out);
  const dec = new PacketDecoder(decodeOpts(p));
  try {
    await eachPacket(r, p, dec, async (pkt) => {
      await out.write(formatPacketLine(pkt, { link: r.interfaces.length > 1 || !!r.interfaces[0]?.name }) + '\n');
      return !out.closed;
    });
    await out.flush();
  } finally {
    r.close();
  }
  return 0;
}

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmp6', 47: 'gre', 4: 'ipip', 41: 'ip6ip', 132: 'sctp' };

async function cmdStats(p: Parsed, io: Io): Promise<number> {
  const r = open(p.positional[0]);
  let st;
  try {
    st = captureStats(r, { ...decodeOpts(p), top: intFlag(p, '--top', 0, 1e6) ?? 20 });
  } catch (e) {
    throw asInputError(e, r.file);
  } finally {
    r.close();
  }
  const out = new Output(io.out);
  if (p.flags.has('--json')) {
    await out.write(JSON.stringify(st, null, 2) + '\n');
    await out.flush();
    return 0;
  }
  const dur = st.firstTs && st.lastTs ? (st.lastTs[0] - st.firstTs[0]) + (st.lastTs[1] - st.firstTs[1]) / 1e9 : 0;
  const lines = [
    `file: ${r.file} (${r.format}), ${st.interfaces.length} interface(s): ${st.interfaces.join(', ')}`,
    `packets: ${st.packets}  bytes on wire: ${st.bytes}  captured: ${st.capturedBytes}  duration: ${dur.toFixed(6)} s`,
    `malformed: ${st.malformed}  without IP: ${st.nonIp}`,
    'protocols (packets containing the layer):',
    ...Object.entries(st.protocols).map(([k, v]) => `  ${k.padEnd(8)} ${String(v).padStart(10)}  ${((100 * v) / Math.max(1, st.packets)).toFixed(1).padStart(5)}%`),
    `flows: ${st.flowCount} (innermost IP 5-tuples, both directions together); top ${st.topFlows.length} by packets:`,
    `  ${'proto'.padEnd(6)} ${'endpoint A'.padEnd(30)}   ${'endpoint B'.padEnd(30)} ${'packets'.padStart(9)} ${'B->A'.padStart(8)} ${'bytes'.padStart(12)}`,
    ...st.topFlows.map((f) => `  ${(PROTO_NAMES[f.proto] ?? String(f.proto)).padEnd(6)} ${`${f.src}.${f.sport}`.padEnd(30)} > ${`${f.dst}.${f.dport}`.padEnd(30)} ${String(f.packets).padStart(9)} ${String(f.packetsBack).padStart(8)} ${String(f.bytes).padStart(12)}`),
  ];
  await out.write(lines.join('\n') + '\n');
  await out.flush();
  return 0;
}

async function cmdMerge(p: Parsed, io: Io): Promise<number> {
  const outPath = p.flags.get('-o');
  if (typeof outPath !== 'string') throw new UsageError(`merge needs -o <out.pcapng>\n${USAGE}`);
  if (!p.positional.length) throw new UsageError(`merge needs at least one input file\n${USAGE}`);
  const inputs = p.positional.map((a) => {
    const eq = a.lastIndexOf('=');
    return eq > 0 ? { path: a.slice(0, eq), name: a.slice(eq + 1) } : { path: a };
  });
  let res;
  try {
    res = mergeCaptures(inputs, outPath);
  } catch (e) {
    throw asInputError(e, inputs.map((i) => i.path).join(', '));
  }
  io.out.write(`${outPath}: ${res.packets} packets on ${res.interfaces.length} interface(s): ${res.interfaces.join(', ')}\n`);
  return 0;
}

/** Parses "tcp 198.18.0.1:40000 > 198.18.1.100:80" (IPv6 as [addr]:port). */
export function parseFlow(text: string): FlowTuple {
  const m = /^\s*(tcp|udp|icmp|icmp6|icmpv6|\d+)\s+(\[[^\]]+\]|[^\s:]+):(\d+)\s*>\s*(\[[^\]]+\]|[^\s:]+):(\d+)\s*$/.exec(text);
  if (!m) throw new UsageError(`--flow "${text}" is not of the form "tcp 198.18.0.1:40000 > 198.18.1.100:80" (IPv6: [2001:db8::1]:40000)`);
  const protos: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmp6: 58, icmpv6: 58 };
  const strip = (a: string) => (a.startsWith('[') ? a.slice(1, -1) : a);
  const flow = { proto: protos[m[1]] ?? Number(m[1]), src: strip(m[2]), sport: Number(m[3]), dst: strip(m[4]), dport: Number(m[5]) };
  if (flow.proto > 255) throw new UsageError(`--flow "${text}": protocol ${flow.proto} is not 0-255`);
  for (const a of [flow.src, flow.dst]) if (!isIP(a)) throw new UsageError(`--flow "${text}": ${a} is not an IPv4 or IPv6 address`);
  if (isIP(flow.src) !== isIP(flow.dst)) throw new UsageError(`--flow "${text}": ${flow.src} and ${flow.dst} are not the same IP version`);
  for (const p of [flow.sport, flow.dport]) if (p > 65535) throw new UsageError(`--flow "${text}": port ${p} is not 0-65535`);
  return flow;
}

async function cmdTrace(p: Parsed, io: Io): Promise<number> {
  const file = p.positional[0];
  if (!file) throw new UsageError(`a capture file is required\n${USAGE}`);
  const f = p.flags.get('--flow');
  if (typeof f !== 'string') throw new UsageError(`trace needs --flow "<proto> <src>:<sport> > <dst>:<dport>"\n${USAGE}`);
  const flow = parseFlow(f);
  const w = p.flags.get('--window');
  const windowSec = typeof w === 'string' ? Number(w) : undefined;
  if (windowSec !== undefined && !(windowSec > 0)) throw new UsageError(`--window must be a positive number of seconds (got ${w})`);
  let packets;
  try {
    packets = decodeCapture(file, { ...decodeOpts(p), payload: true });
  } catch (e) {
    throw asInputError(e, file);
  }
  const j = traceFlow(packets, flow, { windowSec });
  const out = new Output(io.out);
  await out.write(p.flags.has('--json') ? JSON.stringify(j, null, 2) + '\n' : renderJourney(j) + '\n');
  await out.flush();
  return j.hops.length ? 0 : 1;
}

export async function runPcap(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const p = parseArgs(rest);
  switch (sub) {
    case 'json': return cmdJson(p, io);
    case 'show': return cmdShow(p, io);
    case 'stats': return cmdStats(p, io);
    case 'merge': return cmdMerge(p, io);
    case 'trace': return cmdTrace(p, io);
    case undefined: case 'help': case '--help': case '-h':
      io.out.write(USAGE + '\n');
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown pcap subcommand "${sub}"\n${USAGE}`);
  }
}

export const command: CliCommand = {
  name: 'pcap',
  summary: 'Decode, summarise, merge and trace pcap/pcapng captures',
  usage: USAGE,
  run: (args) => runPcap(args, { out: process.stdout, err: process.stderr }),
};

// Generic netlink (<linux/genetlink.h>): after the nlmsghdr comes a 4-byte genlmsghdr
// {u8 cmd; u8 version; u16 reserved} and then the attributes. nlmsg_type is the family id, which the
// kernel assigns at registration time and which is looked up by name through the "nlctrl" family
// (fixed id GENL_ID_CTRL) with CTRL_CMD_GETFAMILY.
import { AttrSet, NetlinkDecodeError, encodeAttr, payload } from './attr';
import { NetlinkError } from './errors';
import {
  ExtAck,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  decodeDone,
  decodeError,
  decodeMessages,
  encodeMessage,
} from './message';
import type { NetlinkTransport } from './transport';

export const GENL_HDRLEN = 4;
export const GENL_ID_CTRL = 0x10;

export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;

export function encodeGenlHeader(cmd: number, version: number): Buffer {
  return Buffer.from([cmd & 0xff, version & 0xff, 0, 0]);
}

export interface GenlRequest {
  familyId: number;
  cmd: number;
  version: number;
  /** Encoded top-level attributes. */
  attrs: Buffer[];
  /** Ask for a dump (NLM_F_DUMP) instead of a single object. */
  dump?: boolean;
}

export function encodeGenlRequest(req: GenlRequest, seq: number): Buffer {
  const flags = NLM_F_REQUEST | (req.dump ? NLM_F_DUMP : NLM_F_ACK);
  return encodeMessage(
    { type: req.familyId, flags, seq },
    Buffer.concat([encodeGenlHeader(req.cmd, req.version), ...req.attrs]),
  );
}

/** One data message of a reply. */
export interface GenlReply {
  cmd: number;
  version: number;
  flags: number;
  /** Attribute bytes after the genlmsghdr. */
  attrs: Buffer;
}

export type GenlOutcome =
  | { ok: true; replies: GenlReply[] }
  | { ok: false; errno: number; extack?: ExtAck; replies: GenlReply[] };

export interface FamilyInfo {
  id: number;
  version: number;
  maxAttr: number;
}

// Family ids are per kernel, so one cache per transport (a transport talks to exactly one kernel).
const familyCache = new WeakMap<NetlinkTransport, Map<string, FamilyInfo>>();

export interface GenlClientOptions {
  /** Most requests put in one transact() call by batch() (default 100: the ACKs of a larger batch can
   *  overflow a socket receive buffer of default size, since the kernel answers them all before we read). */
  maxBatch?: number;
}

/** Sends generic netlink requests over a transport and matches replies to requests by sequence number. */
export class GenlClient {
  private seq: number;
  readonly maxBatch: number;

  constructor(
    readonly transport: NetlinkTransport,
    opts: GenlClientOptions = {},
  ) {
    this.seq = (Math.floor(Math.random() * 0x7fff0000) + 1) >>> 0;
    this.maxBatch = opts.maxBatch ?? 100;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** Send several requests, as few transact() calls as maxBatch allows; one outcome per request, in order. */
  async batch(reqs: GenlRequest[]): Promise<GenlOutcome[]> {
    const outcomes: GenlOutcome[] = [];
    // A socket runs one dump at a time (a second one in the same send gets EBUSY while the first is
    // still being read), so a dump request always ends a chunk.
    const chunks: GenlRequest[][] = [];
    let cur: GenlRequest[] = [];
    for (const r of reqs) {
      cur.push(r);
      if (r.dump || cur.length >= this.maxBatch) {
        chunks.push(cur);
        cur = [];
      }
    }
    if (cur.length) chunks.push(cur);
    for (const chunk of chunks) {
      const seqs = chunk.map(() => this.nextSeq());
      const buf = Buffer.concat(chunk.map((r, j) => encodeGenlRequest(r, seqs[j]!)));
      const reply = await this.transport.transact(buf);
      outcomes.push(...matchReplies(reply, seqs));
    }
    return outcomes;
  }

  /** One request; its data replies, or a NetlinkError naming `operation`. */
  async request(req: GenlRequest, operation: string): Promise<GenlReply[]> {
    const [o] = await this.batch([req]);
    if (!o) throw new Error(`${operation}: no outcome`);
    if (!o.ok) throw new NetlinkError(operation, o.errno, o.extack);
    return o.replies;
  }

  /** Resolve a generic netlink family by name (cached per transport). */
  async family(name: string): Promise<FamilyInfo> {
    let cache = familyCache.get(this.transport);
    if (!cache) {
      cache = new Map();
      familyCache.set(this.transport, cache);
    }
    const hit = cache.get(name);
    if (hit) return hit;
    const [o] = await this.batch([
      {
        familyId: GENL_ID_CTRL,
        cmd: CTRL_CMD_GETFAMILY,
        version: 1,
        attrs: [encodeAttr(CTRL_ATTR_FAMILY_NAME, payload.string(name))],
      },
    ]);
    if (!o || !o.ok) {
      const errno = o && !o.ok ? o.errno : 0;
      if (errno === 2 /* ENOENT */) {
        throw new NetlinkError(
          `generic netlink family "${name}" lookup`,
          errno,
          { message: `the kernel has no "${name}" family registered (module not loaded or not built)` },
        );
      }
      throw new NetlinkError(`generic netlink family "${name}" lookup`, errno, o && !o.ok ? o.extack : undefined);
    }
    const reply = o.replies[0];
    if (!reply) throw new NetlinkDecodeError(`CTRL_CMD_GETFAMILY for "${name}" returned no family`);
    const a = new AttrSet(reply.attrs, `nlctrl family ${name}`, {
      [CTRL_ATTR_FAMILY_ID]: 'CTRL_ATTR_FAMILY_ID',
      [CTRL_ATTR_VERSION]: 'CTRL_ATTR_VERSION',
    });
    const info: FamilyInfo = {
      id: a.must(CTRL_ATTR_FAMILY_ID, a.u16(CTRL_ATTR_FAMILY_ID)),
      version: a.u32(CTRL_ATTR_VERSION) ?? 1,
      maxAttr: a.u32(CTRL_ATTR_MAXATTR) ?? 0,
    };
    cache.set(name, info);
    return info;
  }
}

/**
 * Split the replies of one transact() into one outcome per request sequence number. Messages with
 * other sequence numbers (late replies to a request that timed out earlier) are ignored.
 */
export function matchReplies(reply: Buffer, seqs: number[]): GenlOutcome[] {
  const bySeq = new Map<number, { replies: GenlReply[]; done: boolean; errno: number; extack?: ExtAck }>();
  for (const s of seqs) bySeq.set(s, { replies: [], done: false, errno: 0 });
  for (const m of decodeMessages(reply)) {
    const slot = bySeq.get(m.header.seq);
    if (!slot || slot.done) continue;
    switch (m.header.type) {
      case NLMSG_NOOP:
        break;
      case NLMSG_OVERRUN:
        throw new NetlinkDecodeError(`netlink overrun while reading the reply to request seq ${m.header.seq}`);
      case NLMSG_ERROR: {
        const e = decodeError(m);
        slot.done = true;
        slot.errno = e.errno;
        if (e.extack) slot.extack = e.extack;
        break;
      }
      case NLMSG_DONE: {
        const d = decodeDone(m);
        slot.done = true;
        slot.errno = d.errno;
        if (d.extack) slot.extack = d.extack;
        break;
      }
      default: {
        if (m.payload.length < GENL_HDRLEN) {
          throw new NetlinkDecodeError(`generic netlink reply of ${m.payload.length} bytes has no genlmsghdr`);
        }
        slot.replies.push({
          cmd: m.payload[0]!,
          version: m.payload[1]!,
          flags: m.header.flags,
          attrs: m.payload.subarray(GENL_HDRLEN),
        });
      }
    }
  }
  return seqs.map((s) => {
    const slot = bySeq.get(s)!;
    if (!slot.done) {
      throw new NetlinkDecodeError(`no ACK, error or DONE for netlink request seq ${s} in the reply`);
    }
    if (slot.errno === 0) return { ok: true as const, replies: slot.replies };
    const out: GenlOutcome = { ok: false, errno: slot.errno, replies: slot.replies };
    if (slot.extack) out.extack = slot.extack;
    return out;
  });
}

// Netlink messages (struct nlmsghdr, <linux/netlink.h>): a 16-byte header
//   u32 nlmsg_len (header + payload, without trailing padding), u16 nlmsg_type, u16 nlmsg_flags,
//   u32 nlmsg_seq, u32 nlmsg_pid
// followed by the payload; consecutive messages start on 4-byte boundaries. Replies end with
// NLMSG_ERROR (an ACK when error == 0) or, for dumps, NLMSG_DONE.
import { NetlinkDecodeError, decodeAttrs, nlaAlign, readI32, readU16, readU32, writeU16, writeU32 } from './attr';

export const NLMSG_HDRLEN = 16;
export const nlmsgAlign = nlaAlign;

// Message types below NLMSG_MIN_TYPE are control messages.
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLMSG_MIN_TYPE = 0x10;

// nlmsg_flags
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// for GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// for NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// on NLMSG_ERROR / NLMSG_DONE replies
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// Extended ACK attributes (enum nlmsgerr_attrs) after an NLMSG_ERROR / NLMSG_DONE payload.
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_POLICY = 4;
export const NLMSGERR_ATTR_MISS_TYPE = 5;
export const NLMSGERR_ATTR_MISS_NEST = 6;

export interface NlMsgHeader {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export interface NlMessage {
  header: NlMsgHeader;
  /** Bytes after the 16-byte header, up to nlmsg_len. */
  payload: Buffer;
}

export function encodeMessage(h: { type: number; flags: number; seq: number; pid?: number }, payload: Buffer): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const out = Buffer.alloc(nlmsgAlign(len));
  writeU32(out, 0, len);
  writeU16(out, 4, h.type);
  writeU16(out, 6, h.flags);
  writeU32(out, 8, h.seq >>> 0);
  writeU32(out, 12, h.pid ?? 0);
  payload.copy(out, NLMSG_HDRLEN);
  return out;
}

export function decodeHeader(buf: Buffer, off = 0): NlMsgHeader {
  if (buf.length - off < NLMSG_HDRLEN) {
    throw new NetlinkDecodeError(`truncated netlink header at offset ${off} (${buf.length - off} bytes)`);
  }
  return {
    len: readU32(buf, off),
    type: readU16(buf, off + 4),
    flags: readU16(buf, off + 6),
    seq: readU32(buf, off + 8),
    pid: readU32(buf, off + 12),
  };
}

/** Split a buffer holding consecutive netlink messages. */
export function decodeMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const header = decodeHeader(buf, off);
    if (header.len < NLMSG_HDRLEN || off + header.len > buf.length) {
      throw new NetlinkDecodeError(
        `malformed netlink message at offset ${off}: nlmsg_len ${header.len}, ${buf.length - off} bytes remain`,
      );
    }
    out.push({ header, payload: buf.subarray(off + NLMSG_HDRLEN, off + header.len) });
    off += nlmsgAlign(header.len);
  }
  return out;
}

/** The extended ACK (NETLINK_EXT_ACK) the kernel attaches to an error or a failed dump. */
export interface ExtAck {
  /** Human-readable reason (NLMSGERR_ATTR_MSG), e.g. "Unknown scheduler". */
  message?: string;
  /** Offset in the request (from the start of its nlmsghdr) of the attribute that was rejected. */
  offset?: number;
  cookie?: Buffer;
  /** Type of a required attribute that was missing. */
  missingType?: number;
  /** Offset of the nest in which `missingType` was missing. */
  missingNestOffset?: number;
}

export interface NlError {
  /** 0 for an ACK; otherwise the positive errno. */
  errno: number;
  /** Header of the request this answers. */
  request: NlMsgHeader;
  /** The request payload echoed back, unless the kernel capped the reply (NETLINK_CAP_ACK). */
  requestPayload?: Buffer;
  extack?: ExtAck;
}

/** Decode an NLMSG_ERROR message (struct nlmsgerr: int error; struct nlmsghdr msg; [payload]; [TLVs]). */
export function decodeError(msg: NlMessage): NlError {
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) {
    throw new NetlinkDecodeError(`NLMSG_ERROR payload too short (${p.length} bytes, need ${4 + NLMSG_HDRLEN})`);
  }
  const errno = 0 - readI32(p, 0) || 0;
  const request = decodeHeader(p, 4);
  const capped = (msg.header.flags & NLM_F_CAPPED) !== 0;
  let tlvStart = 4 + NLMSG_HDRLEN;
  let requestPayload: Buffer | undefined;
  if (!capped) {
    const end = Math.min(p.length, 4 + request.len);
    requestPayload = p.subarray(4 + NLMSG_HDRLEN, end);
    tlvStart = 4 + nlmsgAlign(request.len);
  }
  const out: NlError = { errno, request };
  if (requestPayload) out.requestPayload = requestPayload;
  if (msg.header.flags & NLM_F_ACK_TLVS && tlvStart < p.length) out.extack = decodeExtAck(p.subarray(tlvStart));
  return out;
}

/** Decode NLMSG_DONE: an int (0, or a negative errno when the dump failed) and optional TLVs. */
export function decodeDone(msg: NlMessage): { errno: number; extack?: ExtAck } {
  const p = msg.payload;
  if (p.length < 4) return { errno: 0 };
  const errno = 0 - readI32(p, 0) || 0;
  const out: { errno: number; extack?: ExtAck } = { errno };
  if (msg.header.flags & NLM_F_ACK_TLVS && p.length > 4) out.extack = decodeExtAck(p.subarray(4));
  return out;
}

export function decodeExtAck(buf: Buffer): ExtAck {
  const ack: ExtAck = {};
  for (const a of decodeAttrs(buf, 'extended ACK')) {
    switch (a.type) {
      case NLMSGERR_ATTR_MSG: {
        const nul = a.data.indexOf(0);
        ack.message = a.data.subarray(0, nul < 0 ? a.data.length : nul).toString('utf8');
        break;
      }
      case NLMSGERR_ATTR_OFFS:
        if (a.data.length >= 4) ack.offset = readU32(a.data, 0);
        break;
      case NLMSGERR_ATTR_COOKIE:
        ack.cookie = Buffer.from(a.data);
        break;
      case NLMSGERR_ATTR_MISS_TYPE:
        if (a.data.length >= 4) ack.missingType = readU32(a.data, 0);
        break;
      case NLMSGERR_ATTR_MISS_NEST:
        if (a.data.length >= 4) ack.missingNestOffset = readU32(a.data, 0);
        break;
      default:
        break; // NLMSGERR_ATTR_POLICY and future attributes: not needed for messages
    }
  }
  return ack;
}

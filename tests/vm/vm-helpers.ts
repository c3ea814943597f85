// Shared by the VM tests: boot with this backend's test prefix, find our qemu processes, netlink bytes.
import * as fs from 'fs';
import { VmGuest, type VmBootOptions } from '../../src/backend/vm/guest';

export const TEST_PREFIX = 'vslabvm-';
/** Generous: TCG on a 2-core host shared with other work. */
export const VM_TEST_TIMEOUT = 420_000;

export function bootTestGuest(opts: Partial<VmBootOptions> = {}): Promise<VmGuest> {
  return VmGuest.boot({ namePrefix: TEST_PREFIX, bootTimeoutMs: 150_000, ...opts });
}

/** qemu processes this test process started (named vslabvm-...<pid>...). */
export function ourQemus(): Array<{ pid: number; name: string }> {
  const out: Array<{ pid: number; name: string }> = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = argv.indexOf('-name');
    if (i < 0 || !argv.some((a) => a.includes('qemu-system'))) continue;
    const name = (argv[i + 1] ?? '').split(',')[0];
    if (name.startsWith(TEST_PREFIX) && name.includes(String(process.pid))) out.push({ pid: Number(d), name });
  }
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---- netlink bytes for the relay tests (constants from linux/netlink.h, rtnetlink.h, genetlink.h)

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
export const NLM_F_REQUEST = 1;
export const NLM_F_ACK = 4;
export const NLM_F_DUMP = 0x300;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
const IFLA_IFNAME = 3;

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

export function nlMsg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const pad = (4 - (body.length % 4)) % 4;
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return Buffer.concat([h, body, Buffer.alloc(pad)]);
}

export function nlParse(buf: Buffer): NlMsg[] {
  const out: NlMsg[] = [];
  for (let off = 0; off + 16 <= buf.length;) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) throw new Error(`malformed netlink message at ${off}`);
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + 16, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

export function nlAttrs(buf: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    m.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return m;
}

export function strAttr(type: number, s: string): Buffer {
  const v = Buffer.from(s + '\0');
  const h = Buffer.alloc(4);
  h.writeUInt16LE(4 + v.length, 0);
  h.writeUInt16LE(type, 2);
  return Buffer.concat([h, v, Buffer.alloc((4 - (v.length % 4)) % 4)]);
}

/** RTM_GETLINK dump request. */
export function getLinkDump(seq: number): Buffer {
  return nlMsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, Buffer.alloc(16)); // struct ifinfomsg, AF_UNSPEC
}

/** Interface names in the RTM_NEWLINK messages of a reply. */
export function linkNames(reply: Buffer): string[] {
  return nlParse(reply)
    .filter((m) => m.type === RTM_NEWLINK)
    .map((m) => nlAttrs(m.payload.subarray(16)).get(IFLA_IFNAME)?.toString().replace(/\0.*$/s, '') ?? '?');
}

/** CTRL_CMD_GETFAMILY request for a generic netlink family by name. */
export function getFamily(seq: number, name: string): Buffer {
  const genl = Buffer.from([CTRL_CMD_GETFAMILY, 1, 0, 0]);
  return nlMsg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, Buffer.concat([genl, strAttr(CTRL_ATTR_FAMILY_NAME, name)]));
}

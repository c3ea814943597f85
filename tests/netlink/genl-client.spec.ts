// GenlClient over a scripted transport: the transport sees exactly the bytes a kernel would and
// answers with hand-written replies. This checks request framing, chunking and reply matching.
import { test, expect } from '@playwright/test';
import { GenlClient, GenlRequest } from '../../src/netlink/genl';
import { decodeMessages } from '../../src/netlink/message';
import type { NetlinkTransport } from '../../src/netlink/transport';

const le32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
function msg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const len = 16 + body.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq, 8);
  body.copy(out, 16);
  return out;
}
const ack = (seq: number, errno = 0) => msg(2, 0x100, seq, Buffer.concat([le32(-errno), Buffer.alloc(16)]));

class ScriptedTransport implements NetlinkTransport {
  calls: Buffer[] = [];
  constructor(private readonly answer: (req: Buffer) => Buffer) {}
  async transact(request: Buffer): Promise<Buffer> {
    this.calls.push(request);
    return this.answer(request);
  }
}

test('family lookup sends CTRL_CMD_GETFAMILY "IPVS" to nlctrl and caches the id per transport', async () => {
  const t = new ScriptedTransport((req) => {
    const [m] = decodeMessages(req);
    const seq = m!.header.seq;
    // CTRL_CMD_NEWFAMILY reply: FAMILY_NAME "IPVS", FAMILY_ID 0x22, VERSION 1, MAXATTR 6
    const attrs = Buffer.from('0900020049505653000000000600010022000000080003000100000008000500' + '06000000', 'hex');
    return Buffer.concat([msg(0x10, 0, seq, Buffer.concat([Buffer.from([1, 2, 0, 0]), attrs])), ack(seq)]);
  });
  const c = new GenlClient(t);
  expect(await c.family('IPVS')).toEqual({ id: 0x22, version: 1, maxAttr: 6 });
  expect(await new GenlClient(t).family('IPVS')).toEqual({ id: 0x22, version: 1, maxAttr: 6 });
  expect(t.calls).toHaveLength(1);
  const [m] = decodeMessages(t.calls[0]!);
  expect(m!.header.type).toBe(0x10);
  expect(m!.payload.subarray(0, 4)).toEqual(Buffer.from([3, 1, 0, 0]));
  expect(m!.payload.subarray(4).toString('latin1')).toContain('IPVS\0');
});

test('a missing family is reported as such', async () => {
  const t = new ScriptedTransport((req) => ack(decodeMessages(req)[0]!.header.seq, 2));
  await expect(new GenlClient(t).family('IPVS')).rejects.toThrow(
    'generic netlink family "IPVS" lookup failed with ENOENT (No such file or directory): the kernel has no "IPVS" family registered (module not loaded or not built)',
  );
});

test('batch() splits into at most maxBatch requests per transact and ends a chunk at every dump', async () => {
  const t = new ScriptedTransport((req) =>
    Buffer.concat(
      decodeMessages(req).map((m) => (m.header.flags & 0x300 ? msg(3, 2, m.header.seq, le32(0)) : ack(m.header.seq, m.payload[0] === 9 ? 17 : 0))),
    ),
  );
  const c = new GenlClient(t, { maxBatch: 3 });
  const r = (cmd: number, dump = false): GenlRequest => ({ familyId: 0x22, cmd, version: 1, attrs: [], dump });
  const out = await c.batch([r(1), r(1), r(4, true), r(4, true), r(1), r(9), r(1), r(1)]);
  expect(t.calls.map((b) => decodeMessages(b).length)).toEqual([3, 1, 3, 1]);
  expect(out.map((o) => (o.ok ? 'ok' : o.errno))).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 17, 'ok', 'ok']);
  // sequence numbers are distinct and increasing
  const seqs = t.calls.flatMap((b) => decodeMessages(b).map((m) => m.header.seq));
  expect(new Set(seqs).size).toBe(8);
});

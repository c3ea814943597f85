// Netlink and generic-netlink encoding/decoding against byte layouts written out by hand from
// <linux/netlink.h>, <linux/genetlink.h> and <linux/ip_vs.h> (x86_64, little-endian host order).
// The expected bytes are literals in this file, never produced by the encoder under test.
import { test, expect } from '@playwright/test';
import {
  AttrSet,
  NetlinkDecodeError,
  decodeAttrs,
  encodeAttr,
  encodeNested,
  payload,
} from '../../src/netlink/attr';
import {
  NLMSG_ERROR,
  decodeDone,
  decodeError,
  decodeMessages,
  encodeMessage,
} from '../../src/netlink/message';
import { encodeGenlRequest, matchReplies } from '../../src/netlink/genl';
import { NetlinkError, errnoName } from '../../src/netlink/errors';

const hex = (s: string) => Buffer.from(s.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');

test.describe('attributes (struct nlattr)', () => {
  test('string attribute: length counts header + payload + NUL, padding to 4 is not counted', () => {
    // nla_len=7 (4 + "rr\0"), nla_type=6, then "rr\0" and one pad byte
    expect(encodeAttr(6, payload.string('rr'))).toEqual(hex('0700 0600 727200 00'));
  });

  test('integers are host order (u16/u32/u64), be16 is network order', () => {
    expect(encodeAttr(1, payload.u16(2))).toEqual(hex('0600 0100 0200 0000'));
    expect(encodeAttr(8, payload.u32(360))).toEqual(hex('0800 0800 68010000'));
    expect(encodeAttr(4, payload.be16(80))).toEqual(hex('0600 0400 0050 0000'));
    expect(encodeAttr(13, payload.u8(1))).toEqual(hex('0500 0d00 01 000000'));
    expect(encodeAttr(2, payload.u64(0x0102030405060708n))).toEqual(hex('0c00 0200 0807060504030201'));
  });

  test('nested attribute sets NLA_F_NESTED (0x8000) in nla_type and wraps the padded children', () => {
    const nest = encodeNested(1, [encodeAttr(1, payload.u16(10)), encodeAttr(6, payload.string('wlc'))]);
    // children: 8 + 8 = 16 bytes; nest nla_len = 20, nla_type = 0x8001
    expect(nest).toEqual(hex('1400 0180  0600 0100 0a00 0000  0800 0600 776c6300'));
  });

  test('out-of-range values are refused before anything is encoded', () => {
    expect(() => payload.u16(70000)).toThrow(/does not fit a netlink u16/);
    expect(() => payload.u8(-1)).toThrow(/u8/);
    expect(() => encodeAttr(1, Buffer.alloc(70000))).toThrow(/too long/);
  });

  test('decoding strips flag bits, honours padding and rejects lengths that overrun', () => {
    const attrs = decodeAttrs(hex('0500 0d00 01 000000  0c00 0780 0100000002000000'));
    expect(attrs.map((a) => [a.type, a.nested, a.data.toString('hex')])).toEqual([
      [13, false, '01'],
      [7, true, '0100000002000000'],
    ]);
    expect(() => decodeAttrs(hex('0900 0100 0102'))).toThrow(NetlinkDecodeError);
    expect(() => decodeAttrs(hex('0300 0100'))).toThrow(/claims length 3/);
  });

  test('AttrSet getters name the missing or short attribute', () => {
    const a = new AttrSet(hex('0600 0100 0200 0000  0500 0200 07 000000'), 'IPVS service', { 2: 'IPVS_SVC_ATTR_PROTOCOL', 5: 'IPVS_SVC_ATTR_FWMARK' });
    expect(a.u16(1)).toBe(2);
    expect(() => a.u16(2)).toThrow('IPVS service: IPVS_SVC_ATTR_PROTOCOL has 1 bytes, expected 2');
    expect(() => a.must(5, a.u32(5))).toThrow('IPVS service: IPVS_SVC_ATTR_FWMARK is missing');
  });
});

test.describe('messages (struct nlmsghdr)', () => {
  test('header is len, type, flags, seq, pid in host order; the message is padded to 4', () => {
    const m = encodeMessage({ type: 0x22, flags: 0x05, seq: 0x01020304 }, hex('010100'));
    // nlmsg_len = 16 + 3 = 19, padded to 20
    expect(m).toEqual(hex('13000000 2200 0500 04030201 00000000  010100 00'));
    const [d] = decodeMessages(Buffer.concat([m, m]));
    expect(d!.header).toEqual({ len: 19, type: 0x22, flags: 5, seq: 0x01020304, pid: 0 });
    expect(d!.payload).toEqual(hex('010100'));
    expect(decodeMessages(Buffer.concat([m, m]))).toHaveLength(2);
  });

  test('a capped NLMSG_ERROR with extended ACK: message, offset, missing type and nest', () => {
    const err = hex(`
      50000000 0200 0003 2a000000 99000000   # nlmsghdr: len 80, NLMSG_ERROR, flags CAPPED|ACK_TLVS, seq 42
      eaffffff                               # error = -22 (EINVAL)
      5c000000 2200 0500 2a000000 00000000   # the request's header only (capped)
      1300 0100 496e76616c696420776569676874 00 00 # NLMSGERR_ATTR_MSG "Invalid weight" + NUL (len 19) + 1 pad
      0800 0200 24000000                     # NLMSGERR_ATTR_OFFS = 36
      0800 0500 04000000                     # NLMSGERR_ATTR_MISS_TYPE = 4
      0800 0600 14000000                     # NLMSGERR_ATTR_MISS_NEST = 20
    `);
    const [m] = decodeMessages(err);
    expect(m!.header.type).toBe(NLMSG_ERROR);
    const e = decodeError(m!);
    expect(e.errno).toBe(22);
    expect(e.request).toEqual({ len: 0x5c, type: 0x22, flags: 5, seq: 42, pid: 0 });
    expect(e.requestPayload).toBeUndefined();
    expect(e.extack).toEqual({ message: 'Invalid weight', offset: 36, missingType: 4, missingNestOffset: 20 });
  });

  test('an uncapped NLMSG_ERROR echoes the request; the TLVs start after its padded length', () => {
    const err = hex(`
      38000000 0200 0002 07000000 00000000   # len 56, NLMSG_ERROR, flags ACK_TLVS
      efffffff                               # -17 EEXIST
      15000000 2200 0500 07000000 00000000   # request header, len 21 (16 + 5 bytes)
      0101000077                             # the request payload (5 bytes) ...
      000000                                 # ... padded to 24
      0a00 0100 657869737400 0000           # NLMSGERR_ATTR_MSG "exist" + NUL (len 10) + 2 pad
    `);
    const e = decodeError(decodeMessages(err)[0]!);
    expect(e.errno).toBe(17);
    expect(e.requestPayload).toEqual(hex('0101000077'));
    expect(e.extack).toEqual({ message: 'exist' });
  });

  test('an ACK is an NLMSG_ERROR with error 0; NLMSG_DONE carries the dump result', () => {
    const ack = hex('24000000 0200 0001 05000000 00000000  00000000  14000000 2200 0500 05000000 00000000');
    expect(decodeError(decodeMessages(ack)[0]!).errno).toBe(0);
    const done = hex('14000000 0300 0200 06000000 00000000  f0ffffff'); // -16 EBUSY
    expect(decodeDone(decodeMessages(done)[0]!)).toEqual({ errno: 16 });
  });
});

test.describe('generic netlink requests and reply matching', () => {
  test('a request is nlmsghdr + genlmsghdr {cmd, version, 0} + attributes; dumps set NLM_F_DUMP, others NLM_F_ACK', () => {
    const req = encodeGenlRequest({ familyId: 0x10, cmd: 3, version: 1, attrs: [encodeAttr(2, payload.string('IPVS'))] }, 9);
    expect(req).toEqual(hex('20000000 1000 0500 09000000 00000000  03010000  0900 0200 49505653 00 000000'));
    const dump = encodeGenlRequest({ familyId: 0x22, cmd: 4, version: 1, attrs: [], dump: true }, 10);
    expect(dump).toEqual(hex('14000000 2200 0103 0a000000 00000000  04010000'));
  });

  test('replies are grouped per sequence number; stale replies of other requests are ignored', () => {
    const reply = hex(`
      18000000 2200 0200 63000000 00000000  01010000 0400 0100     # stale data of seq 99
      18000000 2200 0200 01000000 00000000  01010000 0800 0100     # seq 1: a data message (cmd 1)
      14000000 0300 0200 01000000 00000000  00000000               # seq 1: DONE
      24000000 0200 0001 02000000 00000000  feffffff  14000000 2200 0500 02000000 00000000  # seq 2: ENOENT
    `);
    const [a, b] = matchReplies(reply, [1, 2]);
    expect(a).toEqual({ ok: true, replies: [{ cmd: 1, version: 1, flags: 2, attrs: hex('0800 0100') }] });
    expect(b).toEqual({ ok: false, errno: 2, replies: [] });
    expect(() => matchReplies(reply, [1, 2, 3])).toThrow(/no ACK, error or DONE for netlink request seq 3/);
  });

  test('NetlinkError says the operation, the errno name and the kernel text', () => {
    const e = new NetlinkError('IPVS NEW_DEST', 34, { message: 'bad thresholds' });
    expect(e.message).toBe('IPVS NEW_DEST failed with ERANGE (Numerical result out of range): bad thresholds');
    expect(errnoName(95)).toBe('EOPNOTSUPP');
    expect(errnoName(3)).toBe('ESRCH');
  });
});

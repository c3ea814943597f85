// The netlink core against the host kernel (no IPVS needed): the native transport in a namespace made
// for the test, extended ACKs as the kernel really sends them, and the generic-netlink family lookup.
import { test, expect } from '@playwright/test';
import { encodeAttr, encodeNested, payload } from '../../src/netlink/attr';
import { GenlClient } from '../../src/netlink/genl';
import { IpvsClient } from '../../src/netlink/ipvs';
import { NLMSG_ERROR, decodeError, decodeMessages, encodeMessage } from '../../src/netlink/message';
import { LocalNetlinkTransport, NETLINK_GENERIC, NETLINK_ROUTE } from '../../src/netlink/transport';
import { native } from '../../src/native';

const RTM_NEWLINK = 16;
const NLM_F_REQUEST_ACK_CREATE_EXCL = 0x1 | 0x4 | 0x400 | 0x200;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

let nsPath = '';
test.beforeAll(() => {
  nsPath = `/run/netns/vslabnl-host-${process.pid}`;
  native().netnsCreate(nsPath);
});
test.afterAll(() => {
  if (nsPath) native().netnsDelete(nsPath);
});

function newlink(seq: number, attrs: Buffer[]): Buffer {
  const ifinfomsg = Buffer.alloc(16); // family, pad, type, index, flags, change: all zero
  return encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST_ACK_CREATE_EXCL, seq }, Buffer.concat([ifinfomsg, ...attrs]));
}

test('an extended ACK from the kernel: the reason text of an unknown link kind', async () => {
  const t = new LocalNetlinkTransport(nsPath, NETLINK_ROUTE);
  try {
    const req = newlink(7, [
      encodeAttr(IFLA_IFNAME, payload.string('vslabnl0')),
      encodeNested(IFLA_LINKINFO, [encodeAttr(IFLA_INFO_KIND, payload.string('vslabnosuchkind'))]),
    ]);
    const [m] = decodeMessages(await t.transact(req));
    expect(m!.header.type).toBe(NLMSG_ERROR);
    const e = decodeError(m!);
    expect(e.errno).toBe(95); // EOPNOTSUPP
    expect(e.request.seq).toBe(7);
    expect(e.extack?.message).toBe('Unknown device type');
  } finally {
    t.close();
  }
});

test('an extended ACK pointing at the offending attribute (its offset in our request)', async () => {
  const t = new LocalNetlinkTransport(nsPath, NETLINK_ROUTE);
  try {
    const name = encodeAttr(IFLA_IFNAME, payload.string('vslabnl1'));
    const badMtu = encodeAttr(IFLA_MTU, payload.u16(1400)); // a u32 attribute given 2 bytes
    const req = newlink(8, [name, badMtu]);
    const e = decodeError(decodeMessages(await t.transact(req))[0]!);
    expect(e.errno === 34 || e.errno === 22, `errno ${e.errno}`).toBe(true); // ERANGE or EINVAL depending on kernel
    expect(e.extack?.message ?? '').not.toBe('');
    // nlmsghdr (16) + ifinfomsg (16) + the IFLA_IFNAME attribute before it
    expect(e.extack?.offset).toBe(16 + 16 + name.length);
  } finally {
    t.close();
  }
});

test('generic netlink family lookup through nlctrl: a real family resolves, an unknown one is named', async () => {
  const t = new LocalNetlinkTransport(nsPath, NETLINK_GENERIC);
  try {
    const g = new GenlClient(t);
    const ctrl = await g.family('nlctrl');
    expect(ctrl.id).toBe(0x10);
    await expect(g.family('vslabnl-nosuch')).rejects.toThrow(
      'generic netlink family "vslabnl-nosuch" lookup failed with ENOENT (No such file or directory): the kernel has no "vslabnl-nosuch" family registered (module not loaded or not built)',
    );
    // On this host IPVS may or may not exist; either way the answer is a client or that sentence.
    const ipvs = await IpvsClient.open(t).then(
      () => 'client',
      (err: Error) => err.message,
    );
    expect(['client', 'generic netlink family "IPVS" lookup failed with ENOENT (No such file or directory): the kernel has no "IPVS" family registered (module not loaded or not built)']).toContain(ipvs);
  } finally {
    t.close();
  }
});

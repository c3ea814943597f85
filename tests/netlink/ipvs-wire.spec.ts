// IPVS attribute encoding and reply decoding against byte layouts written out by hand from
// include/uapi/linux/ip_vs.h and what ip_vs_ctl.c's ip_vs_genl_fill_* put on the wire (x86_64).
import { test, expect } from '@playwright/test';
import {
  decodeDaemonReply,
  decodeDestinationReply,
  decodeInfo,
  decodeServiceReply,
  decodeTimeouts,
  encodeDaemon,
  encodeDestination,
  encodeService,
  encodeServiceKey,
  encodeTimeouts,
} from '../../src/netlink/ipvs-wire';
import { IpvsError } from '../../src/netlink/ipvs-errors';

const hex = (s: string) => Buffer.from(s.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');

test.describe('IPVS requests', () => {
  test('NEW_SERVICE nest for TCP 198.18.0.100:80 rr with ipvsadm defaults', () => {
    const got = encodeService({ family: 4, protocol: 'tcp', address: '198.18.0.100', port: 80, scheduler: 'rr' });
    expect(got).toEqual(
      hex(`
      4800 0180                 # IPVS_CMD_ATTR_SERVICE, NLA_F_NESTED, len 72
      0600 0100 0200 0000       # SVC_ATTR_AF = AF_INET (u16)
      0600 0200 0600 0000       # SVC_ATTR_PROTOCOL = IPPROTO_TCP (u16)
      0800 0300 c6120064        # SVC_ATTR_ADDR = 198.18.0.100
      0600 0400 0050 0000       # SVC_ATTR_PORT = 80, network order
      0700 0600 727200 00       # SVC_ATTR_SCHED_NAME = "rr\\0"
      0c00 0700 00000000 ffffffff # SVC_ATTR_FLAGS {flags 0, mask ~0}
      0800 0800 00000000        # SVC_ATTR_TIMEOUT = 0
      0800 0900 ffffffff        # SVC_ATTR_NETMASK = 255.255.255.255 (network order)
    `),
    );
  });

  test('IPv6 persistent service: netmask is a host-order prefix length, PE name, flags mask', () => {
    const got = encodeService({
      family: 6,
      protocol: 'udp',
      address: '2001:db8::10',
      port: 53,
      scheduler: 'sh',
      flags: 0x1 | 0x10,
      flagsMask: 0x11,
      timeout: 300,
      netmask: '64',
      peName: 'sip',
    });
    expect(got).toEqual(
      hex(`
      5c00 0180
      0600 0100 0a00 0000                          # AF_INET6
      0600 0200 1100 0000                          # IPPROTO_UDP
      1400 0300 20010db8000000000000000000000010   # 2001:db8::10
      0600 0400 0035 0000                          # port 53
      0700 0600 736800 00                          # "sh"
      0800 0b00 73697000                           # SVC_ATTR_PE_NAME "sip\\0"
      0c00 0700 11000000 11000000                  # flags PERSISTENT|SCHED2, mask 0x11
      0800 0800 2c010000                           # timeout 300
      0800 0900 40000000                           # netmask /64
    `),
    );
  });

  test('service keys: fwmark services carry AF + FWMARK only', () => {
    expect(encodeServiceKey({ family: 6, fwmark: 5 })).toEqual(hex('1400 0180  0600 0100 0a00 0000  0800 0500 05000000'));
  });

  test('NEW_DEST nest: address, port (network order), family, method, weight, thresholds, tunnel', () => {
    const plain = encodeDestination({ address: '198.18.1.11', port: 8080, forward: 'masq', weight: 2, upperThreshold: 10, lowerThreshold: 5 }, true);
    expect(plain).toEqual(
      hex(`
      3c00 0280
      0800 0100 c612010b        # DEST_ATTR_ADDR
      0600 0200 1f90 0000       # DEST_ATTR_PORT 8080
      0600 0b00 0200 0000       # DEST_ATTR_ADDR_FAMILY AF_INET
      0800 0300 00000000        # DEST_ATTR_FWD_METHOD MASQ
      0800 0400 02000000        # DEST_ATTR_WEIGHT 2
      0800 0500 0a000000        # DEST_ATTR_U_THRESH 10
      0800 0600 05000000        # DEST_ATTR_L_THRESH 5
    `),
    );
    const gue = encodeDestination({ address: '198.18.1.12', port: 80, forward: 'tunnel', tunnel: { type: 'gue', port: 6080, csum: true } }, true);
    expect(gue.subarray(0, 4)).toEqual(hex('5400 0280'));
    expect(gue.subarray(60)).toEqual(hex('0500 0d00 01 000000   0600 0e00 17c0 0000   0600 0f00 0100 0000'));
    // DEL_DEST: identifying attributes only
    expect(encodeDestination({ address: '2001:db8::11', port: 53 }, false)).toEqual(
      hex('2000 0280  1400 0100 20010db8000000000000000000000011  0600 0200 0035 0000'),
    );
  });

  test('sync daemon and timeouts', () => {
    expect(encodeDaemon({ state: 'backup', mcastInterface: 'eth0', syncId: 3, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 2, syncMaxLen: 1400 }, true)).toEqual(
      hex(`
      4000 0380
      0800 0100 02000000        # STATE BACKUP
      0900 0200 65746830 00 000000 # MCAST_IFN "eth0\\0"
      0800 0300 03000000        # SYNC_ID
      0600 0400 7805 0000       # SYNC_MAXLEN 1400 (host order)
      0600 0700 2823 0000       # MCAST_PORT 9000 (host order)
      0500 0800 02 000000       # MCAST_TTL
      0800 0500 ef010203        # MCAST_GROUP 239.1.2.3 (network order)
    `),
    );
    expect(Buffer.concat(encodeTimeouts({ tcp: 900, udp: 30 }))).toEqual(hex('0800 0400 84030000  0800 0600 1e000000'));
  });

  test('encoding refuses what cannot be put on the wire, naming the field', () => {
    expect(() => encodeService({ family: 4, protocol: 'tcp', address: '2001:db8::1', port: 80 })).toThrow(/virtual address 2001:db8::1 is IPv6 but the family is IPv4/);
    expect(() => encodeService({ family: 4, protocol: 'tcp', address: '198.18.0.1', port: 70000 })).toThrow(/service port 70000/);
    expect(() => encodeService({ family: 4, protocol: 'tcp', address: '198.18.0.1', port: 80, scheduler: 'a-very-long-scheduler-name' })).toThrow(/scheduler name .* too long/);
    expect(() => encodeService({ family: 6, protocol: 'tcp', address: '2001:db8::1', port: 80, netmask: '255.255.0.0' })).toThrow('IPv6 persistence netmask "255.255.0.0" must be a prefix length (1..128)');
    expect(() => encodeDestination({ address: 'rs1.example', port: 80 }, true)).toThrow(/real server address "rs1.example" is not an IPv4 or IPv6 address/);
    expect(() => encodeServiceKey({ family: 4, fwmark: 0 })).toThrow(/fwmark 0 is not valid/);
  });
});

test.describe('IPVS replies', () => {
  const serviceReply = hex(`
    3001 0180                                   # IPVS_CMD_ATTR_SERVICE (304 bytes)
    0600 0100 0200 0000
    0600 0200 0600 0000
    1400 0300 c612000a 000000000000000000000000 # the kernel sends the 16-byte nf_inet_addr
    0600 0400 0050 0000
    0700 0600 727200 00
    0c00 0700 03000000 ffffffff                 # PERSISTENT | HASHED
    0800 0800 2c010000                          # 300 s
    0800 0900 ffffff00                          # 255.255.255.0
    5c00 0a80                                   # SVC_ATTR_STATS (32-bit counters, 64-bit bytes)
      0800 0100 05000000  0800 0200 0a000000  0800 0300 08000000
      0c00 0400 e803000000000000  0c00 0500 d007000000000000
      0800 0600 01000000  0800 0700 02000000  0800 0800 03000000  0800 0900 90010000  0800 0a00 f4010000
    8000 0c80                                   # SVC_ATTR_STATS64
      0400 0b00                                 # STATS_ATTR_PAD (alignment filler)
      0c00 0100 0500000000000000  0c00 0200 0a00000000000000  0c00 0300 0800000000000000
      0c00 0400 e803000001000000  0c00 0500 d007000000000000
      0c00 0600 0100000000000000  0c00 0700 0200000000000000  0c00 0800 0300000000000000
      0c00 0900 9001000000000000  0c00 0a00 f401000000000000
  `);

  test('a service: 16-byte address, network-order port, HASHED split off, STATS64 preferred over STATS', () => {
    const s = decodeServiceReply(serviceReply);
    expect(s).toMatchObject({
      family: 4,
      protocol: 'tcp',
      address: '198.18.0.10',
      port: 80,
      scheduler: 'rr',
      flags: 1,
      hashed: true,
      timeout: 300,
      netmask: '255.255.255.0',
    });
    expect(s.stats).toEqual({ conns: 5, inPkts: 10, outPkts: 8, inBytes: 4294968296, outBytes: 2000, cps: 1, inPps: 2, outPps: 3, inBps: 400, outBps: 500 });
    expect(s.stats32!.inBytes).toBe(1000);
    expect(s.peName).toBeUndefined();
  });

  test('a fwmark IPv6 service with a persistence engine', () => {
    const s = decodeServiceReply(
      hex(`
      4000 0180
      0600 0100 0a00 0000
      0800 0500 06000000          # FWMARK 6
      0700 0600 6d6800 00         # "mh"
      0800 0b00 73697000          # PE "sip"
      0c00 0700 0b000000 ffffffff # PERSISTENT | HASHED | SCHED1
      0800 0800 3c000000
      0800 0900 30000000          # /48
    `),
    );
    expect(s).toEqual({
      family: 6,
      fwmark: 6,
      scheduler: 'mh',
      peName: 'sip',
      flags: 0x9,
      hashed: true,
      timeout: 60,
      netmask: '48',
      stats: { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
    });
  });

  test('a destination: tunnel type, port and flags, counters; family from DEST_ATTR_ADDR_FAMILY', () => {
    const d = decodeDestinationReply(
      hex(`
      7800 0280
      1400 0100 20010db8000000000000000000000011
      0600 0200 1f90 0000
      0800 0300 02000000        # TUNNEL
      0800 0400 05000000
      0800 0500 64000000
      0800 0600 0a000000
      0800 0700 03000000
      0800 0800 04000000
      0800 0900 01000000
      0600 0b00 0a00 0000       # AF_INET6 (a tunnelled IPv6 server of an IPv4 service)
      0500 0d00 01 000000       # GUE
      0600 0e00 17c0 0000       # port 6080
      0600 0f00 0200 0000       # REMCSUM
    `),
      4,
    );
    expect(d).toMatchObject({
      address: '2001:db8::11',
      port: 8080,
      family: 6,
      forward: 'tunnel',
      weight: 5,
      upperThreshold: 100,
      lowerThreshold: 10,
      activeConns: 3,
      inactiveConns: 4,
      persistConns: 1,
      tunnel: { type: 'gue', port: 6080, csum: false, remcsum: true },
    });
  });

  test('a destination from a kernel without ADDR_FAMILY or tunnel attributes takes the service family', () => {
    const d = decodeDestinationReply(
      hex(`
      4800 0280
      1400 0100 c612010b000000000000000000000000
      0600 0200 0050 0000
      0800 0300 03000000        # DROUTE
      0800 0400 01000000
      0800 0500 00000000
      0800 0600 00000000
      0800 0700 00000000
      0800 0800 00000000
    `),
      4,
    );
    expect(d).toMatchObject({ address: '198.18.1.11', port: 80, family: 4, forward: 'route', persistConns: 0 });
    expect(d.tunnel).toBeUndefined();
  });

  test('sync daemon, info and timeouts', () => {
    expect(
      decodeDaemonReply(
        hex(`
        4000 0380
        0800 0100 01000000
        0b00 0200 64756d6d793000 00
        0800 0300 07000000
        0600 0400 7805 0000
        0800 0500 ef010203
        0600 0700 2823 0000
        0500 0800 03 000000
      `),
      ),
    ).toEqual({ state: 'master', mcastInterface: 'dummy0', syncId: 7, syncMaxLen: 1400, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 3 });
    expect(decodeInfo(hex('0800 0100 01020100  0800 0200 00100000'))).toEqual({ versionCode: 0x010201, version: '1.2.1', connTableSize: 4096 });
    expect(decodeTimeouts(hex('0800 0400 84030000  0800 0500 78000000  0800 0600 2c010000'))).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
  });

  test('replies missing what every kernel sends are reported, not guessed', () => {
    expect(() => decodeServiceReply(hex('0c00 0180  0600 0100 0200 0000'))).toThrow(/IPVS service: IPVS_SVC_ATTR_FLAGS is missing/);
    expect(() => decodeServiceReply(hex('0800 0200 00000000'))).toThrow(/no IPVS_CMD_ATTR_SERVICE/);
  });
});

test.describe('IPVS errors', () => {
  const svc = { family: 4 as const, protocol: 'tcp' as const, address: '198.18.0.10', port: 80 };
  test('each errno of each operation becomes a sentence naming the operation and the object', () => {
    expect(new IpvsError({ operation: 'add service', service: { ...svc, scheduler: 'nosuch' } }, 2).message).toBe(
      'add service TCP 198.18.0.10:80: scheduler "nosuch" not found (the kernel could not load ip_vs_nosuch) (ENOENT)',
    );
    expect(new IpvsError({ operation: 'add service', service: svc }, 17).message).toBe('add service TCP 198.18.0.10:80: the service already exists (EEXIST)');
    expect(new IpvsError({ operation: 'edit service', service: svc }, 3).message).toBe('edit service TCP 198.18.0.10:80: no such service (ESRCH)');
    const dest = { address: '198.18.1.11', port: 8080, upperThreshold: 5, lowerThreshold: 10 };
    expect(new IpvsError({ operation: 'add destination', service: svc, destination: dest }, 34).message).toBe(
      'add destination 198.18.1.11:8080 to TCP 198.18.0.10:80: lower threshold 10 is above upper threshold 5 (ERANGE)',
    );
    expect(new IpvsError({ operation: 'add destination', service: svc, destination: { address: '198.18.1.11', port: 80, weight: 3000000000 } }, 34).reason).toBe(
      'weight 3000000000 is out of range (0..2147483647)',
    );
    expect(new IpvsError({ operation: 'add destination', service: { family: 6, fwmark: 5 }, destination: { address: '2001:db8::11', port: 0 } }, 17).message).toBe(
      'add destination [2001:db8::11]:0 to FWM 5 IPv6: the destination already exists in this service (EEXIST)',
    );
    expect(new IpvsError({ operation: 'edit destination', service: svc, destination: { address: '198.18.1.99', port: 80 } }, 2).reason).toBe('no such destination in this service');
    expect(new IpvsError({ operation: 'delete destination', service: svc, destination: { address: '198.18.1.99', port: 80 } }, 3).reason).toBe('the service does not exist');
    expect(new IpvsError({ operation: 'stop sync daemon', daemon: { state: 'backup' } }, 3).message).toBe('stop sync daemon backup: no backup sync daemon is running (ESRCH)');
    expect(new IpvsError({ operation: 'add service', service: svc }, 1).reason).toMatch(/CAP_NET_ADMIN/);
    const withExtack = new IpvsError({ operation: 'add service', service: svc }, 22, { message: 'Attribute failed policy validation' });
    expect(withExtack.message).toBe('add service TCP 198.18.0.10:80: invalid service parameters (EINVAL; kernel: "Attribute failed policy validation")');
    expect(withExtack.code).toBe('EINVAL');
    expect(withExtack.errno).toBe(22);
  });
});

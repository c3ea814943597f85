// Lab-model services <-> IPVS requests and read-back, without a kernel.
import { test, expect } from '@playwright/test';
import { destinationSpecOf, directorServiceOf, keyId, serviceSpecOf } from '../../src/director/ipvs-model';
import type { RealServerModel, ServiceModel } from '../../src/topology/model';

const rs = (addr: string, port: number, method: RealServerModel['method'], extra: Partial<RealServerModel> = {}): RealServerModel => ({
  node: 'rs1',
  addr,
  family: addr.includes(':') ? 6 : 4,
  port,
  weight: 1,
  upper: 0,
  lower: 0,
  method,
  ...extra,
});

const web: ServiceModel = {
  name: 'web',
  protocol: 'tcp',
  family: 4,
  vip: '198.19.0.100',
  port: 80,
  scheduler: 'sh',
  flags: ['sh-port', 'sh-fallback'],
  persistence: { timeout: 120, netmask: '255.255.255.0' },
  onePacket: false,
  director: 'dir',
  realServers: [
    rs('198.18.1.11', 8080, 'nat', { weight: 3, upper: 50, lower: 10 }),
    rs('198.18.1.12', 8080, 'fullnat'),
    rs('198.18.1.13', 80, 'dr'),
    rs('2001:db8:0:2::14', 80, 'tun', { tunnel: { type: 'gue', port: 6080, flags: ['tun-csum'] } }),
  ],
};

test('a model service becomes the IPVS service spec ipvsadm would send', () => {
  expect(serviceSpecOf(web)).toEqual({
    family: 4,
    protocol: 'tcp',
    address: '198.19.0.100',
    port: 80,
    scheduler: 'sh',
    flags: 0x1 | 0x8 | 0x10,
    timeout: 120,
    netmask: '255.255.255.0',
  });
  expect(keyId(serviceSpecOf(web))).toBe('TCP 198.19.0.100:80');
  const mark: ServiceModel = { ...web, name: 'mark', family: 6, vip: '2001:db8:ffff::1', fwmark: 9, flags: [], persistence: undefined, onePacket: true, protocol: 'udp' };
  expect(serviceSpecOf(mark)).toEqual({ family: 6, fwmark: 9, scheduler: 'sh', flags: 0x4, timeout: 0, netmask: '128' });
  expect(() => serviceSpecOf({ ...web, flags: ['nope'] })).toThrow('service web: unknown scheduler flag "nope"');
});

test('real servers: nat and fullnat are masq, dr is route, tun carries its tunnel settings', () => {
  expect(web.realServers.map(destinationSpecOf)).toEqual([
    { address: '198.18.1.11', port: 8080, family: 4, forward: 'masq', weight: 3, upperThreshold: 50, lowerThreshold: 10 },
    { address: '198.18.1.12', port: 8080, family: 4, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
    { address: '198.18.1.13', port: 80, family: 4, forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
    { address: '2001:db8:0:2::14', port: 80, family: 6, forward: 'tunnel', weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: 'gue', port: 6080, csum: true } },
  ]);
});

test('read-back in model terms keeps fullnat when the model asked for it, and names flags per scheduler', () => {
  const zero = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
  const d = (address: string, port: number, forward: 'masq' | 'route' | 'tunnel', extra = {}) => ({
    address, port, family: (address.includes(':') ? 6 : 4) as 4 | 6, forward, weight: 1, upperThreshold: 0, lowerThreshold: 0, activeConns: 2, inactiveConns: 1, persistConns: 0, stats: zero, ...extra,
  });
  const held = {
    family: 4 as const, protocol: 'tcp' as const, address: '198.19.0.100', port: 80, scheduler: 'sh', flags: 0x19, hashed: true, timeout: 120, netmask: '255.255.255.0', stats: zero,
    destinations: [
      d('2001:db8:0:2::14', 80, 'tunnel', { tunnel: { type: 'gue', port: 6080, csum: true, remcsum: false } }),
      d('198.18.1.12', 8080, 'masq'),
      d('198.18.1.11', 8080, 'masq'),
    ],
  };
  const back = directorServiceOf(held, web);
  expect(back).toMatchObject({ name: 'web', vip: '198.19.0.100', scheduler: 'sh', flags: ['sh-fallback', 'sh-port'], persistence: { timeout: 120, netmask: '255.255.255.0' }, onePacket: false });
  expect(back.realServers.map((r) => [r.addr, r.method, r.tunnel])).toEqual([
    ['2001:db8:0:2::14', 'tun', { type: 'gue', port: 6080, flags: ['tun-csum'] }],
    ['198.18.1.12', 'fullnat', undefined],
    ['198.18.1.11', 'nat', undefined],
  ]);
  expect(directorServiceOf({ ...held, scheduler: 'wrr', flags: 0x8 }).flags).toEqual(['flag-1']);
});

// /proc/net/ip_vs_conn and ip_vs_conn_sync parsing. The fixtures were read from a 6.12 kernel
// (IPv6 connections, an IPv4 service with a tunnelled IPv6 real server, a persistence template);
// the synthetic lines follow ip_vs_conn_seq_show's format strings.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { ConnTableParseError, parseConnTable, readConnections } from '../../src/netlink/ipvs-conn';
import { canonicalAddress, formatAddress, maskToPrefix, parseAddress, prefixToMask } from '../../src/netlink/address';

const fixture = (f: string) => fs.readFileSync(path.join(__dirname, 'fixtures', f), 'utf8');

test('kernel output: IPv6 entries, a template, mixed-family tunnel entries', () => {
  const conns = parseConnTable(fixture('ip_vs_conn.txt'));
  expect(conns.length).toBeGreaterThanOrEqual(5);
  const template = conns.find((c) => c.template)!;
  expect(template).toMatchObject({
    protocol: 'TCP',
    family: 6,
    clientAddress: '2001:db8::10',
    clientPort: 0,
    virtualAddress: '2001:db8::10',
    virtualPort: 80,
    destFamily: 6,
    destAddress: '2001:db8:1::11',
    destPort: 80,
    state: 'NONE',
  });
  const mixed = conns.find((c) => c.family === 4)!;
  expect(mixed).toMatchObject({
    protocol: 'TCP',
    clientAddress: '198.18.0.10',
    virtualAddress: '198.18.0.10',
    virtualPort: 81,
    destFamily: 6,
    destAddress: '2001:db8:1::12',
    destPort: 81,
    state: 'SYN_RECV',
    template: false,
  });
  expect(mixed.clientPort).toBeGreaterThan(1023);
  for (const c of conns) expect(c.expires).toBeLessThanOrEqual(60);
});

test('the sync variant has an Origin column', () => {
  const conns = parseConnTable(fixture('ip_vs_conn_sync.txt'), '/proc/net/ip_vs_conn_sync');
  expect(conns.length).toBeGreaterThanOrEqual(5);
  expect(new Set(conns.map((c) => c.origin))).toEqual(new Set(['local']));
  const text = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\nUDP C6120002 9C40 C612000A 0035 C612010B 0035 UDP         SYNC       299\n';
  expect(parseConnTable(text)[0]).toMatchObject({ protocol: 'UDP', origin: 'sync', state: 'UDP', expires: 299, clientAddress: '198.18.0.2', clientPort: 40000 });
});

test('fwmark templates (protocol IP, the mark as virtual address) and persistence-engine data', () => {
  const text = [
    'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData',
    'IP  C6120000 0000 00000005 0000 C612010B 0000 NONE            359',
    'UDP C6120002 13C4 C612000A 13C4 C612010B 13C4 UDP             179 sip a84bc5c8-01b2@198.18.0.2',
    '',
  ].join('\n');
  const [t, sip] = parseConnTable(text);
  expect(t).toMatchObject({ protocol: 'IP', clientAddress: '198.18.0.0', virtualAddress: '0.0.0.5', virtualPort: 0, template: true, expires: 359 });
  expect(sip).toMatchObject({ protocol: 'UDP', clientPort: 5060, peName: 'sip', peData: 'a84bc5c8-01b2@198.18.0.2' });
});

test('malformed tables are rejected with the line that is wrong', () => {
  expect(() => parseConnTable('garbage\n')).toThrow(ConnTableParseError);
  expect(() => parseConnTable('garbage\n')).toThrow('/proc/net/ip_vs_conn:1: expected the header');
  const bad = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires\nTCP C612000A 0050 C612000A 0050 ZZZZ 0050 ESTABLISHED 5\n';
  expect(() => parseConnTable(bad)).toThrow('/proc/net/ip_vs_conn:2: "ZZZZ" is neither an 8-digit hex IPv4 address nor an IPv6 address');
  expect(() => parseConnTable('Pro FromIP\nTCP C612000A 0050\n')).toThrow(/:2: expected at least 9 fields, got 3/);
});

test('readConnections reads through the given namespace reader and says what it could not read', async () => {
  const seen: string[] = [];
  const conns = await readConnections(async (p) => {
    seen.push(p);
    return fixture('ip_vs_conn.txt');
  });
  expect(seen).toEqual(['/proc/net/ip_vs_conn']);
  expect(conns.length).toBeGreaterThan(0);
  await expect(
    readConnections(async () => {
      throw new Error('No such file or directory');
    }, { sync: true }),
  ).rejects.toThrow("cannot read /proc/net/ip_vs_conn_sync in the director's namespace (is ip_vs loaded?): No such file or directory");
});

test('address text follows glibc inet_ntop', () => {
  const f6 = (s: string) => formatAddress(parseAddress(s).bytes, 6);
  expect(f6('2001:0db8:0000:0000:0000:0000:0000:0010')).toBe('2001:db8::10');
  expect(f6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // first of two equal runs
  expect(f6('2001:db8:0:1:0:0:0:1')).toBe('2001:db8:0:1::1'); // longest run, not the first
  expect(f6('2001:db8:1:1:1:1:0:1')).toBe('2001:db8:1:1:1:1:0:1'); // a single zero group stays
  expect(f6('::')).toBe('::');
  expect(f6('::1')).toBe('::1');
  expect(f6('::ffff:198.18.0.1')).toBe('::ffff:198.18.0.1');
  expect(f6('::198.18.0.1')).toBe('::198.18.0.1');
  expect(f6('2001:db8::')).toBe('2001:db8::');
  expect(canonicalAddress('2001:DB8:0::A')).toBe('2001:db8::a');
  expect(maskToPrefix('255.255.255.0')).toBe(24);
  expect(maskToPrefix('255.0.255.0')).toBeUndefined();
  expect(prefixToMask(20)).toBe('255.255.240.0');
  expect(() => parseAddress('198.18.0.256')).toThrow(/not an IPv4 or IPv6 address/);
});

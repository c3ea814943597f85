// Pure checks of the traffic wire protocol, the tools' argv and the output parser (no root needed).
import { test, expect } from '@playwright/test';
import { parseClientArgs, parsePortSpec } from '../../src/traffic/client';
import { clientArgs, parseClientOutput, responderArgs } from '../../src/traffic/index';
import { formatRequest, parseEndpoint, parseIdentity, parseRequest, patternPayload, plainAddress } from '../../src/traffic/protocol';
import { parseResponderArgs } from '../../src/traffic/responder';

test('a request line round-trips; a foreign line is a request with every default', () => {
  const line = formatRequest({ id: 'run1-7', up: 10, down: 1400, echo: true, hold: false });
  expect(line).toBe('vslab1 id=run1-7 up=10 down=1400 echo=1 hold=0\n');
  expect(parseRequest(line.trimEnd())).toEqual({ id: 'run1-7', up: 10, down: 1400, echo: true, hold: false });
  expect(parseRequest('GET / HTTP/1.0')).toEqual({});
  expect(parseRequest('vslab1 up=-3 down=x hold=1')).toEqual({ hold: true });
  expect(() => formatRequest({ id: 'has space' })).toThrow(/request id/);
});

test('identity lines are parsed, anything else is rejected with the line quoted', () => {
  const id = parseIdentity('{"server":"rs1","proto":"tcp","local":"198.18.0.2","lport":80,"peer":"198.18.0.1","pport":4000,"id":"a-1","bytes":3}');
  expect(id.server).toBe('rs1');
  expect(id.pport).toBe(4000);
  expect(() => parseIdentity('HTTP/1.0 200 OK')).toThrow(/HTTP\/1.0 200 OK/);
  expect(() => parseIdentity('{"server":"rs1"}')).toThrow(/lacks/);
});

test('addresses: IPv4-mapped peers are shown plain; endpoints need brackets for IPv6', () => {
  expect(plainAddress('::ffff:198.18.0.1')).toBe('198.18.0.1');
  expect(plainAddress('2001:db8::1')).toBe('2001:db8::1');
  expect(parseEndpoint('[2001:db8::1]:80', 't')).toEqual({ address: '2001:db8::1', port: 80 });
  expect(parseEndpoint('198.18.0.1:0', 't')).toEqual({ address: '198.18.0.1', port: 0 });
  expect(() => parseEndpoint('2001:db8::1:80', 't')).toThrow(/ADDR:PORT/);
  expect(() => parseEndpoint('host.example:80', 't')).toThrow(/not an IP address/);
  expect(patternPayload(300)[255]).toBe(4);
});

test('source port specs expand ranges and lists and reject nonsense', () => {
  expect(parsePortSpec('ephemeral')).toEqual([]);
  expect(parsePortSpec('40000-40002,41000')).toEqual([40000, 40001, 40002, 41000]);
  expect(() => parsePortSpec('5-3')).toThrow(/FIRST <= LAST/);
  expect(() => parsePortSpec('0')).toThrow(/1-65535/);
  expect(() => parsePortSpec('80x')).toThrow(/PORT or FIRST-LAST/);
});

test('the client argv built by the API is what the client tool reads back', () => {
  const argv = clientArgs({
    target: { address: '2001:db8::2', port: 8080 }, proto: 'tcp', count: 7, concurrency: 3, sources: ['2001:db8::1', '2001:db8::11'],
    sports: [40000, 40001], timeoutMs: 900, hold: 250, up: 5, down: 6, echo: true, quiet: true, run: 'r1',
  });
  const cfg = parseClientArgs(argv);
  expect(cfg).toEqual({
    proto: 'tcp', target: { address: '2001:db8::2', port: 8080 }, count: 7, concurrency: 3, sources: ['2001:db8::1', '2001:db8::11'],
    sports: [40000, 40001], timeoutMs: 900, hold: 250, up: 5, down: 6, echo: true, quiet: true, run: 'r1',
  });
  expect(parseClientArgs(clientArgs({ target: { address: '198.18.0.2', port: 80 }, hold: 'release', sequential: true })).hold).toBe('release');
  expect(parseClientArgs(clientArgs({ target: { address: '198.18.0.2', port: 80 }, sequential: true })).concurrency).toBe(1);
  expect(() => parseClientArgs(['--target', '198.18.0.2:80', '--source', '2001:db8::1'])).toThrow(/IPv6 but the target/);
  expect(() => parseClientArgs(['--target', '198.18.0.2:80', '--proto', 'udp', '--hold', '5'])).toThrow(/TCP only/);
  expect(() => parseClientArgs(['--target', '198.18.0.2:80', '--bogus'])).toThrow(/unknown flag --bogus/);
});

test('the responder argv built by the API is what the responder tool reads back', () => {
  const argv = responderArgs({ name: 'rs2', tcp: [80, { address: '198.18.100.1', port: 443 }], udp: [{ address: '2001:db8::2', port: 53 }], payload: 1400, echo: true, rescanMs: 100 });
  expect(parseResponderArgs(argv)).toEqual({
    name: 'rs2',
    listen: [
      { proto: 'tcp', address: null, port: 80 },
      { proto: 'tcp', address: '198.18.100.1', port: 443 },
      { proto: 'udp', address: '2001:db8::2', port: 53 },
    ],
    echo: true, payload: 1400, hold: false, log: true, rescanMs: 100,
  });
  expect(() => parseResponderArgs(['--tcp', '80'])).toThrow(/--name is required/);
  expect(() => parseResponderArgs(['--name', 'x'])).toThrow(/at least one/);
});

test('the output parser refuses a report that does not account for every connection', () => {
  const rec = (i: number, outcome: string): string => JSON.stringify({ event: 'conn', i, outcome, server: outcome === 'answered' ? 'rs1' : null });
  const summary = (answered: number, timeout: number, count: number): string => JSON.stringify({
    event: 'summary', count, outcomes: { answered, refused: 0, timeout, reset: 0, unreachable: 0, closed: 0, error: 0 }, servers: { rs1: answered },
  });
  const ok = parseClientOutput([rec(1, 'timeout'), rec(0, 'answered'), summary(1, 1, 2)].join('\n'));
  expect(ok.servers).toEqual(['rs1', null]);
  expect(ok.conns.map((c) => c.i)).toEqual([0, 1]);
  expect(() => parseClientOutput([rec(0, 'answered'), summary(1, 1, 2)].join('\n'))).toThrow(/1 connection records for 2/);
  expect(() => parseClientOutput([rec(0, 'answered'), rec(0, 'timeout'), summary(1, 1, 2)].join('\n'))).toThrow(/repeated/);
  expect(() => parseClientOutput([rec(0, 'answered'), rec(1, 'answered'), summary(1, 1, 2)].join('\n'))).toThrow(/records count 2 answered/);
  expect(() => parseClientOutput(summary(1, 0, 2))).toThrow(/accounts for 1 of 2/);
  expect(() => parseClientOutput(rec(0, 'answered'), 'client: boom')).toThrow(/without a summary line; stderr: client: boom/);
});

// `vslab pcap json|show|stats|merge|trace` and `vslab replay` input errors, driven in-process.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { PcapWriter } from '../../src/capture/pcap';
import { FileSink } from '../../src/capture/sink';
import { UsageError } from '../../src/cli/command';
import { parseFlow, runPcap } from '../../src/cli/commands/pcap';
import { runReplay } from '../../src/cli/commands/replay';
import { buildPacket, type LayerSpec } from '../../src/packet/build';

let tmp = '';
// Created per worker (spec files are also loaded by the runner's main process, which runs no test).
test.beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabpk-cli-'));
});
test.afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(fn: typeof runPcap, args: string[]): Promise<{ code: number; out: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const code = await fn(args, { out, err: out });
  return { code, out: text };
}

const PKTS: LayerSpec[][] = [
  [{ type: 'eth' }, { type: 'arp', op: 1, psrc: '198.18.0.1', pdst: '198.18.0.2' }],
  [{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.1', id: 1 }, { type: 'tcp', sport: 40000, dport: 80, flags: 'S', seq: 10 }],
  [{ type: 'eth' }, { type: 'ipv4', src: '198.18.1.1', dst: '198.18.0.1', id: 2 }, { type: 'tcp', sport: 80, dport: 40000, flags: 'SA', seq: 20, ack: 11 }],
  [{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.1', id: 3 }, { type: 'tcp', sport: 40000, dport: 80, flags: 'PA', seq: 11, ack: 21 }, { type: 'payload', text: 'hello' }],
  [{ type: 'eth' }, { type: 'ipv4', src: '198.18.2.254', dst: '198.18.2.11' }, { type: 'udp', sport: 45000, dport: 6080 }, { type: 'gue' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.1' }, { type: 'tcp', sport: 40000, dport: 80, flags: 'S', seq: 10 }],
  [{ type: 'eth' }, { type: 'vlan', id: 7 }, { type: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { type: 'udp', sport: 5000, dport: 53 }, { type: 'payload', len: 20 }],
  [{ type: 'eth' }, { type: 'ipv4', src: '198.18.9.1', dst: '198.18.0.1' }, { type: 'icmp', icmpType: 3, code: 4, mtu: 1400 }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.1' }, { type: 'tcp', sport: 40000, dport: 80, flags: 'PA', seq: 11 }],
];

function writeSample(file: string, extra = 0): void {
  const w = new PcapWriter(new FileSink(file), { nanosecond: true });
  PKTS.forEach((p, i) => w.writePacket(1764000000, i * 1000, buildPacket(p)));
  for (let i = 0; i < extra; i++) w.writePacket(1764000001, i, buildPacket(PKTS[1 + (i % 3)]));
  w.close();
}

test('pcap json prints an array of packets whose layers name each header in wire order', async () => {
  const file = path.join(tmp, 'sample.pcap');
  writeSample(file);
  const { code, out } = await run(runPcap, ['json', file]);
  expect(code).toBe(0);
  const pkts = JSON.parse(out);
  expect(pkts.length).toBe(PKTS.length);
  expect(pkts.map((p: { layers: { type: string }[] }) => p.layers.map((l) => l.type).join('/'))).toEqual([
    'eth/arp', 'eth/ipv4/tcp', 'eth/ipv4/tcp', 'eth/ipv4/tcp', 'eth/ipv4/udp/gue/ipv4/tcp', 'eth/vlan/ipv6/udp', 'eth/ipv4/icmp/ipv4/tcp',
  ]);
  expect(pkts[1]).toMatchObject({ index: 1, ts: '1764000000.000001000', len: 54, capLen: 54 });
  expect(pkts[1].layers[1]).toMatchObject({ type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.1', ttl: 64, proto: 6, id: 1, checksumOk: true });
  expect(pkts[2].layers[2]).toMatchObject({ type: 'tcp', sport: 80, dport: 40000, flags: 'SA', seq: 20, ack: 11, options: [], checksumOk: true });
  expect(pkts[0].layers[1]).toMatchObject({ type: 'arp', op: 1, psrc: '198.18.0.1', pdst: '198.18.0.2' });
  expect(pkts[5].layers[1]).toMatchObject({ type: 'vlan', id: 7 });
  expect(pkts[5].layers[2]).toMatchObject({ type: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2', hlim: 64, nh: 17 });
  expect(pkts[6].layers[2]).toMatchObject({ type: 'icmp', icmpType: 3, code: 4, mtu: 1400 });
  expect(pkts[6].layers[3]).toMatchObject({ type: 'ipv4', quoted: true });
  // --payload adds the bytes; --count and --gue-port are honoured.
  const withPayload = JSON.parse((await run(runPcap, ['json', file, '--payload', '--count', '4'])).out);
  expect(withPayload.length).toBe(4);
  expect(withPayload[3].layers[3]).toEqual({ type: 'payload', len: 5, data: Buffer.from('hello').toString('hex') });
  const noGue = JSON.parse((await run(runPcap, ['json', file, '--gue-port', '7777'])).out);
  expect(noGue[4].layers.map((l: { type: string }) => l.type)).toEqual(['eth', 'ipv4', 'udp']);
});

test('pcap show prints one tcpdump-like line per packet', async () => {
  const file = path.join(tmp, 'sample.pcap');
  writeSample(file);
  const lines = (await run(runPcap, ['show', file])).out.trim().split('\n');
  expect(lines.length).toBe(PKTS.length);
  expect(lines[0]).toMatch(/ARP, Request who-has 198\.18\.0\.2 tell 198\.18\.0\.1$/);
  expect(lines[2]).toMatch(/IP 198\.18\.1\.1\.80 > 198\.18\.0\.1\.40000: Flags \[S\.\], seq 20, ack 11, win 65535, length 0$/);
  expect(lines[3]).toContain('Flags [P.], seq 11:16, ack 21');
  expect(lines[4]).toContain('IP 198.18.2.254.45000 > 198.18.2.11.6080: GUE, proto 4: IP 198.18.0.1.40000 > 198.18.1.1.80: Flags [S]');
  expect(lines[6]).toContain('ICMP unreachable - need to frag (mtu 1400) [quoted] IP 198.18.0.1.40000 > 198.18.1.1.80');
  // Same packets, same addresses as tcpdump prints them.
  const td = execFileSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
  expect(td[1]).toContain('IP 198.18.0.1.40000 > 198.18.1.1.80: Flags [S], seq 10, win 65535, length 0');
  expect(lines[1]).toContain('IP 198.18.0.1.40000 > 198.18.1.1.80: Flags [S], seq 10, win 65535, length 0');
});

test('pcap stats streams a large file and counts protocols and flows', async () => {
  const file = path.join(tmp, 'big.pcap');
  writeSample(file, 60000);
  const st = JSON.parse((await run(runPcap, ['stats', file, '--json', '--top', '3'])).out);
  expect(st.packets).toBe(60007);
  expect(st.protocols).toMatchObject({ eth: 60007, arp: 1, ipv4: 60005, tcp: 60005, udp: 2, gue: 1, vlan: 1, ipv6: 1, icmp: 1 });
  expect(st.flowCount).toBe(3);
  expect(st.topFlows[0]).toMatchObject({ proto: 6, src: '198.18.0.1', sport: 40000, dst: '198.18.1.1', dport: 80, packets: 60004, packetsBack: 20001 });
  const text = (await run(runPcap, ['stats', file])).out;
  expect(text).toMatch(/packets: 60007 /);
  expect(text).toMatch(/tcp\s+198\.18\.0\.1\.40000\s+> 198\.18\.1\.1\.80\s+60004\s+20001/);
});

test('pcap merge and trace work on files given on the command line', async () => {
  const a = path.join(tmp, 'a.pcap');
  const b = path.join(tmp, 'b.pcap');
  const wa = new PcapWriter(new FileSink(a), { nanosecond: true });
  const wb = new PcapWriter(new FileSink(b), { nanosecond: true });
  wa.writePacket(1, 100, buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.3.100' }, { type: 'tcp', sport: 40000, dport: 80, flags: 'S', seq: 99 }]));
  wb.writePacket(1, 200, buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.2.11', ttl: 63 }, { type: 'tcp', sport: 40000, dport: 8080, flags: 'S', seq: 99 }]));
  wa.close();
  wb.close();
  const out = path.join(tmp, 'ab.pcapng');
  const m = await run(runPcap, ['merge', '-o', out, `${a}=client:eth0`, `${b}=dir:eth1`]);
  expect(m.out).toBe(`${out}: 2 packets on 2 interface(s): client:eth0, dir:eth1\n`);
  const t = await run(runPcap, ['trace', out, '--flow', 'tcp 198.18.0.1:40000 > 198.18.3.100:80']);
  expect(t.code).toBe(0);
  expect(t.out).toContain('view 198.18.0.1.40000 > 198.18.2.11.8080 on dir:eth1 (same flags, seq and ack as packet #0 on client:eth0)');
  expect(t.out).toContain('dir:eth1           198.18.0.1.40000 > 198.18.2.11.8080  [ip.dst 198.18.3.100 -> 198.18.2.11; dport 80 -> 8080; ttl 64 -> 63]');
  expect(parseFlow('udp [2001:db8::1]:5 > [2001:db8::2]:53')).toEqual({ proto: 17, src: '2001:db8::1', sport: 5, dst: '2001:db8::2', dport: 53 });
});

test('bad input files and bad arguments are usage errors that name the problem', async () => {
  const file = path.join(tmp, 'sample.pcap');
  writeSample(file);
  const cut = path.join(tmp, 'cut.pcap');
  fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 200));
  // The packets before the cut are printed, then the error names the offset (exit 2 via UsageError).
  const err = await run(runPcap, ['json', cut]).catch((e) => e);
  expect(err).toBeInstanceOf(UsageError);
  expect(err.message).toMatch(/cut\.pcap: byte 1\d\d: truncated packet 3: its record says 54 captured bytes but the file ends after \d+/);
  await expect(run(runPcap, ['stats', path.join(tmp, 'missing.pcap')])).rejects.toThrow(/cannot read .*missing\.pcap: ENOENT/);
  await expect(run(runPcap, ['show', file, '--count', 'x'])).rejects.toThrow(/--count must be an integer/);
  await expect(run(runPcap, ['frobnicate'])).rejects.toThrow(/unknown pcap subcommand "frobnicate"/);
  await expect(run(runPcap, ['trace', file, '--flow', 'tcp nonsense'])).rejects.toThrow(/is not of the form/);
  await expect(run(runReplay as typeof runPcap, [tmp])).rejects.toThrow(/no expectations\.json found under/);
  fs.mkdirSync(path.join(tmp, 'run', 't1'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'run', 't1', 'expectations.json'), JSON.stringify({ version: 1, testId: 't1', expectations: [] }));
  await expect(run(runReplay as typeof runPcap, [path.join(tmp, 'run')])).rejects.toThrow(/t1: ENOENT.*capture\.pcapng/);
});

test('replay of a vslab test run: failing checks of a test the run reported as a known failure do not fail the replay; a disagreement or any other failure does', async () => {
  const runDir = path.join(tmp, 'known-run');
  const t1 = path.join(runDir, 'suite.t1');
  fs.mkdirSync(t1, { recursive: true });
  writeSample(path.join(t1, 'capture.pcapng'));
  // Nothing was captured on rs:eth0, so the check fails, live and offline alike.
  const expectations = { version: 1, testId: 'suite.t1', expectations: [{ id: 'syn@rs', link: 'rs:eth0', layers: [{ type: 'eth' }] }], verdicts: { 'syn@rs': 'fail' } };
  fs.writeFileSync(path.join(t1, 'expectations.json'), JSON.stringify(expectations));
  const results = (status: string) => fs.writeFileSync(path.join(runDir, 'results.json'), JSON.stringify({ tests: [{ id: 'suite.t1', status }] }));

  // A bare directory of expectations: a failing check fails the replay.
  let r = await run(runReplay as typeof runPcap, [runDir]);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/0 passed, 1 failed, 0 disagreement/);
  // Saved before packet accounting (no accounting.json, no background classes): it still replays, and says so.
  expect(r.out).toMatch(/packet accounting: none recorded \(a run saved before packet accounting; background classes absent\): packets not accounted/);

  results('known-failure');
  r = await run(runReplay as typeof runPcap, [runDir]);
  expect(r.code).toBe(0);
  expect(r.out).toContain('(a known failure in the run)');
  expect(r.out).toMatch(/1 failed \(1 of them in the run's known failure\(s\): suite\.t1\), 0 disagreement/);
  r = await run(runReplay as typeof runPcap, [runDir, '--json']);
  expect(JSON.parse(r.out)[0]).toMatchObject({ testId: 'suite.t1', recordedStatus: 'known-failure', ok: false });

  results('failed');
  expect((await run(runReplay as typeof runPcap, [runDir])).code).toBe(1);

  // A known failure whose recorded verdict the capture does not reproduce is still a disagreement.
  results('known-failure');
  fs.writeFileSync(path.join(t1, 'expectations.json'), JSON.stringify({ ...expectations, verdicts: { 'syn@rs': 'pass' } }));
  r = await run(runReplay as typeof runPcap, [runDir]);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/DISAGREES with the recorded verdict: syn@rs was pass in the run, fail now/);

  fs.writeFileSync(path.join(runDir, 'results.json'), '{"tests": 3}');
  await expect(run(runReplay as typeof runPcap, [runDir])).rejects.toThrow(/results\.json: \$\.tests: must be an array/);
});

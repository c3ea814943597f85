// System test on namespaces: client -> director (nftables DNAT, then Full-NAT with masquerade) -> real
// server. Every link end is captured; the flow is traced across the rewrite, checked with expectations
// (partial and PTF-style full ones), saved as a run directory and replayed offline with the same verdicts.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import { CaptureSet } from '../../src/capture/tcpdump';
import { runReplay } from '../../src/cli/commands/replay';
import { buildPacket, type LayerSpec } from '../../src/packet/build';
import { decodeCapture } from '../../src/packet/capturefile';
import { evaluateExpectation, expectationFromPacket, renderResult, type PacketExpectation } from '../../src/packet/expect';
import { traceFlow } from '../../src/packet/journey';
import type { DecodedPacket, TcpLayer } from '../../src/packet/layers';
import { CAPTURE_FILE, writeExpectationFile } from '../../src/packet/rundir';
import { TestLab } from '../capture/netns-lab';

test.describe.configure({ timeout: 240_000, mode: 'serial' });

const VIP = '198.18.3.100';
const RIP = '198.18.2.11';
const CIP = '198.18.1.1';
const DIP_RS_SIDE = '198.18.2.254';

let lab: TestLab;

test.beforeAll(() => {
  lab = new TestLab('nat');
  try {
    for (const n of ['client', 'dir', 'rs']) lab.addNode(n);
    lab.link('client', 'eth0', 'dir', 'eth0');
    lab.link('dir', 'eth1', 'rs', 'eth0');
    lab.addr('client', 'eth0', `${CIP}/24`);
    lab.addr('dir', 'eth0', '198.18.1.254/24');
    lab.addr('dir', 'eth1', `${DIP_RS_SIDE}/24`);
    lab.addr('rs', 'eth0', `${RIP}/24`);
    lab.route('client', 'default', 'via', '198.18.1.254');
    lab.route('rs', 'default', 'via', DIP_RS_SIDE);
    lab.sysctl('dir', 'net.ipv4.ip_forward', '1');
  } catch (e) {
    lab.cleanup();
    throw e;
  }
});
test.afterAll(() => lab?.cleanup());

const ends = () => [
  { node: lab.node('client'), iface: 'eth0' },
  { node: lab.node('dir'), iface: 'eth0' },
  { node: lab.node('dir'), iface: 'eth1' },
  { node: lab.node('rs'), iface: 'eth0' },
];

async function natRules(fullNat: boolean): Promise<void> {
  const rules = `flush ruleset
table ip vslabpk {
  chain pre { type nat hook prerouting priority dstnat; policy accept; ip daddr ${VIP} tcp dport 80 dnat to ${RIP}:8080; }
  chain post { type nat hook postrouting priority srcnat; policy accept; ${fullNat ? `oifname "eth1" ip daddr ${RIP} masquerade;` : ''} }
}
`;
  await lab.node('dir').must(['nft', '-f', '-'], { input: rules });
}

/** One TCP connection client:sport -> VIP:80 carrying `token`, echoed back by the real server. */
async function connection(sport: number, token: string, testDir: string): Promise<DecodedPacket[]> {
  const rs = lab.node('rs');
  const server = rs.spawn(['socat', 'TCP-LISTEN:8080,reuseaddr', 'PIPE']);
  const set = await CaptureSet.start(ends(), { fileName: `${sport}.pcap` });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const out = await lab.node('client').must(['socat', '-t', '2', '-', `TCP:${VIP}:80,sourceport=${sport},retry=20,interval=0.1`], { input: token, timeoutMs: 30000 });
    expect(out).toBe(token);
    await server.wait();
  } catch (e) {
    server.kill('SIGKILL');
    await set.stop({ allowLoss: true });
    throw e;
  }
  await set.stop();
  const merged = path.join(testDir, CAPTURE_FILE);
  fs.mkdirSync(testDir, { recursive: true });
  await set.merge(merged, path.join(lab.root, `scratch-${sport}`));
  return decodeCapture(merged, { payload: true });
}

const LINKS_C2S = ['client:eth0', 'dir:eth0', 'dir:eth1', 'rs:eth0'];

test('NAT: the flow is followed across the destination rewrite on all four links, then replayed offline', async () => {
  await natRules(false);
  const runDir = path.join(lab.root, 'run');
  const testDir = path.join(runDir, 'nat-basic');
  const token = 'vslab-journey-token-nat-40001\n';
  const packets = await connection(40001, token, testDir);
  const j = traceFlow(packets, { proto: 6, src: CIP, sport: 40001, dst: VIP, dport: 80 });

  expect(j.warnings).toEqual([]);
  const views = j.views.map((v) => `${v.tuple.src}:${v.tuple.sport}>${v.tuple.dst}:${v.tuple.dport}`);
  expect(views).toEqual([`${CIP}:40001>${VIP}:80`, `${CIP}:40001>${RIP}:8080`]);
  // Every packet of the connection crossed all four link ends, in path order for its direction.
  expect(j.transmissions.length).toBeGreaterThanOrEqual(6);
  for (const t of j.transmissions) {
    expect(t.hops.map((h) => h.link)).toEqual(t.direction === 'c2s' ? LINKS_C2S : [...LINKS_C2S].reverse());
  }
  const syn = j.transmissions[0];
  expect(syn.direction).toBe('c2s');
  expect((syn.hops[0].packet.layers[2] as TcpLayer).flags).toBe('S');
  expect(syn.hops[2].changed).toEqual(expect.arrayContaining([`ip.dst ${VIP} -> ${RIP}`, 'dport 80 -> 8080', 'ttl 64 -> 63']));
  const synAck = j.transmissions[1];
  expect(synAck.direction).toBe('s2c');
  expect(synAck.hops[2].changed).toEqual(expect.arrayContaining([`ip.src ${RIP} -> ${VIP}`, 'sport 8080 -> 80']));
  // The token crossed every link in both directions.
  const withToken = j.hops.filter((h) => h.packet.layers.some((l) => l.type === 'payload' && Buffer.from(l.data, 'hex').toString() === token));
  expect(new Set(withToken.map((h) => `${h.direction} ${h.link}`)).size).toBe(8);

  // Expectations: a partial one, a PTF-style full one built from the client's SYN, an absence, and one that
  // must fail with a readable diff.
  const clientSyn = syn.hops[0].packet;
  const synLayers = clientSyn.layers.filter((l) => l.type !== 'payload') as unknown as LayerSpec[];
  const expectedOnRsLink = synLayers.map((l) => {
    if (l.type === 'ipv4') return { ...l, dst: RIP, ttl: 63, checksum: undefined };
    if (l.type === 'tcp') return { ...l, dport: 8080, checksum: undefined };
    return l;
  }) as LayerSpec[];
  const exps: PacketExpectation[] = [
    { id: 'syn-rewritten-to-rip', link: 'dir:eth1', layers: [{ type: 'eth' }, { type: 'ipv4', src: CIP, dst: RIP, ttl: 63 }, { type: 'tcp', sport: 40001, dport: 8080, flags: 'S' }] },
    expectationFromPacket({ id: 'syn-full', link: 'rs:eth0', packet: buildPacket(expectedOnRsLink, { recompute: true }), ignore: ['eth', 'tcp.checksum', 'tcp.checksumOk'] }),
    { id: 'vip-never-reaches-rs', link: 'rs:eth0', mode: 'absent', layers: [{ type: 'eth' }, { type: 'ipv4', dst: VIP }, { type: 'tcp' }] },
    { id: 'syn-to-wrong-rip', link: 'dir:eth1', layers: [{ type: 'eth' }, { type: 'ipv4', src: CIP, dst: '198.18.2.12' }, { type: 'tcp', sport: 40001, dport: 8080, flags: 'S' }], ignore: ['ipv4.id'] },
  ];
  const links = [...new Set(packets.map((p) => p.link!))];
  const results = exps.map((e) => evaluateExpectation(e, packets, links));
  expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
  const text = renderResult(results[3]);
  expect(text).toMatch(/FAIL syn-to-wrong-rip/);
  expect(text).toMatch(/✗ ipv4\s+dst\s+198\.18\.2\.12\s+198\.18\.2\.11/);

  // Save the run directory and replay it offline: same verdicts, no disagreement.
  writeExpectationFile(testDir, {
    version: 1, testId: 'nat-basic', expectations: exps,
    verdicts: Object.fromEntries(results.map((r) => [r.id, r.ok ? 'pass' : 'fail'])),
  });
  const out = new PassThrough();
  let text2 = '';
  out.on('data', (d) => (text2 += d));
  const code = await runReplay([runDir], { out, err: out });
  expect(code).toBe(1); // one expectation fails by design
  expect(text2).toMatch(/3 passed, 1 failed, 0 disagreement/);
  const json = new PassThrough();
  let jtext = '';
  json.on('data', (d) => (jtext += d));
  await runReplay([runDir, '--json'], { out: json, err: json });
  const replayed = JSON.parse(jtext)[0].results.map((r: { id: string; ok: boolean }) => [r.id, r.ok]);
  expect(replayed).toEqual(results.map((r) => [r.id, r.ok]));

  // A recorded verdict that the capture does not support is reported as a disagreement.
  writeExpectationFile(testDir, { version: 1, testId: 'nat-basic', expectations: exps, verdicts: { 'syn-to-wrong-rip': 'pass' } });
  const out3 = new PassThrough();
  let text3 = '';
  out3.on('data', (d) => (text3 += d));
  await runReplay([runDir], { out: out3, err: out3 });
  expect(text3).toMatch(/DISAGREES with the recorded verdict: syn-to-wrong-rip was pass in the run, fail now/);
});

test('Full-NAT: both addresses rewritten; the rewritten view is learnt from payload and seq/ack invariants', async () => {
  await natRules(true);
  const token = 'vslab-journey-token-fullnat-40002\n';
  const packets = await connection(40002, token, path.join(lab.root, 'run', 'fullnat'));
  const j = traceFlow(packets, { proto: 6, src: CIP, sport: 40002, dst: VIP, dport: 80 });
  expect(j.warnings).toEqual([]);
  expect(j.views.length).toBe(2);
  const rsView = j.views[1];
  expect(rsView.tuple.src).toBe(DIP_RS_SIDE);
  expect(rsView.tuple.dst).toBe(RIP);
  expect(rsView.tuple.dport).toBe(8080);
  expect(rsView.links.sort()).toEqual(['dir:eth1', 'rs:eth0']);
  expect(rsView.evidence).toMatch(/same flags/);
  for (const t of j.transmissions) {
    expect(t.hops.map((h) => h.link)).toEqual(t.direction === 'c2s' ? LINKS_C2S : [...LINKS_C2S].reverse());
  }
  expect(j.transmissions[0].hops[2].changed).toEqual(expect.arrayContaining([`ip.src ${CIP} -> ${DIP_RS_SIDE}`, `ip.dst ${VIP} -> ${RIP}`]));
  // Packets of the earlier NAT connection (other tuple) are not part of this flow.
  expect(j.hops.every((h) => h.tuple.sport !== 40001 && h.tuple.dport !== 40001)).toBe(true);
});

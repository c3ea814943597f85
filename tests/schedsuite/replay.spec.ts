// The scenario replayer against kernel IPVS in a VM, on a representative subset of the scenario
// files (the full set is suites/schedulers/exact.spec.ts): every scheduler family, IPv6, fwmark with
// UDP and persistence, NAT with connection reuse, one-packet UDP, a timed wait with ipvsadm --set.
import { formatReplay, replayScenario } from '../../src/suites/schedulers/replay';
import { runScenario } from '../../src/models/scenario';
import { expect, loadScenario, test, useReplayLab, VM_TEST_TIMEOUT } from './fixture';

test.describe.configure({ timeout: VM_TEST_TIMEOUT });
const replayLab = useReplayLab();

const REPRESENTATIVE = [
  'rr-basic', // list order: newest first
  'wrr-adds-4-3-2', // cw after sequential adds
  'lc-active-weighs-256',
  'wlc-weights',
  'sh-port', // hash_32 with the client port
  'mh-port', // Maglev (SipHash) with the client port, 300 clients
  'rr-ipv6',
  'wlc-fwmark-persistence', // fwmark rule, one template for TCP and UDP on several ports
  'lc-reuse-time-wait-counts', // NAT servers, a SYN on a TIME_WAIT entry
  'rr-persistence-weight-zero',
];

test.describe('replayed scenarios agree with the model on the kernel', () => {
  for (const name of REPRESENTATIVE) {
    test(name, async ({}, testInfo) => {
      const r = await replayScenario(replayLab(), loadScenario(name));
      const text = formatReplay(r);
      await testInfo.attach('replay.txt', { body: text, contentType: 'text/plain' });
      expect(r.ok, text).toBe(true);
      // both observations were made: every flow answered or refused as predicted, the table read
      expect(r.flows.length).toBe(r.predicted.length);
      expect(r.flows.some((f) => f.table !== undefined)).toBe(true);
      // the timed scenario reproduces the prediction offline
      expect(runScenario(r.timedScenario).assignments).toEqual(r.predicted);
    });
  }

  test('one-packet UDP: every datagram scheduled on its own, no connection entry stays', async () => {
    const r = await replayScenario(replayLab(), loadScenario('rr-one-packet'));
    expect(r.ok, formatReplay(r)).toBe(true);
    const checked = r.flows.filter((f) => f.table !== undefined);
    expect(checked.length).toBeGreaterThan(0);
    expect(checked.every((f) => f.table === null && r.tableMissing.includes(f.index))).toBe(true);
  });

  test('a release and a wait with ipvsadm --set tcpfin 10: closed connections count until they expire', async () => {
    test.setTimeout(VM_TEST_TIMEOUT);
    const r = await replayScenario(replayLab(), loadScenario('rr-upper-threshold'));
    expect(r.ok, formatReplay(r)).toBe(true);
    expect(r.timedScenario.events!.some((e) => e.op === 'wait' && e.seconds >= 15)).toBe(true);
    // the lab is back to the kernel defaults afterwards
    expect(await replayLab().ipvs.getTimeouts()).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(await replayLab().ipvs.listServices()).toEqual([]);
    expect(await replayLab().ipvs.connections()).toEqual([]);
  });
});

test.describe('a sibling replay lab in the same VM (the exact suite runs waiting scenarios there)', () => {
  test('two scenarios at once, one per lab: both agree with the model, neither sees the other, the sibling runs at nice 5', async () => {
    test.setTimeout(VM_TEST_TIMEOUT);
    const primary = replayLab();
    const sibling = await primary.sibling(`${primary.name}-b1`, 4);
    try {
      expect(sibling.lab.guest).toBe(primary.lab.guest);
      // the sibling sleeps 15 s with tcpfin 10 while the primary replays 300 flows
      const t0 = Date.now();
      const [waiting, busy] = await Promise.all([replayScenario(sibling, loadScenario('lc-quiesce-and-expire')), replayScenario(primary, loadScenario('mh-port'))]);
      expect(waiting.ok, formatReplay(waiting)).toBe(true);
      expect(busy.ok, formatReplay(busy)).toBe(true);
      // they ran at the same time: the wall time is well under the two replays' durations added up
      expect(Date.now() - t0).toBeLessThan((waiting.durationMs + busy.durationMs) * 0.9);
      // each lab has its own IPVS: the primary keeps the default timeouts, both tables are empty again
      expect(await primary.ipvs.getTimeouts()).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
      expect(await sibling.ipvs.getTimeouts()).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
      expect(await sibling.ipvs.listServices()).toEqual([]);
      expect(await primary.ipvs.connections()).toEqual([]);
      // programs in the sibling's nodes run at nice 5, the primary's at 0
      expect((await sibling.sh('client', 'cut -d" " -f19 /proc/self/stat')).trim()).toBe('5');
      expect((await primary.sh('client', 'cut -d" " -f19 /proc/self/stat')).trim()).toBe('0');
    } finally {
      await sibling.down();
    }
    // the VM still serves the primary
    expect((await primary.sh('director', 'echo ok')).trim()).toBe('ok');
  });
});

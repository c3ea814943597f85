// Scenarios run by first packets (src/suites/schedulers/burst.ts, guest/syngen): what is refused
// without a VM, then on the kernel IPv6, UDP, NAT servers with a removal event, every flow accounted
// by the connection table and equal to the model, the servers' drop rule gone afterwards, and
// vslab-syngen's own input errors.
import { resolveScenario, type Scenario } from '../../src/models/scenario';
import { GUEST_SYNGEN } from '../../src/backend/vm/agent-build';
import { burstRefusal, burstScenario, formatBurst } from '../../src/suites/schedulers/burst';
import { BURST_TABLE } from '../../src/suites/schedulers/setup';
import { expect, test, useReplayLab, VM_TEST_TIMEOUT } from './fixture';

const servers = (n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({ name: `rs${i + 1}`, addr: `198.18.1.${11 + i}`, port: 80, weight: i + 1, ...extra }));
const base = (over: Partial<Scenario>): Scenario => ({
  name: 'x', scheduler: 'wrr', service: { proto: 'tcp', vip: '198.19.0.100', port: 80 }, servers: servers(3),
  flows: [{ generate: { count: 20, seed: 1, clients: '198.18.128.0/17' } }], hold: false, ...over,
});

test('what first packets cannot show is refused with the reason', () => {
  const why = (sc: Scenario) => burstRefusal(resolveScenario(sc));
  expect(why(base({}))).toBeNull();
  expect(why(base({ scheduler: 'lc' }))).toMatch(/scheduler lc depends on connection counts/);
  expect(why(base({ scheduler: 'twos' }))).toMatch(/scheduler twos depends on connection counts/);
  expect(why(base({ hold: true }))).toMatch(/is held; first packets never establish a connection/);
  expect(why(base({ events: [{ before: 5, op: 'wait', seconds: 1 }] }))).toMatch(/\(wait\) needs real connections/);
  expect(why(base({ servers: servers(3, { upper: 5 }) }))).toMatch(/thresholds compare connection counts/);
  expect(why(base({ service: { proto: 'tcp', vip: '198.19.0.100', port: 80, persistence: { timeout: 60 } } as Scenario['service'] }))).toMatch(/persistence/);
  expect(why(base({ flows: [{ client: '198.18.0.2', cport: 1000 }, { client: '198.18.0.2', cport: 1000 }] }))).toMatch(/repeats an earlier flow/);
});

test.describe('first packets on the kernel', () => {
  test.describe.configure({ timeout: VM_TEST_TIMEOUT });
  const lab = useReplayLab();

  const cases: Scenario[] = [
    {
      name: 'sh-ipv6-first-packets', scheduler: 'sh', service: { proto: 'tcp', vip: '2001:db8:0:1::100', port: 80 },
      servers: [1, 2, 3, 4].map((i) => ({ name: `rs${i}`, addr: `2001:db8:1::${10 + i}`, port: 80, weight: i })),
      flows: [{ generate: { count: 1500, seed: 5, clients: '2001:db8:64::/64' } }], hold: false,
    },
    {
      name: 'wrr-udp-first-packets', scheduler: 'wrr', service: { proto: 'udp', vip: '198.19.0.100', port: 53 },
      servers: [1, 2, 3].map((i) => ({ name: `rs${i}`, addr: `198.18.1.${10 + i}`, port: 53, weight: i })),
      flows: [{ generate: { count: 1500, seed: 6, clients: '198.18.128.0/17' } }], hold: false,
    },
    {
      name: 'mh-nat-remove-first-packets', scheduler: 'mh', service: { proto: 'tcp', vip: '198.19.0.100', port: 80 },
      servers: [1, 2, 3].map((i) => ({ name: `rs${i}`, addr: `198.18.1.${10 + i}`, port: 8080, weight: 1, forward: 'nat' as const })),
      flows: [{ generate: { count: 1500, seed: 7, clients: '198.18.128.0/17' } }], hold: false,
      events: [{ before: 750, op: 'remove', server: 'rs2' }],
    },
  ];
  for (const sc of cases) {
    test(sc.name, async ({}, testInfo) => {
      const r = await burstScenario(lab(), sc);
      const text = formatBurst(r);
      await testInfo.attach('burst.txt', { body: text, contentType: 'text/plain' });
      expect(r.missing, text).toEqual([]);
      expect(r.unknown, text).toEqual([]);
      expect(r.ok, text).toBe(true);
      expect(r.observed.length).toBe(1500);
      if (sc.events) expect(r.observed.slice(750).includes('rs2'), text).toBe(false);
      // the servers' drop rule and the service are gone again
      for (const n of lab().serverNodes.slice(0, 4)) {
        expect((await lab().node(n).exec(['nft', 'list', 'tables'])).stdout).not.toContain(BURST_TABLE);
      }
      expect(await lab().ipvs.connections()).toEqual([]);
    });
  }

  test('vslab-syngen refuses bad input with the line and exit 2, and stops at a failed send with exit 1', async () => {
    const client = lab().node('client');
    for (const [input, msg] of [
      ['tcp 198.18.0.2 1000\n', /stdin line 1: want <tcp\|udp> <src> <sport> <dst> <dport>/],
      ['\nsctp 198.18.0.2 1 198.19.0.100 80\n', /stdin line 2: protocol is not tcp or udp/],
      ['udp 198.18.0.2 0 198.19.0.100 80\n', /port out of range/],
      ['tcp 2001:db8::1 1000 198.19.0.100 80\n', /destination is not an IPv6 address/],
    ] as const) {
      const r = await client.exec([GUEST_SYNGEN], { input });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    // a packet that cannot be sent stops the run with the reason (no route: no scenario is applied now)
    const unreachable = await client.exec([GUEST_SYNGEN], { input: 'tcp 198.18.0.2 1000 198.19.0.100 80\n' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/stdin line 1: sendto 198\.19\.0\.100: Network is unreachable/);
    const ok = await client.exec([GUEST_SYNGEN], { input: '' });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ sent: 0, elapsedUs: 0 });
  });
});

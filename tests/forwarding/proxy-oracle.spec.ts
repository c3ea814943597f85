// The proxy stream oracle on a real capture (nginx on the docker backend, tcp6, 30 kB up / 60 kB down):
// nginx sent its FIN towards the client on the segment that carried the stream's last 241 bytes. That FIN
// is right after the whole stream (its sequence slot follows the segment's data) and must pass PROXY-004;
// the oracle used to expect a FIN segment of its own and failed the test.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { streamChecks } from '../../src/oracle/proxy';
import { decodeCaptureWithInterfaces } from '../../src/packet/capturefile';
import { evaluateExpectation } from '../../src/packet/expect';
import { loadTopologyFile } from '../../src/topology/load';

const ROOT = path.resolve(__dirname, '..', '..');

test('a FIN riding on the last data segment is the FIN after the whole stream (PROXY-004)', () => {
  // client1:eth0 and rs2:eth0 of the capture: the client leg where the FIN arrives, the server leg it relays.
  const { packets, interfaces } = decodeCaptureWithInterfaces(path.join(ROOT, 'tests/fixtures/proxy/fin-on-data.pcapng'), { payload: true });
  const lab = loadTopologyFile(path.join(ROOT, 'suites/proxy/topologies/proxy.yaml'));
  const flow = {
    service: 'tcp6', client: 'client1', clientAddr: '2001:db8:0:1::1', clientPort: 20096, realServer: 'rs2', answered: true,
    leg: { addr: '2001:db8:0:2::1', port: 47438 },
  };
  const fins = packets.filter((p) => p.link === 'client1:eth0' && p.layers.some((l) => l.type === 'tcp' && String((l as { flags?: string }).flags).includes('F')));
  // The capture really has the case: nginx's FIN to the client carries data.
  expect(fins.some((p) => p.layers.some((l) => l.type === 'payload'))).toBe(true);
  const checks = streamChecks(lab, flow, packets);
  const fin = checks.find((c) => c.expectation.id === 's2c.fin@client1:eth0');
  expect(fin, 'the s2c FIN check is built').toBeDefined();
  const results = checks.map((c) => ({ id: c.expectation.id, r: evaluateExpectation(c.expectation, packets, interfaces) }));
  expect(results.filter((x) => !x.r.ok).map((x) => `${x.id}: ${x.r.reason}`)).toEqual([]);
  expect(results.length).toBeGreaterThan(50);
});

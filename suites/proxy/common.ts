// Statement sets of the proxy suite files, and the checks of a stream run they share.
import type { DecodedPacket } from '../../src/packet/layers';
import { exchangeChecks } from '../../src/oracle/flow-checks';
import { connectOrderChecks, streamChecks } from '../../src/oracle/proxy';
import type { OracleCheck } from '../../src/oracle/expect';
import type { Traffic, TrafficRun } from '../../src/runner/suite-api';

/** What an exchange through a proxy checks on every hop, plus packet accounting (FWD-COM-001, FWD-COM-009). */
export const PROXY_EXCHANGE = ['PROXY-001', 'PROXY-002', 'PROXY-007', 'PROXY-009', 'FWD-COM-001', 'FWD-COM-009'];

/** A stream run's checks: every flow on every hop, its byte streams and half-closes, the server leg's connect order. */
export function streamRunChecks(traffic: Traffic, run: TrafficRun, packets: DecodedPacket[]): OracleCheck[] {
  return [
    ...run.flows.flatMap((f, k) => [
      ...exchangeChecks(traffic.model, f, packets, { idPrefix: `f${k}.` }),
      ...streamChecks(traffic.model, f, packets, `f${k}.`),
      ...connectOrderChecks(traffic.model, f, packets, `f${k}.`),
    ]),
    ...traffic.unansweredChecks(run),
  ];
}

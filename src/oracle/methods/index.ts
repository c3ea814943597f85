// The forwarding oracles, one per method of the Lab model.
import type { ForwardingMethod } from '../../topology/model';
import { DirectRoutingOracle } from './dr';
import { FullNatOracle } from './fullnat';
import { NatOracle } from './nat';
import type { ForwardingOracle } from './oracle';
import { ProxyOracle } from './proxy';
import { TunnelOracle } from './tun';

export type { ForwardingOracle } from './oracle';
export { NatOracle } from './nat';
export { DirectRoutingOracle } from './dr';
export { TunnelOracle } from './tun';
export { FullNatOracle, localAddressFor } from './fullnat';
export { ProxyOracle, proxyLegs } from './proxy';

const ORACLES: Record<ForwardingMethod, ForwardingOracle> = {
  nat: new NatOracle(),
  dr: new DirectRoutingOracle(),
  tun: new TunnelOracle(),
  fullnat: new FullNatOracle(),
  proxy: new ProxyOracle(),
};

export function oracleFor(method: ForwardingMethod): ForwardingOracle {
  return ORACLES[method];
}

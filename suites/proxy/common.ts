// Statement sets of the proxy suite files.

/** What an exchange through a proxy checks on every hop, plus packet accounting (FWD-COM-001, FWD-COM-009). */
export const PROXY_EXCHANGE = ['PROXY-001', 'PROXY-002', 'PROXY-007', 'PROXY-009', 'FWD-COM-001', 'FWD-COM-009'];

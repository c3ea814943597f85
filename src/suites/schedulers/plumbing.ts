// The replay lab's own LAN ("plumbing"). No scenario address may fall inside these prefixes;
// addresses.ts moves any that do.
export const PLUMBING_V4 = { prefix: '198.19.100.0/24', base: '198.19.100.' };
export const PLUMBING_V6 = { prefix: '2001:db8:fe::/64', base: '2001:db8:fe::' };

/**
 * Destination of flows of a fwmark service that name none (for schedulers that do not hash it): any
 * marked address will do, so the replayer uses these.
 */
export const FWMARK_DEFAULT_DST = { 4: '198.19.99.1', 6: '2001:db8:fd::1' } as const;

// A destination (real server) of a virtual service as the kernel keeps it (struct ip_vs_dest,
// include/net/ip_vs.h), with exactly the fields the schedulers and the connection accounting read.

import type { Address } from './address';

/** Forwarding method; it decides which TCP state a closed connection rests in (FIN_WAIT vs TIME_WAIT). */
export type ForwardMethod = 'dr' | 'nat' | 'tun';

export class Dest {
  /** Scenario name of the real server (e.g. "rs1"). */
  readonly name: string;
  readonly addr: Address;
  readonly port: number;
  forward: ForwardMethod;
  weight: number;
  /** Last non-zero weight (a newly added dest takes its given weight, even 0). Used by mh. */
  lastWeight: number;
  uThreshold: number;
  lThreshold: number;
  activeConns = 0;
  inactConns = 0;
  persistConns = 0;
  /** IP_VS_DEST_F_OVERLOAD */
  overload = false;
  /** IP_VS_DEST_F_AVAILABLE: false once deleted (parked in the trash). */
  available = true;
  /** Position in the service's destination list (kernel order), -1 when not listed. */
  listIndex = -1;

  constructor(init: { name: string; addr: Address; port: number; weight: number; uThreshold?: number; lThreshold?: number; forward?: ForwardMethod }) {
    this.name = init.name;
    this.addr = init.addr;
    this.port = init.port;
    this.weight = init.weight;
    this.lastWeight = init.weight;
    this.uThreshold = init.uThreshold ?? 0;
    this.lThreshold = init.lThreshold ?? 0;
    this.forward = init.forward ?? 'dr';
  }

  /** ip_vs_dest_conn_overhead(): active * 256 + inactive (include/net/ip_vs.h). */
  get overhead(): number {
    return this.activeConns * 256 + this.inactConns;
  }

  /** ip_vs_dest_totalconns(): what the thresholds compare against (templates excluded). */
  get totalConns(): number {
    return this.activeConns + this.inactConns;
  }

  /** "addr:port" identity used for trash revival. */
  get key(): string {
    return destKey(this.addr, this.port);
  }
}

export function destKey(addr: Address, port: number): string {
  return addr.family === 6 ? `[${addr.text}]:${port}` : `${addr.text}:${port}`;
}

// The JSON lines the traffic tools print on stdout. Shared by the tools (which write them) and the
// TypeScript API (which parses them). Type-only: nothing here is loaded at run time.
import type { Proto } from './protocol';

// ---- responder ----

export interface ListenedSocket {
  proto: Proto;
  /** The bound address; "::" for a TCP any-address (dual-stack) listener. */
  address: string;
  port: number;
  /** UDP any-address socket that answers every local address, present or added later, from the address
   *  a datagram arrived at (IP_PKTINFO: the replay labs' C responder, guest/flows/vslab-respond.c). */
  everyAddress?: boolean;
}

/** Printed once every requested listener is bound. */
export interface ResponderReadyEvent {
  event: 'ready';
  name: string;
  pid: number;
  listen: ListenedSocket[];
}

/** A UDP any-address responder bound an address that appeared after it started. */
export interface ResponderBoundEvent extends ListenedSocket {
  event: 'bound';
}

/** One answered TCP request or UDP datagram (printed with --log). */
export interface ResponderServedEvent {
  event: 'served';
  proto: Proto;
  id: string | null;
  local: string;
  lport: number;
  peer: string;
  pport: number;
  /** Payload bytes received after the request line. */
  up: number;
  /** Payload bytes sent after the identity line. */
  bytes: number;
  hold: boolean;
  /** Wall-clock time, ms since the epoch (fractional). */
  t: number;
}

/** One TCP connection ended (printed with --log). */
export interface ResponderClosedEvent {
  event: 'closed';
  proto: 'tcp';
  id: string | null;
  local: string;
  lport: number;
  peer: string;
  pport: number;
  answered: boolean;
  /** Socket error code (ECONNRESET...) or null for an orderly close. */
  error: string | null;
  /** Milliseconds from accept to close. */
  ms: number;
}

/** Printed on SIGTERM/SIGINT before the responder exits 0. */
export interface ResponderStoppedEvent {
  event: 'stopped';
  served: { tcp: number; udp: number };
  /** TCP connections still open when it stopped. */
  open: number;
}

export type ResponderEvent =
  | ResponderReadyEvent | ResponderBoundEvent | ResponderServedEvent | ResponderClosedEvent | ResponderStoppedEvent;

// ---- client ----

/** How one connection (TCP) or exchange (UDP) ended. Every one of the N gets exactly one. */
export type Outcome =
  /** The identity line and every announced payload byte arrived. */
  | 'answered'
  /** TCP RST to the SYN, or ICMP port unreachable (TCP and UDP): ECONNREFUSED. */
  | 'refused'
  /** Nothing (more) arrived within --timeout; `stage` says where it stalled. */
  | 'timeout'
  /** The established connection was reset before the answer was complete (ECONNRESET, EPIPE). */
  | 'reset'
  /** ICMP host/network unreachable or no route (EHOSTUNREACH, ENETUNREACH...). */
  | 'unreachable'
  /** The peer closed (FIN) before the answer was complete. */
  | 'closed'
  /** A local error before anything was sent, e.g. EADDRINUSE / EADDRNOTAVAIL for a chosen source port. */
  | 'error';

export const OUTCOMES: readonly Outcome[] = ['answered', 'refused', 'timeout', 'reset', 'unreachable', 'closed', 'error'];

/** Where a connection that did not get `answered` stopped ('start': never started, the run was stopped). */
export type Stage = 'start' | 'bind' | 'connect' | 'answer' | 'payload';

export interface ClientConnEvent {
  event: 'conn';
  /** 0-based index of the connection in the run (the order they were started). */
  i: number;
  proto: Proto;
  /** The request id sent (`<run>-<i>`), also in the responder's log. */
  id: string;
  /** Source address/port actually used (from getsockname), or the requested ones when it never got that far. */
  src: string | null;
  sport: number | null;
  dst: string;
  dport: number;
  outcome: Outcome;
  /** For outcomes other than answered: the stage it failed in. */
  stage: Stage | null;
  /** The errno-style code behind the outcome (ECONNREFUSED, EADDRINUSE...), null if none. */
  code: string | null;
  /** Responder name, when an identity line arrived (also for a payload that then stalled). */
  server: string | null;
  /** What the server saw: its local address/port and the peer address/port (null without an identity). */
  local: string | null;
  lport: number | null;
  peer: string | null;
  pport: number | null;
  /** Milliseconds since the client started when this connection was started. */
  start: number;
  /** TCP handshake time, ms (null for UDP or when it never completed). */
  connectMs: number | null;
  /** From start to the complete answer, ms (null unless answered). */
  answerMs: number | null;
  /** How long it was held open after the answer, ms (null when not held). */
  heldMs: number | null;
  /** From start until the socket was closed, ms. */
  totalMs: number;
  /** Payload bytes received after the identity line. */
  bytes: number;
  /** An error after the answer (e.g. ECONNRESET while held); does not change the outcome. */
  afterAnswer: string | null;
}

/** Printed (with --hold-until-release) once every connection has been answered or has failed. */
export interface ClientHoldingEvent {
  event: 'holding';
  /** Connections answered and now held open. */
  held: number;
  /** Connections that failed (they are already final). */
  failed: number;
  /** The real server of each connection in index order (null for one that failed): known before release. */
  servers: Array<string | null>;
}

export interface ClientSummaryEvent {
  event: 'summary';
  proto: Proto;
  target: string;
  count: number;
  /** Count per outcome; every outcome key is present; the values sum to count. */
  outcomes: Record<Outcome, number>;
  /** Answered connections per responder name. */
  servers: Record<string, number>;
  /** Wall time of the whole run, ms, and completed connections per second over it. */
  elapsedMs: number;
  perSecond: number;
}

export type ClientEvent = ClientConnEvent | ClientHoldingEvent | ClientSummaryEvent;

// How netlink requests reach a kernel. A transport takes a buffer of one or more complete netlink
// requests and returns every reply message up to the ACK/ERROR (or DONE for dumps) of each request.
// It is deliberately tiny so that other places can provide one: the local native helper (a socket
// opened inside a network namespace), a VM guest agent relaying netlink, a recorded fixture.
import { native } from '../native';

export interface NetlinkTransport {
  /** Send `request` (complete netlink messages, each with its own nlmsg_seq) and return all replies. */
  transact(request: Buffer): Promise<Buffer>;
}

/** A transport that can also be closed (sockets, relays). */
export interface ClosableNetlinkTransport extends NetlinkTransport {
  close(): void;
}

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

export interface LocalTransportOptions {
  /** Reply timeout per transact() call, in milliseconds (default 10 s). */
  timeoutMs?: number;
}

/**
 * A netlink socket opened by the native helper inside the namespace at `nsPath` (e.g.
 * /run/netns/vslab-lab1-dir), or in the host namespace when `nsPath` is null. The socket stays bound
 * to the namespace it was created in, whatever thread later uses it.
 */
export class LocalNetlinkTransport implements ClosableNetlinkTransport {
  private fd: number | undefined;
  private readonly timeoutMs: number;

  constructor(
    readonly nsPath: string | null,
    readonly protocol: number = NETLINK_GENERIC,
    opts: LocalTransportOptions = {},
  ) {
    this.fd = native().netlinkOpen(nsPath, protocol);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async transact(request: Buffer): Promise<Buffer> {
    if (this.fd === undefined) {
      throw new Error(`netlink socket for ${this.nsPath ?? 'the host namespace'} is closed`);
    }
    return native().netlinkTransact(this.fd, request, this.timeoutMs);
  }

  close(): void {
    if (this.fd !== undefined) native().netlinkClose(this.fd);
    this.fd = undefined;
  }
}

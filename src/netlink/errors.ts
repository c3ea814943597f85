// Errors a netlink request can end with. The kernel answers with a negative errno and, on kernels with
// extended ACKs, a message and the offset of the attribute it rejected. NetlinkError keeps all of it so
// higher layers (the IPVS client) can say which operation on which object failed and why.
import * as os from 'os';
import type { ExtAck } from './message';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) {
  // ENOTSUP and EOPNOTSUPP share a number on Linux; keep the first (EOPNOTSUPP sorts later, prefer it).
  if (!errnoNames.has(num) || name === 'EOPNOTSUPP' || name === 'EAGAIN') errnoNames.set(num, name);
}

/** Linux strerror() texts for the errnos netlink users meet. */
const errnoTexts: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  EMSGSIZE: 'Message too long',
  ENOPROTOOPT: 'Protocol not available',
  EPROTONOSUPPORT: 'Protocol not supported',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENOBUFS: 'No buffer space available',
  ETIMEDOUT: 'Connection timed out',
  ENOTSUP: 'Operation not supported',
};

/** "EEXIST" for 17 and so on; "E<n>" for a number this platform has no name for. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** strerror()-like text for an errno. */
export function errnoText(errno: number): string {
  const name = errnoName(errno);
  return errnoTexts[name] ?? `error ${errno}`;
}

/** A request the kernel rejected. */
export class NetlinkError extends Error {
  override name = 'NetlinkError';
  /** Positive errno, e.g. 17. */
  readonly errno: number;
  /** Symbolic errno, e.g. "EEXIST". */
  readonly code: string;
  readonly extack?: ExtAck;

  constructor(
    /** What was being done, e.g. "IPVS NEW_SERVICE". */
    readonly operation: string,
    errno: number,
    extack?: ExtAck,
  ) {
    const code = errnoName(errno);
    const why = extack?.message ? `: ${extack.message}` : '';
    super(`${operation} failed with ${code} (${errnoText(errno)})${why}`);
    this.errno = errno;
    this.code = code;
    if (extack) this.extack = extack;
  }
}

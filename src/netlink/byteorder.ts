// Netlink headers and most attributes are in the host's byte order. Every supported target of vslab
// (x86_64, aarch64) is little-endian, but the encoder asks instead of assuming.
import * as os from 'os';

export const HOST_LITTLE_ENDIAN = os.endianness() === 'LE';

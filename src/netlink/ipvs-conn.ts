// The IPVS connection table. The generic netlink API has no command to dump connections, so the
// table is read from /proc/net/ip_vs_conn (and /proc/net/ip_vs_conn_sync), which the kernel prints
// per network namespace (ip_vs_conn.c, ip_vs_conn_seq_show / ip_vs_conn_sync_seq_show):
//
//   Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//   TCP C6120002 9C40 C612000A 0050 C6120B0B 0050 ESTABLISHED     899
//   TCP 2001:0db8:0000:...:0002 9C40 2001:0db8:...:000a 0050 C6120B0B 0050 SYN_RECV  59
//
// IPv4 addresses are 8 hex digits (host-order print of the address, i.e. the dotted bytes in order),
// IPv6 addresses the full %pI6 form; ports are 4 hex digits; the destination address is printed in
// its own family. The sync variant has an Origin column ("Origin Expires": LOCAL or SYNC).
import { formatAddress, IpFamily, parseAddress } from './address';
import type { IpvsConnection } from './ipvs-types';

/** Reads a file as seen from inside the director's network namespace (or VM guest). */
export type NamespaceFileReader = (path: string) => Promise<string>;

export const IP_VS_CONN_PROC = '/proc/net/ip_vs_conn';
export const IP_VS_CONN_SYNC_PROC = '/proc/net/ip_vs_conn_sync';

export class ConnTableParseError extends Error {
  override name = 'ConnTableParseError';
}

function parseHexAddress(text: string, where: string): { family: IpFamily; address: string } {
  if (/^[0-9A-Fa-f]{8}$/.test(text)) {
    const n = parseInt(text, 16);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0, 0);
    return { family: 4, address: formatAddress(b, 4) };
  }
  if (text.includes(':')) {
    try {
      const p = parseAddress(text, where);
      if (p.family === 6) return { family: 6, address: formatAddress(p.bytes, 6) };
    } catch {
      /* fall through */
    }
  }
  throw new ConnTableParseError(`${where}: "${text}" is neither an 8-digit hex IPv4 address nor an IPv6 address`);
}

function parseHexPort(text: string, where: string): number {
  if (!/^[0-9A-Fa-f]{1,4}$/.test(text)) throw new ConnTableParseError(`${where}: port "${text}" is not 4 hex digits`);
  return parseInt(text, 16);
}

/**
 * Parse the text of /proc/net/ip_vs_conn or /proc/net/ip_vs_conn_sync. The header line decides
 * which of the two it is. Errors name the line number.
 */
export function parseConnTable(text: string, source = IP_VS_CONN_PROC): IpvsConnection[] {
  const lines = text.split('\n');
  const header = lines[0] ?? '';
  if (!/^Pro\s+FromIP/.test(header)) {
    throw new ConnTableParseError(`${source}:1: expected the header "Pro FromIP FPrt ...", got "${header.slice(0, 60)}"`);
  }
  const hasOrigin = /\bOrigin\b/.test(header);
  const out: IpvsConnection[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const where = `${source}:${i + 1}`;
    const f = line.trim().split(/\s+/);
    const min = hasOrigin ? 10 : 9;
    if (f.length < min) throw new ConnTableParseError(`${where}: expected at least ${min} fields, got ${f.length}: "${line}"`);
    const [proto, caddr, cport, vaddr, vport, daddr, dport, state] = f as [string, string, string, string, string, string, string, string];
    const c = parseHexAddress(caddr, where);
    const v = parseHexAddress(vaddr, where);
    const d = parseHexAddress(daddr, where);
    let k = 8;
    let origin: 'local' | 'sync' | undefined;
    if (hasOrigin) {
      const o = f[k++]!;
      if (o !== 'LOCAL' && o !== 'SYNC') throw new ConnTableParseError(`${where}: origin "${o}" is neither LOCAL nor SYNC`);
      origin = o === 'SYNC' ? 'sync' : 'local';
    }
    const expiresText = f[k++]!;
    if (!/^\d+$/.test(expiresText)) throw new ConnTableParseError(`${where}: expiry "${expiresText}" is not a number of seconds`);
    const conn: IpvsConnection = {
      protocol: proto,
      family: c.family,
      clientAddress: c.address,
      clientPort: parseHexPort(cport, where),
      virtualAddress: v.address,
      virtualPort: parseHexPort(vport, where),
      destFamily: d.family,
      destAddress: d.address,
      destPort: parseHexPort(dport, where),
      state,
      expires: parseInt(expiresText, 10),
      template: false,
    };
    conn.template = conn.clientPort === 0;
    if (origin) conn.origin = origin;
    if (f.length > k) {
      conn.peName = f[k]!;
      if (f.length > k + 1) conn.peData = f.slice(k + 1).join(' ');
    }
    out.push(conn);
  }
  return out;
}

/** Read and parse the connection table through `read` (a file reader for the director's namespace). */
export async function readConnections(read: NamespaceFileReader, opts: { sync?: boolean } = {}): Promise<IpvsConnection[]> {
  const path = opts.sync ? IP_VS_CONN_SYNC_PROC : IP_VS_CONN_PROC;
  let text: string;
  try {
    text = await read(path);
  } catch (e) {
    throw new Error(`cannot read ${path} in the director's namespace (is ip_vs loaded?): ${(e as Error).message}`);
  }
  return parseConnTable(text, path);
}

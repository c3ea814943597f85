// The JSON layer schema: what `vslab pcap json` prints, what the builder accepts and what expectations
// compare. Each packet is a list of layers in wire order; tunnelled packets continue the list after their
// outer headers, and the datagram quoted by an ICMP/ICMPv6 error continues it with `quoted: true`.

/** Fields every layer may carry. */
export interface LayerCommon {
  /** Inside the datagram quoted by an ICMP/ICMPv6 error. */
  quoted?: true;
  /** Only part of the header is present (quoted datagrams are usually cut). */
  partial?: true;
}

export interface EthLayer extends LayerCommon { type: 'eth'; src: string; dst: string; ethertype: number }
export interface VlanLayer extends LayerCommon { type: 'vlan'; id: number; pcp: number; dei: number; ethertype: number }
/** Linux cooked capture header (tcpdump -i any). */
export interface SllLayer extends LayerCommon { type: 'sll' | 'sll2'; pktType: number; hatype: number; addr: string; proto: number; ifindex?: number }
/** BSD loopback / DLT_NULL header. */
export interface NullLayer extends LayerCommon { type: 'null'; family: number }

export interface ArpLayer extends LayerCommon {
  type: 'arp';
  /** 1 request, 2 reply. */
  op: number;
  htype: number;
  ptype: number;
  hwsrc: string;
  psrc: string;
  hwdst: string;
  pdst: string;
}

export interface Ipv4Option { type: number; name: string; len: number; data?: string; port?: number; addr?: string }

export interface Ipv4Layer extends LayerCommon {
  type: 'ipv4';
  src: string;
  dst: string;
  ttl: number;
  proto: number;
  id: number;
  tos: number;
  /** Total length field. */
  len: number;
  /** Header length in bytes. */
  ihl: number;
  df: boolean;
  mf: boolean;
  /** Fragment offset in bytes. */
  fragOffset: number;
  options: Ipv4Option[];
  checksum: number;
  checksumOk: boolean | null;
}

export interface Ipv6Ext {
  type: 'hbh' | 'routing' | 'frag' | 'dest' | 'ah' | 'mobility' | 'hip' | 'shim6';
  /** Next header after this extension. */
  nh: number;
  /** Length in bytes. */
  len: number;
  fragOffset?: number;
  mf?: boolean;
  fragId?: number;
  routingType?: number;
  segmentsLeft?: number;
}

export interface Ipv6Layer extends LayerCommon {
  type: 'ipv6';
  src: string;
  dst: string;
  hlim: number;
  /** Next header of the fixed header (as on the wire). */
  nh: number;
  /** Upper-layer protocol after the extension headers. */
  proto: number;
  tc: number;
  flow: number;
  plen: number;
  ext: Ipv6Ext[];
}

export interface GreLayer extends LayerCommon {
  type: 'gre';
  proto: number;
  version: number;
  key?: number;
  seq?: number;
  /** Present only when the C bit is set. */
  checksum?: number;
  checksumOk?: boolean | null;
  routing?: true;
}

export interface UdpLayer extends LayerCommon {
  type: 'udp';
  sport: number;
  dport: number;
  len: number;
  checksum: number;
  /** null when it cannot be verified (datagram not fully captured); a zero checksum over IPv4 means none. */
  checksumOk: boolean | null;
  payloadLen: number;
}

export interface GueLayer extends LayerCommon {
  type: 'gue';
  version: number;
  control: boolean;
  /** Length of the GUE options in 32-bit words. */
  hlen: number;
  proto: number;
  flags: number;
  /** Option bytes (hex), when hlen > 0. */
  options?: string;
}

export interface VxlanLayer extends LayerCommon { type: 'vxlan'; flags: number; vni: number }

export interface TcpOption {
  kind: number;
  /** eol nop mss wscale sackOK sack timestamp md5 userTimeout tcpAo mptcp tfo toa exp unknown malformed */
  name: string;
  len?: number;
  value?: number;
  tsval?: number;
  tsecr?: number;
  blocks?: Array<[number, number]>;
  /** TOA: client address and port carried by a Full-NAT director. */
  addr?: string;
  port?: number;
  exid?: number;
  data?: string;
  error?: string;
}

export interface TcpLayer extends LayerCommon {
  type: 'tcp';
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  /** Letters in this order: F S R P A U E C N (FIN SYN RST PSH ACK URG ECE CWR AE). */
  flags: string;
  window: number;
  urgent: number;
  /** Header length (data offset) in bytes. */
  hlen: number;
  options: TcpOption[];
  checksum: number;
  checksumOk: boolean | null;
  payloadLen: number;
}

export interface IcmpLayer extends LayerCommon {
  type: 'icmp' | 'icmpv6';
  icmpType: number;
  code: number;
  checksum: number;
  checksumOk: boolean | null;
  /** Echo request/reply. */
  id?: number;
  seq?: number;
  /** Fragmentation needed (v4 type 3 code 4) / Packet Too Big (v6 type 2). */
  mtu?: number;
  /** Redirect gateway (v4 type 5). */
  gateway?: string;
  /** Parameter problem pointer. */
  pointer?: number;
  /** Neighbour solicitation/advertisement target. */
  target?: string;
  payloadLen?: number;
}

export interface PayloadLayer extends LayerCommon {
  type: 'payload';
  len: number;
  /** Hex of the captured payload bytes. */
  data: string;
}

export type Layer =
  | EthLayer | VlanLayer | SllLayer | NullLayer | ArpLayer | Ipv4Layer | Ipv6Layer | GreLayer | UdpLayer
  | GueLayer | VxlanLayer | TcpLayer | IcmpLayer | PayloadLayer;

export type LayerType = Layer['type'];

export interface DecodedPacket {
  /** 0-based index in its capture file. */
  index?: number;
  /** "seconds.nanoseconds" since the epoch. */
  ts?: string;
  /** Capture interface ("node:iface" for lab captures). */
  link?: string;
  /** Length on the wire. */
  len: number;
  capLen: number;
  layers: Layer[];
  /** The capture holds fewer bytes than the wire length. */
  truncated?: true;
  /** Why decoding stopped early (malformed or cut header), with the byte offset in the frame. */
  error?: string;
}

export function tsString(sec: number, nsec: number): string {
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}

// ---- the layer schema at run time: which fields each layer type has, and of what kind ---------------
// Used to reject expectations whose fields can never match (a misspelt field is "missing" in every
// packet, so an absence expectation with it would pass whatever was captured).

export type FieldKind = 'number' | 'string' | 'boolean' | 'boolean-or-null' | 'true' | 'array';
type FieldsOf<L> = { [K in Exclude<keyof L, 'type' | keyof LayerCommon>]-?: FieldKind };
/** Exactly the fields of layer interface L (the compiler checks none is missing or extra). */
const fields = <L>(f: FieldsOf<L>): Record<string, FieldKind> => f as Record<string, FieldKind>;

const sllFields = fields<SllLayer>({ pktType: 'number', hatype: 'number', addr: 'string', proto: 'number', ifindex: 'number' });
const icmpFields = fields<IcmpLayer>({
  icmpType: 'number', code: 'number', checksum: 'number', checksumOk: 'boolean-or-null', id: 'number', seq: 'number', mtu: 'number',
  gateway: 'string', pointer: 'number', target: 'string', payloadLen: 'number',
});

export const COMMON_FIELDS: { [K in keyof LayerCommon]-?: FieldKind } = { quoted: 'true', partial: 'true' };

export const LAYER_FIELDS: Record<LayerType, Record<string, FieldKind>> = {
  eth: fields<EthLayer>({ src: 'string', dst: 'string', ethertype: 'number' }),
  vlan: fields<VlanLayer>({ id: 'number', pcp: 'number', dei: 'number', ethertype: 'number' }),
  sll: sllFields,
  sll2: sllFields,
  null: fields<NullLayer>({ family: 'number' }),
  arp: fields<ArpLayer>({ op: 'number', htype: 'number', ptype: 'number', hwsrc: 'string', psrc: 'string', hwdst: 'string', pdst: 'string' }),
  ipv4: fields<Ipv4Layer>({
    src: 'string', dst: 'string', ttl: 'number', proto: 'number', id: 'number', tos: 'number', len: 'number', ihl: 'number',
    df: 'boolean', mf: 'boolean', fragOffset: 'number', options: 'array', checksum: 'number', checksumOk: 'boolean-or-null',
  }),
  ipv6: fields<Ipv6Layer>({ src: 'string', dst: 'string', hlim: 'number', nh: 'number', proto: 'number', tc: 'number', flow: 'number', plen: 'number', ext: 'array' }),
  gre: fields<GreLayer>({ proto: 'number', version: 'number', key: 'number', seq: 'number', checksum: 'number', checksumOk: 'boolean-or-null', routing: 'true' }),
  udp: fields<UdpLayer>({ sport: 'number', dport: 'number', len: 'number', checksum: 'number', checksumOk: 'boolean-or-null', payloadLen: 'number' }),
  gue: fields<GueLayer>({ version: 'number', control: 'boolean', hlen: 'number', proto: 'number', flags: 'number', options: 'string' }),
  vxlan: fields<VxlanLayer>({ flags: 'number', vni: 'number' }),
  tcp: fields<TcpLayer>({
    sport: 'number', dport: 'number', seq: 'number', ack: 'number', flags: 'string', window: 'number', urgent: 'number', hlen: 'number',
    options: 'array', checksum: 'number', checksumOk: 'boolean-or-null', payloadLen: 'number',
  }),
  icmp: icmpFields,
  icmpv6: icmpFields,
  payload: fields<PayloadLayer>({ len: 'number', data: 'string' }),
};

export function valueHasKind(v: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'boolean-or-null': return typeof v === 'boolean' || v === null;
    case 'true': return v === true;
    case 'array': return Array.isArray(v);
  }
}

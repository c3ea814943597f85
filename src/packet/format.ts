// One line per packet in the spirit of `tcpdump -nn` (with the link name in front for lab captures).
import type { DecodedPacket, IcmpLayer, Layer, TcpLayer, TcpOption } from './layers';

const TCPDUMP_FLAG: Record<string, string> = { F: 'F', S: 'S', R: 'R', P: 'P', A: '.', U: 'U', E: 'E', C: 'W', N: 'e' };

export function tcpdumpFlags(flags: string | undefined): string {
  if (flags === undefined) return '?';
  if (flags === '') return 'none';
  return [...flags].map((c) => TCPDUMP_FLAG[c] ?? c).join('');
}

function tcpOption(o: TcpOption): string {
  switch (o.name) {
    case 'mss': case 'wscale': return o.value !== undefined ? `${o.name} ${o.value}` : o.name;
    case 'timestamp': return `TS val ${o.tsval} ecr ${o.tsecr}`;
    case 'sack': return `sack ${(o.blocks ?? []).length} ${(o.blocks ?? []).map(([l, r]) => `{${l}:${r}}`).join('')}`;
    case 'toa': return `toa ${o.addr}.${o.port}`;
    case 'exp': return `exp-${(o.exid ?? 0).toString(16).padStart(4, '0')}`;
    case 'unknown': case 'malformed': return `${o.name} ${o.kind}`;
    default: return o.name;
  }
}

const ICMP4_TYPES: Record<number, string> = { 0: 'echo reply', 3: 'unreachable', 4: 'source quench', 5: 'redirect', 8: 'echo request', 11: 'time exceeded', 12: 'parameter problem', 13: 'time stamp request', 14: 'time stamp reply' };
const ICMP4_UNREACH: Record<number, string> = { 0: 'net', 1: 'host', 2: 'protocol', 3: 'port', 4: 'need to frag', 9: 'net prohibited', 10: 'host prohibited', 13: 'admin prohibited' };
const ICMP6_TYPES: Record<number, string> = { 1: 'destination unreachable', 2: 'packet too big', 3: 'time exceeded', 4: 'parameter problem', 128: 'echo request', 129: 'echo reply', 133: 'router solicitation', 134: 'router advertisement', 135: 'neighbor solicitation', 136: 'neighbor advertisement', 137: 'redirect' };

function icmpText(l: IcmpLayer): string {
  if (l.type === 'icmpv6') {
    let s = `ICMP6, ${ICMP6_TYPES[l.icmpType] ?? `type ${l.icmpType}`}`;
    if (l.id !== undefined) s += `, id ${l.id}, seq ${l.seq}`;
    if (l.mtu !== undefined) s += `, mtu ${l.mtu}`;
    if (l.target !== undefined) s += `, ${l.icmpType === 135 ? 'who has' : 'tgt is'} ${l.target}`;
    return s;
  }
  let s = `ICMP ${ICMP4_TYPES[l.icmpType] ?? `type ${l.icmpType}`}`;
  if (l.icmpType === 3) s += ` - ${ICMP4_UNREACH[l.code] ?? `code ${l.code}`}${l.mtu !== undefined ? ` (mtu ${l.mtu})` : ''}`;
  else if (l.code) s += ` code ${l.code}`;
  if (l.id !== undefined) s += `, id ${l.id}, seq ${l.seq}`;
  if (l.gateway) s += ` to ${l.gateway}`;
  return s;
}

function ts(text: string | undefined): string {
  if (!text) return '';
  const [sec, ns] = text.split('.');
  const d = new Date(Number(sec) * 1000);
  const hh = String(d.getUTCHours()).padStart(2, '0');
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  const ss = String(d.getUTCSeconds()).padStart(2, '0');
  return `${hh}:${mm}:${ss}.${(ns ?? '0').slice(0, 6)} `;
}

/** Renders the layers from `from` on; returns the text for the packet carried there. */
function describe(layers: Layer[], from: number): string {
  const out: string[] = [];
  let ipText = '';
  for (let i = from; i < layers.length; i++) {
    const l = layers[i];
    switch (l.type) {
      case 'eth': case 'sll': case 'sll2': case 'null':
        break;
      case 'vlan':
        out.push(`vlan ${l.id}, p ${l.pcp},`);
        break;
      case 'arp':
        out.push(l.op === 1 ? `ARP, Request who-has ${l.pdst} tell ${l.psrc}` : l.op === 2 ? `ARP, Reply ${l.psrc} is-at ${l.hwsrc}` : `ARP, op ${l.op}`);
        break;
      case 'ipv4': case 'ipv6': {
        const next = layers[i + 1];
        const v = l.type === 'ipv4' ? 'IP' : 'IP6';
        const q = l.quoted && !(layers[i - 1]?.quoted) ? '[quoted] ' : '';
        const frag = l.type === 'ipv4' && (l.mf || l.fragOffset) ? ` (frag ${l.id}:${l.len - l.ihl}@${l.fragOffset}${l.mf ? '+' : ''})` : '';
        if (next && (next.type === 'tcp' || next.type === 'udp') && next.sport !== undefined) {
          ipText = `${q}${v} ${l.src}.${next.sport} > ${l.dst}.${next.dport}:`;
        } else ipText = `${q}${v} ${l.src} > ${l.dst}:${frag}`;
        out.push(ipText);
        if (!next) out.push(`ip-proto-${l.type === 'ipv4' ? l.proto : l.proto}${frag ? '' : `, length ${l.type === 'ipv4' ? l.len - l.ihl : l.plen}`}`);
        break;
      }
      case 'tcp': {
        const t = l as TcpLayer;
        let s = `Flags [${tcpdumpFlags(t.flags)}]`;
        if (t.seq !== undefined) s += t.payloadLen ? `, seq ${t.seq}:${(t.seq + t.payloadLen) >>> 0}` : `, seq ${t.seq}`;
        if (t.flags?.includes('A')) s += `, ack ${t.ack}`;
        if (t.window !== undefined) s += `, win ${t.window}`;
        if (t.options && t.options.length) s += `, options [${t.options.map(tcpOption).join(',')}]`;
        if (t.payloadLen !== undefined) s += `, length ${t.payloadLen}`;
        if (t.checksumOk === false) s += ' [bad tcp cksum]';
        out.push(s);
        break;
      }
      case 'udp': {
        const next = layers[i + 1];
        if (next && next.type === 'gue') {
          out.push(`GUE${next.version === 1 ? 'v1' : ''}, proto ${next.proto}:`);
          i++;
        } else if (next && next.type === 'vxlan') {
          out.push(`VXLAN, vni ${next.vni}:`);
          i++;
        } else out.push(`UDP, length ${l.payloadLen ?? '?'}${l.checksumOk === false ? ' [bad udp cksum]' : ''}`);
        break;
      }
      case 'gre':
        out.push(`GREv${l.version}${l.key !== undefined ? `, key=0x${l.key.toString(16)}` : ''}, proto 0x${l.proto.toString(16).padStart(4, '0')}:`);
        break;
      case 'gue': case 'vxlan':
        break;
      case 'icmp': case 'icmpv6':
        out.push(icmpText(l as IcmpLayer) + (l.checksumOk === false ? ' [bad icmp cksum]' : ''));
        break;
      case 'payload':
        break;
    }
  }
  return out.join(' ');
}

/** One line, e.g. "12:00:00.000001 client:eth0 IP 198.18.0.1.40000 > 198.18.1.1.80: Flags [S], seq 1, ...". */
export function formatPacketLine(p: DecodedPacket, opts: { link?: boolean } = {}): string {
  const first = p.layers[0];
  let head = ts(p.ts);
  if (opts.link !== false && p.link) head += `${p.link} `;
  let body = describe(p.layers, 0);
  if (!body) body = first && first.type === 'eth' ? `ethertype 0x${first.ethertype.toString(16).padStart(4, '0')}, length ${p.len}` : `length ${p.len}`;
  if (p.error) body += ` [malformed: ${p.error}]`;
  const ipBad = p.layers.some((l) => l.type === 'ipv4' && l.checksumOk === false && !l.quoted);
  if (ipBad) body += ' [bad ip cksum]';
  return head + body;
}

// Our decoders against tcpdump's own reading of captures made in a small namespace lab: every fact our
// decode states (addresses, ports, TTL, IDs, flags, seq/ack, lengths, options, checksum verdicts, ICMP
// quoted datagrams, timestamps) must appear in tcpdump's text for the same packet.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'child_process';
import { TcpdumpCapture } from '../../src/capture/tcpdump';
import { decodeCapture } from '../../src/packet/capturefile';
import { tcpdumpFlags } from '../../src/packet/format';
import type { DecodedPacket, Layer } from '../../src/packet/layers';
import { pairLab, type TestLab } from './netns-lab';

test.describe.configure({ timeout: 180_000 });

const IP_PROTO_NAME: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 4: 'IPIP', 47: 'GRE', 0: 'Options' };

function ipv4Flags(l: { df: boolean; mf: boolean }): string {
  return l.df && l.mf ? 'DF+' : l.df ? 'DF' : l.mf ? '+' : 'none';
}

/** Facts (substrings, or "!text" for must-not-contain) tcpdump -nn -e -vv -S must print for this packet. */
function facts(p: DecodedPacket): string[] {
  const f: string[] = [`${p.ts!.replace(/(\.\d{9})\d*$/, '$1')} `];
  const L = p.layers;
  const quotedStart = L.findIndex((l) => l.quoted);
  L.forEach((l: Layer, i) => {
    const next = L[i + 1];
    const quoted = !!l.quoted;
    switch (l.type) {
      case 'eth':
        f.push(`${l.src} > ${l.dst}`, `length ${p.len}:`);
        break;
      case 'arp':
        f.push(l.op === 1 ? `Request who-has ${l.pdst} tell ${l.psrc}` : `Reply ${l.psrc} is-at ${l.hwsrc}`);
        break;
      case 'ipv4':
        f.push(`(tos 0x${l.tos.toString(16)}, ttl ${l.ttl}, id ${l.id}, offset ${l.fragOffset}, flags [${ipv4Flags(l)}], proto ${IP_PROTO_NAME[l.proto] ?? '?'} (${l.proto}), length ${l.len}`);
        if (l.checksumOk === false) f.push('bad cksum');
        else if (!quoted) f.push('!bad cksum');
        if (l.fragOffset > 0) f.push(`${l.src} > ${l.dst}: ip-proto-${l.proto}`);
        else if (next && (next.type === 'tcp' || next.type === 'udp')) f.push(`${l.src}.${next.sport} > ${l.dst}.${next.dport}:`);
        else f.push(`${l.src} > ${l.dst}:`);
        break;
      case 'ipv6':
        if (quoted) break; // tcpdump prints only the quoted datagram's destination and port
        f.push(`hlim ${l.hlim}, next-header`, `payload length: ${l.plen})`);
        if (l.flow) f.push(`flowlabel 0x${l.flow.toString(16).padStart(5, '0')}`);
        if (l.ext.some((e) => e.type === 'hbh')) f.push('HBH');
        if (next && (next.type === 'tcp' || next.type === 'udp')) f.push(`${l.src}.${next.sport} > ${l.dst}.${next.dport}:`);
        else if (!quoted) f.push(`${l.src} > ${l.dst}:`);
        break;
      case 'tcp':
        if (l.partial) {
          // Cut by the snap length: tcpdump prints what is there and "[|tcp]".
          if (l.flags !== undefined) f.push(`Flags [${tcpdumpFlags(l.flags)}]`);
          if (l.flags !== undefined && /[SFR]/.test(l.flags)) f.push(`seq ${l.seq}`);
          if (l.flags?.includes('A')) f.push(`ack ${l.ack}`);
          f.push('[|tcp]');
          break;
        }
        f.push(`Flags [${tcpdumpFlags(l.flags)}]`, `win ${l.window}`, `length ${l.payloadLen}`);
        if (l.payloadLen > 0) f.push(`seq ${l.seq}:${(l.seq + l.payloadLen) >>> 0}`);
        else if (/[SFR]/.test(l.flags)) f.push(`seq ${l.seq}`);
        if (l.flags.includes('A')) f.push(`ack ${l.ack}`);
        if (l.checksumOk === true) f.push(`cksum 0x${l.checksum.toString(16).padStart(4, '0')} (correct)`);
        if (l.checksumOk === false) f.push(`cksum 0x${l.checksum.toString(16).padStart(4, '0')} (incorrect`);
        for (const o of l.options) {
          if (o.name === 'mss') f.push(`mss ${o.value}`);
          if (o.name === 'wscale') f.push(`wscale ${o.value}`);
          if (o.name === 'sackOK') f.push('sackOK');
          if (o.name === 'timestamp') f.push(`TS val ${o.tsval} ecr ${o.tsecr}`);
        }
        break;
      case 'udp':
        if (quoted) break;
        f.push(`UDP, length ${l.payloadLen}`);
        if (l.checksumOk === true) f.push('[udp sum ok]');
        if (l.checksumOk === false) f.push(`[bad udp cksum 0x${l.checksum.toString(16).padStart(4, '0')}`);
        break;
      case 'icmp':
        if (quoted) break;
        if (l.icmpType === 8 || l.icmpType === 0) f.push(`ICMP echo ${l.icmpType === 8 ? 'request' : 'reply'}, id ${l.id}, seq ${l.seq}, length ${(l.payloadLen ?? 0) + 8}`);
        if (l.icmpType === 3 && l.code === 3 && quotedStart > 0) {
          const q = L[quotedStart + 1];
          if (q && (q.type === 'udp' || q.type === 'tcp')) f.push(`${q.type} port ${q.dport} unreachable`);
        }
        f.push(l.checksumOk === false ? 'wrong icmp cksum' : '!wrong icmp cksum');
        break;
      case 'icmpv6':
        if (quoted) break;
        if (l.checksumOk === true) f.push('[icmp6 sum ok]');
        if (l.checksumOk === false) f.push('[bad icmp6 cksum');
        if (l.icmpType === 128 || l.icmpType === 129) f.push(`echo ${l.icmpType === 128 ? 'request' : 'reply'}, id ${l.id}, seq ${l.seq}`);
        if (l.icmpType === 135) f.push(`neighbor solicitation`, `who has ${l.target}`);
        if (l.icmpType === 136) f.push(`neighbor advertisement`, `tgt is ${l.target}`);
        if (l.icmpType === 1 && l.code === 4 && quotedStart > 0) {
          const qi = L[quotedStart];
          const q = L[quotedStart + 1];
          if (qi?.type === 'ipv6' && q?.type === 'udp') f.push(`unreachable port, ${qi.dst} udp port ${q.dport}`);
        }
        break;
    }
  });
  return f;
}

function tcpdumpBlocks(file: string): string[] {
  const text = execFileSync('tcpdump', ['-nn', '-e', '-vv', '-S', '-tt', '--time-stamp-precision=nano', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  const blocks: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\d+\.\d+ /.test(line)) blocks.push(line);
    else if (blocks.length && line) blocks[blocks.length - 1] += '\n' + line;
  }
  return blocks;
}

function compare(file: string): { packets: number; factsChecked: number; mismatches: string[] } {
  const ours = decodeCapture(file);
  const theirs = tcpdumpBlocks(file);
  const mismatches: string[] = [];
  let factsChecked = 0;
  if (ours.length !== theirs.length) mismatches.push(`packet count: ours ${ours.length}, tcpdump ${theirs.length}`);
  for (let i = 0; i < Math.min(ours.length, theirs.length); i++) {
    const cutByCapture = ours[i].truncated && /cut short by the capture/.test(ours[i].error ?? '');
    if (ours[i].error && !cutByCapture) mismatches.push(`#${i}: our decoder reports ${ours[i].error}`);
    for (const fact of facts(ours[i])) {
      factsChecked++;
      const neg = fact.startsWith('!');
      const s = neg ? fact.slice(1) : fact;
      const has = theirs[i].includes(s);
      if (has === neg) mismatches.push(`#${i}: tcpdump ${neg ? 'contains' : 'lacks'} "${s}" in:\n${theirs[i]}`);
    }
  }
  return { packets: ours.length, factsChecked, mismatches };
}

test.describe('decode agreement with tcpdump', () => {
  let lab: TestLab;
  test.beforeAll(() => {
    lab = pairLab('agree');
  });
  test.afterAll(() => lab?.cleanup());

  test('ARP, ND, ICMP/ICMPv6 echo and errors, fragments, TCP and UDP over IPv4 and IPv6', async () => {
    const a = lab.node('a');
    const b = lab.node('b');
    const caps = [
      await TcpdumpCapture.start(a, { iface: 'eth0', fileName: 'agree-a.pcap' }),
      await TcpdumpCapture.start(b, { iface: 'eth0', fileName: 'agree-b.pcap' }),
      await TcpdumpCapture.start(b, { iface: 'eth0', fileName: 'agree-b-short.pcap', snapLen: 80 }),
    ];
    try {
      await a.must(['busybox', 'ping', '-c', '2', '-i', '0.2', '198.18.0.2']);
      await a.must(['busybox', 'ping', '-c', '2', '-i', '0.2', '2001:db8:0:1::2']);
      await a.must(['busybox', 'ping', '-c', '1', '-s', '3000', '198.18.0.2']);
      const srv4 = b.spawn(['socat', '-u', 'TCP-LISTEN:8080,reuseaddr', 'OPEN:/dev/null']);
      const srv6 = b.spawn(['socat', '-u', 'TCP6-LISTEN:8081,reuseaddr', 'OPEN:/dev/null']);
      await new Promise((r) => setTimeout(r, 500));
      await a.must(['socat', '-u', '-', 'TCP:198.18.0.2:8080,retry=20,interval=0.1'], { input: 'hello over tcp\n'.repeat(200) });
      await a.must(['socat', '-u', '-', 'TCP6:[2001:db8:0:1::2]:8081,retry=20,interval=0.1'], { input: 'hello over tcp6\n' });
      await Promise.all([srv4.wait(), srv6.wait()]);
      // Datagrams to closed ports: the replies are ICMP errors quoting them.
      await a.exec(['socat', '-u', '-', 'UDP:198.18.0.2:9'], { input: 'x' });
      await a.exec(['socat', '-u', '-', 'UDP6:[2001:db8:0:1::2]:9'], { input: 'y' });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      for (const c of caps) await c.stop();
    }
    let total = 0;
    for (const c of caps) {
      const r = compare(c.file);
      expect(r.mismatches.slice(0, 5)).toEqual([]);
      expect(r.packets).toBeGreaterThan(20);
      total += r.factsChecked;
    }
    expect(total).toBeGreaterThan(1000);
    // The short capture has cut TCP segments whose checksum cannot be verified: reported as null.
    const short = decodeCapture(caps[2].file);
    const cut = short.filter((p) => p.truncated && p.layers.some((l) => l.type === 'tcp'));
    expect(cut.length).toBeGreaterThan(0);
    expect(cut.every((p) => p.layers.some((l) => l.type === 'tcp' && l.checksumOk === null))).toBe(true);
    // Both kinds of ICMP error were seen with their quoted datagram.
    const b4 = decodeCapture(caps[1].file);
    expect(b4.some((p) => p.layers.some((l) => l.type === 'icmp' && l.icmpType === 3) && p.layers.some((l) => l.type === 'udp' && l.quoted))).toBe(true);
    expect(b4.some((p) => p.layers.some((l) => l.type === 'icmpv6' && l.icmpType === 1) && p.layers.some((l) => l.type === 'udp' && l.quoted))).toBe(true);
  });
});

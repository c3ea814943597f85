// ipvsadm rule files: read what `ipvsadm-save -n` / `ipvsadm -S -n` print and `ipvsadm -R` reads, and
// write the same format from IPVS client data.
//
// Reading follows ipvsadm 1.31's option handling (ipvsadm.c process_options / parse_options):
// defaults (scheduler wlc, weight 1, direct routing, persistence 360 s, netmask /32 or /128), the
// command x option legality table, the tunnel type x option table, "-o only for UDP or fwmark",
// "zero port only when persistent", DR/TUN destinations taking the service port, and so on. Addresses
// and ports must be numeric (the -n form); names are refused rather than resolved. Every error names
// the file, line and column.
import { canonicalAddress, parseAddress } from '../netlink/address';
import { SVC_F } from '../netlink/ipvs-constants';
import type { IpvsChange } from '../netlink/ipvs';
import type {
  DestinationSpec,
  ForwardMethod,
  IpFamily,
  IpvsProtocol,
  IpvsTimeouts,
  ServiceKey,
  ServiceSettings,
  ServiceSpec,
  TunnelSettings,
  TunnelType,
} from '../netlink/ipvs-types';
import { isFwmarkKey } from '../netlink/ipvs-types';

export const IPVSADM_DEFAULT_SCHEDULER = 'wlc';
export const IPVSADM_DEFAULT_PERSISTENCE = 360;
const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 0x7fffffff;

/** A rule file error: "<file>:<line>:<col>: <message>". */
export class IpvsadmParseError extends Error {
  override name = 'IpvsadmParseError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}:${col}: ${detail}`);
  }
}

/** One rule line, as an IPVS change (plus the timeouts of --set, which are not a service change). */
export type IpvsadmRule = { line: number; text: string } & (
  | { change: IpvsChange }
  | { setTimeouts: IpvsTimeouts }
);

interface Token {
  text: string;
  col: number;
}

/** Split a line like ipvsadm's config_stream: whitespace-separated words, "..." or '...' quoting,
 *  a word starting with # ends the line. */
function tokenize(line: string, fail: (col: number, msg: string) => never): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    if (line[i] === '#') break;
    const col = i + 1;
    let text = '';
    while (i < line.length && !/\s/.test(line[i]!)) {
      const ch = line[i]!;
      if (ch === '"' || ch === "'") {
        const end = line.indexOf(ch, i + 1);
        if (end < 0) fail(i + 1, `unterminated ${ch} quote`);
        text += line.slice(i + 1, end);
        i = end + 1;
      } else {
        text += ch;
        i++;
      }
    }
    out.push({ text, col });
  }
  return out;
}

type Command = 'add-service' | 'edit-service' | 'delete-service' | 'clear' | 'add-server' | 'edit-server' | 'delete-server' | 'zero' | 'set';

// Options (ipvsadm's optnames), and which commands accept them: '+' required, 'x' illegal, ' ' optional.
type Opt =
  | 'service-address'
  | 'scheduler'
  | 'persistent'
  | 'netmask'
  | 'real-server'
  | 'forwarding-method'
  | 'weight'
  | 'u-threshold'
  | 'l-threshold'
  | 'ops'
  | 'pe'
  | 'sched-flags'
  | 'tun-type'
  | 'tun-port'
  | 'tun-nocsum'
  | 'tun-csum'
  | 'tun-remcsum';

const LEGAL: Record<Command, Partial<Record<Opt, '+' | ' '>>> = {
  'add-service': { 'service-address': '+', scheduler: ' ', persistent: ' ', netmask: ' ', ops: ' ', pe: ' ', 'sched-flags': ' ' },
  'edit-service': { 'service-address': '+', scheduler: ' ', persistent: ' ', netmask: ' ', ops: ' ', pe: ' ', 'sched-flags': ' ' },
  'delete-service': { 'service-address': '+' },
  clear: {},
  'add-server': {
    'service-address': '+',
    'real-server': '+',
    'forwarding-method': ' ',
    weight: ' ',
    'u-threshold': ' ',
    'l-threshold': ' ',
    'tun-type': ' ',
    'tun-port': ' ',
    'tun-nocsum': ' ',
    'tun-csum': ' ',
    'tun-remcsum': ' ',
  },
  'edit-server': {
    'service-address': '+',
    'real-server': '+',
    'forwarding-method': ' ',
    weight: ' ',
    'u-threshold': ' ',
    'l-threshold': ' ',
    'tun-type': ' ',
    'tun-port': ' ',
    'tun-nocsum': ' ',
    'tun-csum': ' ',
    'tun-remcsum': ' ',
  },
  'delete-server': { 'service-address': '+', 'real-server': '+' },
  zero: { 'service-address': ' ' },
  set: {},
};

const COMMANDS: Record<string, Command> = {
  '-A': 'add-service',
  '--add-service': 'add-service',
  '-E': 'edit-service',
  '--edit-service': 'edit-service',
  '-D': 'delete-service',
  '--delete-service': 'delete-service',
  '-C': 'clear',
  '--clear': 'clear',
  '-a': 'add-server',
  '--add-server': 'add-server',
  '-e': 'edit-server',
  '--edit-server': 'edit-server',
  '-d': 'delete-server',
  '--delete-server': 'delete-server',
  '-Z': 'zero',
  '--zero': 'zero',
  '--set': 'set',
};

const UNSUPPORTED_COMMANDS: Record<string, string> = {
  '-L': 'listing',
  '-l': 'listing',
  '--list': 'listing',
  '-S': 'saving',
  '--save': 'saving',
  '-R': 'restoring',
  '--restore': 'restoring',
  '--start-daemon': 'sync daemon control',
  '--stop-daemon': 'sync daemon control',
  '-h': 'help',
  '--help': 'help',
  '-v': 'version',
  '--version': 'version',
};

// Options with an argument (short and long spellings), and flags without one.
const WITH_ARG: Record<string, string> = {
  '-t': 'tcp',
  '--tcp-service': 'tcp',
  '-u': 'udp',
  '--udp-service': 'udp',
  '--sctp-service': 'sctp',
  '-f': 'fwmark',
  '--fwmark-service': 'fwmark',
  '-s': 'scheduler',
  '--scheduler': 'scheduler',
  '-M': 'netmask',
  '--netmask': 'netmask',
  '-r': 'real-server',
  '--real-server': 'real-server',
  '-w': 'weight',
  '--weight': 'weight',
  '-x': 'u-threshold',
  '--u-threshold': 'u-threshold',
  '-y': 'l-threshold',
  '--l-threshold': 'l-threshold',
  '--pe': 'pe',
  '-b': 'sched-flags',
  '--sched-flags': 'sched-flags',
  '--tun-type': 'tun-type',
  '--tun-port': 'tun-port',
};
const FLAGS: Record<string, string> = {
  '-m': 'masq',
  '--masquerading': 'masq',
  '-g': 'route',
  '--gatewaying': 'route',
  '-i': 'tunnel',
  '--ipip': 'tunnel',
  '-6': 'ipv6',
  '--ipv6': 'ipv6',
  '-o': 'ops',
  '--ops': 'ops',
  '-n': 'numeric',
  '--numeric': 'numeric',
  '--tun-nocsum': 'tun-nocsum',
  '--tun-csum': 'tun-csum',
  '--tun-remcsum': 'tun-remcsum',
};
// -p / --persistent takes an optional argument.
const OPTIONAL_ARG = new Set(['-p', '--persistent']);

const SCHED_FLAG_BITS: Record<string, { bit: number; sched?: string }> = {
  'flag-1': { bit: SVC_F.SCHED1 },
  'flag-2': { bit: SVC_F.SCHED2 },
  'flag-3': { bit: SVC_F.SCHED3 },
  'sh-fallback': { bit: SVC_F.SCHED1, sched: 'sh' },
  'sh-port': { bit: SVC_F.SCHED2, sched: 'sh' },
  'mh-fallback': { bit: SVC_F.SCHED1, sched: 'mh' },
  'mh-port': { bit: SVC_F.SCHED2, sched: 'mh' },
};

interface AddrPort {
  family: IpFamily;
  address: string;
  port?: number;
}

/** "198.18.0.1", "198.18.0.1:80", "[2001:db8::1]:80", "2001:db8::1" (no port). */
function parseHostPort(text: string, what: string, fail: (msg: string) => never): AddrPort {
  let host = text;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') fail(`illegal ${what} "${text}": use [IPv6]:port`);
    host = text.slice(1, close);
    port = text.slice(close + 2);
  } else if (!parseAddressOrUndefined(text)) {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      port = text.slice(colon + 1);
    }
  }
  const p = parseAddressOrUndefined(host);
  if (!p) fail(`illegal ${what} "${text}": "${host}" is not a numeric IPv4 or IPv6 address (host names are not resolved)`);
  const out: AddrPort = { family: p.family, address: canonicalAddress(host) };
  if (port !== undefined) {
    if (!/^\d+$/.test(port) || Number(port) > 65535) fail(`illegal ${what} "${text}": port "${port}" is not a number 0..65535 (service names are not resolved)`);
    out.port = Number(port);
  }
  return out;
}

function parseAddressOrUndefined(t: string): ReturnType<typeof parseAddress> | undefined {
  try {
    return parseAddress(t);
  } catch {
    return undefined;
  }
}

function parseNumber(text: string, min: number, max: number): number | undefined {
  if (!/^[-+]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** Parse a whole rule file (ipvsadm-save -n output, or any -A/-E/-D/-a/-e/-d/-C/-Z/--set lines). */
export function parseIpvsadmRules(text: string, file = '<rules>'): IpvsadmRule[] {
  const out: IpvsadmRule[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, idx) => {
    const rule = parseIpvsadmLine(raw, file, idx + 1);
    if (rule) out.push(rule);
  });
  return out;
}

/** Parse one line; undefined for blank and comment lines. */
export function parseIpvsadmLine(raw: string, file: string, lineNo: number): IpvsadmRule | undefined {
  const failAt = (col: number, msg: string): never => {
    throw new IpvsadmParseError(file, lineNo, col, msg);
  };
  const toks = tokenize(raw, failAt);
  if (toks.length === 0) return undefined;
  let k = 0;
  if (toks[0]!.text === 'ipvsadm' || toks[0]!.text.endsWith('/ipvsadm')) k++;

  // Expand combined short flags (-Ln style) and --long=value.
  const words: Token[] = [];
  for (const t of toks.slice(k)) {
    if (t.text.startsWith('--') && t.text.includes('=')) {
      const eq = t.text.indexOf('=');
      words.push({ text: t.text.slice(0, eq), col: t.col }, { text: t.text.slice(eq + 1), col: t.col + eq + 1 });
    } else if (/^-[^-]./.test(t.text)) {
      const first = `-${t.text[1]}`;
      if (WITH_ARG[first] || OPTIONAL_ARG.has(first)) {
        // -t198.18.0.1:80 : option with attached argument
        words.push({ text: first, col: t.col }, { text: t.text.slice(2), col: t.col + 2 });
      } else if (/^-[A-Za-z0-9]+$/.test(t.text)) {
        // -Ln style: several flags in one word
        for (let j = 1; j < t.text.length; j++) words.push({ text: `-${t.text[j]}`, col: t.col + j });
      } else {
        words.push(t);
      }
    } else {
      words.push(t);
    }
  }

  let command: Command | undefined;
  let commandTok: Token | undefined;
  const seen = new Map<Opt | string, Token>();
  const set = (opt: Opt | string, tok: Token) => {
    if (seen.has(opt)) failAt(tok.col, `multiple '${opt}' options specified`);
    seen.set(opt, tok);
  };

  let protocol: IpvsProtocol | undefined;
  let svcAddr: AddrPort | undefined;
  let fwmark: number | undefined;
  let ipv6Fwmark = false;
  let scheduler: string | undefined;
  let persistent: number | undefined;
  let netmaskTok: Token | undefined;
  let rs: AddrPort | undefined;
  let rsTok: Token | undefined;
  let forward: Exclude<ForwardMethod, 'bypass' | 'local'> = 'route';
  let weight = 1;
  let upper = 0;
  let lower = 0;
  let onePacket = false;
  let peName: string | undefined;
  let schedFlagsTok: Token | undefined;
  let tunType: TunnelType = 'ipip';
  let tunPort = 0;
  let tunCsum = false;
  let tunRemcsum = false;
  const positional: Token[] = [];

  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const t = w.text;
    if (COMMANDS[t]) {
      if (command) failAt(w.col, `multiple commands specified ("${commandTok!.text}" and "${t}")`);
      command = COMMANDS[t];
      commandTok = w;
      continue;
    }
    if (UNSUPPORTED_COMMANDS[t]) failAt(w.col, `"${t}" (${UNSUPPORTED_COMMANDS[t]}) cannot appear in a rule file`);
    const argOf = (): Token => {
      const a = words[i + 1];
      if (!a) failAt(w.col, `option "${t}" needs an argument`);
      i++;
      return a!;
    };
    if (OPTIONAL_ARG.has(t)) {
      set('persistent', w);
      const next = words[i + 1];
      if (next && !next.text.startsWith('-')) {
        i++;
        const n = parseNumber(next.text, 1, MAX_TIMEOUT);
        if (n === undefined) failAt(next.col, `invalid timeout value \`${next.text}' specified (1..${MAX_TIMEOUT} seconds)`);
        persistent = n;
      } else {
        persistent = IPVSADM_DEFAULT_PERSISTENCE;
      }
      continue;
    }
    const withArg = WITH_ARG[t];
    if (withArg) {
      const a = argOf();
      switch (withArg) {
        case 'tcp':
        case 'udp':
        case 'sctp':
        case 'fwmark': {
          set('service-address', w);
          if (withArg === 'fwmark') {
            const n = parseNumber(a.text, 1, 0xffffffff);
            if (n === undefined) failAt(a.col, `invalid fwmark value \`${a.text}' specified (1..4294967295)`);
            fwmark = n;
          } else {
            protocol = withArg;
            if (/^\d+$/.test(a.text)) failAt(a.col, `illegal virtual server address[:port] specified: "${a.text}"`);
            svcAddr = parseHostPort(a.text, 'virtual server address[:port]', (m) => failAt(a.col, m));
          }
          break;
        }
        case 'scheduler':
          set('scheduler', w);
          if (!/^[A-Za-z0-9_-]+$/.test(a.text) || a.text.length > 15) failAt(a.col, `illegal scheduler name "${a.text}"`);
          scheduler = a.text;
          break;
        case 'netmask':
          set('netmask', w);
          netmaskTok = a;
          break;
        case 'real-server':
          set('real-server', w);
          rsTok = a;
          rs = parseHostPort(a.text, 'real server address[:port]', (m) => failAt(a.col, m));
          break;
        case 'weight': {
          set('weight', w);
          const n = parseNumber(a.text, 0, 65535);
          if (n === undefined) failAt(a.col, `illegal weight "${a.text}" specified (0..65535)`);
          weight = n!;
          break;
        }
        case 'u-threshold': {
          set('u-threshold', w);
          const n = parseNumber(a.text, 0, INT_MAX);
          if (n === undefined) failAt(a.col, `illegal u_threshold "${a.text}" specified (0..${INT_MAX})`);
          upper = n!;
          break;
        }
        case 'l-threshold': {
          set('l-threshold', w);
          const n = parseNumber(a.text, 0, INT_MAX);
          if (n === undefined) failAt(a.col, `illegal l_threshold "${a.text}" specified (0..${INT_MAX})`);
          lower = n!;
          break;
        }
        case 'pe':
          set('pe', w);
          if (!/^[A-Za-z0-9_-]+$/.test(a.text) || a.text.length > 15) failAt(a.col, `illegal persistence engine name "${a.text}"`);
          peName = a.text;
          break;
        case 'sched-flags':
          set('sched-flags', w);
          schedFlagsTok = a;
          break;
        case 'tun-type':
          set('tun-type', w);
          if (a.text !== 'ipip' && a.text !== 'gue' && a.text !== 'gre') failAt(a.col, `illegal tunnel type "${a.text}" specified (ipip, gue or gre)`);
          tunType = a.text as TunnelType;
          break;
        case 'tun-port': {
          set('tun-port', w);
          const n = parseNumber(a.text, 1, 65535);
          if (n === undefined) failAt(a.col, `illegal tunnel port "${a.text}" specified (1..65535)`);
          tunPort = n!;
          break;
        }
      }
      continue;
    }
    const flag = FLAGS[t];
    if (flag) {
      switch (flag) {
        case 'masq':
        case 'route':
        case 'tunnel':
          set('forwarding-method', w);
          forward = flag;
          break;
        case 'ipv6':
          if (fwmark === undefined) failAt(w.col, '-6 used before -f');
          ipv6Fwmark = true;
          break;
        case 'ops':
          set('ops', w);
          onePacket = true;
          break;
        case 'numeric':
          break; // harmless: the -n of "ipvsadm -S -n"
        case 'tun-nocsum':
          set('tun-nocsum', w);
          break;
        case 'tun-csum':
          set('tun-csum', w);
          tunCsum = true;
          break;
        case 'tun-remcsum':
          set('tun-remcsum', w);
          tunRemcsum = true;
          break;
      }
      continue;
    }
    if (t.startsWith('-') && t.length > 1 && !/^-\d/.test(t)) failAt(w.col, `invalid option "${t}"`);
    positional.push(w);
  }

  if (!command) failAt(toks[k]?.col ?? 1, 'no command (-A, -E, -D, -a, -e, -d, -C, -Z or --set) on this line');
  const cmd = command!;

  // --set takes three positional numbers; nothing else takes positionals.
  let timeouts: IpvsTimeouts | undefined;
  if (cmd === 'set') {
    if (positional.length !== 3) failAt(commandTok!.col, '--set option requires 3 timeout values (tcp tcpfin udp)');
    const [a, b, c] = positional.map((p) => {
      const n = parseNumber(p.text, 0, MAX_TIMEOUT);
      if (n === undefined) failAt(p.col, `invalid timeout value \`${p.text}' specified (0..${MAX_TIMEOUT})`);
      return n!;
    });
    timeouts = { tcp: a!, tcpFin: b!, udp: c! };
  } else if (positional.length) {
    failAt(positional[0]!.col, `unexpected argument "${positional[0]!.text}"`);
  }

  // The command x option table.
  const legal = LEGAL[cmd];
  for (const [opt, tok] of seen) {
    if (!(opt in legal)) failAt(tok.col, `Illegal '${opt}' option with the '${cmd}' command`);
  }
  for (const [opt, need] of Object.entries(legal)) {
    if (need === '+' && !seen.has(opt)) {
      failAt(commandTok!.col, `You need to supply the '${opt}' option for the '${cmd}' command`);
    }
  }

  const ruleText = raw.trim();
  if (cmd === 'clear') return { line: lineNo, text: ruleText, change: { op: 'flush' } };
  if (cmd === 'set') return { line: lineNo, text: ruleText, setTimeouts: timeouts! };

  let key: ServiceKey | undefined;
  if (fwmark !== undefined) key = { family: ipv6Fwmark ? 6 : 4, fwmark };
  else if (svcAddr) key = { family: svcAddr.family, protocol: protocol!, address: svcAddr.address, port: svcAddr.port ?? 0 };

  if (cmd === 'zero') return { line: lineNo, text: ruleText, change: key ? { op: 'zero', service: key } : { op: 'zero' } };
  if (!key) failAt(commandTok!.col, `You need to supply the 'service-address' option for the '${cmd}' command`);
  const svc = key!;
  const svcTok = seen.get('service-address')!;

  if (cmd === 'delete-service') return { line: lineNo, text: ruleText, change: { op: 'deleteService', service: svc } };

  if (cmd === 'add-service' || cmd === 'edit-service') {
    const sched = scheduler ?? IPVSADM_DEFAULT_SCHEDULER;
    let flags = 0;
    if (persistent !== undefined) flags |= SVC_F.PERSISTENT;
    if (onePacket) flags |= SVC_F.ONEPACKET;
    if (schedFlagsTok) {
      for (const name of schedFlagsTok.text.split(',')) {
        const f = SCHED_FLAG_BITS[name];
        if (!f) failAt(schedFlagsTok.col, `invalid scheduler flag \`${name}'`);
        if (f!.sched && f!.sched !== sched) failAt(schedFlagsTok.col, `incompatible scheduler flag \`${name}' (only for the ${f!.sched} scheduler)`);
        flags |= f!.bit;
      }
    }
    let netmask = svc.family === 4 ? '255.255.255.255' : '128';
    if (netmaskTok) {
      if (svc.family === 4) {
        const p = parseAddressOrUndefined(netmaskTok.text);
        if (!p || p.family !== 4) failAt(netmaskTok.col, `illegal virtual server persistent mask "${netmaskTok.text}" specified`);
        netmask = canonicalAddress(netmaskTok.text);
      } else {
        const n = parseNumber(netmaskTok.text, 1, 128);
        if (n === undefined) failAt(netmaskTok.col, `illegal ipv6 netmask "${netmaskTok.text}" specified (1..128)`);
        netmask = String(n);
      }
    }
    if (!isFwmarkKey(svc) && svc.port === 0 && persistent === undefined) {
      failAt(svcTok.col, 'Zero port specified for non-persistent service');
    }
    if (onePacket && !isFwmarkKey(svc) && svc.protocol !== 'udp') {
      failAt(seen.get('ops')!.col, 'One-Packet Scheduling is only for UDP virtual services');
    }
    const spec: ServiceSpec = { ...svc, scheduler: sched, flags, timeout: persistent ?? 0, netmask };
    if (peName) spec.peName = peName;
    return { line: lineNo, text: ruleText, change: { op: cmd === 'add-service' ? 'addService' : 'editService', service: spec } };
  }

  // real server commands
  const r = rs!;
  let port = r.port ?? (isFwmarkKey(svc) ? 0 : svc.port);
  if (cmd === 'delete-server') {
    return { line: lineNo, text: ruleText, change: { op: 'deleteDestination', service: svc, destination: { address: r.address, port } } };
  }
  // The destination port must be the service port for DR and TUN (unless fwmark).
  if (!isFwmarkKey(svc) && (forward === 'tunnel' || forward === 'route')) port = svc.port;
  if (r.family !== svc.family && forward !== 'tunnel') {
    failAt(rsTok!.col, 'Different address family is allowed only for tunneling servers');
  }
  const tunnelOpts: Opt[] = ['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];
  const usedTun = tunnelOpts.filter((o) => seen.has(o));
  if (usedTun.length && forward !== 'tunnel') failAt(seen.get(usedTun[0]!)!.col, 'Tunnel options conflict with forward method');
  // tunnel type x option table: ipip takes none; gue needs a port and at most one checksum option;
  // gre takes no port, at most one of nocsum/csum, no remcsum.
  const csumOpts = (['tun-nocsum', 'tun-csum', 'tun-remcsum'] as Opt[]).filter((o) => seen.has(o));
  if (tunType === 'ipip') {
    for (const o of ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'] as Opt[]) {
      if (seen.has(o)) failAt(seen.get(o)!.col, `Illegal '${o}' option with the 'ipip' tunnel type`);
    }
  } else if (tunType === 'gue') {
    if (!seen.has('tun-port')) failAt(seen.get('tun-type')!.col, "You need to supply the 'tun-port' option for the 'gue' tunnel type");
    if (csumOpts.length > 1) failAt(seen.get(csumOpts[1]!)!.col, `The option '${csumOpts[1]}' conflicts with the '${csumOpts[0]}' option in the 'gue' tunnel type`);
  } else {
    if (seen.has('tun-port')) failAt(seen.get('tun-port')!.col, "Illegal 'tun-port' option with the 'gre' tunnel type");
    if (seen.has('tun-remcsum')) failAt(seen.get('tun-remcsum')!.col, "Illegal 'tun-remcsum' option with the 'gre' tunnel type");
    if (csumOpts.length > 1) failAt(seen.get(csumOpts[1]!)!.col, `The option '${csumOpts[1]}' conflicts with the '${csumOpts[0]}' option in the 'gre' tunnel type`);
  }
  const dest: DestinationSpec = {
    address: r.address,
    port,
    family: r.family,
    forward,
    weight,
    upperThreshold: upper,
    lowerThreshold: lower,
  };
  if (forward === 'tunnel') {
    const t: TunnelSettings = { type: tunType };
    if (tunType === 'gue') t.port = tunPort;
    if (tunCsum) t.csum = true;
    if (tunRemcsum) t.remcsum = true;
    dest.tunnel = t;
  }
  return {
    line: lineNo,
    text: ruleText,
    change: { op: cmd === 'add-server' ? 'addDestination' : 'editDestination', service: svc, destination: dest },
  };
}

// ---------------------------------------------------------------------------------------------
// The state a rule file describes.

/** A service with its destinations, as rule files describe them (settings fully resolved). */
export type RuleService = ServiceKey & ServiceSettings & { destinations: RuleDestination[] };
export type RuleDestination = Required<Omit<DestinationSpec, 'tunnel'>> & { tunnel?: TunnelSettings };

export function serviceKeyString(k: ServiceKey): string {
  return isFwmarkKey(k) ? `fwm:${k.family}:${k.fwmark}` : `${k.protocol}:${k.family}:${canonicalAddress(k.address)}:${k.port}`;
}

function keyOf(k: ServiceKey): ServiceKey {
  return isFwmarkKey(k) ? { family: k.family, fwmark: k.fwmark } : { family: k.family, protocol: k.protocol, address: k.address, port: k.port };
}

/**
 * Play rules against an empty table and return the services they leave, in the order they were
 * first added, destinations in the order they were added. Errors (a destination for a service that
 * does not exist, a duplicate) name the rule's line, as ipvsadm -R would fail there.
 */
export function rulesToServices(rules: IpvsadmRule[], file = '<rules>'): { services: RuleService[]; timeouts?: IpvsTimeouts } {
  const table = new Map<string, RuleService>();
  let timeouts: IpvsTimeouts | undefined;
  const fail = (r: IpvsadmRule, msg: string): never => {
    throw new IpvsadmParseError(file, r.line, 1, msg);
  };
  for (const r of rules) {
    if ('setTimeouts' in r) {
      timeouts = { ...r.setTimeouts };
      continue;
    }
    const c = r.change;
    switch (c.op) {
      case 'flush':
        table.clear();
        break;
      case 'zero':
        break;
      case 'addService':
      case 'editService': {
        const id = serviceKeyString(c.service);
        const existing = table.get(id);
        if (c.op === 'addService' && existing) fail(r, 'Service already exists');
        if (c.op === 'editService' && !existing) fail(r, 'No such service');
        const s: RuleService = {
          ...keyOf(c.service),
          scheduler: c.service.scheduler ?? IPVSADM_DEFAULT_SCHEDULER,
          flags: c.service.flags ?? 0,
          timeout: c.service.timeout ?? 0,
          netmask: c.service.netmask ?? (c.service.family === 4 ? '255.255.255.255' : '128'),
          destinations: existing?.destinations ?? [],
        };
        if (c.service.peName) s.peName = c.service.peName;
        table.set(id, s);
        break;
      }
      case 'deleteService':
        if (!table.delete(serviceKeyString(c.service))) fail(r, 'No such service');
        break;
      case 'addDestination':
      case 'editDestination':
      case 'deleteDestination': {
        const s = table.get(serviceKeyString(c.service));
        if (!s) fail(r, 'Service not defined');
        const dests = s!.destinations;
        const addr = canonicalAddress(c.destination.address);
        const i = dests.findIndex((d) => canonicalAddress(d.address) === addr && d.port === c.destination.port);
        if (c.op === 'addDestination' && i >= 0) fail(r, 'Destination already exists');
        if (c.op !== 'addDestination' && i < 0) fail(r, 'No such destination');
        if (c.op === 'deleteDestination') {
          dests.splice(i, 1);
          break;
        }
        const d = c.destination;
        const rd: RuleDestination = {
          address: d.address,
          port: d.port,
          family: d.family ?? (d.address.includes(':') ? 6 : 4),
          forward: d.forward ?? 'route',
          weight: d.weight ?? 1,
          upperThreshold: d.upperThreshold ?? 0,
          lowerThreshold: d.lowerThreshold ?? 0,
        };
        if (d.tunnel) rd.tunnel = { ...d.tunnel };
        if (i >= 0) dests[i] = rd;
        else dests.push(rd);
        break;
      }
    }
  }
  const out: { services: RuleService[]; timeouts?: IpvsTimeouts } = { services: [...table.values()] };
  if (timeouts) out.timeouts = timeouts;
  return out;
}

/** The IPVS changes that build `services` on an empty table (what ipvsadm -R sends). */
export function servicesToChanges(services: RuleService[]): IpvsChange[] {
  const out: IpvsChange[] = [];
  for (const s of services) {
    const { destinations, ...svc } = s;
    out.push({ op: 'addService', service: svc });
    const key = keyOf(s);
    for (const d of destinations) out.push({ op: 'addDestination', service: key, destination: d });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing: the format of `ipvsadm -S -n`.

/** What the writer needs of a service; IpvsServiceWithDestinations (client read-back) fits. */
export type SaveService = ServiceKey &
  Partial<ServiceSettings> & {
    destinations: SaveDestination[];
  };
export type SaveDestination = Omit<DestinationSpec, 'forward' | 'tunnel'> & {
  forward?: ForwardMethod;
  tunnel?: TunnelSettings;
};

export interface SaveOptions {
  /**
   * "ipvsadm" reproduces `ipvsadm -S -n` byte for byte, which drops the -x/-y thresholds of real
   * servers. "lossless" (default) also writes -x/-y when they are not zero; ipvsadm -R reads both.
   */
  flavour?: 'ipvsadm' | 'lossless';
  /** Sort services and destinations as ipvsadm does (default true); false keeps the given order. */
  sort?: boolean;
}

function schedFlagNames(sched: string, flags: number): string {
  const names: string[] = [];
  if (sched === 'sh' || sched === 'mh') {
    if (flags & SVC_F.SCHED1) names.push(`${sched}-fallback`);
    if (flags & SVC_F.SCHED2) names.push(`${sched}-port`);
  } else {
    if (flags & SVC_F.SCHED1) names.push('flag-1');
    if (flags & SVC_F.SCHED2) names.push('flag-2');
    if (flags & SVC_F.SCHED3) names.push('flag-3');
  }
  return names.join(',');
}

export { schedFlagNames };

function hostPortText(address: string, port: number, family: IpFamily): string {
  return family === 6 ? `[${canonicalAddress(address)}]:${port}` : `${canonicalAddress(address)}:${port}`;
}

const protoOption: Record<IpvsProtocol, string> = { tcp: '-t', udp: '-u', sctp: '--sctp-service' };

/** The rule-form service name: "-t 198.18.0.10:80", "-f 5 -6". */
export function saveServiceName(k: ServiceKey): string {
  if (isFwmarkKey(k)) return k.family === 6 ? `-f ${k.fwmark} -6` : `-f ${k.fwmark}`;
  return `${protoOption[k.protocol]} ${hostPortText(k.address, k.port, k.family)}`;
}

function addrWords(address: string, family: IpFamily): number[] {
  const b = parseAddress(address).bytes;
  const words: number[] = [];
  for (let i = 0; i < b.length; i += 4) words.push(b.readUInt32BE(i));
  return family === 4 ? words.slice(0, 1) : words;
}

/** ipvsadm's ipvs_cmp_services: fwmark, af, protocol, address, port, each compared by C int
 *  subtraction (so unsigned differences of 2^31 or more wrap, e.g. 200.0.0.1 sorts before 10.0.0.1). */
export function compareServicesLikeIpvsadm(a: ServiceKey, b: ServiceKey): number {
  const fa = isFwmarkKey(a) ? a.fwmark : 0;
  const fb = isFwmarkKey(b) ? b.fwmark : 0;
  let r = (fa - fb) | 0;
  if (r) return r;
  r = (a.family === 4 ? 2 : 10) - (b.family === 4 ? 2 : 10);
  if (r) return r;
  const pn = (k: ServiceKey) => (isFwmarkKey(k) ? 0 : k.protocol === 'tcp' ? 6 : k.protocol === 'udp' ? 17 : 132);
  r = pn(a) - pn(b);
  if (r) return r;
  const wa = isFwmarkKey(a) ? [0, 0, 0, 0] : addrWords(a.address, a.family);
  const wb = isFwmarkKey(b) ? [0, 0, 0, 0] : addrWords(b.address, b.family);
  for (let i = 0; !r && i < wa.length; i++) r = ((wa[i] ?? 0) - (wb[i] ?? 0)) | 0;
  if (r) return r;
  return (isFwmarkKey(a) ? 0 : a.port) - (isFwmarkKey(b) ? 0 : b.port);
}

/** ipvsadm's ipvs_cmp_dests: address (words of the first one's family) then port, C int subtraction. */
export function compareDestinationsLikeIpvsadm(a: SaveDestination, b: SaveDestination): number {
  const fam = a.family ?? (a.address.includes(':') ? 6 : 4);
  const wa = addrWords(a.address, fam);
  const wb = addrWords(b.address, (b.family ?? (b.address.includes(':') ? 6 : 4)));
  let r = 0;
  for (let i = 0; !r && i < wa.length; i++) r = ((wa[i] ?? 0) - (wb[i] ?? 0)) | 0;
  if (r) return r;
  return a.port - b.port;
}

/** The `ipvsadm -S -n` text for `services`. */
export function formatIpvsadmSave(services: SaveService[], opts: SaveOptions = {}): string {
  const flavour = opts.flavour ?? 'lossless';
  const list = opts.sort === false ? services : [...services].sort(compareServicesLikeIpvsadm);
  const lines: string[] = [];
  for (const s of list) {
    const name = saveServiceName(s);
    const sched = s.scheduler ?? IPVSADM_DEFAULT_SCHEDULER;
    const flags = s.flags ?? 0;
    let line = `-A ${name} -s ${sched}`;
    if (flags & SVC_F.PERSISTENT) {
      line += ` -p ${s.timeout ?? 0}`;
      const nm = s.netmask ?? (s.family === 4 ? '255.255.255.255' : '128');
      if (s.family === 4 && canonicalAddress(nm) !== '255.255.255.255') line += ` -M ${canonicalAddress(nm)}`;
      if (s.family === 6 && Number(nm) !== 128) line += ` -M ${Number(nm)}`;
    }
    if (s.peName) line += ` --pe ${s.peName}`;
    if (flags & SVC_F.ONEPACKET) line += ' -o';
    if (flags & (SVC_F.SCHED1 | SVC_F.SCHED2 | SVC_F.SCHED3)) line += ` -b ${schedFlagNames(sched, flags)}`;
    lines.push(line);
    const dests = opts.sort === false ? s.destinations : [...s.destinations].sort(compareDestinationsLikeIpvsadm);
    for (const d of dests) {
      const fam = d.family ?? (d.address.includes(':') ? 6 : 4);
      const fwd = d.forward ?? 'route';
      const sw = fwd === 'masq' ? '-m' : fwd === 'tunnel' ? '-i' : '-g';
      let dl = `-a ${name} -r ${hostPortText(d.address, d.port, fam)} ${sw} -w ${d.weight ?? 1}`;
      if (fwd === 'tunnel') {
        const t = d.tunnel ?? { type: 'ipip' as TunnelType };
        const csum = t.remcsum ? '--tun-remcsum' : t.csum ? '--tun-csum' : '--tun-nocsum';
        if (t.type === 'gre') dl += ` --tun-type gre ${csum}`;
        else if (t.type === 'gue') dl += ` --tun-type gue --tun-port ${t.port ?? 0} ${csum}`;
        else dl += ' --tun-type ipip';
      }
      if (flavour === 'lossless') {
        if (d.upperThreshold) dl += ` -x ${d.upperThreshold}`;
        if (d.lowerThreshold) dl += ` -y ${d.lowerThreshold}`;
      }
      lines.push(dl);
    }
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

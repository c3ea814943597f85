// Scheduler scenarios: parsing and validation (with JSON-path error locations), expansion of
// generated flow sets, and running a scenario through the reference model.
//
// A scenario describes a virtual service, its real servers in the order they were added, and a
// sequence of client flows opened one after another, with optional events (edit/add/remove a
// server, close a flow, change hold mode, release held flows, wait) placed before given flows. The
// format is documented in docs/schedulers.md; SCENARIO_SCHEMA is its JSON Schema.

import Ajv, { type ErrorObject } from 'ajv';
import { type Address, AddressError, maskAddress, parseAddress, parseV4Netmask, addressFromBytes, addressFromV4Number } from './address';
import type { ForwardMethod } from './dest';
import { SeededRandom } from './prng';
import { SCENARIO_SCHEMA } from './scenario-schema';
import { SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, type Choice, type SchedulerFactory, type SchedulerName } from './scheduler';
import { type FlowOutcome, type FlowSpec, type Protocol, ScenarioConflict, ServiceModel, type ServiceOptions } from './service';

// ---------------------------------------------------------------------------------------------
// Types of the raw JSON

export interface ScenarioServer {
  name: string;
  addr: string;
  port: number;
  weight: number;
  upper?: number;
  lower?: number;
  forward?: ForwardMethod;
}

export interface ScenarioFlow {
  client: string;
  cport: number;
  dst?: string;
  dport?: number;
  proto?: Protocol;
  hold?: boolean;
}

export interface GeneratedFlows {
  generate: { count: number; seed: number; clients: string; cports?: [number, number]; dsts?: string; hold?: boolean };
}

export type ScenarioEvent =
  | { before: number; op: 'edit'; server: string; weight?: number; upper?: number; lower?: number }
  | { before: number; op: 'add'; server: ScenarioServer }
  | { before: number; op: 'remove'; server: string }
  | { before: number; op: 'close'; flow: number }
  | { before: number; op: 'release' }
  | { before: number; op: 'hold'; hold: boolean }
  | { before: number; op: 'wait'; seconds: number };

export interface ScenarioPersistence {
  timeout?: number;
  netmask?: string | number;
}

export type ScenarioService =
  | { proto: Protocol; vip: string; port: number; persistence?: ScenarioPersistence; onePacket?: boolean }
  | { fwmark: number; vip?: string; proto?: Protocol; port?: number; family?: 4 | 6; persistence?: ScenarioPersistence; onePacket?: boolean };

export interface Scenario {
  name?: string;
  description?: string;
  scheduler: SchedulerName;
  flags?: string[];
  service: ScenarioService;
  servers: ScenarioServer[];
  flows: (ScenarioFlow | GeneratedFlows)[];
  hold?: boolean;
  events?: ScenarioEvent[];
  sysctl?: {
    expire_quiescent_template?: 0 | 1;
    conn_reuse_mode?: number;
    expire_nodest_conn?: 0 | 1;
    lblc_expiration?: number;
    lblcr_expiration?: number;
  };
  seed?: number;
  timingMargin?: number;
  /** `ipvsadm --set tcp tcpfin udp` for the run (seconds; kernel defaults 900 120 300). */
  timeouts?: { tcp?: number; tcpfin?: number; udp?: number };
  expect?: (string | null)[];
}

/** A problem with a scenario, located by a JSON path such as `$.servers[2].weight`. */
export class ScenarioError extends Error {
  override name = 'ScenarioError';
  constructor(readonly path: string, readonly detail: string) {
    super(`${path}: ${detail}`);
  }
}

/** Several problems at once (all are reported, not just the first). */
export class ScenarioErrors extends Error {
  override name = 'ScenarioErrors';
  constructor(readonly errors: ScenarioError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

// ---------------------------------------------------------------------------------------------
// Structural validation (JSON Schema) with readable messages

let compiled: ReturnType<Ajv['compile']> | null = null;
function schemaValidator() {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    compiled = ajv.compile(SCENARIO_SCHEMA);
  }
  return compiled;
}

export function jsonPath(instancePath: string): string {
  if (!instancePath) return '$';
  return '$' + instancePath.split('/').slice(1).map((seg) => {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^[0-9]+$/.test(s) ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
  }).join('');
}

function valueAt(data: unknown, instancePath: string): unknown {
  let cur: unknown = data;
  for (const seg of instancePath.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': return `unknown field ${JSON.stringify(p.additionalProperty)}`;
    case 'required': return `missing required field ${JSON.stringify(p.missingProperty)}`;
    case 'enum': return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type': return `must be of type ${String(p.type)}`;
    default: return e.message ?? e.keyword;
  }
}

function relevantErrors(errors: ErrorObject[], data: unknown): ErrorObject[] {
  return errors.filter((e) => {
    if (['oneOf', 'anyOf', 'if'].includes(e.keyword)) return false;
    // service: pick the branch the object means (fwmark present or not)
    const svcBranch = /\/service\/oneOf\/([01])\//.exec(e.schemaPath);
    if (svcBranch) {
      const svc = valueAt(data, '/service');
      const isFw = svc !== null && typeof svc === 'object' && 'fwmark' in (svc as object);
      return svcBranch[1] === (isFw ? '1' : '0');
    }
    const flowBranch = /\/flows\/items\/anyOf\/([01])\//.exec(e.schemaPath);
    if (flowBranch) {
      const m = /^\/flows\/([0-9]+)/.exec(e.instancePath);
      const f = m ? valueAt(data, `/flows/${m[1]}`) : undefined;
      const isGen = f !== null && typeof f === 'object' && 'generate' in (f as object);
      return flowBranch[1] === (isGen ? '1' : '0');
    }
    return true;
  });
}

/** Validates the JSON shape; throws ScenarioErrors listing every problem with its JSON path. */
export function checkScenarioShape(data: unknown): asserts data is Scenario {
  const validate = schemaValidator();
  if (validate(data)) return;
  const errs = relevantErrors(validate.errors ?? [], data);
  const seen = new Set<string>();
  const out: ScenarioError[] = [];
  for (const e of errs.length ? errs : validate.errors ?? []) {
    const err = new ScenarioError(jsonPath(e.instancePath), describe(e));
    if (!seen.has(err.message)) {
      seen.add(err.message);
      out.push(err);
    }
  }
  throw new ScenarioErrors(out);
}

// ---------------------------------------------------------------------------------------------
// Semantic validation and normalisation

const FLAG_BITS: Record<string, { bit: number; only?: SchedulerName }> = {
  'flag-1': { bit: SVC_F_SCHED1 },
  'flag-2': { bit: SVC_F_SCHED2 },
  'flag-3': { bit: SVC_F_SCHED3 },
  'sh-fallback': { bit: SVC_F_SCHED1, only: 'sh' },
  'sh-port': { bit: SVC_F_SCHED2, only: 'sh' },
  'mh-fallback': { bit: SVC_F_SCHED1, only: 'mh' },
  'mh-port': { bit: SVC_F_SCHED2, only: 'mh' },
};

/** A flow after expansion and defaulting. */
export interface ResolvedFlow extends FlowSpec {
  /** Path of the scenario element it came from (for error messages). */
  path: string;
  /** The flow (or its generator) set `hold` itself; a `hold` event does not override it. */
  explicitHold: boolean;
}

export interface ResolvedServer {
  name: string;
  addr: Address;
  port: number;
  weight: number;
  upper: number;
  lower: number;
  forward: ForwardMethod;
  path: string;
}

export type ResolvedEvent =
  | { before: number; path: string; op: 'edit'; server: string; weight?: number; upper?: number; lower?: number }
  | { before: number; path: string; op: 'add'; server: ResolvedServer }
  | { before: number; path: string; op: 'remove'; server: string }
  | { before: number; path: string; op: 'close'; flow: number }
  | { before: number; path: string; op: 'release' }
  | { before: number; path: string; op: 'hold'; hold: boolean }
  | { before: number; path: string; op: 'wait'; seconds: number };

export interface ResolvedScenario {
  source: Scenario;
  options: ServiceOptions;
  servers: ResolvedServer[];
  flows: ResolvedFlow[];
  /** Sorted by `before`, then by position in the file. */
  events: ResolvedEvent[];
}

function parseAddr(text: string, path: string, errors: ScenarioError[]): Address | null {
  try {
    return parseAddress(text);
  } catch (e) {
    errors.push(new ScenarioError(path, (e as Error).message));
    return null;
  }
}

function parsePrefix(text: string, path: string, errors: ScenarioError[]): { base: Address; len: number } | null {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
  if (!m) {
    errors.push(new ScenarioError(path, `not a prefix like "198.18.64.0/18": ${JSON.stringify(text)}`));
    return null;
  }
  const base = parseAddr(m[1], path, errors);
  if (!base) return null;
  const len = Number(m[2]);
  if (len > base.bytes.length * 8) {
    errors.push(new ScenarioError(path, `prefix length ${len} too long for ${base.text}`));
    return null;
  }
  return { base: maskAddress(base, len), len };
}

/** A random address inside a prefix (host part uniform; may be the network or broadcast value). */
function randomInPrefix(rng: SeededRandom, base: Address, len: number): Address {
  if (base.family === 4) {
    // The same draws as below, on the number: below(2) is nextU32() % 2 (2^32 is a multiple of 2).
    let n = base.fold;
    for (let bit = len; bit < 32; bit++) if (rng.nextU32() & 1) n |= 0x80000000 >>> bit;
    return addressFromV4Number(n >>> 0);
  }
  const bytes = new Uint8Array(base.bytes);
  const total = bytes.length * 8;
  for (let bit = len; bit < total; bit++) {
    if (rng.below(2)) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  }
  return addressFromBytes(bytes);
}

/**
 * Expands a generated flow set: for i in 0..count-1, client = random address in `clients`
 * (host bits drawn most-significant first, one bit per below(2) call), cport uniform in `cports`
 * (default 1024..65535), then dst uniform in `dsts` if given -- all from xoshiro128** seeded with
 * `seed`. Duplicate (client, cport) pairs are redrawn so every flow is a distinct connection.
 */
export function expandGenerated(g: GeneratedFlows['generate'], path: string, errors: ScenarioError[]): { client: Address; cport: number; dst?: Address }[] {
  const clients = parsePrefix(g.clients, `${path}.generate.clients`, errors);
  const dsts = g.dsts !== undefined ? parsePrefix(g.dsts, `${path}.generate.dsts`, errors) : null;
  if (!clients || (g.dsts !== undefined && !dsts)) return [];
  const [lo, hi] = g.cports ?? [1024, 65535];
  if (lo > hi) {
    errors.push(new ScenarioError(`${path}.generate.cports`, `range ${lo}..${hi} is empty`));
    return [];
  }
  const space = 2 ** (clients.base.bytes.length * 8 - clients.len) * (hi - lo + 1);
  if (space < g.count * 2) {
    errors.push(new ScenarioError(`${path}.generate`, `${g.count} distinct client address/port pairs do not fit comfortably in ${g.clients} x ports ${lo}..${hi}`));
    return [];
  }
  const rng = new SeededRandom(g.seed);
  // (client, port) pairs seen: IPv4 in a flat hash set of numbers, IPv6 as text.
  const seen4 = clients.base.family === 4 ? new PairSet(g.count) : undefined;
  const seen = new Set<string>();
  const out: { client: Address; cport: number; dst?: Address }[] = [];
  while (out.length < g.count) {
    const client = randomInPrefix(rng, clients.base, clients.len);
    const cport = rng.intBetween(lo, hi);
    const dst = dsts ? randomInPrefix(rng, dsts.base, dsts.len) : undefined;
    if (seen4) {
      if (!seen4.add(client.fold, cport)) continue;
    } else {
      const k = `${client.text}|${cport}`;
      if (seen.has(k)) continue;
      seen.add(k);
    }
    out.push({ client, cport, dst });
  }
  return out;
}

/**
 * A TCP flow that reuses the connection (client address and port, destination and port) of an earlier flow the
 * client still holds — no close or release event for it in between — is a client no real stack can be: found
 * here, before any simulation (on a million flows the model would meet it only when it gets there). Only certain
 * cases are reported: any event that may end the earlier connection's entry in the model (wait, edit, remove)
 * stops the search across it; `hold` events change which later flows are held, as in the run.
 */
function heldPortReuse(flows: ResolvedFlow[], events: ResolvedEvent[], isFw: boolean, errors: ScenarioError[]): void {
  if (!flows.some((f) => f.proto === 'tcp')) return;
  // IPv4 to one VIP and port: the client address and port say it all, as a number; otherwise a text key.
  const numeric = !isFw && flows.every((f) => f.client.family === 4);
  const keyOf = (f: ResolvedFlow): number | string => numeric ? f.client.fold * 65536 + f.cport : `${f.proto}|${f.client.text}|${f.cport}|${f.dst.text}|${f.dport}`;
  const held = new Map<number | string, number>();
  let holdOverride: boolean | null = null;
  let ev = 0;
  for (let i = 0; i < flows.length; i++) {
    for (; ev < events.length && events[ev].before === i; ev++) {
      const e = events[ev];
      if (e.op === 'close') {
        const k = keyOf(flows[e.flow]);
        if (held.get(k) === e.flow) held.delete(k);
      } else if (e.op === 'hold') holdOverride = e.hold;
      else if (e.op !== 'add') held.clear();
    }
    const f = flows[i];
    if (f.proto !== 'tcp') continue;
    const k = keyOf(f);
    const earlier = held.get(k);
    if (earlier !== undefined) {
      errors.push(new ScenarioError(f.path, `flow ${i}: client ${f.client.text}:${f.cport} opens a connection while flow ${earlier} on that port is still held (no close or release event between them); a real client cannot reuse an open port`));
    }
    if (holdOverride === null || f.explicitHold ? f.hold : holdOverride) held.set(k, i);
    else held.delete(k);
  }
}

/** A set of (u32, u16) pairs with open addressing: a million generated flows without a million boxed keys. */
class PairSet {
  private readonly a: Int32Array;
  private readonly b: Int32Array; // port + 1; 0 = empty slot
  private readonly mask: number;
  constructor(count: number) {
    let cap = 16;
    while (cap < count * 2) cap *= 2;
    this.a = new Int32Array(cap);
    this.b = new Int32Array(cap);
    this.mask = cap - 1;
  }
  /** Adds the pair; false when it was there already. */
  add(x: number, port: number): boolean {
    const xi = x | 0;
    const p = port + 1;
    let i = Math.imul(xi ^ Math.imul(p, 0x9e3779b1), 0x85ebca6b);
    i = (i ^ (i >>> 15)) & this.mask;
    for (;;) {
      const q = this.b[i];
      if (q === 0) {
        this.a[i] = xi;
        this.b[i] = p;
        return true;
      }
      if (q === p && this.a[i] === xi) return false;
      i = (i + 1) & this.mask;
    }
  }
}

function resolveServer(s: ScenarioServer, path: string, family: 4 | 6, errors: ScenarioError[]): ResolvedServer | null {
  const addr = parseAddr(s.addr, `${path}.addr`, errors);
  if (!addr) return null;
  if (addr.family !== family) {
    errors.push(new ScenarioError(`${path}.addr`, `${s.addr} is IPv${addr.family} but the service is IPv${family}`));
    return null;
  }
  const upper = s.upper ?? 0;
  const lower = s.lower ?? 0;
  if (lower > upper) {
    errors.push(new ScenarioError(path, `lower threshold ${lower} is above upper threshold ${upper}${upper === 0 ? ' (0 = no upper threshold)' : ''}: the kernel rejects this with ERANGE`));
    return null;
  }
  return { name: s.name, addr, port: s.port, weight: s.weight, upper, lower, forward: s.forward ?? 'dr', path };
}

/** Validates everything and returns the normalised scenario; throws ScenarioErrors. */
export function resolveScenario(data: unknown): ResolvedScenario {
  checkScenarioShape(data);
  const sc = data;
  const errors: ScenarioError[] = [];
  const svc = sc.service;
  const isFw = 'fwmark' in svc;

  // service
  let family: 4 | 6 = 4;
  let vip: Address | undefined;
  if (!isFw) {
    const a = parseAddr(svc.vip, '$.service.vip', errors);
    if (a) {
      vip = a;
      family = a.family;
    }
  } else if (svc.vip !== undefined) {
    // a fwmark service's default destination for flows without "dst"
    const a = parseAddr(svc.vip, '$.service.vip', errors);
    if (a) {
      vip = a;
      family = a.family;
      if (svc.family !== undefined && svc.family !== a.family) errors.push(new ScenarioError('$.service.family', `family ${svc.family} but vip ${svc.vip} is IPv${a.family}`));
    }
  } else {
    family = svc.family ?? 4;
  }
  // A VIP that did not parse is reported once; flows are not blamed for lacking a destination.
  const vipBroken = svc.vip !== undefined && !vip;
  // Flows of a fwmark service without "dst" and without a service vip: the destination only matters
  // to the destination-hashing schedulers; the others get the unspecified address as a placeholder.
  const needsDst = isFw && !vip && ['dh', 'lblc', 'lblcr'].includes(sc.scheduler);
  const fwPlaceholder = isFw && !vip && !needsDst ? parseAddress(family === 4 ? '0.0.0.0' : '::') : undefined;
  const proto: Protocol = svc.proto ?? 'tcp';
  const port = isFw ? svc.port ?? 80 : svc.port;

  // flags
  let schedFlags = 0;
  (sc.flags ?? []).forEach((f, i) => {
    const def = FLAG_BITS[f];
    if (def.only && def.only !== sc.scheduler) {
      errors.push(new ScenarioError(`$.flags[${i}]`, `${f} only applies to the ${def.only} scheduler (ipvsadm refuses it with -s ${sc.scheduler})`));
    }
    schedFlags |= def.bit;
  });

  // persistence / one-packet
  let persistence: ServiceOptions['persistence'];
  if (svc.persistence) {
    const timeout = svc.persistence.timeout ?? 360;
    let prefixLen = family === 4 ? 32 : 128;
    const nm = svc.persistence.netmask;
    if (nm !== undefined) {
      try {
        if (family === 4) prefixLen = parseV4Netmask(nm);
        else {
          const n = typeof nm === 'number' ? nm : Number(String(nm).replace(/^\//, ''));
          if (!Number.isInteger(n) || n < 1 || n > 128) throw new AddressError(`IPv6 persistence netmask is a prefix length 1..128, got ${JSON.stringify(nm)}`);
          prefixLen = n;
        }
      } catch (e) {
        errors.push(new ScenarioError('$.service.persistence.netmask', (e as Error).message));
      }
    }
    persistence = { timeout, prefixLen };
  }
  if (svc.onePacket && !isFw && proto !== 'udp') {
    errors.push(new ScenarioError('$.service.onePacket', 'one-packet scheduling applies to UDP services (or fwmark services, for their UDP packets); ipvsadm refuses -o for TCP'));
  }

  // servers (initial), then the events' server set evolves
  const servers: ResolvedServer[] = [];
  const names = new Set<string>();
  const keys = new Set<string>();
  sc.servers.forEach((s, i) => {
    const path = `$.servers[${i}]`;
    const r = resolveServer(s, path, family, errors);
    if (!r) return;
    if (names.has(r.name)) errors.push(new ScenarioError(`${path}.name`, `duplicate server name ${JSON.stringify(r.name)}`));
    const key = `${r.addr.text}|${r.port}`;
    if (keys.has(key)) errors.push(new ScenarioError(path, `duplicate destination ${s.addr}:${s.port} (the kernel answers EEXIST)`));
    names.add(r.name);
    keys.add(key);
    servers.push(r);
  });

  // flows
  const flows: ResolvedFlow[] = [];
  const defaultHold = sc.hold ?? true;
  sc.flows.forEach((f, i) => {
    const path = `$.flows[${i}]`;
    if ('generate' in f) {
      const g = f.generate;
      if (g.dsts !== undefined && !isFw) errors.push(new ScenarioError(`${path}.generate.dsts`, 'destination addresses vary only for fwmark services; a VIP service always sees its VIP'));
      for (const x of expandGenerated(g, path, errors)) {
        if (x.client.family !== family) {
          errors.push(new ScenarioError(`${path}.generate.clients`, `clients are IPv${x.client.family} but the service is IPv${family}`));
          break;
        }
        const dst = x.dst ?? vip ?? fwPlaceholder;
        if (!dst) {
          if (!vipBroken) errors.push(new ScenarioError(`${path}.generate`, `${sc.scheduler} hashes the destination address: give "dsts" (or a service "vip")`));
          break;
        }
        flows.push({ client: x.client, cport: x.cport, dst, dport: port, proto, hold: g.hold ?? defaultHold, explicitHold: g.hold !== undefined, path });
      }
      return;
    }
    const client = parseAddr(f.client, `${path}.client`, errors);
    if (!client) return;
    if (client.family !== family) {
      errors.push(new ScenarioError(`${path}.client`, `${f.client} is IPv${client.family} but the service is IPv${family}`));
      return;
    }
    let dst = vip ?? fwPlaceholder;
    if (f.dst !== undefined) {
      const d = parseAddr(f.dst, `${path}.dst`, errors);
      if (!d) return;
      if (!isFw && vip && d.text !== vip.text) {
        errors.push(new ScenarioError(`${path}.dst`, `a VIP service only sees packets to its VIP ${vip.text}; "dst" is for fwmark services`));
        return;
      }
      if (d.family !== family) {
        errors.push(new ScenarioError(`${path}.dst`, `${f.dst} is IPv${d.family} but the service is IPv${family}`));
        return;
      }
      dst = d;
    }
    if (!dst) {
      if (!vipBroken) errors.push(new ScenarioError(`${path}`, `${sc.scheduler} hashes the destination address: a flow of a fwmark service needs "dst" (or give the service a "vip")`));
      return;
    }
    if (f.proto !== undefined && !isFw && f.proto !== proto) {
      errors.push(new ScenarioError(`${path}.proto`, `the service is ${proto}; only fwmark services take several protocols`));
      return;
    }
    if (f.dport !== undefined && !isFw && f.dport !== port) {
      errors.push(new ScenarioError(`${path}.dport`, `the service listens on port ${port}; only fwmark services take other ports`));
      return;
    }
    flows.push({ client, cport: f.cport, dst, dport: f.dport ?? port, proto: f.proto ?? proto, hold: f.hold ?? defaultHold, explicitHold: f.hold !== undefined, path });
  });

  // events: check in the order they apply, tracking which server names exist
  const indexed = (sc.events ?? []).map((e, i) => ({ e, i }));
  indexed.sort((a, b) => a.e.before - b.e.before || a.i - b.i);
  const live = new Map<string, string>(servers.map((s) => [s.name, `${s.addr.text}|${s.port}`]));
  const events: ResolvedEvent[] = [];
  for (const { e, i } of indexed) {
    const path = `$.events[${i}]`;
    if (e.before > flows.length) {
      errors.push(new ScenarioError(`${path}.before`, `there are only ${flows.length} flows (before = ${flows.length} means after the last one)`));
      continue;
    }
    switch (e.op) {
      case 'edit': {
        if (!live.has(e.server)) {
          errors.push(new ScenarioError(`${path}.server`, `no server named ${JSON.stringify(e.server)} exists at this point`));
          continue;
        }
        if (e.weight === undefined && e.upper === undefined && e.lower === undefined) {
          errors.push(new ScenarioError(path, 'an edit needs at least one of weight, upper, lower'));
          continue;
        }
        events.push({ ...e, path });
        break;
      }
      case 'add': {
        const r = resolveServer(e.server, `${path}.server`, family, errors);
        if (!r) continue;
        const key = `${r.addr.text}|${r.port}`;
        if (live.has(r.name)) {
          errors.push(new ScenarioError(`${path}.server.name`, `server ${JSON.stringify(r.name)} already exists at this point`));
          continue;
        }
        if ([...live.values()].includes(key)) {
          errors.push(new ScenarioError(`${path}.server`, `destination ${r.addr.text}:${r.port} already exists at this point (EEXIST)`));
          continue;
        }
        live.set(r.name, key);
        events.push({ before: e.before, op: 'add', server: r, path });
        break;
      }
      case 'remove':
        if (!live.delete(e.server)) {
          errors.push(new ScenarioError(`${path}.server`, `no server named ${JSON.stringify(e.server)} exists at this point`));
          continue;
        }
        events.push({ ...e, path });
        break;
      case 'close':
        if (e.flow >= e.before) {
          errors.push(new ScenarioError(`${path}.flow`, `flow ${e.flow} is not opened yet before flow ${e.before} (flows are numbered from 0)`));
          continue;
        }
        events.push({ ...e, path });
        break;
      default:
        events.push({ ...e, path } as ResolvedEvent);
    }
  }

  heldPortReuse(flows, events, isFw, errors);

  if (sc.expect !== undefined && sc.expect.length !== flows.length) {
    errors.push(new ScenarioError('$.expect', `has ${sc.expect.length} entries but the scenario has ${flows.length} flows`));
  }
  if (sc.scheduler === 'mh' && servers.length > 4093) errors.push(new ScenarioError('$.servers', 'mh supports at most 4093 destinations (default table size)'));

  if (errors.length) throw new ScenarioErrors(errors);

  const s = sc.sysctl ?? {};
  const options: ServiceOptions = {
    scheduler: sc.scheduler,
    schedFlags,
    family,
    proto,
    vip,
    port,
    fwmark: isFw ? svc.fwmark : undefined,
    persistence,
    onePacket: !!svc.onePacket,
    seed: sc.seed ?? 1,
    timingMargin: sc.timingMargin,
    timeouts: sc.timeouts,
    sysctls: {
      expireQuiescentTemplate: s.expire_quiescent_template === 1,
      connReuseMode: s.conn_reuse_mode ?? 1,
      expireNodestConn: s.expire_nodest_conn === 1,
      lblcExpiration: s.lblc_expiration ?? 86400,
      lblcrExpiration: s.lblcr_expiration ?? 86400,
    },
  };
  return { source: sc, options, servers, flows, events };
}

// ---------------------------------------------------------------------------------------------
// Running

export interface FlowResult {
  index: number;
  /** Chosen server name; null when none (no destination, or the packet was dropped). */
  server: string | null;
  via: FlowOutcome['via'];
  /** Exact outcome distribution for a random scheduler (names; null = no destination). */
  choices?: { server: string | null; probability: number }[];
}

export interface RunResult {
  assignments: (string | null)[];
  flows: FlowResult[];
  warnings: string[];
  service: ServiceModel;
}

export interface RunOptions {
  /** Replace the scheduler model (e.g. a mutant in tests). */
  scheduler?: { name: string; factory: SchedulerFactory };
  /** Seed for random schedulers (overrides the scenario's). */
  seed?: number;
  /**
   * Observed choices (e.g. from a kernel): for a random scheduler the observed server is applied
   * instead of a sample, so the model's state follows the real run. Unknown names count as
   * "not possible" and the model's own sample is used.
   */
  observed?: (string | null)[];
  /** Called after each flow with the model (for traces). */
  onFlow?: (r: FlowResult, svc: ServiceModel) => void;
  /** Record the exact pick distribution of a random scheduler for every flow (implied by observed). */
  recordChoices?: boolean;
}

/** Runs a scenario (raw JSON or resolved) through the reference model. */
export function runScenario(input: unknown, opts: RunOptions = {}): RunResult {
  const rs = isResolved(input) ? input : resolveScenario(input);
  const options: ServiceOptions = { ...rs.options };
  if (opts.scheduler) options.scheduler = opts.scheduler;
  if (opts.seed !== undefined) options.seed = opts.seed;
  options.recordChoices = !!opts.recordChoices || !!opts.observed;
  const svc = new ServiceModel(options);
  const at = (path: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (e instanceof ScenarioError || e instanceof ScenarioErrors) throw e;
      throw new ScenarioError(path, (e as Error).message);
    }
  };
  for (const s of rs.servers) at(s.path, () => svc.addDest({ name: s.name, addr: s.addr, port: s.port, weight: s.weight, upper: s.upper, lower: s.lower, forward: s.forward }));

  const conns: (FlowOutcome['conn'])[] = [];
  // Flows' connections are looked up again only by close and release events.
  const keepConns = rs.events.some((e) => e.op === 'close' || e.op === 'release');
  const assignments: (string | null)[] = [];
  let holdOverride: boolean | null = null;
  const results: FlowResult[] = [];
  let ev = 0;
  const applyEventsBefore = (i: number) => {
    while (ev < rs.events.length && rs.events[ev].before === i) {
      const e = rs.events[ev++];
      at(e.path, () => {
        switch (e.op) {
          case 'edit': svc.editDest(e.server, { weight: e.weight, upper: e.upper, lower: e.lower }); break;
          case 'add': svc.addDest({ name: e.server.name, addr: e.server.addr, port: e.server.port, weight: e.server.weight, upper: e.server.upper, lower: e.server.lower, forward: e.server.forward }); break;
          case 'remove': svc.removeDest(e.server); break;
          case 'close': { const c = conns[e.flow]; if (c) svc.closeConn(c); break; }
          case 'release': for (const c of conns) if (c) svc.closeConn(c); break;
          case 'hold': holdOverride = e.hold; break;
          case 'wait': svc.advance(e.seconds); break;
        }
      });
    }
  };
  for (let i = 0; i < rs.flows.length; i++) {
    applyEventsBefore(i);
    const f = rs.flows[i];
    const flow: FlowSpec = holdOverride === null || f.explicitHold ? f : { ...f, hold: holdOverride };
    let outcome!: FlowOutcome;
    const observed = opts.observed?.[i];
    const choose = opts.observed
      ? (choices: Choice[]) => {
          const hit = choices.find((c) => (c.dest ? c.dest.name : null) === observed && c.probability > 0);
          return hit ? hit.dest : svc.scheduler.schedule({ saddr: f.client, sport: f.cport, daddr: f.dst, dport: f.dport, proto: f.proto });
        }
      : undefined;
    // (The same as at(f.path, ...), without a closure per flow: a million flows per run.)
    try {
      outcome = svc.openFlow(flow, choose);
    } catch (e) {
      if (e instanceof ScenarioConflict) throw new ScenarioError(f.path, `flow ${i}: ${e.message}`);
      if (e instanceof ScenarioError || e instanceof ScenarioErrors) throw e;
      throw new ScenarioError(f.path, (e as Error).message);
    }
    if (keepConns) conns[i] = outcome.conn;
    const server = outcome.dest ? outcome.dest.name : null;
    const r: FlowResult = { index: i, server, via: outcome.via };
    if (outcome.choices) r.choices = outcome.choices.map((c) => ({ server: c.dest ? c.dest.name : null, probability: c.probability }));
    results.push(r);
    assignments.push(server);
    opts.onFlow?.(r, svc);
  }
  applyEventsBefore(rs.flows.length);
  return { assignments, flows: results, warnings: svc.warnings, service: svc };
}

function isResolved(x: unknown): x is ResolvedScenario {
  return x !== null && typeof x === 'object' && 'options' in x && 'flows' in x && 'source' in x;
}

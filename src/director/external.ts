// The "external:PATH" director driver: anyone's implementation judged without writing TypeScript. PATH is
// an executable run inside the director node with a verb as its argument and JSON on stdin; it answers
// JSON on stdout (docs/adapter-protocol.md, version 1). Every reply is validated; a malformed reply, an
// error reply or a hung adapter is an error naming the adapter and the verb. diff() is vslab's own,
// from the adapter's read-back: an adapter cannot declare itself in agreement.
import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { BackendKind, LabNode, RunningLab } from '../backend/types';
import { projectRoot } from '../backend/vm/shares';
import { backgroundClasses } from '../oracle/background';
import type { BackgroundClass } from '../oracle/accounting';
import { LAYER_FIELDS } from '../packet/layers';
import type { ServiceModel } from '../topology/model';
import { diffServices } from './diff';
import {
  type ApplyResult,
  DirectorApplyError,
  type DirectorCapabilities,
  type DirectorConnection,
  type DirectorDifference,
  type DirectorDriver,
  type DirectorService,
  type DirectorServiceStats,
} from './types';

export const ADAPTER_PROTOCOL = 'vslab-director-adapter/1';
export const EXTERNAL_PREFIX = 'external:';
/** How long one verb may take (ms); VSLAB_ADAPTER_TIMEOUT_MS overrides. */
export const ADAPTER_TIMEOUT_MS = Number(process.env.VSLAB_ADAPTER_TIMEOUT_MS) || 60_000;

export type AdapterVerb = 'describe' | 'apply' | 'read' | 'connections' | 'stats' | 'flush';

export class AdapterError extends Error {
  override name = 'AdapterError';
  constructor(readonly adapter: string, readonly verb: string, detail: string) {
    super(`adapter ${adapter}, verb ${verb}: ${detail}`);
  }
}

// ---- reply schemas -------------------------------------------------------------------------------

const str = { type: 'string' };
const int = { type: 'integer', minimum: 0 };
const strs = { type: 'array', items: str };
const family = { enum: [4, 6] };
const endpoint = { type: 'object', required: ['addr', 'port'], properties: { addr: str, port: int } };
const counters = {
  type: 'object', required: ['conns', 'inPkts', 'outPkts', 'inBytes', 'outBytes'],
  properties: Object.fromEntries(['conns', 'inPkts', 'outPkts', 'inBytes', 'outBytes', 'cps', 'inPps', 'outPps', 'inBps', 'outBps'].map((k) => [k, int])),
};
const realServer = {
  type: 'object', required: ['addr', 'port', 'weight', 'method'],
  properties: { addr: str, family, port: int, weight: int, upper: int, lower: int, method: { enum: ['nat', 'dr', 'tun', 'fullnat', 'local', 'proxy'] } },
};
const service = {
  type: 'object', required: ['protocol', 'port', 'scheduler', 'realServers'],
  properties: {
    protocol: { enum: ['tcp', 'udp', 'sctp'] }, family, vip: str, port: int, fwmark: int, scheduler: str, flags: strs,
    persistence: { type: 'object', required: ['timeout'], properties: { timeout: int, netmask: str } }, onePacket: { type: 'boolean' },
    realServers: { type: 'array', items: realServer },
  },
};
const SCHEMAS: Record<AdapterVerb, object> = {
  describe: {
    type: 'object', required: ['protocol', 'implementation', 'capabilities'],
    properties: {
      protocol: { const: ADAPTER_PROTOCOL }, implementation: str,
      capabilities: {
        type: 'object', required: ['protocols', 'families', 'methods', 'schedulers'],
        properties: {
          protocols: { type: 'array', items: { enum: ['tcp', 'udp', 'sctp'] } }, families: { type: 'array', items: family },
          methods: { type: 'array', items: { enum: ['nat', 'dr', 'tun', 'fullnat'] } }, schedulers: strs,
          schedulerFlags: strs, persistence: { type: 'boolean' }, connections: { type: 'boolean' }, stats: { type: 'boolean' },
          rates: { type: 'boolean' }, weightZero: { type: 'boolean' }, thresholds: { type: 'boolean' }, fwmark: { type: 'boolean' }, onePacket: { type: 'boolean' },
          countersFoldMs: { type: 'integer', minimum: 0, maximum: 60000 }, thresholdCounts: { enum: ['active', 'active+inactive'] },
          // Packets the implementation legitimately emits besides the flows (a health-check prober): counted per
          // class by the forwarding suite's packet accounting instead of failing it (docs/conformance.md).
          background: {
            type: 'array',
            items: {
              type: 'object', required: ['name', 'why', 'patterns'], additionalProperties: false,
              properties: {
                name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' }, why: { type: 'string', minLength: 1 },
                patterns: { type: 'array', minItems: 1, items: { type: 'array', minItems: 1, items: { type: 'object', required: ['type'], properties: { type: { enum: Object.keys(LAYER_FIELDS) } } } } },
              },
            },
          },
        },
      },
    },
  },
  apply: { type: 'object', required: ['changes'], properties: { changes: int, log: strs } },
  read: { type: 'object', required: ['services'], properties: { services: { type: 'array', items: service } } },
  connections: {
    type: 'object', required: ['connections'],
    properties: { connections: { type: 'array', items: { type: 'object', required: ['protocol', 'client', 'virtual', 'realServer', 'state'], properties: { protocol: str, family, client: endpoint, virtual: endpoint, realServer: endpoint, state: str, expires: int, template: { type: 'boolean' } } } } },
  },
  stats: {
    type: 'object', required: ['services'],
    properties: { services: { type: 'array', items: { type: 'object', required: ['vip', 'port', 'protocol', 'counters', 'realServers'], properties: { protocol: str, vip: str, port: int, counters, realServers: { type: 'array', items: { type: 'object', required: ['addr', 'port', 'counters'], properties: { addr: str, port: int, counters, activeConns: int, inactiveConns: int } } } } } } },
  },
  flush: { type: 'object' },
};
const ERROR_SCHEMA = { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: str, message: str } } } };

let validators: Record<AdapterVerb | 'error', ValidateFunction> | undefined;
function validator(verb: AdapterVerb | 'error'): ValidateFunction {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const all: Array<[string, object]> = [...Object.entries(SCHEMAS), ['error', ERROR_SCHEMA]];
    validators = Object.fromEntries(all.map(([k, sc]) => [k, ajv.compile(sc)])) as Record<AdapterVerb | 'error', ValidateFunction>;
  }
  return validators![verb];
}
const explain = (errs: ErrorObject[] | null | undefined) => (errs ?? []).slice(0, 5).map((e) => `${e.instancePath || '(reply)'} ${e.message}`).join('; ');

// ---- the driver ----------------------------------------------------------------------------------

/** Runs one verb of an adapter inside a node: the protocol's transport, validation and timeout. */
export async function callAdapter(node: LabNode, adapter: string, verb: AdapterVerb, request: object, timeoutMs = ADAPTER_TIMEOUT_MS): Promise<unknown> {
  const r = await node.exec(adapterArgv(adapter, verb), { input: JSON.stringify({ protocol: ADAPTER_PROTOCOL, node: node.name, ...request }), timeoutMs });
  if (r.timedOut) throw new AdapterError(adapter, verb, `no answer within ${timeoutMs / 1000} s (killed)`);
  let reply: unknown;
  try {
    reply = JSON.parse(r.stdout);
  } catch {
    const shown = r.stdout.trim().slice(0, 200);
    throw new AdapterError(adapter, verb, `${r.code !== 0 ? `exit ${r.code}, ` : ''}reply is not JSON: ${shown ? JSON.stringify(shown) : '(nothing on stdout)'}${r.stderr.trim() ? `; stderr: ${r.stderr.trim().slice(0, 300)}` : ''}`);
  }
  if (r.code !== 0) {
    if (!validator('error')(reply)) throw new AdapterError(adapter, verb, `exit ${r.code} without an {"error": {"code", "message"}} reply (${explain(validator('error').errors)})`);
    const e = (reply as { error: { code: string; message: string } }).error;
    throw new AdapterError(adapter, verb, `error ${e.code}: ${e.message}`);
  }
  const v = validator(verb);
  if (!v(reply)) throw new AdapterError(adapter, verb, `malformed reply: ${explain(v.errors)}`);
  return reply;
}

/** A Node script (its first line names node) runs with vslab's node, which every node of every backend has. */
function adapterArgv(adapter: string, verb: string): string[] {
  let head = '';
  try {
    head = fs.readFileSync(adapter, 'utf8').slice(0, 100).split('\n')[0];
  } catch {
    /* reported when it is run */
  }
  return /^#!.*\bnode\b/.test(head) ? [process.execPath, adapter, verb] : [adapter, verb];
}

type Described = {
  implementation: string;
  capabilities: Partial<Omit<DirectorCapabilities, 'background'>> & Pick<DirectorCapabilities, 'protocols' | 'families' | 'methods' | 'schedulers'>
    & { background?: Array<Omit<BackgroundClass, 'declaredBy'>> };
};

export class ExternalDirector implements DirectorDriver {
  readonly kind: string;
  private described?: Promise<Described>;
  private caps?: DirectorCapabilities;

  constructor(private readonly n: LabNode, readonly adapter: string) {
    this.kind = `${EXTERNAL_PREFIX}${adapter}`;
  }

  get node(): string {
    return this.n.name;
  }

  private call(verb: AdapterVerb, request: object = {}): Promise<unknown> {
    return callAdapter(this.n, this.adapter, verb, request);
  }

  private describe(): Promise<Described> {
    this.described ??= this.call('describe') as Promise<Described>;
    return this.described;
  }

  async capabilities(): Promise<DirectorCapabilities> {
    const d = await this.describe();
    const c = d.capabilities;
    const background: BackgroundClass[] = (c.background ?? []).map((b) => ({ name: b.name, why: b.why, declaredBy: `adapter ${this.adapter}`, patterns: b.patterns }));
    try {
      backgroundClasses(background);
    } catch (e) {
      throw new AdapterError(this.adapter, 'describe', (e as Error).message);
    }
    return this.caps = {
      kind: this.kind, implementation: `${d.implementation} (adapter ${this.adapter})`,
      protocols: c.protocols, families: c.families, methods: c.methods, schedulers: c.schedulers,
      schedulerFlags: c.schedulerFlags ?? [], tunnelTypes: c.methods.includes('tun') ? ['ipip'] : [], tunnelFlags: [], mixedFamilyTunnels: false,
      persistence: c.persistence ?? false, persistenceEngines: [], onePacket: c.onePacket ?? false, fwmark: c.fwmark ?? false,
      thresholds: c.thresholds ?? false, weightZero: c.weightZero ?? false, stats: c.stats ?? false, rates: c.rates ?? false, connections: c.connections ?? false,
      ...(c.countersFoldMs !== undefined ? { countersFoldMs: c.countersFoldMs } : {}), ...(c.thresholdCounts ? { thresholdCounts: c.thresholdCounts } : {}),
      ...(background.length ? { background } : {}),
    };
  }

  /** Declines, from describe() (capabilities() is awaited before services are sorted), what the adapter cannot do. */
  unsupported(s: ServiceModel): string | undefined {
    const c = this.caps;
    if (!c) return 'the adapter was not asked to describe itself yet';
    const methods = [...new Set(s.realServers.map((r) => r.method))].filter((m) => !c.methods.includes(m));
    if (methods.length) return `method ${methods.join('/')}: the adapter describes ${c.methods.join(', ')}`;
    if (!c.schedulers.includes(s.scheduler)) return `scheduler ${s.scheduler}: the adapter describes ${c.schedulers.join(', ')}`;
    if (!c.protocols.includes(s.protocol)) return `protocol ${s.protocol}: the adapter describes ${c.protocols.join(', ')}`;
    if (!c.families.includes(s.family)) return `IPv${s.family}: the adapter describes IPv${c.families.join('/IPv')}`;
    if (s.persistence && !c.persistence) return 'persistence: the adapter does not describe it';
    if (s.fwmark !== undefined && !c.fwmark) return 'fwmark services: the adapter does not describe them';
    const tunnel = s.realServers.find((r) => r.tunnel && r.tunnel.type !== 'ipip');
    if (tunnel) return `${tunnel.tunnel!.type} tunnels: the protocol's version 1 carries ipip only`;
    return undefined;
  }

  async apply(services: ServiceModel[]): Promise<ApplyResult> {
    const foreign = services.filter((s) => s.director !== this.node);
    if (foreign.length) throw new DirectorApplyError(this.node, foreign.map((s) => `service ${s.name} is directed by ${s.director}, not ${this.node}`));
    const r = await this.call('apply', { services }) as { changes: number; log?: string[] };
    return { changes: r.changes, log: r.log ?? [], differences: await this.diff(services) };
  }

  async readBack(services: ServiceModel[] = []): Promise<DirectorService[]> {
    const r = await this.call('read') as { services: DirectorService[] };
    return r.services.map((s) => {
      const want = services.find((x) => x.protocol === s.protocol && x.port === s.port && (x.vip && s.vip ? canonicalOrSame(x.vip) === canonicalOrSame(s.vip) : x.fwmark === s.fwmark));
      return { ...s, flags: s.flags ?? [], onePacket: s.onePacket ?? false, family: s.family ?? (s.vip?.includes(':') ? 6 : 4), name: want?.name, realServers: s.realServers.map((x) => ({ ...x, upper: x.upper ?? 0, lower: x.lower ?? 0, family: x.family ?? (x.addr.includes(':') ? 6 : 4) })) };
    });
  }

  async diff(services: ServiceModel[]): Promise<DirectorDifference[]> {
    return diffServices(services, await this.readBack(services));
  }

  async stats(services: ServiceModel[] = []): Promise<DirectorServiceStats[]> {
    const r = await this.call('stats') as { services: Array<{ protocol: string; vip: string; port: number; counters: DirectorServiceStats['counters']; realServers: Array<{ addr: string; port: number; counters: DirectorServiceStats['counters']; activeConns?: number; inactiveConns?: number }> }> };
    const zero = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
    return r.services.map((s) => ({
      service: services.find((x) => x.vip && canonicalOrSame(x.vip) === canonicalOrSame(s.vip) && x.port === s.port && x.protocol === s.protocol)?.name ?? `${s.protocol}/${s.vip}/${s.port}`,
      counters: { ...zero, ...s.counters },
      realServers: s.realServers.map((x) => ({ addr: x.addr, port: x.port, counters: { ...zero, ...x.counters }, activeConns: x.activeConns ?? 0, inactiveConns: x.inactiveConns ?? 0, persistConns: 0 })),
    }));
  }

  async connections(): Promise<DirectorConnection[]> {
    const r = await this.call('connections') as { connections: Array<Omit<DirectorConnection, 'realServer' | 'family' | 'expires' | 'template'> & { family?: 4 | 6; expires?: number; template?: boolean; realServer: { addr: string; port: number; family?: 4 | 6 } }> };
    return r.connections.map((c) => {
      const fam = c.family ?? (c.client.addr.includes(':') ? 6 : 4);
      return { ...c, family: fam, expires: c.expires ?? 0, template: c.template ?? false, realServer: { ...c.realServer, family: c.realServer.family ?? fam } };
    });
  }

  async flush(): Promise<void> {
    await this.call('flush');
  }

  async close(): Promise<void> {
    /* the adapter holds nothing between calls */
  }
}

function canonicalOrSame(a: string): string {
  return a.toLowerCase().replace(/^\[|\]$/g, '');
}

/** Resolves external:PATH; the path must be an executable file, and inside the project on the vm backend (its only share). */
export function resolveAdapter(name: string): string {
  const p = path.resolve(name.slice(EXTERNAL_PREFIX.length));
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new Error(`${name}: no adapter file ${p}`);
  if (!(st.mode & 0o111)) throw new Error(`${name}: ${p} is not executable (chmod +x it)`);
  return p;
}

export function externalUnavailable(name: string, backend: BackendKind): string | undefined {
  let p: string;
  try {
    p = resolveAdapter(name);
  } catch (e) {
    return (e as Error).message;
  }
  const root = projectRoot();
  if (backend === 'vm' && path.relative(root, p).startsWith('..')) return `${p} is outside ${root}, the only host directory the VM guest sees: put the adapter there`;
  return undefined;
}

export async function openExternal(name: string, lab: RunningLab, node: string): Promise<ExternalDirector> {
  return new ExternalDirector(lab.node(node), resolveAdapter(name));
}

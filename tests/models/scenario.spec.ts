import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { parseAddress, maskAddress } from '../../src/models/address';
import { resolveScenario, runScenario, ScenarioErrors, type Scenario } from '../../src/models/scenario';
import { SCENARIO_SCHEMA } from '../../src/models/scenario-schema';
import { SCHEDULER_NAMES } from '../../src/models/scheduler';

const DIR = path.join(__dirname, '../../suites/schedulers/scenarios');
const FILES = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const load = (f: string): Scenario => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8'));

const BASIC = {
  scheduler: 'wrr',
  flags: [],
  service: { proto: 'tcp', vip: '198.19.0.100', port: 80 },
  servers: [
    { name: 'rs1', addr: '198.18.1.11', port: 80, weight: 4 },
    { name: 'rs2', addr: '198.18.1.12', port: 80, weight: 3 },
  ],
  flows: [{ client: '198.18.0.2', cport: 40000 }, { client: '198.18.0.2', cport: 40001 }],
  hold: true,
};

function errorsOf(data: unknown): string[] {
  try {
    resolveScenario(data);
  } catch (e) {
    if (e instanceof ScenarioErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}

test.describe('scenario files', () => {
  test('there is at least one scenario for every scheduler, and every flag is exercised', () => {
    const all = FILES.map(load);
    for (const s of SCHEDULER_NAMES) expect(all.some((x) => x.scheduler === s), s).toBe(true);
    const flags = new Set(all.flatMap((x) => x.flags ?? []));
    for (const f of ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port']) expect(flags.has(f), f).toBe(true);
    expect(all.some((x) => 'fwmark' in x.service)).toBe(true);
    expect(all.some((x) => x.service && 'persistence' in x.service)).toBe(true);
    expect(all.some((x) => x.service && 'onePacket' in x.service)).toBe(true);
    expect(all.some((x) => JSON.stringify(x).includes('2001:db8'))).toBe(true);
  });

  for (const f of FILES) {
    test(`${f}: valid, named after its file, only lab addresses, no timing-sensitive step${load(f).expect ? ', hand-checked expectation holds' : ''}`, () => {
      const sc = load(f);
      expect(sc.name).toBe(f.replace(/\.json$/, ''));
      const labV4 = maskAddress(parseAddress('198.18.0.0'), 15).text;
      const addrs: string[] = [];
      const walk = (x: unknown): void => {
        if (Array.isArray(x)) x.forEach(walk);
        else if (x && typeof x === 'object') {
          for (const [k, v] of Object.entries(x)) {
            if (['addr', 'client', 'dst', 'vip', 'clients', 'dsts'].includes(k) && typeof v === 'string') addrs.push(v);
            else walk(v);
          }
        }
      };
      walk(sc);
      expect(addrs.length).toBeGreaterThan(0);
      for (const q of addrs) {
        const a = parseAddress(q.split('/')[0]);
        if (a.family === 4) expect(maskAddress(a, 15).text, q).toBe(labV4);
        else expect(maskAddress(a, 32).text, q).toBe('2001:db8::');
      }
      const r = runScenario(sc);
      expect(r.warnings).toEqual([]);
      if (sc.expect) expect(r.assignments).toEqual(sc.expect);
    });
  }

  test('the JSON Schema file shipped with the scenarios matches the one in the code', () => {
    const shipped = JSON.parse(fs.readFileSync(path.join(DIR, 'schema', 'scenario.schema.json'), 'utf8'));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(SCENARIO_SCHEMA)));
  });
});

test.describe('scenario format', () => {
  test('the basic format runs as specified (servers in add order, hold, flows)', () => {
    expect(runScenario(BASIC).assignments).toEqual(['rs2', 'rs1']);
  });

  test('hold defaults to true; generated flows are reproducible and distinct', () => {
    const { hold: _h, ...noHold } = BASIC;
    expect(runScenario(noHold).service.findDest('rs2')!.activeConns).toBe(1);
    const gen = { ...BASIC, scheduler: 'sh', flows: [{ generate: { count: 500, seed: 9, clients: '198.18.64.0/18' } }] };
    const a = resolveScenario(gen).flows.map((f) => `${f.client.text}:${f.cport}`);
    const b = resolveScenario(gen).flows.map((f) => `${f.client.text}:${f.cport}`);
    expect(a).toEqual(b);
    expect(new Set(a).size).toBe(500);
    expect(a.every((x) => x.startsWith('198.18.') && Number(x.split('.')[2]) >= 64 && Number(x.split('.')[2]) < 128)).toBe(true);
  });

  test('a fwmark service as in {"fwmark":1}: flows may omit dst unless the scheduler hashes it', () => {
    expect(runScenario({ ...BASIC, service: { fwmark: 1 } }).assignments).toEqual(['rs2', 'rs1']);
    const lblc = { ...BASIC, scheduler: 'lblc', service: { fwmark: 1 }, flows: [{ client: '198.18.0.2', cport: 1, dst: '198.19.5.1' }] };
    expect(runScenario(lblc).assignments).toEqual(['rs2']);
  });

  test('events apply before the flow they name, in file order for the same flow', () => {
    const sc = {
      ...BASIC,
      scheduler: 'rr',
      flows: Array.from({ length: 4 }, (_, i) => ({ client: '198.18.0.2', cport: 40000 + i })),
      events: [
        { before: 2, op: 'edit', server: 'rs2', weight: 0 },
        { before: 2, op: 'edit', server: 'rs2', weight: 1 },
        { before: 3, op: 'remove', server: 'rs1' },
      ],
    };
    expect(runScenario(sc).assignments).toEqual(['rs2', 'rs1', 'rs2', 'rs2']);
  });

  test('a hold event sets the default for later flows; a flow\'s own hold wins', () => {
    const sc = {
      ...BASIC,
      scheduler: 'lc',
      flows: [
        { client: '198.18.0.2', cport: 1 },
        { client: '198.18.0.2', cport: 2 },
        { client: '198.18.0.2', cport: 3, hold: true },
        { client: '198.18.0.2', cport: 4 },
      ],
      events: [{ before: 1, op: 'hold', hold: false }],
    };
    const svc = runScenario(sc).service;
    // lc (list rs2, rs1): rs2 held (256); rs1 closed (1); rs1 held (1 < 256 -> 257); rs2 closed (256 < 257)
    expect(svc.snapshot().map((d) => [d.name, d.active, d.inactive])).toEqual([['rs2', 1, 1], ['rs1', 1, 1]]);
    expect(runScenario(sc).assignments).toEqual(['rs2', 'rs1', 'rs1', 'rs2']);
  });

  const bad: [string, unknown, RegExp][] = [
    ['missing servers', { ...BASIC, servers: undefined }, /^\$: missing required field "servers"/],
    ['unknown scheduler', { ...BASIC, scheduler: 'wrrr' }, /^\$\.scheduler: must be one of "rr"/],
    ['negative weight', { ...BASIC, servers: [{ ...BASIC.servers[0], weight: -1 }] }, /^\$\.servers\[0\]\.weight: must be >= 0/],
    ['typo in a server field', { ...BASIC, servers: [{ ...BASIC.servers[0], wieght: 1 }] }, /^\$\.servers\[0\]: (unknown field "wieght"|missing required field "weight")/],
    ['bad address', { ...BASIC, servers: [{ ...BASIC.servers[0], addr: '198.18.1' }] }, /^\$\.servers\[0\]\.addr: not an IPv4 or IPv6 address: "198\.18\.1"/],
    ['family mismatch', { ...BASIC, flows: [{ client: '2001:db8::2', cport: 1 }] }, /^\$\.flows\[0\]\.client: 2001:db8::2 is IPv6 but the service is IPv4/],
    ['flag of another scheduler', { ...BASIC, flags: ['sh-port'] }, /^\$\.flags\[0\]: sh-port only applies to the sh scheduler/],
    ['lower above upper', { ...BASIC, servers: [{ ...BASIC.servers[0], upper: 2, lower: 3 }] }, /^\$\.servers\[0\]: lower threshold 3 is above upper threshold 2/],
    ['duplicate server name', { ...BASIC, servers: [BASIC.servers[0], { ...BASIC.servers[1], name: 'rs1' }] }, /^\$\.servers\[1\]\.name: duplicate server name "rs1"/],
    ['one-packet on TCP', { ...BASIC, service: { ...BASIC.service, onePacket: true } }, /^\$\.service\.onePacket: one-packet scheduling applies to UDP/],
    ['dst on a VIP service', { ...BASIC, flows: [{ client: '198.18.0.2', cport: 1, dst: '198.19.0.7' }] }, /^\$\.flows\[0\]\.dst: a VIP service only sees packets to its VIP/],
    ['dh on fwmark without dst', { ...BASIC, scheduler: 'dh', service: { fwmark: 3 } }, /^\$\.flows\[0\]: dh hashes the destination address: a flow of a fwmark service needs "dst"/],
    ['edit of a removed server', { ...BASIC, events: [{ before: 0, op: 'remove', server: 'rs1' }, { before: 1, op: 'edit', server: 'rs1', weight: 2 }] }, /^\$\.events\[1\]\.server: no server named "rs1" exists at this point/],
    ['close of a future flow', { ...BASIC, events: [{ before: 1, op: 'close', flow: 1 }] }, /^\$\.events\[0\]\.flow: flow 1 is not opened yet before flow 1/],
    ['event after the end', { ...BASIC, events: [{ before: 9, op: 'release' }] }, /^\$\.events\[0\]\.before: there are only 2 flows/],
    ['unknown event field', { ...BASIC, events: [{ before: 1, op: 'wait', secs: 3 }] }, /^\$\.events\[0\]: (unknown field "secs"|missing required field "seconds")/],
    ['persistence netmask', { ...BASIC, service: { ...BASIC.service, persistence: { netmask: '255.0.255.0' } } }, /^\$\.service\.persistence\.netmask: netmask 255\.0\.255\.0 is not contiguous/],
    ['expect of the wrong length', { ...BASIC, expect: ['rs1'] }, /^\$\.expect: has 1 entries but the scenario has 2 flows/],
    ['service field typo', { ...BASIC, service: { ...BASIC.service, vipp: 1 } }, /^\$\.service: unknown field "vipp"/],
  ];
  for (const [what, data, re] of bad) {
    test(`bad input is reported with its JSON path: ${what}`, () => {
      const errs = errorsOf(data);
      expect(errs.length, `no error for ${what}`).toBeGreaterThan(0);
      expect(errs.some((m) => re.test(m)), `errors were:\n${errs.join('\n')}`).toBe(true);
    });
  }

  test('all problems are listed, not only the first', () => {
    const errs = errorsOf({ ...BASIC, servers: [{ ...BASIC.servers[0], weight: -1 }, { ...BASIC.servers[1], port: 0 }] });
    expect(errs).toEqual(expect.arrayContaining([expect.stringMatching(/servers\[0\]\.weight/), expect.stringMatching(/servers\[1\]\.port/)]));
  });
});

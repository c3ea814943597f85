// Property-based fuzzing (fast-check, seeded, time-bounded) of the four loaders a user feeds files to
// (issue 11): every generated input either loads or is refused with the loader's own error type naming
// where (file:line:col, a JSON path, a byte offset) — nothing throws anything else, nothing takes more
// than a second. Inputs are valid files with random edits, and random values written as YAML/JSON.
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import * as fs from 'fs';
import * as path from 'path';
import { stringify } from 'yaml';
import { CaptureFormatError } from '../../src/capture/errors';
import { openCaptureBuffer } from '../../src/capture/open';
import { PcapWriter } from '../../src/capture/pcap';
import { PcapngWriter } from '../../src/capture/pcapng';
import { MemorySink } from '../../src/capture/sink';
import { ScenarioError, ScenarioErrors, resolveScenario } from '../../src/models/scenario';
import { parseJsonText } from '../../src/cli/commands/predict';
import { buildPacket } from '../../src/packet/build';
import { PacketDecoder } from '../../src/packet/decode';
import { ExpectationFileError, validateExpectationFile } from '../../src/packet/rundir';
import { loadTopologyText, TopologyError } from '../../src/topology/load';

const ROOT = path.join(__dirname, '..', '..');
/** Fixed, so a failure reproduces; fast-check prints the counterexample and its path. */
const SEED = 0x11f022;
/** Each property stops generating after this long (the suite's time budget), and every input must finish within a second. */
const BUDGET_MS = Number(process.env.VSLAB_FUZZ_MS ?? 6000);
const PER_INPUT_MS = 1000;

const params = (numRuns = 100_000) => ({ seed: SEED, numRuns, interruptAfterTimeLimit: BUDGET_MS, markInterruptAsFailure: false });

/** Runs f and fails when it used more than PER_INPUT_MS of CPU (CPU time, not wall time: other people's
 *  labs share this machine's two cores, and waiting for them is not the loader's doing). */
function timed<T>(f: () => T): T {
  const t0 = process.cpuUsage();
  try {
    return f();
  } finally {
    const d = process.cpuUsage(t0);
    const ms = (d.user + d.system) / 1000;
    if (ms > PER_INPUT_MS) throw new Error(`took ${ms.toFixed(0)} ms of CPU (limit ${PER_INPUT_MS} ms)`);
  }
}

/** Random edits of a text: insert, delete or replace short runs with characters that matter to YAML/JSON. */
const SPECIAL = [...'{}[]:,-#&*!|>\'"%@`\n \t.0123456789/\\'];
function mutated(text: string): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat({ max: text.length }),
    del: fc.nat({ max: 8 }),
    ins: fc.oneof(fc.string({ maxLength: 6 }), fc.array(fc.constantFrom(...SPECIAL), { maxLength: 6 }).map((a) => a.join(''))),
  });
  return fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => edits.reduce((t, e) => t.slice(0, Math.min(e.at, t.length)) + e.ins + t.slice(Math.min(e.at, t.length) + e.del), text));
}

function checkTopology(text: string): void {
  try {
    timed(() => loadTopologyText(text, 'fuzz.yaml'));
  } catch (e) {
    if (!(e instanceof TopologyError)) throw new Error(`threw ${(e as Error).name}: ${(e as Error).message}`);
    expect(e.diagnostics.length).toBeGreaterThan(0);
    for (const d of e.diagnostics) {
      expect(d.file).toBe('fuzz.yaml');
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.col).toBeGreaterThanOrEqual(1);
      expect(d.message.length).toBeGreaterThan(0);
    }
  }
}

test.describe.configure({ timeout: 120_000 });

test('fuzz: the topology loader loads or locates every problem', () => {
  const texts = ['nat.yaml', 'dr.yaml', 'tun.yaml', 'fullnat.yaml'].map((f) => fs.readFileSync(path.join(ROOT, 'topologies', f), 'utf8'));
  checkTopology(texts[0]); // compiles the schema outside the timed inputs
  const node = fc.record({ role: fc.constantFrom('client', 'director', 'real-server', 'router', 'x'), sysctls: fc.option(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer()))) }, { requiredKeys: ['role'] });
  const structured = fc.record({
    name: fc.oneof(fc.constant('fz'), fc.string()),
    nodes: fc.dictionary(fc.oneof(fc.constantFrom('c1', 'd1', 'rs1', 'r1'), fc.string({ maxLength: 8 })), node, { maxKeys: 6 }),
    segments: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.record({ ipv4: fc.option(fc.oneof(fc.constant('198.18.0.0/24'), fc.string(), fc.boolean())), members: fc.array(fc.oneof(fc.constantFrom('c1', 'd1', 'rs1'), fc.anything()), { maxLength: 4 }) }), { maxKeys: 4 })),
    services: fc.option(fc.array(fc.anything(), { maxLength: 3 })),
  });
  fc.assert(fc.property(fc.oneof(...texts.map(mutated), fc.anything().map((v) => stringify(v)), structured.map((v) => stringify(v))), checkTopology), params());
});

test('fuzz: the scenario loader resolves or names a JSON path', () => {
  const dir = path.join(ROOT, 'suites', 'schedulers', 'scenarios');
  const texts = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).slice(0, 6).map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  expect(texts.length).toBeGreaterThan(0);
  const check = (text: string) => {
    try {
      timed(() => resolveScenario(parseJsonText(text, 'fuzz.json')));
    } catch (e) {
      if (e instanceof ScenarioErrors) for (const x of e.errors) expect(x.path).toMatch(/^\$/);
      else if (e instanceof ScenarioError) expect(e.path).toMatch(/^(\$|fuzz\.json)/);
      else throw new Error(`threw ${(e as Error).name}: ${(e as Error).message}`);
    }
  };
  try { resolveScenario(JSON.parse(texts[0])); } catch { /* compiles the schema outside the timed inputs */ }
  fc.assert(fc.property(fc.oneof(...texts.map(mutated), fc.jsonValue().map((v) => JSON.stringify(v))), check), params());
});

test('fuzz: the expectation loader accepts or names a JSON path', () => {
  const good = {
    version: 1, testId: 't', capture: 'capture.pcapng', decode: { guePort: 6080 },
    expectations: [
      { id: 'a', link: 'c:eth0', layers: [{ type: 'eth' }, { type: 'ipv4', dst: '198.19.0.1', ttl: 64 }, { type: 'tcp', flags: 'S' }], ignore: ['ipv4.id'], count: { min: 1, max: 2 }, after: '1.5' },
      { id: 'b', link: 'd:eth1', layers: [{ type: 'eth' }], mode: 'absent' },
    ],
    verdicts: { a: 'pass', b: 'fail' },
  };
  const check = (text: string) => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return; // not JSON: the reader reports the parser's message with the file name
    }
    try {
      timed(() => validateExpectationFile(v, 'fuzz.json'));
    } catch (e) {
      if (!(e instanceof ExpectationFileError)) throw new Error(`threw ${(e as Error).name}: ${(e as Error).message}`);
      expect(e.message).toMatch(/^fuzz\.json: \$/);
    }
  };
  check(JSON.stringify(good));
  expect(() => validateExpectationFile(good, 'fuzz.json')).not.toThrow();
  fc.assert(fc.property(fc.oneof(mutated(JSON.stringify(good, null, 1)), fc.jsonValue().map((v) => JSON.stringify(v)), fc.jsonValue().map((v) => JSON.stringify({ ...good, expectations: [v] }))), check), params());
});

test('fuzz: the pcap and pcapng readers read or name a byte offset inside the file', () => {
  const pkts = [
    buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.19.0.1' }, { type: 'tcp', flags: 'S', options: [{ name: 'mss', value: 1460 }] }]),
    buildPacket([{ type: 'eth' }, { type: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { type: 'udp', dport: 6080 }, { type: 'gue' }, { type: 'ipv4' }, { type: 'udp' }]),
  ];
  const pcap = new MemorySink();
  const pw = new PcapWriter(pcap, { nanosecond: true });
  pkts.forEach((p, i) => pw.writePacket(1764000000, i, p));
  pw.close();
  const ng = new MemorySink();
  const nw = new PcapngWriter(ng);
  const i0 = nw.addInterface({ linkType: 1, name: 'c:eth0', snapLen: 65535 });
  pkts.forEach((p, i) => nw.writePacket(i0, 1764000000, i, p));
  nw.close();
  const check = (buf: Buffer) => {
    timed(() => {
      try {
        const r = openCaptureBuffer(buf, 'fuzz');
        const dec = new PacketDecoder({ payload: true });
        while (r.next()) dec.decode(r.data, r.dataOff, r.capLen, r.interfaces[r.ifIndex]?.linkType ?? 1, r.origLen);
      } catch (e) {
        if (!(e instanceof CaptureFormatError)) throw new Error(`threw ${(e as Error).name}: ${(e as Error).message}`);
        expect(e.offset).toBeGreaterThanOrEqual(0);
        expect(e.offset).toBeLessThanOrEqual(buf.length);
      }
    });
  };
  const bytes = (base: Buffer) => fc.array(fc.record({ at: fc.nat({ max: base.length - 1 }), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 12 })
    .chain((flips) => fc.nat({ max: base.length }).map((cut) => {
      const b = Buffer.from(base);
      for (const f of flips) b[f.at] = f.v;
      return b.subarray(0, cut);
    }));
  fc.assert(fc.property(fc.oneof(bytes(pcap.toBuffer()), bytes(ng.toBuffer()), fc.uint8Array({ maxLength: 256 }).map((a) => Buffer.from(a))), check), params());
});

// The run-directory format for packet expectations, shared by the conformance runner (which writes it)
// and `vslab replay` (which re-evaluates it offline):
//   <run-dir>/<test-id>/expectations.json   ExpectationFile below
//   <run-dir>/<test-id>/capture.pcapng      all links of the test merged, interfaces named "node:iface"
import * as fs from 'fs';
import * as path from 'path';
import { decodeCaptureWithInterfaces } from './capturefile';
import { evaluateExpectation, parseMask, type ExpectationResult, type PacketExpectation } from './expect';

export const EXPECTATIONS_FILE = 'expectations.json';
export const CAPTURE_FILE = 'capture.pcapng';
export const EXPECTATIONS_VERSION = 1;

export type Verdict = 'pass' | 'fail';

export interface ExpectationFile {
  version: 1;
  testId: string;
  title?: string;
  /** Capture file relative to the test directory (default capture.pcapng). */
  capture?: string;
  /** Decoder settings the verdicts were computed with. */
  decode?: { guePort?: number; vxlanPort?: number };
  expectations: PacketExpectation[];
  /** Verdict per expectation id as the live run computed it. */
  verdicts?: Record<string, Verdict>;
}

export class ExpectationFileError extends Error {
  override name = 'ExpectationFileError';
}

function check(cond: unknown, file: string, where: string, what: string): asserts cond {
  if (!cond) throw new ExpectationFileError(`${file}: ${where}: ${what}`);
}

const LAYER_TYPES = new Set(['eth', 'vlan', 'sll', 'sll2', 'null', 'arp', 'ipv4', 'ipv6', 'gre', 'udp', 'gue', 'vxlan', 'tcp', 'icmp', 'icmpv6', 'payload']);

/** Checks the shape of a parsed expectations.json, naming the JSON path of the first problem. */
export function validateExpectationFile(v: unknown, file = EXPECTATIONS_FILE): ExpectationFile {
  const o = v as Record<string, unknown>;
  check(o && typeof o === 'object' && !Array.isArray(o), file, '$', 'must be an object');
  check(o.version === EXPECTATIONS_VERSION, file, '$.version', `must be ${EXPECTATIONS_VERSION} (found ${JSON.stringify(o.version)})`);
  check(typeof o.testId === 'string' && o.testId, file, '$.testId', 'must be a non-empty string');
  check(o.capture === undefined || typeof o.capture === 'string', file, '$.capture', 'must be a string');
  check(Array.isArray(o.expectations), file, '$.expectations', 'must be an array');
  const ids = new Set<string>();
  (o.expectations as unknown[]).forEach((e, i) => {
    const w = `$.expectations[${i}]`;
    const x = e as Record<string, unknown>;
    check(x && typeof x === 'object', file, w, 'must be an object');
    check(typeof x.id === 'string' && x.id, file, `${w}.id`, 'must be a non-empty string');
    check(!ids.has(x.id as string), file, `${w}.id`, `"${x.id}" is used twice`);
    ids.add(x.id as string);
    check(typeof x.link === 'string' && x.link, file, `${w}.link`, 'must be a "node:iface" string');
    check(Array.isArray(x.layers), file, `${w}.layers`, 'must be an array');
    (x.layers as unknown[]).forEach((l, j) => {
      const t = (l as Record<string, unknown>)?.type;
      check(typeof t === 'string' && LAYER_TYPES.has(t), file, `${w}.layers[${j}].type`, `must be one of ${[...LAYER_TYPES].join(', ')} (found ${JSON.stringify(t)})`);
    });
    check(x.mode === undefined || x.mode === 'present' || x.mode === 'absent', file, `${w}.mode`, 'must be "present" or "absent"');
    check(x.ignore === undefined || (Array.isArray(x.ignore) && x.ignore.every((m) => typeof m === 'string')), file, `${w}.ignore`, 'must be an array of strings');
    for (const [k, m] of ((x.ignore as string[] | undefined) ?? []).entries()) {
      try {
        parseMask(m);
      } catch (err) {
        throw new ExpectationFileError(`${file}: ${w}.ignore[${k}]: ${(err as Error).message}`);
      }
    }
  });
  if (o.verdicts !== undefined) {
    check(typeof o.verdicts === 'object' && !Array.isArray(o.verdicts), file, '$.verdicts', 'must be an object of id -> "pass" | "fail"');
    for (const [k, val] of Object.entries(o.verdicts as object)) check(val === 'pass' || val === 'fail', file, `$.verdicts.${k}`, 'must be "pass" or "fail"');
  }
  return o as unknown as ExpectationFile;
}

export function readExpectationFile(testDir: string): ExpectationFile {
  const file = path.join(testDir, EXPECTATIONS_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ExpectationFileError(`${file}: ${(e as Error).message}`);
  }
  return validateExpectationFile(parsed, file);
}

export function writeExpectationFile(testDir: string, f: ExpectationFile): string {
  validateExpectationFile(f, path.join(testDir, EXPECTATIONS_FILE));
  fs.mkdirSync(testDir, { recursive: true });
  const file = path.join(testDir, EXPECTATIONS_FILE);
  fs.writeFileSync(file, JSON.stringify(f, null, 2) + '\n');
  return file;
}

export interface TestReplay {
  testId: string;
  dir: string;
  results: ExpectationResult[];
  /** Expectation ids whose replayed verdict differs from the recorded one. */
  disagreements: Array<{ id: string; recorded: Verdict; replayed: Verdict }>;
  ok: boolean;
}

/** Evaluates a test directory's expectations against its capture. */
export function replayTestDir(testDir: string): TestReplay {
  const f = readExpectationFile(testDir);
  const capture = path.join(testDir, f.capture ?? CAPTURE_FILE);
  // Interfaces that captured nothing still count as captured links.
  const { packets, interfaces: links } = decodeCaptureWithInterfaces(capture, { ...f.decode, payload: true });
  const results = f.expectations.map((e) => evaluateExpectation(e, packets, links));
  const disagreements: TestReplay['disagreements'] = [];
  for (const r of results) {
    const rec = f.verdicts?.[r.id];
    const now: Verdict = r.ok ? 'pass' : 'fail';
    if (rec && rec !== now) disagreements.push({ id: r.id, recorded: rec, replayed: now });
  }
  return { testId: f.testId, dir: testDir, results, disagreements, ok: results.every((r) => r.ok) && disagreements.length === 0 };
}

/** Test directories under a run directory (the directory itself if it holds an expectations file). */
export function findTestDirs(runDir: string, depth = 3): string[] {
  if (fs.existsSync(path.join(runDir, EXPECTATIONS_FILE))) return [runDir];
  if (depth === 0) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(runDir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) out.push(...findTestDirs(path.join(runDir, e.name), depth - 1));
  }
  return out;
}

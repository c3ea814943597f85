// The run-directory format for packet expectations, shared by the conformance runner (which writes it)
// and `vslab replay` (which re-evaluates it offline):
//   <run-dir>/<test-id>/expectations.json   ExpectationFile below
//   <run-dir>/<test-id>/capture.pcapng      all links of the test merged, interfaces named "node:iface"
import * as fs from 'fs';
import * as path from 'path';
import { decodeCaptureWithInterfaces } from './capturefile';
import { evaluateExpectation, parseMask, type ExpectationResult, type PacketExpectation } from './expect';
import { COMMON_FIELDS, LAYER_FIELDS, valueHasKind, type FieldKind, type LayerType } from './layers';

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

const LAYER_TYPES = new Set(Object.keys(LAYER_FIELDS));
const EXPECTATION_KEYS = new Set(['id', 'description', 'link', 'layers', 'ignore', 'mode', 'count', 'after', 'before']);
const TOP_KEYS = new Set(['version', 'testId', 'title', 'capture', 'decode', 'expectations', 'verdicts']);
/** "seconds[.fraction]" with at most nanosecond precision, as packet timestamps are written. */
const TIMESTAMP = /^\d{1,12}(\.\d{1,9})?$/;
const jsonKey = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);

function checkKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>, file: string, where: string, what: string): void {
  for (const k of Object.keys(o)) check(allowed.has(k), file, `${where}${jsonKey(k)}`, `unknown ${what} field "${k}" (known: ${[...allowed].join(', ')})`);
}

/** A capture path must name a file inside its test directory. */
export function captureInside(testDir: string, capture: string | undefined, file: string): string {
  const rel = capture ?? CAPTURE_FILE;
  const abs = path.resolve(testDir, rel);
  const inside = (dir: string, p: string) => p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
  check(!path.isAbsolute(rel) && inside(path.resolve(testDir), abs), file, '$.capture', `${JSON.stringify(rel)} must be a file inside the test directory`);
  if (fs.existsSync(abs)) check(inside(fs.realpathSync(testDir), fs.realpathSync(abs)), file, '$.capture', `${JSON.stringify(rel)} resolves (through a link) outside the test directory`);
  return abs;
}

/** Checks the shape of a parsed expectations.json, naming the JSON path of the first problem. */
export function validateExpectationFile(v: unknown, file = EXPECTATIONS_FILE): ExpectationFile {
  const o = v as Record<string, unknown>;
  check(o && typeof o === 'object' && !Array.isArray(o), file, '$', 'must be an object');
  check(o.version === EXPECTATIONS_VERSION, file, '$.version', `must be ${EXPECTATIONS_VERSION} (found ${JSON.stringify(o.version)})`);
  check(typeof o.testId === 'string' && o.testId, file, '$.testId', 'must be a non-empty string');
  checkKeys(o, TOP_KEYS, file, '$', 'expectations-file');
  check(o.capture === undefined || typeof o.capture === 'string', file, '$.capture', 'must be a string');
  if (o.capture !== undefined) captureInside('.', o.capture as string, file);
  if (o.decode !== undefined) {
    check(o.decode && typeof o.decode === 'object' && !Array.isArray(o.decode), file, '$.decode', 'must be an object');
    const d = o.decode as Record<string, unknown>;
    checkKeys(d, new Set(['guePort', 'vxlanPort']), file, '$.decode', 'decode');
    for (const k of ['guePort', 'vxlanPort']) check(d[k] === undefined || (Number.isInteger(d[k]) && (d[k] as number) >= 1 && (d[k] as number) <= 65535), file, `$.decode.${k}`, 'must be a port number 1-65535');
  }
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
    checkKeys(x, EXPECTATION_KEYS, file, w, 'expectation');
    (x.layers as unknown[]).forEach((l, j) => {
      const lw = `${w}.layers[${j}]`;
      check(l && typeof l === 'object' && !Array.isArray(l), file, lw, 'must be an object with a "type"');
      const layer = l as Record<string, unknown>;
      const t = layer.type;
      check(typeof t === 'string' && LAYER_TYPES.has(t), file, `${lw}.type`, `must be one of ${[...LAYER_TYPES].join(', ')} (found ${JSON.stringify(t)})`);
      const known: Record<string, FieldKind> = { ...COMMON_FIELDS, ...LAYER_FIELDS[t as LayerType] };
      for (const [k, v] of Object.entries(layer)) {
        if (k === 'type' || v === undefined) continue;
        check(k in known, file, `${lw}${jsonKey(k)}`, `a ${t} layer has no field "${k}" (its fields: ${Object.keys(LAYER_FIELDS[t as LayerType]).join(', ')})`);
        check(valueHasKind(v, known[k]), file, `${lw}${jsonKey(k)}`, `must be ${known[k].replace(/-/g, ' ')} (found ${JSON.stringify(v)})`);
      }
    });
    if (x.count !== undefined) {
      check(x.count && typeof x.count === 'object' && !Array.isArray(x.count), file, `${w}.count`, 'must be an object {min?, max?}');
      const c = x.count as Record<string, unknown>;
      checkKeys(c, new Set(['min', 'max']), file, `${w}.count`, 'count');
      for (const k of ['min', 'max']) check(c[k] === undefined || (Number.isSafeInteger(c[k]) && (c[k] as number) >= 0), file, `${w}.count.${k}`, `must be a whole number >= 0 (found ${JSON.stringify(c[k])})`);
      check(c.min === undefined || c.max === undefined || (c.min as number) <= (c.max as number), file, `${w}.count`, `min ${c.min} is above max ${c.max}`);
      check(x.mode !== 'absent', file, `${w}.count`, 'an absent expectation takes no count');
    }
    for (const k of ['after', 'before']) check(x[k] === undefined || (typeof x[k] === 'string' && TIMESTAMP.test(x[k] as string)), file, `${w}.${k}`, `must be a timestamp "seconds.nanoseconds" such as "1764000000.000001000" (found ${JSON.stringify(x[k])})`);
    check(x.description === undefined || typeof x.description === 'string', file, `${w}.description`, 'must be a string');
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
    for (const [k, val] of Object.entries(o.verdicts as object)) check(val === 'pass' || val === 'fail', file, `$.verdicts${jsonKey(k)}`, 'must be "pass" or "fail"');
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
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(f, null, 2) + '\n');
  fs.renameSync(tmp, file);
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
  const capture = captureInside(testDir, f.capture, path.join(testDir, EXPECTATIONS_FILE));
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

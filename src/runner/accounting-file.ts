// The packet-accounting record of a test in the run directory, <run>/<test-id>/accounting.json: what the
// live run judged with (explainers, background classes) and its verdict, so `vslab replay` re-decides it
// from the saved capture alone (src/oracle/accounting.ts does the deciding).
import * as fs from 'fs';
import * as path from 'path';
import { accountPackets, type Accounting, type BackgroundClass, type Explainer } from '../oracle/accounting';
import type { DecodedPacket } from '../packet/layers';

export const ACCOUNTING_FILE = 'accounting.json';

export interface AccountingFile {
  version: 1;
  testId: string;
  /** Capture file relative to the test directory, and the decoder settings. */
  capture: string;
  decode?: { guePort?: number };
  background: BackgroundClass[];
  explainers: Explainer[];
  /** The live verdict: ok, and the frames of the first causes. */
  verdict: { ok: boolean; causes: number[]; counts: Accounting['counts'] };
}

export class AccountingFileError extends Error {
  override name = 'AccountingFileError';
}

export function writeAccountingFile(testDir: string, f: AccountingFile): string {
  fs.mkdirSync(testDir, { recursive: true });
  const file = path.join(testDir, ACCOUNTING_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(f) + '\n');
  fs.renameSync(tmp, file);
  return file;
}

/** The test directory's accounting record; undefined for runs saved before packet accounting existed. */
export function readAccountingFile(testDir: string): AccountingFile | undefined {
  const file = path.join(testDir, ACCOUNTING_FILE);
  if (!fs.existsSync(file)) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new AccountingFileError(`${file}: ${(e as Error).message}`);
  }
  const bad = (where: string, what: string) => new AccountingFileError(`${file}: ${where}: ${what}`);
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw bad('$', 'must be an object');
  if (o.version !== 1) throw bad('$.version', `must be 1 (found ${JSON.stringify(o.version)})`);
  if (typeof o.testId !== 'string' || typeof o.capture !== 'string') throw bad('$', 'needs a string testId and capture');
  if (!Array.isArray(o.background)) throw bad('$.background', 'must be an array of classes');
  (o.background as unknown[]).forEach((c, i) => {
    const x = c as Record<string, unknown>;
    if (!x || typeof x.name !== 'string' || !Array.isArray(x.patterns) || !(x.patterns as unknown[]).every(Array.isArray)) throw bad(`$.background[${i}]`, 'needs a name and patterns (arrays of layers)');
  });
  if (!Array.isArray(o.explainers)) throw bad('$.explainers', 'must be an array');
  (o.explainers as unknown[]).forEach((e, i) => {
    const x = e as Record<string, unknown>;
    const ex = x?.expectation as Record<string, unknown> | undefined;
    if (!ex || typeof ex.id !== 'string' || typeof ex.link !== 'string' || !Array.isArray(ex.layers) || typeof x.once !== 'boolean') throw bad(`$.explainers[${i}]`, 'needs an expectation (id, link, layers) and once');
  });
  const v = o.verdict as Record<string, unknown> | undefined;
  if (!v || typeof v.ok !== 'boolean' || !Array.isArray(v.causes)) throw bad('$.verdict', 'needs ok and causes');
  return o as unknown as AccountingFile;
}

export interface AccountingReplay {
  testId: string;
  accounting: Accounting;
  recordedOk: boolean;
  /** The replayed verdict differs from the recorded one. */
  disagrees: boolean;
  /** The first causes differ from the recorded ones (the same verdict reached by another vslab version's rules, say). */
  causesDiffer: boolean;
}

/** Re-decides a test's accounting from its saved capture and record. */
export function replayAccounting(testDir: string, f: AccountingFile, decoded: { packets: DecodedPacket[]; links: string[] }): AccountingReplay {
  const accounting = accountPackets({ packets: decoded.packets, links: decoded.links, explainers: f.explainers, background: f.background });
  const causes = accounting.causes.map((c) => c.index);
  return { testId: f.testId, accounting, recordedOk: f.verdict.ok, disagrees: accounting.ok !== f.verdict.ok, causesDiffer: JSON.stringify(causes) !== JSON.stringify(f.verdict.causes) };
}

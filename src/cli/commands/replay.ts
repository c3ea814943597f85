// `vslab replay <run-dir>`: re-evaluate a finished run's recorded packet expectations on its saved
// captures, offline, and check that the verdicts are the ones the run recorded.
import type { Writable } from 'stream';
import { CaptureFormatError } from '../../capture/errors';
import { renderAccounting } from '../../oracle/accounting';
import { AccountingFileError, readAccountingFile, replayAccounting, type AccountingReplay } from '../../runner/accounting-file';
import { decodeCaptureWithInterfaces } from '../../packet/capturefile';
import { renderResult } from '../../packet/expect';
import { EXPECTATIONS_FILE, ExpectationFileError, findTestDirs, replayTestDir, type TestReplay } from '../../packet/rundir';
import { UsageError, type CliCommand } from '../command';
import * as fs from 'fs';
import * as path from 'path';

const USAGE = `usage: vslab replay <run-dir> [--json] [--all]
  Re-evaluates every <run-dir>/<test-id>/${EXPECTATIONS_FILE} against that test's capture.pcapng and prints
  each verdict (with a decoded field-by-field diff for failures). --all also lists matching fields.
  Packet accounting (every captured packet expected, background or a consequence) is re-decided from
  <test-id>/accounting.json; runs saved before it existed have none: their packets are not accounted,
  which is said, not failed.
  Exit 0: every expectation and every accounting agrees with the verdict the run recorded, and holds,
  except in tests the run itself reported as known failures (read from <run-dir>/results.json when there
  is one); 1: otherwise.`;

/** Test statuses a \`vslab test\` run recorded in its results.json (none for a bare expectations directory). */
function recordedStatuses(runDir: string): Map<string, string> {
  const file = path.join(runDir, 'results.json');
  const out = new Map<string, string>();
  if (!fs.existsSync(file)) return out;
  let r: { tests?: Array<{ id?: unknown; status?: unknown }> };
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file}: ${(e as Error).message}`);
  }
  if (!Array.isArray(r.tests)) throw new UsageError(`${file}: $.tests: must be an array (is this a vslab test run directory?)`);
  for (const [i, t] of r.tests.entries()) {
    if (typeof t.id !== 'string' || typeof t.status !== 'string') throw new UsageError(`${file}: $.tests[${i}]: needs a string id and status`);
    out.set(t.id, t.status);
  }
  return out;
}

export async function runReplay(args: string[], io: { out: Writable; err: Writable }): Promise<number> {
  const json = args.includes('--json');
  const all = args.includes('--all');
  const unknown = args.filter((a) => a.startsWith('-') && a !== '--json' && a !== '--all');
  if (unknown.length) throw new UsageError(`unknown option ${unknown[0]}\n${USAGE}`);
  const pos = args.filter((a) => !a.startsWith('-'));
  if (pos.length !== 1) throw new UsageError(USAGE);
  const runDir = pos[0];
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw new UsageError(`${runDir} is not a directory`);
  const dirs = findTestDirs(runDir);
  if (!dirs.length) throw new UsageError(`no ${EXPECTATIONS_FILE} found under ${runDir}`);
  const statuses = recordedStatuses(runDir);
  const known = (r: TestReplay): boolean => statuses.get(r.testId) === 'known-failure';
  const replays: TestReplay[] = [];
  const accounted = new Map<string, AccountingReplay>();
  for (const d of dirs) {
    try {
      const r = replayTestDir(d);
      replays.push(r);
      const f = readAccountingFile(d);
      if (f) {
        const { packets, interfaces } = decodeCaptureWithInterfaces(path.join(d, f.capture), { ...f.decode, payload: true });
        accounted.set(r.testId, replayAccounting(d, f, { packets, links: interfaces }));
      }
    } catch (e) {
      if (e instanceof ExpectationFileError || e instanceof CaptureFormatError || e instanceof AccountingFileError) throw new UsageError(e.message);
      const err = e as NodeJS.ErrnoException;
      if (err.code && err.syscall) throw new UsageError(`${d}: ${err.message}`);
      throw e;
    }
  }
  if (json) {
    io.out.write(JSON.stringify(replays.map((r) => {
      const a = accounted.get(r.testId);
      return {
        testId: r.testId, dir: r.dir, ok: r.ok, recordedStatus: statuses.get(r.testId), disagreements: r.disagreements, results: r.results,
        accounting: a ? { recordedOk: a.recordedOk, disagrees: a.disagrees, ...a.accounting } : { absent: 'saved before packet accounting: no accounting.json, no background classes; packets not accounted' },
      };
    }), null, 2) + '\n');
  } else {
    const color = (io.out as unknown as { isTTY?: boolean }).isTTY === true;
    for (const r of replays) {
      const failed = r.results.filter((x) => !x.ok).length;
      io.out.write(`test ${r.testId} (${r.dir}): ${r.results.length - failed} passed, ${failed} failed${known(r) ? ' (a known failure in the run)' : ''}\n`);
      for (const x of r.results) io.out.write(renderResult(x, { color, all }).replace(/^/gm, '  ') + '\n');
      for (const d of r.disagreements) io.out.write(`  DISAGREES with the recorded verdict: ${d.id} was ${d.recorded} in the run, ${d.replayed} now\n`);
      const a = accounted.get(r.testId);
      if (!a) io.out.write('  packet accounting: none recorded (a run saved before packet accounting; background classes absent): packets not accounted\n');
      else {
        io.out.write(renderAccounting(a.accounting).replace(/^/gm, '  ') + '\n');
        if (a.disagrees) io.out.write(`  DISAGREES with the recorded accounting: it was ${a.recordedOk ? 'pass' : 'fail'} in the run\n`);
        else if (a.causesDiffer) io.out.write('  (same verdict as the run, but not the same first causes: the run was judged by other accounting rules)\n');
      }
    }
    const total = replays.reduce((a, r) => a + r.results.length, 0);
    const failed = replays.reduce((a, r) => a + r.results.filter((x) => !x.ok).length, 0);
    const dis = replays.reduce((a, r) => a + r.disagreements.length, 0);
    const inKnown = replays.filter((r) => known(r) && r.results.some((x) => !x.ok));
    const knownNote = inKnown.length ? ` (${inKnown.reduce((a, r) => a + r.results.filter((x) => !x.ok).length, 0)} of them in the run's known failure(s): ${inKnown.map((r) => r.testId).join(', ')})` : '';
    const acc = [...accounted.values()];
    const bg: Record<string, number> = {};
    for (const a of acc) for (const [k, v] of Object.entries(a.accounting.counts.background)) bg[k] = (bg[k] ?? 0) + v;
    const accDis = acc.filter((a) => a.disagrees).length;
    io.out.write(`${replays.length} test(s), ${total} expectation(s): ${total - failed} passed, ${failed} failed${knownNote}, ${dis + accDis} disagreement(s) with recorded verdicts\n`);
    io.out.write(acc.length
      ? `packet accounting: ${acc.length} test(s), ${acc.filter((a) => !a.accounting.ok).length} with unexpected packets; ${acc.reduce((n, a) => n + a.accounting.total, 0)} packets: `
        + `${acc.reduce((n, a) => n + a.accounting.counts.expected, 0)} expected, ${acc.reduce((n, a) => n + a.accounting.counts.unexpected, 0)} unexpected, `
        + `${acc.reduce((n, a) => n + a.accounting.counts.consequence, 0)} consequences, background ${Object.entries(bg).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`
        + `${replays.length > acc.length ? `; ${replays.length - acc.length} test(s) without a record (saved before packet accounting)` : ''}\n`
      : 'packet accounting: none recorded (a run saved before packet accounting; background classes absent): packets not accounted\n');
  }
  const accountingOk = (r: TestReplay) => {
    const a = accounted.get(r.testId);
    return !a || (!a.disagrees && (a.accounting.ok || known(r)));
  };
  return replays.every((r) => r.disagreements.length === 0 && (r.results.every((x) => x.ok) || known(r)) && accountingOk(r)) ? 0 : 1;
}

export const command: CliCommand = {
  name: 'replay',
  summary: "Re-evaluate a finished run's packet expectations offline on its saved captures",
  usage: USAGE,
  run: (args) => runReplay(args, { out: process.stdout, err: process.stderr }),
};

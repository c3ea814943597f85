// `vslab replay <run-dir>`: re-evaluate a finished run's recorded packet expectations on its saved
// captures, offline, and check that the verdicts are the ones the run recorded.
import type { Writable } from 'stream';
import { CaptureFormatError } from '../../capture/errors';
import { renderResult } from '../../packet/expect';
import { EXPECTATIONS_FILE, ExpectationFileError, findTestDirs, replayTestDir, type TestReplay } from '../../packet/rundir';
import { UsageError, type CliCommand } from '../command';
import * as fs from 'fs';

const USAGE = `usage: vslab replay <run-dir> [--json] [--all]
  Re-evaluates every <run-dir>/<test-id>/${EXPECTATIONS_FILE} against that test's capture.pcapng and prints
  each verdict (with a decoded field-by-field diff for failures). --all also lists matching fields.
  Exit 0: every expectation holds and agrees with the recorded verdict; 1: a failure or a disagreement.`;

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
  const replays: TestReplay[] = [];
  for (const d of dirs) {
    try {
      replays.push(replayTestDir(d));
    } catch (e) {
      if (e instanceof ExpectationFileError || e instanceof CaptureFormatError) throw new UsageError(e.message);
      const err = e as NodeJS.ErrnoException;
      if (err.code && err.syscall) throw new UsageError(`${d}: ${err.message}`);
      throw e;
    }
  }
  if (json) {
    io.out.write(JSON.stringify(replays.map((r) => ({ testId: r.testId, dir: r.dir, ok: r.ok, disagreements: r.disagreements, results: r.results })), null, 2) + '\n');
  } else {
    const color = (io.out as unknown as { isTTY?: boolean }).isTTY === true;
    for (const r of replays) {
      const failed = r.results.filter((x) => !x.ok).length;
      io.out.write(`test ${r.testId} (${r.dir}): ${r.results.length - failed} passed, ${failed} failed\n`);
      for (const x of r.results) io.out.write(renderResult(x, { color, all }).replace(/^/gm, '  ') + '\n');
      for (const d of r.disagreements) io.out.write(`  DISAGREES with the recorded verdict: ${d.id} was ${d.recorded} in the run, ${d.replayed} now\n`);
    }
    const total = replays.reduce((a, r) => a + r.results.length, 0);
    const failed = replays.reduce((a, r) => a + r.results.filter((x) => !x.ok).length, 0);
    const dis = replays.reduce((a, r) => a + r.disagreements.length, 0);
    io.out.write(`${replays.length} test(s), ${total} expectation(s): ${total - failed} passed, ${failed} failed, ${dis} disagreement(s) with recorded verdicts\n`);
  }
  return replays.every((r) => r.ok) ? 0 : 1;
}

export const command: CliCommand = {
  name: 'replay',
  summary: "Re-evaluate a finished run's packet expectations offline on its saved captures",
  usage: USAGE,
  run: (args) => runReplay(args, { out: process.stdout, err: process.stderr }),
};

// Writing report.html: gather (src/report/data.ts), draw (src/report/html.ts), write through a temporary
// file and a rename so a reader never sees half a report and a user's file is never overwritten in place.
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_LIMITS, loadReport, type ReportLimits } from './data';
import { renderReport } from './html';

export const REPORT_FILE = 'report.html';

export function writeReport(runDirs: string[], outFile: string, limits: ReportLimits = DEFAULT_LIMITS): { file: string; bytes: number } {
  const file = path.resolve(outFile);
  const html = renderReport(loadReport(runDirs, limits, path.dirname(file)));
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, file);
  return { file, bytes: Buffer.byteLength(html) };
}

/** Writes report.html into a finished run directory and says so; a report that cannot be drawn does not undo the run. */
export function reportIntoRun(dir: string): string {
  try {
    const r = writeReport([dir], path.join(dir, REPORT_FILE));
    return `report: ${r.file} (${(r.bytes / 1024).toFixed(0)} KiB)`;
  } catch (e) {
    return `report: not written (${(e as Error).message.split('\n')[0]}); \`vslab report ${dir}\` retries`;
  }
}

// The HTML report of a finished run: time to write it, its size, and its open time in Debian's chromium
// (navigation start to the first frame after the load event), median of 5 opens, against the anchor of
// the same browser opening a one-line page in the same run.
// Run: node bench/run.js report-open RUN_DIR   (e.g. the run directory of a full forwarding run)
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium } from 'playwright-core';
import { writeReport } from '../src/report';

const TARGET_MS = 2000;
const TARGET_BYTES = 5 * 1024 * 1024;
const OPENS = 5;

async function main(): Promise<void> {
  const runDir = process.argv[2];
  if (!runDir || !fs.existsSync(path.join(runDir, 'results.json'))) {
    console.error('usage: node bench/run.js report-open RUN_DIR (a vslab test run directory)');
    process.exit(2);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-bench-report-'));
  try {
    const file = path.join(tmp, 'report.html');
    const t0 = performance.now();
    const { bytes } = writeReport([runDir], file);
    const writeMs = performance.now() - t0;
    const blank = path.join(tmp, 'blank.html');
    fs.writeFileSync(blank, '<!doctype html><title>blank</title><p>blank</p>');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const open = async (f: string): Promise<number> => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(`file://${f}`, { waitUntil: 'load' });
      const ms = await page.evaluate(() => new Promise<number>((r) => requestAnimationFrame(() => r(performance.now()))));
      await page.close();
      return ms;
    };
    const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const report: number[] = [];
    const anchor: number[] = [];
    for (let i = 0; i < OPENS; i++) {
      anchor.push(await open(blank));
      report.push(await open(file));
    }
    await browser.close();
    const r = median(report);
    const a = median(anchor);
    const tests = JSON.parse(fs.readFileSync(path.join(runDir, 'results.json'), 'utf8')).tests.length;
    console.log(`run: ${runDir} (${tests} tests)`);
    console.log(`report written in ${writeMs.toFixed(0)} ms`);
    console.log(`size: ${(bytes / 1024 / 1024).toFixed(2)} MB (target <= ${TARGET_BYTES / 1024 / 1024} MB: ${bytes <= TARGET_BYTES ? 'met' : 'MISSED'})`);
    console.log(`open (median of ${OPENS}): ${r.toFixed(0)} ms; anchor (one-line page, same browser): ${a.toFixed(0)} ms; ratio ${(r / a).toFixed(1)}x (target < ${TARGET_MS} ms: ${r < TARGET_MS ? 'met' : 'MISSED'})`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

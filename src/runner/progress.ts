// A terminal progress line for long runs (vslab test on a TTY): tests done / total, failures so far, the
// suite file and lab being worked on, elapsed time. Fed Playwright's list-reporter output; failed tests
// stay on screen above the line, everything else is folded into it.
import * as fs from 'fs';
import * as path from 'path';
import { LAB_RECORD_DIR } from './labs';

const RESULT = /^\s*([✓✘-])\s+\d+\s+(\S+?):\d+:\d+\s+›\s+(.*?)(?:\s+\(([\d.]+m?s)\))?\s*$/;
const RUNNING = /^Running (\d+) tests? using/;

export interface ProgressSink {
  write(s: string): void;
}

export class ProgressLine {
  private total?: number;
  private done = 0;
  private failed = 0;
  private current = '';
  private rest = '';
  private timer?: NodeJS.Timeout;
  private shown = false;

  constructor(private readonly sink: ProgressSink, private readonly runDir?: string, private readonly now: () => number = () => Date.now(), private readonly t0 = now()) {}

  /** Refreshes the elapsed time once a second until stop(). */
  start(): void {
    this.timer = setInterval(() => this.render(), 1000);
    this.timer.unref();
  }

  feed(chunk: string): void {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop() ?? '';
    for (const l of lines) this.line(l);
    this.render();
  }

  private line(l: string): void {
    const run = RUNNING.exec(l.trim());
    if (run) this.total = Number(run[1]);
    const m = RESULT.exec(l);
    if (!m) return;
    this.done++;
    this.current = m[2];
    if (m[1] === '✘') {
      this.failed++;
      this.clear();
      this.sink.write(`${l.trim()}\n`);
    }
  }

  /** The lab prepared last (its record is written when it is ready). */
  private lab(): string | undefined {
    if (!this.runDir) return undefined;
    const dir = path.join(this.runDir, LAB_RECORD_DIR);
    try {
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs }));
      files.sort((a, b) => b.t - a.t);
      return files[0]?.f.replace(/\.json$/, '');
    } catch {
      return undefined;
    }
  }

  text(): string {
    const s = Math.round((this.now() - this.t0) / 1000);
    const elapsed = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    const lab = this.lab();
    return `[${this.done}/${this.total ?? '?'}]${this.failed ? ` ${this.failed} failed` : ''}${this.current ? ` · ${this.current}` : ''}${lab ? ` · lab ${lab}` : ''} · ${elapsed} elapsed`;
  }

  private render(): void {
    this.sink.write(`\r\x1b[K${this.text()}`);
    this.shown = true;
  }

  private clear(): void {
    if (this.shown) this.sink.write('\r\x1b[K');
    this.shown = false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
  }
}

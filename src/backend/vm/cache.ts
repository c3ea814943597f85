// Where the VM backend keeps what it builds once (kernels, vmlinux, initramfs, the guest agent),
// and a cross-process lock so two test workers never build the same thing at the same time.
import * as fs from 'fs';
import * as path from 'path';
import { pidAlive } from '../../util/process';

/** Root of the VM cache: $VSLAB_CACHE_DIR or /var/cache/vslab. */
export function cacheRoot(): string {
  return process.env.VSLAB_CACHE_DIR || '/var/cache/vslab';
}

export function cacheDir(...parts: string[]): string {
  const d = path.join(cacheRoot(), ...parts);
  fs.mkdirSync(d, { recursive: true });
  return d;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run fn while holding the lock file `name` under the cache root. A lock left by a dead process is
 * taken over. Waits at most waitMs (building a kernel cache can take a minute on a loaded machine).
 */
export async function withCacheLock<T>(name: string, fn: () => Promise<T>, waitMs = 15 * 60_000): Promise<T> {
  const lock = path.join(cacheDir('locks'), `${name}.lock`);
  const start = Date.now();
  for (;;) {
    try {
      const fd = fs.openSync(lock, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = 0;
      try {
        owner = parseInt(fs.readFileSync(lock, 'utf8'), 10) || 0;
      } catch {
        continue;
      }
      if (owner && !pidAlive(owner)) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() - start > waitMs) {
        throw new Error(`cache lock ${lock} is held by process ${owner} for more than ${Math.round(waitMs / 1000)} s; if that process is gone, remove the file`);
      }
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** Write a file atomically (temp file + rename), so readers never see half of it. */
export function writeFileAtomic(file: string, data: string | Buffer, mode?: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, mode !== undefined ? { mode } : undefined);
  fs.renameSync(tmp, file);
}

// Builds the guest agent (guest/agent/*.c) with the host's cc, statically, once per source version.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cacheDir, withCacheLock } from './cache';
import { runToolOk } from './proc';

/** The project's guest/ directory (sources of the agent and /init). */
export function guestSourceDir(): string {
  return path.resolve(__dirname, '..', '..', '..', 'guest');
}

function sourceHash(dir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of fs.readdirSync(dir).sort()) {
    h.update(f).update('\0').update(fs.readFileSync(path.join(dir, f))).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/** Path of the static agent binary, compiling it if this source version was never built. */
export async function buildAgent(progress?: (m: string) => void): Promise<string> {
  const src = path.join(guestSourceDir(), 'agent');
  const hash = sourceHash(src);
  const out = path.join(cacheDir('agent'), `vslab-agent-${hash}`);
  if (fs.existsSync(out)) return out;
  return withCacheLock(`agent-${hash}`, async () => {
    if (fs.existsSync(out)) return out;
    progress?.('compiling the guest agent');
    const tmp = `${out}.tmp-${process.pid}`;
    await runToolOk('cc', ['-static', '-O2', '-Wall', '-o', tmp, path.join(src, 'vslab-agent.c')], 'compiling the guest agent (needs gcc and libc6-dev)');
    fs.renameSync(tmp, out);
    return out;
  });
}

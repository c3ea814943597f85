// Builds the guest's static C programs (guest/<dir>/*.c) with the host's cc, once per source
// version: /init (guest/init), the agent (guest/agent), the first-packet generator (guest/syngen) and the scheduler
// replayer's flow driver and responder (guest/flows).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cacheDir, withCacheLock } from './cache';
import { runToolOk } from './proc';

/** The project's guest/ directory (sources of /init, the agent and the guest programs). */
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

/** Path of a static guest program built from guest/<dir>/<name>.c, compiling it if this source version was never built. */
async function buildGuestProgram(dir: string, name: string, what: string, progress?: (m: string) => void): Promise<string> {
  const src = path.join(guestSourceDir(), dir);
  const hash = sourceHash(src);
  const out = path.join(cacheDir(dir), `${name}-${hash}`);
  if (fs.existsSync(out)) return out;
  return withCacheLock(`${dir}-${hash}`, async () => {
    if (fs.existsSync(out)) return out;
    progress?.(`compiling ${what}`);
    const tmp = `${out}.tmp-${process.pid}`;
    await runToolOk('cc', ['-static', '-O2', '-Wall', '-o', tmp, path.join(src, `${name}.c`)], `compiling ${what} (needs gcc and libc6-dev)`);
    fs.renameSync(tmp, out);
    return out;
  });
}

/** Path of the static /init (guest/init/vslab-init.c). */
export function buildInit(progress?: (m: string) => void): Promise<string> {
  return buildGuestProgram('init', 'vslab-init', 'the guest init', progress);
}

/** Path of the static agent binary. */
export function buildAgent(progress?: (m: string) => void): Promise<string> {
  return buildGuestProgram('agent', 'vslab-agent', 'the guest agent', progress);
}

/** Where the guest image puts the first-packet generator (built by vslab from guest/syngen, not a host tool). */
export const GUEST_SYNGEN = '/usr/sbin/vslab-syngen';

/** Path of the static first-packet generator (guest/syngen/vslab-syngen.c), /usr/sbin/vslab-syngen in the guest. */
export function buildSyngen(progress?: (m: string) => void): Promise<string> {
  return buildGuestProgram('syngen', 'vslab-syngen', 'the guest packet generator', progress);
}

/** Where the guest image puts the scheduler replayer's flow driver (guest/flows/vslab-flowdrv.c). */
export const GUEST_FLOWDRV = '/usr/sbin/vslab-flowdrv';

/** Where the guest image puts the replay labs' responder (guest/flows/vslab-respond.c). */
export const GUEST_RESPOND = '/usr/sbin/vslab-respond';

/** The static guest programs besides the agent, by their path in the guest image. */
export async function buildGuestPrograms(progress?: (m: string) => void): Promise<Array<[string, string]>> {
  return [
    [GUEST_SYNGEN, await buildSyngen(progress)],
    [GUEST_FLOWDRV, await buildGuestProgram('flows', 'vslab-flowdrv', 'the guest flow driver', progress)],
    [GUEST_RESPOND, await buildGuestProgram('flows', 'vslab-respond', 'the guest responder', progress)],
  ];
}

// `vslab gc --prefix`: on a machine several people share, a soak or a test cleans up after its own
// killed labs and leaves everyone else's — even their dead ones — for them (issue 11's kill soak).
import { test, expect } from '@playwright/test';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RUN_DIR, WORK_ROOT } from '../../src/backend/registry';
import { CLI } from '../lab/host';

const vslab = (...args: string[]) => {
  const r = spawnSync(CLI[0], [...CLI.slice(1), ...args], { timeout: 120_000 });
  return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
};
const namespaces = () => execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]);

/** A lab killed while it was being built: its state (owner gone), one namespace and its work directory. */
function deadLab(name: string): void {
  const dead = spawnSync('true').pid!; // a pid that has exited
  const ns = `vslab-${name}--n1`;
  execFileSync('ip', ['netns', 'add', ns]);
  fs.mkdirSync(path.join(RUN_DIR, 'labs'), { recursive: true });
  fs.writeFileSync(path.join(RUN_DIR, 'labs', `${name}.json`), JSON.stringify({
    name, backend: 'netns', topology: 'x.yaml', nodes: ['n1'], namespaces: [ns], createdAt: new Date().toISOString(), ownerPid: dead, status: 'creating', ephemeral: false,
  }));
  fs.mkdirSync(path.join(WORK_ROOT, name), { recursive: true });
}

function exists(name: string): { state: boolean; ns: boolean; workdir: boolean } {
  return { state: fs.existsSync(path.join(RUN_DIR, 'labs', `${name}.json`)), ns: namespaces().includes(`vslab-${name}--n1`), workdir: fs.existsSync(path.join(WORK_ROOT, name)) };
}

test('gc --prefix removes the dead labs named with the prefix and nothing of any other lab, dead or not', async () => {
  const mine = 'h11gcmine';
  const theirs = 'h11gctheirs';
  deadLab(mine);
  deadLab(theirs);
  try {
    const dry = JSON.parse(vslab('gc', '--prefix', 'h11gcm', '--dry-run', '--json').out);
    expect(dry.prefix).toBe('h11gcm');
    expect(dry.found.map((i: { lab?: string }) => i.lab).filter(Boolean).sort()).toEqual([mine, mine, mine]);
    const r = vslab('gc', '--prefix', 'h11gcm', '--json');
    expect(r.code, r.err).toBe(0);
    const rep = JSON.parse(r.out);
    expect(rep.removed.map((i: { kind: string }) => i.kind).sort()).toEqual(['lab-state', 'namespace', 'workdir']);
    expect(rep.clean).toBe(true);
    expect(exists(mine)).toEqual({ state: false, ns: false, workdir: false });
    // The other dead lab is untouched, and an unscoped dry run still sees it.
    expect(exists(theirs)).toEqual({ state: true, ns: true, workdir: true });
    expect(JSON.parse(vslab('gc', '--dry-run', '--json').out).found.some((i: { lab?: string }) => i.lab === theirs)).toBe(true);
  } finally {
    vslab('gc', '--prefix', mine, '--json');
    vslab('gc', '--prefix', theirs, '--json');
  }
  expect(exists(theirs)).toEqual({ state: false, ns: false, workdir: false });
});

test('gc --prefix refuses a prefix that is not a lab name start, and --images with a prefix (exit 2)', async () => {
  for (const args of [['--prefix', 'H11'], ['--prefix', '../x'], ['--prefix', ''], ['--prefix', 'h11', '--images']]) {
    const r = vslab('gc', '--dry-run', ...args);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.err, args.join(' ')).toMatch(/--prefix|--images/);
    expect(r.err).not.toMatch(/\n\s+at /);
  }
});

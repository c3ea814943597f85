// The CI templates in ci/ parse, do what docs/ci.md says (install with the README's first command, cache
// the kernel and initramfs, a shard x kernel matrix, run directories and reports uploaded, JUnit published),
// and every vslab command they run exists with those flags: each is run here with its matrix values, the
// test command as a --list (no lab), the merge on directories that do not exist (a usage error, not an
// unknown option).
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { commands } from '../../src/cli/registry';

const REPO = path.join(__dirname, '..', '..');
const GITHUB = path.join(REPO, 'ci', 'github', 'vslab.yml');
const GITLAB = path.join(REPO, 'ci', 'gitlab', 'vslab.gitlab-ci.yml');

interface Script { where: string; line: string; vars: Record<string, string> }

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Y = any;

function githubScripts(): { doc: Y; scripts: Script[] } {
  const doc = parse(fs.readFileSync(GITHUB, 'utf8'));
  const scripts: Script[] = [];
  for (const [name, job] of Object.entries<Y>(doc.jobs)) {
    const m = job.strategy?.matrix ?? {};
    // The first value of each matrix axis stands for the axis.
    const vars: Record<string, string> = Object.fromEntries(Object.entries<Y>(m).map(([k, v]) => [`matrix.${k}`, String(v[0])]));
    for (const [k, v] of Object.entries<Y>(job.env ?? {})) vars[`env.${k}`] = String(v);
    for (const step of job.steps) if (step.run) for (const line of String(step.run).split('\n').filter((l: string) => l.trim())) scripts.push({ where: `${name}: ${line}`, line, vars });
  }
  return { doc, scripts };
}

function gitlabScripts(): { doc: Y; scripts: Script[] } {
  const doc = parse(fs.readFileSync(GITLAB, 'utf8'));
  const scripts: Script[] = [];
  for (const [name, job] of Object.entries<Y>(doc)) {
    if (!job || typeof job !== 'object' || !Array.isArray(job.script)) continue;
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries<Y>(job.parallel?.matrix?.[0] ?? {})) vars[k] = String(v[0]);
    for (const line of [...(job.before_script ?? []), ...job.script]) scripts.push({ where: `${name}: ${line}`, line: String(line), vars });
  }
  return { doc, scripts };
}

/** The line with its variables filled in (GitHub ${{ matrix.x }} / $RUN_DIR, GitLab $X / "$X"). */
function expand(s: Script): string[] {
  let line = s.line.replace(/\$\{\{\s*([\w.]+)\s*\}\}/g, (_, k: string) => s.vars[k] ?? `<${k}>`);
  const env = (k: string) => s.vars[k] ?? s.vars[`env.${k}`]?.replace(/\$\{\{\s*([\w.]+)\s*\}\}/g, (_x, kk: string) => s.vars[kk] ?? kk);
  line = line.replace(/\$\{?(\w+)\}?/g, (all, k: string) => env(k) ?? all).replace(/"/g, '');
  return line.trim().split(/\s+/);
}

function vslabArgs(words: string[]): string[] | undefined {
  const k = words.findIndex((w, i) => w === 'vslab' && words[i - 1] === 'npx');
  return k < 0 ? undefined : words.slice(k + 1);
}

function run(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'vslab.js'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

function checkCommands(scripts: Script[]): string[] {
  const seen: string[] = [];
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  for (const s of scripts) {
    const words = expand(s);
    const npmRun = words[0] === 'npm' && words[1] === 'run' ? words[2] : undefined;
    if (npmRun) expect(pkg.scripts[npmRun], s.where).toBeTruthy();
    if (words[0] === 'bash') expect(fs.existsSync(path.join(REPO, words[1])), s.where).toBe(true);
    const args = vslabArgs(words);
    if (!args) continue;
    const cmd = commands.find((c) => c.name === args[0]);
    expect(cmd, `${s.where}: no vslab command "${args[0]}"`).toBeTruthy();
    for (const flag of args.filter((a) => a.startsWith('--'))) expect(cmd!.usage, `${s.where}: vslab ${args[0]} has no ${flag}`).toMatch(new RegExp(`${flag}\\b`));
    seen.push(args[0]);
    if (args[0] === 'test') {
      // The same command line as a listing: every option parsed, the shard's tests listed, no lab.
      const outAt = args.indexOf('--out');
      const r = run([...args.filter((_, i) => outAt < 0 || (i !== outAt && i !== outAt + 1)), '--list', '--json']);
      expect(r.status, `${s.where}\n${r.out}`).toBe(0);
      expect(JSON.parse(r.out.slice(r.out.indexOf('['), r.out.lastIndexOf(']') + 1)).length, s.where).toBeGreaterThan(0);
    }
    if (args[0] === 'merge') {
      const r = run(args.map((a) => (a.includes('*') ? path.join(REPO, 'no-such-run-dir') : a)).filter((a, i, all) => !(all[i - 1] === '--out')).filter((a) => a !== '--out'));
      expect(r.status, s.where).toBe(2);
      expect(r.out, s.where).not.toMatch(/Unknown option/);
    }
  }
  return seen;
}

test('the GitHub Actions workflow: install, kernel cache, shard x kernel matrix, artifacts, JUnit; its vslab commands exist', () => {
  const { doc, scripts } = githubScripts();
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const first = /```sh\n([^#\n]+?)\s+#/.exec(readme)![1].trim();
  const c = doc.jobs.conformance;
  expect(c.steps.map((s: Y) => s.run).filter(Boolean)).toContain(first);
  expect(c.strategy.matrix.kernel).toEqual(['bookworm', 'backports']);
  expect(c.strategy.matrix.shard.length).toBeGreaterThan(1);
  const cache = c.steps.find((s: Y) => String(s.uses).startsWith('actions/cache'));
  expect(cache.with.path).toContain('/var/cache/vslab/kernels');
  expect(cache.with.path).toContain('/var/cache/vslab/initramfs');
  expect(c.env.VSLAB_CACHE_DIR).toBe('/var/cache/vslab');
  expect(c.steps.some((s: Y) => String(s.uses).startsWith('actions/upload-artifact') && s.if === 'always()')).toBe(true);
  expect(doc.jobs.merge.steps.some((s: Y) => String(s.uses).includes('junit') && /junit\.xml$/.test(s.with.report_paths))).toBe(true);
  expect(checkCommands(scripts)).toEqual(expect.arrayContaining(['test', 'merge', 'doctor']));
});

test('the GitLab CI file: install, kernel cache, shard x kernel matrix, artifacts, JUnit; its vslab commands exist', () => {
  const { doc, scripts } = gitlabScripts();
  expect(doc.stages).toEqual(['conformance', 'merge']);
  const c = doc.conformance;
  expect(c.script[0]).toBe('npm run quickstart');
  expect(c.parallel.matrix[0].KERNEL).toEqual(['bookworm', 'backports']);
  expect(c.parallel.matrix[0].SHARD.length).toBeGreaterThan(1);
  expect(c.cache.paths).toEqual(expect.arrayContaining(['.vslab-cache/kernels', '.vslab-cache/initramfs']));
  expect(doc.variables.VSLAB_CACHE_DIR).toBe('$CI_PROJECT_DIR/.vslab-cache');
  expect(c.artifacts.when).toBe('always');
  expect(c.artifacts.reports.junit).toBe('run/*/junit.xml');
  expect(doc.merge.artifacts.reports.junit).toBe('merged/*/junit.xml');
  expect(checkCommands(scripts)).toEqual(expect.arrayContaining(['test', 'merge', 'doctor']));
});

#!/usr/bin/env node
// Kill soak: `vslab up`, `vslab down` and `vslab test` killed with SIGKILL at random points, then `vslab gc`;
// after each run, whatever the run left on the host is counted by kind (namespaces, host links, guard routes,
// nft tables, qemu processes, containers, images, files under /run/vslab and the work root, and processes of
// the killed command still running a minute after it was killed).
// Target: 0 of every kind. Then 4 labs brought up and torn down concurrently, 20 times.
//
// Backends are the ones `vslab up --help` offers, so a new backend joins the soak when the CLI offers it;
// one the soak knows of but this build does not offer is reported as not available, not skipped silently.
// Only this soak's labs are counted (names h11soak-*, VMs named with $VSLAB_VM_NAME_PREFIX): other
// people's labs on the machine are neither counted nor touched (`vslab gc --prefix` looks at this soak's labs only).
//
// Usage: node bench/kill-soak.js [runs per backend (50)] [concurrent rounds (20)] [--backends netns,vm]
'use strict';
const { spawn, spawnSync, execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'vslab.js');
const TOPOLOGY = path.join(ROOT, 'topologies', 'nat.yaml');
const RUN_DIR = process.env.VSLAB_RUN_DIR || '/run/vslab';
const WORK_ROOT = process.env.VSLAB_WORK_DIR || '/tmp/vslab';
/** Backends vslab is known to be getting; each is soaked once `vslab up` offers it. */
const KNOWN_BACKENDS = ['netns', 'vm', 'docker'];
const KINDS = ['namespaces', 'links', 'routes', 'nft tables', 'qemu processes', 'containers', 'images', 'files', 'processes'];
/** The test a killed `vslab test` runs: one NAT test, one worker (a VM on the vm backend). */
const TEST_FILE = 'suites/forwarding/nat.spec.ts';
const TEST_GREP = 'tcp4: handshake and data on every hop';

function env() {
  return { ...process.env, VSLAB_VM_NAME_PREFIX: process.env.VSLAB_VM_NAME_PREFIX || 'h11-' };
}

/** The backends `vslab up` offers, read from its usage line ("--backend netns|vm"). */
function offeredBackends() {
  const r = spawnSync(process.execPath, [CLI, 'up', '--help'], { env: env(), encoding: 'utf8' });
  const m = /--backend ([a-z|]+)/.exec(r.stdout || '');
  if (!m) throw new Error(`cannot read the backends from \`vslab up --help\`: ${r.stdout}${r.stderr}`);
  return m[1].split('|');
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 }).toString();
  } catch {
    return '';
  }
}

function docker() {
  return fs.existsSync('/var/run/docker.sock');
}

function filesMatching(dir, has, depth = 3) {
  const out = [];
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (has(e.name)) out.push(p);
    else if (e.isDirectory() && depth > 0) out.push(...filesMatching(p, has, depth - 1));
  }
  return out;
}

function aliveLabs() {
  const r = spawnSync(process.execPath, [CLI, 'ls', '--json'], { env: env(), encoding: 'utf8' });
  try { return JSON.parse(r.stdout).filter((l) => l.alive).map((l) => l.name); } catch { return []; }
}

/**
 * What labs whose names start with `prefix` left on the host, by kind. Guard routes are shared by all
 * labs, so they count only when no lab at all is up (else they are someone's, and not attributable).
 */
function leftovers(prefix, exact = true, runVm) {
  // exact: the lab `prefix` only (h11soak-netns-1 is not h11soak-netns-10); else every lab named prefix*
  const esc = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(exact ? `${esc}(?![a-z0-9]|-[a-z0-9])` : esc);
  const has = (s) => re.test(s);
  const vmPrefix = env().VSLAB_VM_NAME_PREFIX;
  const found = Object.fromEntries(KINDS.map((k) => [k, []]));
  found.namespaces = sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith('vslab-') && has(n));
  found.links = sh('ip', ['-o', 'link']).split('\n').filter(has).map((l) => l.split(':')[1].trim());
  if (aliveLabs().length === 0) {
    const routes = sh('ip', ['route', 'show', 'table', 'all', 'proto', '245']).concat(sh('ip', ['-6', 'route', 'show', 'table', 'all', 'proto', '245'])).split('\n').filter(Boolean);
    if (aliveLabs().length === 0) found.routes = routes; // nobody's lab came up meanwhile
  }
  found['nft tables'] = sh('nft', ['list', 'tables']).split('\n').filter(has);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd = '';
    try { cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8'); } catch { continue; }
    const qemuArgs = /qemu-system/.test(cmd.split('\0')[0]) ? cmd.split('\0') : [];
    if (qemuArgs.some((a) => (a.includes(vmPrefix) && has(a)) || (runVm && a.includes(runVm)))) found['qemu processes'].push(`pid ${d}`);
  }
  if (docker()) {
    found.containers = sh('docker', ['ps', '-aq', '--filter', `label=vslab.lab`, '--format', '{{.ID}} {{.Label "vslab.lab"}}']).split('\n').filter((l) => has(l.split(' ')[1] ?? ''));
    found.images = sh('docker', ['images', '-q', '--filter', `label=vslab.lab`, '--format', '{{.ID}} {{.Label "vslab.lab"}}']).split('\n').filter((l) => has(l.split(' ')[1] ?? ''));
  }
  found.files = [...filesMatching(RUN_DIR, (n) => has(n) || (!!runVm && n.startsWith(runVm))), ...filesMatching(WORK_ROOT, has, 1)];
  return found;
}

/** Processes of a process group (a killed command's children that outlived it). */
function groupMembers(pgid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** Runs the CLI in a process group of its own; killed, the group's survivors are awaited up to `settleMs`. */
function run(args, killAfterMs, extraEnv = {}, settleMs = 60_000) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...env(), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    let killed = false;
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => { killed = true; p.kill('SIGKILL'); }, killAfterMs);
    p.on('exit', async (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      // What it started (test runner, workers, tools) must end by itself once its parent is gone.
      let survivors = groupMembers(p.pid);
      for (const until = Date.now() + settleMs; survivors.length && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 250));
        survivors = groupMembers(p.pid);
      }
      const procs = survivors.map((pid) => { try { return `pid ${pid} ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 3).join(' ')}`; } catch { return `pid ${pid}`; } });
      for (const pid of survivors) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      resolve({ pid: p.pid, code, signal, killed: killed && signal === 'SIGKILL', ms, out, err, survivors: procs });
    });
  });
}

function upArgs(backend, name) {
  return ['up', TOPOLOGY, '--backend', backend, '--name', name, '--director', backend === 'vm' ? 'ipvs' : 'none', '--json'];
}

/** `vslab test` of one NAT test with the director the backend runs (kernel IPVS in the VM, nftables elsewhere). */
function testArgs(backend, out) {
  return ['test', TEST_FILE, '--grep', TEST_GREP, '--backend', backend, '--director', backend === 'vm' ? 'ipvs' : 'nftables', '--workers', '1', '--out', out];
}

/** A `vslab test` run, killed after `killAfterMs` (or not): its labs carry `labPrefix`, its run VMs are vslab-test<pid>-*. */
async function testRun(backend, labPrefix, killAfterMs) {
  const out = fs.mkdtempSync(path.join(require('os').tmpdir(), 'h11soak-test-'));
  // Run VMs get the real labs' prefix (vslab-test<pid>-N): `gc --prefix test<pid>` finds the run's own.
  const r = await run(testArgs(backend, out), killAfterMs, { VSLAB_LAB_NAME_PREFIX: labPrefix, VSLAB_VM_NAME_PREFIX: 'vslab-' });
  fs.rmSync(out, { recursive: true, force: true });
  return r;
}

/** `vslab gc --prefix`: only this soak's labs; other people's dead labs on the machine are theirs to collect. */
function gc(prefix) {
  const r = spawnSync(process.execPath, [CLI, 'gc', '--prefix', prefix, '--json'], { env: env(), encoding: 'utf8', timeout: 120_000 });
  return r.status;
}

function addLeaks(total, found) {
  for (const k of KINDS) total[k] += found[k].length;
}

/**
 * `runs` kill runs on one backend, in turn: `up` killed; `up` finished and `down` killed; `vslab test` killed
 * (`test: false` leaves the third kind out: up and down alternate as before).
 */
async function soakBackend(backend, runs, prefix, log, opts = {}) {
  const withTest = opts.test !== false;
  if (runs === 0) return { backend, runs, killedUp: 0, killedDown: 0, killedTest: 0, finished: 0, upMs: 0, downMs: 0, testMs: 0, leaks: Object.fromEntries(KINDS.map((k) => [k, 0])), examples: [] };
  const leaks = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const examples = [];
  // Calibrate: how long an unkilled up and down take here, so kills land anywhere in them.
  const cal = `${prefix}-${backend}-cal`;
  const up0 = await run(upArgs(backend, cal));
  if (up0.code !== 0) throw new Error(`${backend}: a plain \`vslab up\` fails here (exit ${up0.code}): ${up0.err.trim().split('\n').pop()}`);
  const down0 = await run(['down', cal]);
  const upMs = up0.ms;
  const downMs = Math.max(down0.ms, 200);
  let testMs = 0;
  if (withTest) {
    const t0 = await testRun(backend, `${prefix}-${backend}-calt-`);
    if (t0.code !== 0) throw new Error(`${backend}: a plain \`vslab ${testArgs(backend, 'DIR').join(' ')}\` fails here (exit ${t0.code}): ${(t0.err || t0.out).trim().split('\n').slice(-3).join(' | ')}`);
    testMs = t0.ms;
    gc(`${prefix}-${backend}-calt-`);
  }
  const kinds = withTest ? 3 : 2;
  let killedUp = 0, killedDown = 0, killedTest = 0, finished = 0;
  for (let i = 0; i < runs; i++) {
    const name = `${prefix}-${backend}-${i}`;
    let runVm;
    let survivors = [];
    if (i % kinds === 2) {
      const r = await testRun(backend, `${name}-`, Math.random() * testMs * 1.1);
      if (r.killed) killedTest++; else finished++;
      survivors = r.survivors;
      runVm = `vslab-test${r.pid}-`;
      gc(`test${r.pid}-`);
    } else if (i % kinds === 0) {
      const r = await run(upArgs(backend, name), Math.random() * upMs * 1.2);
      survivors = r.survivors;
      // Killed after its last step, the lab is up (not leaked): it counts as finished, and is taken down.
      const up = aliveLabs().includes(name);
      if (r.killed && !up) killedUp++; else finished++;
      if (up) await run(['down', name]);
    } else {
      const r = await run(upArgs(backend, name));
      if (r.code === 0) {
        const d = await run(['down', name], Math.random() * downMs * 1.2);
        survivors = d.survivors;
        if (d.killed) killedDown++; else finished++;
        // Killed before it changed anything, the lab is still up (not leaked): take it down as a user would.
        if (d.killed && aliveLabs().includes(name)) await run(['down', name]);
      }
    }
    gc(prefix);
    const found = i % kinds === 2 ? leftovers(`${name}-`, false, runVm) : leftovers(name);
    found.processes = survivors;
    addLeaks(leaks, found);
    for (const k of KINDS) if (found[k].length) examples.push(`${name}: ${k}: ${found[k].join(', ')}`);
    log(`  ${backend} run ${i + 1}/${runs}: ${KINDS.map((k) => found[k].length).reduce((a, b) => a + b, 0)} leaked`);
  }
  return { backend, runs, killedUp, killedDown, killedTest, finished, upMs: Math.round(upMs), downMs: Math.round(downMs), testMs: Math.round(testMs), leaks, examples };
}

/** `rounds` times: 4 labs up at once, then all 4 down at once; leaks counted after each round. */
async function soakConcurrent(backend, rounds, prefix, log) {
  const leaks = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const examples = [];
  let failures = 0;
  for (let i = 0; i < rounds; i++) {
    const names = [0, 1, 2, 3].map((k) => `${prefix}-c${i}x${k}`);
    const ups = await Promise.all(names.map((n) => run(upArgs(backend, n))));
    failures += ups.filter((u) => u.code !== 0).length;
    for (const [k, u] of ups.entries()) if (u.code !== 0) examples.push(`${names[k]}: up exited ${u.code}: ${u.err.trim().split('\n').pop()}`);
    const downs = await Promise.all(names.map((n, k) => (ups[k].code === 0 ? run(['down', n]) : Promise.resolve({ code: 0 }))));
    failures += downs.filter((d) => d.code !== 0).length;
    for (const n of names) {
      const found = leftovers(n);
      addLeaks(leaks, found);
      for (const k of KINDS) if (found[k].length) examples.push(`${n}: ${k}: ${found[k].join(', ')}`);
    }
    log(`  concurrent round ${i + 1}/${rounds}: ${ups.filter((u) => u.code === 0).length}/4 up`);
  }
  return { backend, rounds, failures, leaks, examples };
}

function leakLine(leaks) {
  return KINDS.map((k) => `${k} ${leaks[k]}`).join(', ');
}

async function soak(opts = {}) {
  const runs = opts.runs ?? 50;
  const rounds = opts.rounds ?? 20;
  const prefix = opts.prefix ?? 'h11soak';
  const log = opts.log ?? (() => {});
  const offered = offeredBackends();
  const wanted = opts.backends ?? KNOWN_BACKENDS;
  const report = { offered, backends: [], unavailable: [], concurrent: undefined };
  for (const b of wanted) {
    if (!offered.includes(b)) { report.unavailable.push(b); continue; }
    report.backends.push(await soakBackend(b, runs, prefix, log, { test: opts.test }));
  }
  if (rounds > 0) report.concurrent = await soakConcurrent(opts.concurrentBackend ?? 'netns', rounds, prefix, log);
  return report;
}

function print(report) {
  const lines = [];
  for (const b of report.backends) {
    const total = Object.values(b.leaks).reduce((a, x) => a + x, 0);
    lines.push(`${b.backend}: ${b.runs} runs (${b.killedUp} killed in up, ${b.killedDown} killed in down, ${b.killedTest} killed in test, ${b.finished} finished first; up ≈ ${b.upMs} ms, down ≈ ${b.downMs} ms, test ≈ ${b.testMs} ms) -> leaked ${total} (target 0): ${leakLine(b.leaks)}`);
    for (const e of b.examples.slice(0, 10)) lines.push(`    ${e}`);
  }
  for (const u of report.unavailable) lines.push(`${u}: backend not available in this build (vslab up offers: ${report.offered.join(', ')})`);
  if (report.concurrent) {
    const c = report.concurrent;
    const total = Object.values(c.leaks).reduce((a, x) => a + x, 0);
    lines.push(`concurrent (${c.backend}): 4 labs up and down together x ${c.rounds} -> ${c.failures} failed commands, leaked ${total} (target 0): ${leakLine(c.leaks)}`);
    for (const e of c.examples.slice(0, 10)) lines.push(`    ${e}`);
  }
  return lines.join('\n');
}

module.exports = { soak, print, leftovers, offeredBackends, KINDS };

if (require.main === module) {
  const args = process.argv.slice(2);
  const bi = args.indexOf('--backends');
  const backends = bi >= 0 ? args.splice(bi, 2)[1].split(',') : undefined;
  const runs = Number(args[0] ?? 50);
  const rounds = Number(args[1] ?? 20);
  (async () => {
    console.log(`kill soak: ${runs} SIGKILLed runs per backend, then 4 concurrent labs x ${rounds} (VMs named ${env().VSLAB_VM_NAME_PREFIX}*)`);
    const t0 = performance.now();
    const report = await soak({ runs, rounds, backends, log: (m) => process.stderr.write(m + '\n') });
    console.log(print(report));
    console.log(`(${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  })().catch((e) => { console.error(e.message); process.exitCode = 1; });
}

// The host requirements list is the one place that says what vslab runs: every program the code runs is on
// it, scripts/setup.sh installs from it, doctor reports it and the VM image copies its guest tools.
import { expect, test } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FILE_REQUIREMENTS, TOOL_REQUIREMENTS, which } from '../../src/host/requirements';
import { runChecks } from '../../src/cli/commands/doctor';
import { scanCSource, scanShellScript, scanTree, scanTypeScript, type ProgramUse } from './program-scan';

const ROOT = path.resolve(__dirname, '..', '..');
const listed = new Set(TOOL_REQUIREMENTS.map((t) => t.tool));

let scanned: ProgramUse[] | undefined;
function allUses(): ProgramUse[] {
  return scanned ??= [
    ...scanTree(ROOT, ['src', 'suites']),
    ...scanCSource('guest/init/vslab-init.c', fs.readFileSync(path.join(ROOT, 'guest/init/vslab-init.c'), 'utf8')),
  ];
}

test('every program that src/, suites/ and the guest init run is on the host requirements list', () => {
  const unlisted = allUses().filter((u) => !listed.has(u.program)).map((u) => `${u.file}:${u.line}: ${u.program} (${u.how})`);
  expect(unlisted, 'add these to src/host/requirements.json with their Debian package').toEqual([]);
});

test('the scan sees the ways vslab runs programs (so an empty scan cannot pass)', () => {
  const found = (p: string, file: string) => allUses().some((u) => u.program === p && u.file === file);
  expect(found('ethtool', 'src/runner/prepare.ts')).toBe(true); // shell text built in a template literal
  expect(found('tcpdump', 'src/capture/tcpdump.ts')).toBe(true); // a default binary
  expect(found('qemu-system-x86_64', 'src/backend/vm/guest.ts')).toBe(true); // an env override's default
  expect(found('cpio', 'src/backend/vm/initramfs.ts')).toBe(true); // runToolOk('cpio', …)
  expect(found('nft', 'src/director/faults.ts')).toBe(true); // argv written as data
});

test('an unlisted program is caught wherever it is written, prose is not', () => {
  const src = [
    "spawn('frobctl', ['-x']);",
    "node.exec(['sh', '-c', `mytool -v ${dev} && ip link show`]);",
    "execIn(ns, ['othertool', 'a']);",
    "const t = { a: ['pkgtool', ['-d']] };",
    "const q = process.env.VSLAB_FOO_BINARY || 'footool';",
    "// commenttool -x is only a comment",
    "throw new Error('use --backend vm for tunnel labs');",
    "const c = { fix: 'use --backend vm' };",
  ].join('\n');
  const programs = scanTypeScript('x.ts', src).map((u) => u.program).filter((p) => !listed.has(p)).sort();
  expect(programs).toEqual(['footool', 'frobctl', 'mytool', 'othertool', 'pkgtool']);
  expect(scanShellScript('init', 'mount -t proc proc /proc\n# hidden -x\nnewtool -a || echo no >/dev/console\n').map((u) => u.program))
    .toEqual(['mount', 'newtool']);
  expect(scanCSource('init.c', 'run((char *[]){"/usr/sbin/ctool", "-a", NULL});\nstart((char *[]){AGENT, NULL});\nrun((char *[]){"/usr/sbin/vslab-agent", NULL});\n').map((u) => u.program))
    .toEqual(['ctool']);
});

test('scripts/setup.sh installs the package of every listed tool and file that is missing', () => {
  const setup = fs.readFileSync(path.join(ROOT, 'scripts/setup.sh'), 'utf8');
  const script = /node -e '([\s\S]*?)'\)/.exec(setup)?.[1];
  expect(script, 'setup.sh computes the missing packages from src/host/requirements.json').toBeTruthy();
  expect(script).toContain('src/host/requirements.json');
  // With an empty PATH nothing is found: every tool's package must be printed (and each file's, when missing).
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-req-'));
  try {
    const out = execFileSync(process.execPath, ['-e', script!.replace(/"\/usr\/local\/sbin", "\/usr\/local\/bin", "\/usr\/sbin", "\/usr\/bin", "\/sbin", "\/bin"/, '')], {
      cwd: ROOT, env: { PATH: empty }, encoding: 'utf8',
    });
    const printed = new Set(out.split('\n').filter(Boolean));
    for (const t of TOOL_REQUIREMENTS) expect(printed.has(t.package), `${t.tool} -> ${t.package}`).toBe(true);
    for (const f of FILE_REQUIREMENTS) if (!fs.existsSync(f.path)) expect(printed.has(f.package)).toBe(true);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('after setup every required tool and file is on this host', () => {
  const missing = [
    ...TOOL_REQUIREMENTS.filter((t) => t.need === 'required' && !which(t.tool)).map((t) => `${t.tool} (${t.package})`),
    ...FILE_REQUIREMENTS.filter((f) => f.need === 'required' && !fs.existsSync(f.path)).map((f) => `${f.path} (${f.package})`),
  ];
  expect(missing).toEqual([]);
});

test('vslab doctor reports each listed tool, ethtool among the required ones, with the apt-get line', () => {
  const { checks } = runChecks();
  for (const t of TOOL_REQUIREMENTS.filter((x) => !x.essential)) {
    const c = checks.find((x) => x.name === `tool ${t.tool}`);
    expect(c, t.tool).toBeTruthy();
    expect(c!.required).toBe(t.need === 'required');
    expect(c!.fix).toContain(`apt-get install`);
    expect(c!.fix).toContain(t.package);
  }
  expect(checks.find((x) => x.name === 'tool ethtool')?.required).toBe(true);
});

test('the guest image carries ethtool, conntrack and every tool a lab runs in a node', () => {
  const guest = new Set(TOOL_REQUIREMENTS.filter((t) => t.guest).map((t) => t.tool));
  for (const t of ['ethtool', 'conntrack', 'ip', 'nft', 'tcpdump', 'ipvsadm', 'ss', 'socat']) expect(guest.has(t), t).toBe(true);
});

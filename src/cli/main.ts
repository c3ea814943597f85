// vslab's command line: dispatch to one subcommand and turn errors into exit codes.
// 0 ok; 1 a check or test failed; 2 bad arguments or input files; 3 the host lacks something.
// With --json, a failure is also printed on stdout as {"error": {"code", "message", "where"}}.
import { TopologyError } from '../topology/load';
import { UsageError } from './command';
import { commands } from './registry';

/** At most this many diagnostics are printed; the rest are counted. */
export const MAX_PRINTED_DIAGNOSTICS = 50;

function help(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return ['vslab — lab harness and conformance suite for LVS-style load balancers', '', 'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), '', 'vslab help <command> shows its usage.'].join('\n');
}

function usageOf(name: string): string | undefined {
  const c = commands.find((x) => x.name === name);
  return c && `${c.summary}\nusage: ${c.usage.replace(/^usage:\s*/, '')}`;
}

/** Arguments before a `--` (what follows it belongs to a command run inside a node). */
function ownArgs(args: string[]): string[] {
  const i = args.indexOf('--');
  return i < 0 ? args : args.slice(0, i);
}

interface Failure { exit: number; code: string; message: string; where?: string }

/** The exit code, a stable code word and the message for an error a command threw. */
export function classify(e: unknown): Failure {
  if (e instanceof TopologyError) {
    const d = e.diagnostics;
    const shown = d.slice(0, MAX_PRINTED_DIAGNOSTICS).map((x) => `${x.file}:${x.line}:${x.col}: ${x.message}`);
    if (d.length > shown.length) shown.push(`… and ${d.length - shown.length} more problem(s)`);
    return { exit: 2, code: 'bad-input', message: shown.join('\n'), where: d[0] && `${d[0].file}:${d[0].line}:${d[0].col}` };
  }
  if (e instanceof UsageError) return { exit: 2, code: 'usage', message: e.message };
  const err = e as NodeJS.ErrnoException;
  if (err && (err.code === 'EACCES' || err.code === 'EPERM') && process.getuid?.() !== 0) {
    return { exit: 3, code: 'needs-root', message: `this needs root (CAP_NET_ADMIN and /run write access): ${err.message}` };
  }
  return { exit: 1, code: 'failed', message: (err && err.message) || String(e) };
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const json = ownArgs(rest).includes('--json');
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    if (rest[0] && !usageOf(rest[0])) {
      process.stderr.write(`vslab help: unknown command "${rest[0]}"\n\n${help()}\n`);
      return 2;
    }
    console.log(rest[0] ? usageOf(rest[0]) : help());
    return 0;
  }
  if (name === '--version') { console.log(require('../../package.json').version); return 0; }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    if (json) process.stdout.write(JSON.stringify({ error: { code: 'usage', message: `unknown command "${name}"`, where: null } }) + '\n');
    process.stderr.write(`vslab: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  const own = ownArgs(rest);
  if (own.includes('--help') || own.includes('-h')) {
    console.log(usageOf(name));
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const f = classify(e);
    if (json) process.stdout.write(JSON.stringify({ error: { code: f.code, message: f.message, where: f.where ?? null } }, null, 2) + '\n');
    process.stderr.write(e instanceof TopologyError ? `${f.message}\n` : `vslab ${name}: ${f.message}\n`);
    if (process.env.VSLAB_DEBUG && f.exit === 1) process.stderr.write(`${(e as Error).stack}\n`);
    return f.exit;
  }
}

// Argument parsing shared by the subcommands: util.parseArgs in strict mode, errors as UsageError.
import { parseArgs, type ParseArgsConfig } from 'util';
import { UsageError } from './command';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, '')}\nusage: ${usage}`);
  }
}

/** Progress lines on a terminal only; machine output (--json) stays clean on stdout. */
export function progressPrinter(json: boolean): (msg: string) => void {
  if (json || !process.stderr.isTTY) return () => {};
  return (msg) => process.stderr.write(`… ${msg}\n`);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

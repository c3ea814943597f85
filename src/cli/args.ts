// Argument parsing shared by the subcommands: util.parseArgs in strict mode, errors as UsageError.
import { parseArgs, type ParseArgsConfig } from 'util';
import { UsageError } from './command';

/** `maxPositionals`: how many non-option arguments the command takes (default: any number). */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string, maxPositionals = Infinity) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, '')}\nusage: ${usage}`);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}${maxPositionals ? '' : ' (this command takes only options)'}\nusage: ${usage}`);
  }
  return parsed;
}

/** Progress lines on a terminal only; machine output (--json) stays clean on stdout. */
export function progressPrinter(json: boolean): (msg: string) => void {
  if (json || !process.stderr.isTTY) return () => {};
  return (msg) => process.stderr.write(`… ${msg}\n`);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

// A CLI subcommand. Each lives in src/cli/commands/<name>.ts and is listed in src/cli/registry.ts.
export interface CliCommand {
  name: string;
  /** One line for `vslab help`. */
  summary: string;
  /** Usage text shown by `vslab help <name>` and on a usage error. */
  usage: string;
  /** Returns the process exit code: 0 ok, 1 failure (e.g. a test failed), 2 usage/input error, 3 environment problem. */
  run(args: string[]): Promise<number>;
}

/** Thrown for bad CLI arguments or bad input files; main prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

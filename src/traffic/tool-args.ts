// A tiny argv reader shared by the two traffic tools (no npm dependencies: they start inside lab nodes).

export class ToolUsageError extends Error {
  override name = 'ToolUsageError';
}

/** Flags of the form `--name value` or `--name=value`, booleans as `--name`. Unknown flags are errors. */
export class ArgReader {
  private readonly values = new Map<string, string[]>();

  constructor(argv: string[], valueFlags: readonly string[], booleanFlags: readonly string[]) {
    for (let k = 0; k < argv.length; k++) {
      const a = argv[k];
      if (!a.startsWith('--')) throw new ToolUsageError(`unexpected argument ${JSON.stringify(a)} (flags start with --)`);
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      let value: string;
      if (booleanFlags.includes(name)) {
        if (eq >= 0) throw new ToolUsageError(`--${name} takes no value`);
        value = 'true';
      } else if (valueFlags.includes(name)) {
        if (eq >= 0) value = a.slice(eq + 1);
        else {
          if (k + 1 >= argv.length) throw new ToolUsageError(`--${name} needs a value`);
          value = argv[++k];
        }
      } else {
        throw new ToolUsageError(`unknown flag --${name}`);
      }
      const list = this.values.get(name) ?? [];
      list.push(value);
      this.values.set(name, list);
    }
  }

  all(name: string): string[] {
    return this.values.get(name) ?? [];
  }

  last(name: string): string | undefined {
    const l = this.values.get(name);
    return l ? l[l.length - 1] : undefined;
  }

  flag(name: string): boolean {
    return this.values.has(name);
  }

  int(name: string, dflt: number, min: number, max: number): number {
    const v = this.last(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new ToolUsageError(`--${name} ${JSON.stringify(v)}: expected an integer in ${min}..${max}`);
    return n;
  }
}

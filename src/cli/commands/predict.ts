// vslab predict: reads a scheduler scenario (JSON) and prints, per flow, the real server the
// reference model of the kernel's IPVS scheduler picks.

import * as fs from 'fs';
import type { CliCommand } from '../command';
import { SCENARIO_SCHEMA } from '../../models/scenario-schema';
import { type FlowResult, resolveScenario, runScenario, ScenarioError, ScenarioErrors } from '../../models/scenario';

const USAGE = `vslab predict [--file SCENARIO.json] [--seed N] [--trace] [--schema]

Reads a scheduler scenario as JSON (stdin, or --file) and prints a JSON array with the server name
each flow is scheduled to, null where the scheduler finds none. The format is described in
docs/schedulers.md; --schema prints its JSON Schema.

  --file PATH   read the scenario from PATH instead of stdin
  --seed N      seed for the random scheduler twos (default: the scenario's "seed", else 1);
                twos predictions are one sample, --trace adds each pick's exact distribution
  --trace       print one JSON object per flow instead: server, how it was chosen
                (scheduler | template | existing | unavailable | dropped), counters after it
  --schema      print the scenario JSON Schema and exit

Exit codes: 0 ok, 2 bad arguments or bad scenario (the message names the JSON path).`;

interface PredictArgs {
  file?: string;
  seed?: number;
  trace: boolean;
  schema: boolean;
}

class ArgError extends Error {}

function parseArgs(args: string[]): PredictArgs {
  const out: PredictArgs = { trace: false, schema: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new ArgError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--file': out.file = value(); break;
      case '--seed': {
        const v = value();
        if (!/^[0-9]+$/.test(v) || Number(v) > 0xffffffff) throw new ArgError(`--seed takes an integer 0..4294967295, got ${JSON.stringify(v)}`);
        out.seed = Number(v);
        break;
      }
      case '--trace': out.trace = true; break;
      case '--schema': out.schema = true; break;
      case '-h': case '--help': throw new ArgError('');
      default: throw new ArgError(`unknown argument ${JSON.stringify(a)}`);
    }
  }
  return out;
}

/**
 * Offset of the first JSON syntax error in `text` (a small recursive-descent scan; JSON.parse in
 * some Node versions does not say where it failed).
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const fail = (): never => { throw i; };
  const lit = (w: string) => { if (text.startsWith(w, i)) i += w.length; else fail(); };
  const str = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      else if (text.charCodeAt(i) < 0x20) fail();
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const num = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws(); str(); ws();
        if (text[i] !== ':') fail();
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else num();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (e) {
    if (typeof e === 'number') return e;
    throw e;
  }
  return -1;
}

/** JSON.parse with a line:column location in the error. */
export function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const pos = jsonErrorOffset(text);
    let where = '';
    if (pos >= 0) {
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      where = `:${line}:${col}`;
    }
    throw new ScenarioError(`${source}${where}`, `not valid JSON (${msg.replace(/ in JSON at position.*$/, '').replace(/, (\.\.\.)?"[\s\S]*$/, '')})`);
  }
}

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8');
  } catch (e) {
    throw new ArgError(`cannot read the scenario from stdin: ${(e as Error).message}`);
  }
}

async function run(args: string[]): Promise<number> {
  let opts: PredictArgs;
  try {
    opts = parseArgs(args);
  } catch (e) {
    const m = (e as Error).message;
    process.stderr.write(m ? `vslab predict: ${m}\nusage: ${USAGE}\n` : `usage: ${USAGE}\n`);
    return m ? 2 : 0;
  }
  if (opts.schema) {
    process.stdout.write(JSON.stringify(SCENARIO_SCHEMA, null, 2) + '\n');
    return 0;
  }
  try {
    let text: string;
    let source: string;
    if (opts.file) {
      source = opts.file;
      try {
        text = fs.readFileSync(opts.file, 'utf8');
      } catch (e) {
        throw new ArgError(`cannot read ${opts.file}: ${(e as Error).message}`);
      }
    } else {
      source = 'stdin';
      text = readStdin();
    }
    if (!text.trim()) throw new ArgError(`no scenario on ${source} (expected a JSON object; see vslab predict --help)`);
    const data = parseJsonText(text, source);
    const resolved = resolveScenario(data);
    const trace: object[] = [];
    const result = runScenario(resolved, {
      seed: opts.seed,
      recordChoices: opts.trace,
      onFlow: opts.trace
        ? (r: FlowResult, svc) => {
            trace.push({ ...r, counters: svc.snapshot(), scheduler: svc.scheduler.describeState?.() });
          }
        : undefined,
    });
    if (opts.trace) for (const t of trace) process.stdout.write(JSON.stringify(t) + '\n');
    else process.stdout.write(JSON.stringify(result.assignments) + '\n');
    if (!result.service.scheduler.deterministic) {
      process.stderr.write(`vslab predict: note: ${resolved.options.scheduler} is random; this is one sample (seed ${opts.seed ?? resolved.options.seed}); --trace shows each pick's distribution\n`);
    }
    for (const w of result.warnings) process.stderr.write(`vslab predict: warning: ${w}\n`);
    return 0;
  } catch (e) {
    if (e instanceof ScenarioErrors) {
      for (const err of e.errors) process.stderr.write(`vslab predict: ${err.message}\n`);
      return 2;
    }
    if (e instanceof ScenarioError || e instanceof ArgError) {
      process.stderr.write(`vslab predict: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

export const command: CliCommand = {
  name: 'predict',
  summary: 'predict which real server each flow of a scheduler scenario gets (kernel IPVS reference models)',
  usage: USAGE,
  run,
};

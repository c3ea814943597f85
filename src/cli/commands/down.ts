import { downLab, listLabs } from '../../backend';
import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab down <lab>... | --all [--json]';

export const command: CliCommand = {
  name: 'down',
  summary: 'take labs down and remove everything they made',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { all: { type: 'boolean' }, json: { type: 'boolean' } }, usage);
    if (!values.all && !positionals.length) throw new UsageError(`name a lab or use --all\nusage: ${usage}`);
    const known = listLabs();
    const names = values.all ? known.map((l) => l.name) : positionals;
    const unknown = names.filter((n) => !known.some((l) => l.name === n));
    if (unknown.length) throw new UsageError(`no lab named ${unknown.join(', ')} (labs: ${known.map((l) => l.name).join(', ') || 'none'})`);
    const results: Array<{ name: string; ok: boolean; error?: string; ms: number }> = [];
    for (const name of names) {
      const t0 = performance.now();
      try { await downLab(name); results.push({ name, ok: true, ms: Math.round(performance.now() - t0) }); }
      catch (e) { results.push({ name, ok: false, error: (e as Error).message, ms: Math.round(performance.now() - t0) }); }
    }
    if (values.json) printJson({ down: results });
    else for (const r of results) console.log(r.ok ? `lab ${r.name} is down (${r.ms} ms)` : `lab ${r.name}: ${r.error}`);
    return results.every((r) => r.ok) ? 0 : 1;
  },
};

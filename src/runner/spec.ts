// Conformance statement files (spec/*.yaml): loading with checks that name the file and the entry, and
// tracing statements to the tests that declare them.
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';

export type StatementLevel = 'MUST' | 'MUST NOT' | 'SHOULD' | 'SHOULD NOT' | 'MAY';

export interface Statement {
  id: string;
  level: StatementLevel;
  title: string;
  methods: string[];
  families: number[];
  protocols: string[];
  statement: string;
  source?: string;
}

export interface StatementFile {
  file: string;
  suite: string;
  statements: Statement[];
}

export class SpecError extends Error {
  override name = 'SpecError';
}

const LEVELS = new Set<StatementLevel>(['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY']);
const ID = /^[A-Z]+(-[A-Z0-9]+)*-\d{3}$/;

export const SPEC_DIR = path.resolve(__dirname, '..', '..', 'spec');

export function loadStatements(file: string): StatementFile {
  let raw: unknown;
  try {
    raw = parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SpecError(`${file}: ${(e as Error).message}`);
  }
  const o = raw as { version?: unknown; suite?: unknown; statements?: unknown };
  if (!o || typeof o !== 'object') throw new SpecError(`${file}: not a mapping`);
  if (o.version !== 1) throw new SpecError(`${file}: version must be 1`);
  if (typeof o.suite !== 'string') throw new SpecError(`${file}: "suite" must name the suite (e.g. forwarding)`);
  if (!Array.isArray(o.statements) || !o.statements.length) throw new SpecError(`${file}: "statements" must be a non-empty list`);
  const seen = new Set<string>();
  const statements = o.statements.map((s: Record<string, unknown>, i: number) => {
    const where = `${file}: statements[${i}]${typeof s?.id === 'string' ? ` (${s.id})` : ''}`;
    if (!s || typeof s !== 'object') throw new SpecError(`${where}: must be a mapping`);
    if (typeof s.id !== 'string' || !ID.test(s.id)) throw new SpecError(`${where}: id must look like FWD-NAT-001 or HA-001`);
    if (seen.has(s.id)) throw new SpecError(`${where}: id ${s.id} is used twice`);
    seen.add(s.id);
    if (!LEVELS.has(s.level as StatementLevel)) throw new SpecError(`${where}: level must be one of ${[...LEVELS].join(', ')}`);
    for (const k of ['title', 'statement'] as const) if (typeof s[k] !== 'string' || !(s[k] as string).trim()) throw new SpecError(`${where}: "${k}" must be a non-empty string`);
    const text = String(s.statement);
    const level = s.level as StatementLevel;
    if (!text.includes(level.split(' ')[0])) throw new SpecError(`${where}: the statement text must use its level's word (${level})`);
    for (const k of ['methods', 'families', 'protocols'] as const) if (!Array.isArray(s[k]) || !(s[k] as unknown[]).length) throw new SpecError(`${where}: "${k}" must be a non-empty list`);
    return {
      id: s.id, level, title: String(s.title), methods: s.methods as string[], families: s.families as number[], protocols: s.protocols as string[],
      statement: text.trim(), ...(typeof s.source === 'string' ? { source: s.source } : {}),
    };
  });
  return { file, suite: o.suite, statements };
}

/** The statement file of a suite directory (suites/forwarding -> spec/forwarding.yaml). */
export function specFileForSuite(suite: string): string {
  return path.join(SPEC_DIR, `${suite}.yaml`);
}

export interface DeclaredTest {
  id: string;
  title: string;
  file: string;
  statements: string[];
}

export interface StatementCoverage {
  id: string;
  level: StatementLevel;
  title: string;
  tests: string[];
}

export interface Coverage {
  spec: string;
  statements: StatementCoverage[];
  /** Statements no test declares. */
  unchecked: string[];
  /** Ids tests declare that the spec does not have. */
  unknown: Array<{ test: string; statement: string }>;
}

export function coverageOf(spec: StatementFile, tests: DeclaredTest[]): Coverage {
  const ids = new Set(spec.statements.map((s) => s.id));
  const statements = spec.statements.map((s) => ({ id: s.id, level: s.level, title: s.title, tests: tests.filter((t) => t.statements.includes(s.id)).map((t) => t.id) }));
  return {
    spec: spec.file,
    statements,
    unchecked: statements.filter((s) => !s.tests.length).map((s) => s.id),
    unknown: tests.flatMap((t) => t.statements.filter((s) => !ids.has(s) && s.startsWith(statementPrefix(spec))).map((statement) => ({ test: t.id, statement }))),
  };
}

function statementPrefix(spec: StatementFile): string {
  return spec.statements[0].id.split('-')[0] + '-';
}

export function renderCoverage(c: Coverage): string {
  const lines = [`statements of ${path.relative(process.cwd(), c.spec)}: ${c.statements.length - c.unchecked.length} of ${c.statements.length} checked by at least one test`];
  for (const s of c.statements) lines.push(`  ${s.id.padEnd(14)} ${s.level.padEnd(8)} ${String(s.tests.length).padStart(3)} test(s)  ${s.title}${s.tests.length ? '' : '   <-- NOT CHECKED'}`);
  for (const u of c.unknown) lines.push(`  test ${u.test} declares ${u.statement}, which the spec does not have`);
  return lines.join('\n');
}

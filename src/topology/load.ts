// Reads a topology file: YAML parse -> JSON Schema -> semantic checks -> derived LabModel.
// Every problem is reported with file:line:col; all problems are collected before failing, and
// nothing touches the system.
import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { LabModel } from './model';
import { deriveLab, type RawTopology } from './derive';

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

export class TopologyError extends Error {
  override name = 'TopologyError';
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n'));
  }
}

export type PathSeg = string | number;

/** Collects problems found at a path of the document; resolves paths to line:col. */
export class Reporter {
  readonly diagnostics: Diagnostic[] = [];
  private readonly seen = new Set<string>();
  /** Key -> pair index of each YAML mapping walked, so locating a path is linear in its length. */
  private readonly keyIndex = new WeakMap<object, Map<string, number>>();
  constructor(private readonly file: string, private readonly doc?: Document, private readonly lc?: LineCounter) {}

  error(at: PathSeg[], message: string, onKey = false): void {
    const { line, col } = this.locate(at, onKey);
    this.add(line, col, message);
  }

  /** Records a problem at line:col once (the same message at the same place is reported once). */
  add(line: number, col: number, message: string): void {
    const key = `${line}:${col}:${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.diagnostics.push({ file: this.file, line, col, message });
  }

  private pairIndex(map: { items: Array<{ key: unknown }> }): Map<string, number> {
    let idx = this.keyIndex.get(map);
    if (!idx) {
      idx = new Map();
      map.items.forEach((p, i) => {
        const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
        if (!idx!.has(k)) idx!.set(k, i);
      });
      this.keyIndex.set(map, idx);
    }
    return idx;
  }

  locate(at: PathSeg[], onKey = false): { line: number; col: number } {
    if (!this.doc || !this.lc) return { line: 1, col: 1 };
    let node: unknown = this.doc.contents;
    let key: YamlNode | undefined;
    let last: unknown = node;
    for (const seg of at) {
      if (isMap(node)) {
        const i = this.pairIndex(node).get(String(seg));
        if (i === undefined) break;
        const pair = node.items[i];
        key = pair.key as YamlNode;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        key = undefined;
        node = node.items[seg];
      } else break;
      if (node) last = node;
    }
    const target = (onKey && key) || (node as YamlNode | undefined) || key || (last as YamlNode | undefined);
    const offset = target && (target as YamlNode).range ? (target as YamlNode).range![0] : 0;
    const pos = this.lc.linePos(offset);
    return { line: pos.line, col: pos.col };
  }

  get failed(): boolean {
    return this.diagnostics.length > 0;
  }

  throwIfFailed(): void {
    if (this.failed) {
      this.diagnostics.sort((a, b) => a.line - b.line || a.col - b.col);
      throw new TopologyError(this.diagnostics);
    }
  }
}

let validator: ValidateFunction | undefined;
export function schemaPath(): string {
  return path.resolve(__dirname, '..', '..', 'topologies', 'schema.json');
}
function schemaValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validator = ajv.compile(JSON.parse(fs.readFileSync(schemaPath(), 'utf8')));
  }
  return validator;
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) { line++; start = i + 1; }
  return { line, col: offset - start + 1 };
}

function pointerToPath(ptr: string): PathSeg[] {
  if (!ptr) return [];
  return ptr
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** services[0].realServers[1].weight */
export function pathText(at: PathSeg[]): string {
  return at.map((s, i) => (typeof s === 'number' ? `[${s}]` : /^[A-Za-z_][\w-]*$/.test(s) ? `${i ? '.' : ''}${s}` : `[${JSON.stringify(s)}]`)).join('');
}

/**
 * Keeps the most useful schema errors: the errors of each oneOf/anyOf branch at the alternative's own
 * path are noise (a value matching no branch is reported once, by the oneOf), and the oneOf summary
 * itself is dropped when a more specific error lies below it. Linear in the number of errors.
 */
function reportSchemaErrors(errors: ErrorObject[], r: Reporter): void {
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  const altAt = new Map(alternatives.map((e) => [e.instancePath, e.schemaPath]));
  // Paths with an error strictly below them (each error marks all its ancestors).
  const hasDeeper = new Set<string>();
  for (const e of errors) {
    const segs = e.instancePath.split('/');
    for (let i = 1; i < segs.length; i++) hasDeeper.add(segs.slice(0, i).join('/'));
  }
  // At an alternative's own path, a branch whose type the value does not have is not the one the user meant
  // (its error is noise); an error of the branch whose type matched says what is wrong, better than the
  // summary. Branch errors are recognised by path, not schemaPath: a $ref branch reports its definition's.
  const isBranchError = (e: ErrorObject) => altAt.has(e.instancePath) && e.keyword !== 'oneOf' && e.keyword !== 'anyOf';
  const specificAt = new Set(errors.filter((e) => isBranchError(e) && e.keyword !== 'type').map((e) => e.instancePath));
  for (const e of errors) {
    if (isBranchError(e) && e.keyword === 'type') continue;
    const at = pointerToPath(e.instancePath);
    const name = at.length ? `"${pathText(at)}"` : 'the document';
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        r.error([...at, extra], `unknown key "${extra}" in ${at.length ? name : 'the top level'}`, true);
        break;
      }
      case 'required':
        r.error(at, `${name} is missing the required key "${(e.params as { missingProperty: string }).missingProperty}"`);
        break;
      case 'type':
        r.error(at, `${name} must be ${(e.params as { type: string | string[] }).type.toString().replace(',', ' or ')}`);
        break;
      case 'enum':
        r.error(at, `${name} must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`);
        break;
      case 'propertyNames':
        break; // reported through the nested 'pattern' error on the name
      case 'pattern':
        if (e.propertyName !== undefined) r.error([...at, e.propertyName], `name "${e.propertyName}" must be lower-case letters, digits and single hyphens, starting with a letter`, true);
        else r.error(at, `${name} has an invalid form (expected ${e.schemaPath.includes('cidr') ? 'CIDR prefix' : 'pattern ' + (e.params as { pattern: string }).pattern})`);
        break;
      case 'format':
        r.error(at, `${name} is not a valid ${(e.params as { format: string }).format} address`);
        break;
      case 'oneOf':
      case 'anyOf':
        if (!hasDeeper.has(e.instancePath) && !specificAt.has(e.instancePath)) r.error(at, `${name} has the wrong form: ${describeOneOf(e.schemaPath + e.instancePath)}`);
        break;
      default:
        r.error(at, `${name} ${e.message ?? 'is invalid'}`);
    }
  }
}

function describeOneOf(schemaPath: string): string {
  if (/member|endpoints/.test(schemaPath)) return 'expected a node name or {node, ipv4, ipv6, mac}';
  if (schemaPath.includes('realServer')) return 'expected a node name or {node, port, weight, ...}';
  if (/subnet|\/ipv[46]$/.test(schemaPath)) return 'expected a CIDR prefix, true or false';
  return 'no alternative matches';
}

export interface LoadOptions {
  /** Prefixes the host already routes (lab prefixes must not overlap them). */
  hostPrefixes?: string[];
}

/** Deeper than any topology needs; far below what would exhaust the parser's stack. */
export const MAX_NESTING = 64;
const MAX_INDENT = 512;

/**
 * Where the text nests flow collections ([ {) deeper than MAX_NESTING or indents further than
 * MAX_INDENT columns, found in one pass before the (recursive) YAML parser sees it.
 */
function nestingProblem(text: string): { offset: number; message: string } | undefined {
  let depth = 0;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') { lineStart = true; indent = 0; continue; }
    if (lineStart && (c === ' ' || c === '-' || c === '\t')) {
      if (++indent > MAX_INDENT) return { offset: i, message: `indented more than ${MAX_INDENT} columns (a topology never nests this deep)` };
      continue;
    }
    lineStart = false;
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) { while (i + 1 < text.length && text[i + 1] !== '\n') i++; continue; }
    if (c === '"' || c === "'") {
      for (i++; i < text.length && text[i] !== c && text[i] !== '\n'; i++) if (c === '"' && text[i] === '\\') i++;
      continue;
    }
    if (c === '[' || c === '{') {
      if (++depth > MAX_NESTING) return { offset: i, message: `nested more than ${MAX_NESTING} levels deep (a topology never nests this deep)` };
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return undefined;
}

/** The first alias (*name) of the document: where an alias bomb is reported. */
function firstAlias(doc: Document): YamlNode | undefined {
  let found: YamlNode | undefined;
  visit(doc, { Alias(_, n) { found = n; return visit.BREAK; } });
  return found;
}

export function loadTopologyText(text: string, file: string, opts: LoadOptions = {}): LabModel {
  const lc = new LineCounter();
  const deep = nestingProblem(text);
  if (deep) {
    const pos = lineCol(text, deep.offset);
    throw new TopologyError([{ file, line: pos.line, col: pos.col, message: `YAML: ${deep.message}` }]);
  }
  // The yaml library's own unique-key check is quadratic in the size of a mapping: ours is linear.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const r = new Reporter(file, doc, lc);
  for (const e of doc.errors) {
    const pos = lc.linePos(e.pos[0]);
    r.add(pos.line, pos.col, `YAML: ${e.message.split('\n')[0]}`);
  }
  if (!doc.errors.length) {
    visit(doc, {
      Map(_, map) {
        const keys = new Set<string>();
        for (const p of map.items) {
          const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
          if (keys.has(k)) {
            const pos = lc.linePos((p.key as YamlNode | null)?.range?.[0] ?? 0);
            r.add(pos.line, pos.col, `YAML: Map keys must be unique ("${k}" is given twice)`);
          }
          keys.add(k);
        }
      },
    });
  }
  r.throwIfFailed();
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (e) {
    const alias = firstAlias(doc);
    const pos = lc.linePos(alias?.range?.[0] ?? 0);
    r.add(pos.line, pos.col, `YAML: the aliases expand too far (${(e as Error).message}); write the values out instead`);
    r.throwIfFailed();
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    r.error([], 'a topology must be a YAML mapping with at least "name" and "nodes"');
    r.throwIfFailed();
  }
  const validate = schemaValidator();
  if (!validate(raw)) reportSchemaErrors(validate.errors ?? [], r);
  r.throwIfFailed();
  const lab = deriveLab(raw as RawTopology, file, r, opts.hostPrefixes ?? []);
  r.throwIfFailed();
  return lab;
}

export function loadTopologyFile(file: string, opts: LoadOptions = {}): LabModel {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TopologyError([{ file, line: 0, col: 0, message: `cannot read the topology file: ${(e as Error).message}` }]);
  }
  return loadTopologyText(text, file, opts);
}

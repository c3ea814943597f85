// Reads a topology file: YAML parse -> JSON Schema -> semantic checks -> derived LabModel.
// Every problem is reported with file:line:col; all problems are collected before failing, and
// nothing touches the system.
import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
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
  constructor(private readonly file: string, private readonly doc?: Document, private readonly lc?: LineCounter) {}

  error(at: PathSeg[], message: string, onKey = false): void {
    const { line, col } = this.locate(at, onKey);
    if (!this.diagnostics.some((d) => d.line === line && d.col === col && d.message === message)) {
      this.diagnostics.push({ file: this.file, line, col, message });
    }
  }

  locate(at: PathSeg[], onKey = false): { line: number; col: number } {
    if (!this.doc || !this.lc) return { line: 1, col: 1 };
    let node: unknown = this.doc.contents;
    let key: YamlNode | undefined;
    let last: unknown = node;
    for (const seg of at) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) break;
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

function pointerToPath(ptr: string): PathSeg[] {
  if (!ptr) return [];
  return ptr
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Keeps the most useful schema errors: for oneOf/anyOf, the branch errors are noise once the parent is reported. */
function reportSchemaErrors(errors: ErrorObject[], r: Reporter): void {
  const where = (e: ErrorObject) => e.instancePath;
  // If a more specific error exists under a path, drop oneOf/anyOf summaries for it.
  for (const e of errors) {
    const at = pointerToPath(e.instancePath);
    const name = at.length ? `"${at[at.length - 1]}"` : 'the document';
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
      case 'anyOf': {
        const specific = errors.some((o) => o !== e && where(o).startsWith(where(e)) && where(o) !== where(e));
        if (!specific) r.error(at, `${name} has the wrong form: ${describeOneOf(e.schemaPath)}`);
        break;
      }
      default:
        r.error(at, `${name} ${e.message ?? 'is invalid'}`);
    }
  }
}

function describeOneOf(schemaPath: string): string {
  if (schemaPath.includes('member')) return 'expected a node name or {node, ipv4, ipv6, mac}';
  if (schemaPath.includes('realServer')) return 'expected a node name or {node, port, weight, ...}';
  if (schemaPath.includes('subnet')) return 'expected a CIDR prefix, true or false';
  return 'no alternative matches';
}

export interface LoadOptions {
  /** Prefixes the host already routes (lab prefixes must not overlap them). */
  hostPrefixes?: string[];
}

export function loadTopologyText(text: string, file: string, opts: LoadOptions = {}): LabModel {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const r = new Reporter(file, doc, lc);
  for (const e of doc.errors) {
    const pos = lc.linePos(e.pos[0]);
    r.diagnostics.push({ file, line: pos.line, col: pos.col, message: `YAML: ${e.message.split('\n')[0]}` });
  }
  r.throwIfFailed();
  const raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
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

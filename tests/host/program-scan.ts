// Finds the programs vslab's own code runs, from the TypeScript syntax tree (comments never count):
// - the program of a process call: execFile/spawn/runTool…('prog', …) or exec/spawn/execIn([...'prog', …]),
//   and argv arrays written as data (`argv: ['nft', …]`);
// - the commands of shell text: in every string or template literal, a word at a command position (start,
//   or after && || ; | `$(` or a newline) that is followed by an option (`ethtool -K …`, `modprobe -a …`).
// Shell scripts that are whole files are scanned line by line the same way.
// The guest's C programs that start others (guest/init) write each argv as a compound literal,
// `(char *[]){"/usr/sbin/modprobe", …}`: its first string is the program (vslab's own guest programs,
// /usr/sbin/vslab-*, are built from guest/ and are not host tools).
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

export interface ProgramUse { program: string; file: string; line: number; how: 'call' | 'argv' | 'shell' }

const PROCESS_CALLS = new Set(['execFile', 'execFileSync', 'spawn', 'spawnSync', 'runTool', 'runToolOk', 'exec', 'execIn', 'execSync']);
const NAME = /^[a-z][a-z0-9_.+-]*$/;
// A command position followed by the command word and an option (or a redirection, like `echo 1 > f`).
const SHELL_COMMAND = /(?:^|&&|\|\||[;|\n]|\$\()\s*([a-z][a-z0-9_.+-]*)(?=\s+(?:-|\d+\s*>|>))/g;

function calleeName(e: ts.Expression): string | undefined {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return undefined;
}

function literalText(n: ts.Node): string | undefined {
  if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return n.text;
  if (ts.isTemplateExpression(n)) return [n.head.text, ...n.templateSpans.map((s) => s.literal.text)].join(' X ');
  return undefined;
}

export function shellCommands(text: string): string[] {
  return [...text.matchAll(SHELL_COMMAND)].map((m) => m[1]);
}

/** Error messages and usage texts are prose ("use --backend vm"), not shell. */
const PROSE_PROPERTIES = new Set(['fix', 'detail', 'summary', 'usage', 'description', 'message', 'what', 'reason', 'hint', 'why']);
function inMessage(n: ts.Node): boolean {
  for (let p = n.parent; p; p = p.parent) {
    if (ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && PROSE_PROPERTIES.has(p.name.text)) return true;
    if (ts.isThrowStatement(p)) return true;
    if (ts.isNewExpression(p) && /Error$/.test(p.expression.getText())) return true;
    if (ts.isFunctionLike(p) || ts.isSourceFile(p)) return false;
  }
  return false;
}

export function scanTypeScript(file: string, source: string): ProgramUse[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true);
  const out: ProgramUse[] = [];
  const at = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const firstString = (a: ts.Expression | undefined): ts.StringLiteral | undefined => {
    if (!a) return undefined;
    if (ts.isStringLiteral(a)) return a;
    if (ts.isArrayLiteralExpression(a) && a.elements[0] && ts.isStringLiteral(a.elements[0])) return a.elements[0];
    return undefined;
  };
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) {
      const name = calleeName(n.expression);
      if (name && PROCESS_CALLS.has(name)) {
        // spawn('prog', [...]) names the program first; exec([...]) and execIn(ns, [...]) pass an argv.
        const first = n.arguments[0];
        const lit = first && ts.isStringLiteral(first) ? first : firstString(n.arguments.find((a) => ts.isArrayLiteralExpression(a)));
        if (lit && NAME.test(lit.text)) out.push({ program: lit.text, file, line: at(lit), how: 'call' });
      }
    }
    if (ts.isPropertyAssignment(n) && ts.isIdentifier(n.name) && n.name.text === 'argv') {
      const lit = firstString(n.initializer);
      if (lit && NAME.test(lit.text)) out.push({ program: lit.text, file, line: at(lit), how: 'argv' });
    }
    // A program chosen at run time, with its default written down: `process.env.VSLAB_QEMU || 'qemu-…'`,
    // `opts.binary ?? 'tcpdump'`; and [program, argv] pairs in a table (`xz: ['xz', ['-dc']]`).
    if (ts.isBinaryExpression(n) && (n.operatorToken.kind === ts.SyntaxKind.BarBarToken || n.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken)
      && ts.isStringLiteral(n.right) && NAME.test(n.right.text) && /binary|program|command|qemu|_bin\b/i.test(n.left.getText(sf))) {
      out.push({ program: n.right.text, file, line: at(n.right), how: 'call' });
    }
    if (ts.isArrayLiteralExpression(n) && n.elements.length === 2 && ts.isStringLiteral(n.elements[0]) && ts.isArrayLiteralExpression(n.elements[1])
      && NAME.test(n.elements[0].text)) {
      out.push({ program: n.elements[0].text, file, line: at(n), how: 'argv' });
    }
    const text = inMessage(n) ? undefined : literalText(n);
    if (text !== undefined) for (const p of shellCommands(text)) out.push({ program: p, file, line: at(n), how: 'shell' });
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

export function scanShellScript(file: string, source: string): ProgramUse[] {
  const out: ProgramUse[] = [];
  source.split('\n').forEach((l, i) => {
    const code = l.replace(/(^|\s)#.*$/, '');
    for (const p of shellCommands(code)) out.push({ program: p, file, line: i + 1, how: 'shell' });
  });
  return out;
}

export function scanCSource(file: string, source: string): ProgramUse[] {
  const out: ProgramUse[] = [];
  source.split('\n').forEach((l, i) => {
    for (const m of l.matchAll(/\(char\s*\*\s*\[\]\)\s*\{\s*(?:"([^"]+)"|([A-Z_]+))/g)) {
      const prog = m[1] ?? m[2];
      if (m[2] || /\/vslab-[a-z]+$/.test(prog)) continue; // a macro naming vslab's own guest program
      out.push({ program: path.basename(prog), file, line: i + 1, how: 'argv' });
    }
  });
  return out;
}

export function scanTree(root: string, dirs: string[]): ProgramUse[] {
  const out: ProgramUse[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push(...scanTypeScript(path.relative(root, p), fs.readFileSync(p, 'utf8')));
    }
  };
  for (const d of dirs) walk(path.join(root, d));
  return out;
}

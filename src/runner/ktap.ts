// KTAP (the kernel's test output format, Documentation/dev-tools/ktap.rst) for a run's results, so kernel
// developers can feed vslab's verdicts to their own tooling: one test line per conformance test, with its
// statements as a nested subtest list when it ran checks. Not applicable and skipped tests are "ok … # SKIP",
// known failures "ok … # XFAIL" (as kselftest writes them), failures "not ok" with the reason as diagnostics.
import type { RunResults, TestResult } from './results';

function clean(s: string): string {
  // A test name or directive must stay on one line and must not open a directive of its own.
  return s.replace(/[\r\n]+/g, ' ').replace(/#/g, '');
}

function line(t: TestResult, n: number): string {
  const name = clean(t.id);
  switch (t.status) {
    case 'passed': return `ok ${n} ${name}`;
    case 'failed': return `not ok ${n} ${name}`;
    case 'known-failure': return `ok ${n} ${name} # XFAIL ${clean(t.reason ?? 'known failure')}`;
    default: return `ok ${n} ${name} # SKIP ${clean(t.reason ?? t.status)}`;
  }
}

export function renderKtap(r: RunResults): string {
  const out = ['KTAP version 1', `# vslab: director ${r.director} (${clean(r.implementations.join('; ') || 'not reached')}) on ${r.backend}${r.kernel ? `, kernel ${r.kernel}` : ''}${r.fault ? `, fault ${r.fault}` : ''}${r.shard ? `, shard ${r.shard.current}/${r.shard.total}` : ''}`, `1..${r.tests.length}`];
  r.tests.forEach((t, k) => {
    const statements = Object.entries(t.statementResults ?? {});
    if (statements.length && t.status !== 'not-applicable' && t.status !== 'skipped') {
      out.push('    KTAP version 1', `    # Subtest: ${clean(t.id)}`, `    1..${statements.length}`);
      statements.forEach(([id, v], j) => out.push(`    ${v === 'passed' ? 'ok' : 'not ok'} ${j + 1} ${clean(id)}`));
    }
    if (t.status === 'failed' && t.reason) out.push(`# ${clean(t.reason)}`);
    out.push(line(t, k + 1));
  });
  for (const e of r.errors) out.push(`# error: ${clean(e)}`);
  const s = r.summary;
  out.push(`# totals: pass:${s.passed} fail:${s.failed} xfail:${s.knownFailures} skip:${s.notApplicable + s.skipped}`);
  return out.join('\n') + '\n';
}

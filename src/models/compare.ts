// Connection-by-connection comparison of two assignment sequences (model vs model, or model vs a
// kernel run): the exact scheduler suites and the mutant tests use the same function, so "the
// model can tell a wrong scheduler apart" is shown with the very check the kernel will face.

import { runScenario, type RunOptions } from './scenario';

export interface AssignmentDifference {
  index: number;
  expected: string | null;
  actual: string | null;
}

export interface AssignmentComparison {
  equal: boolean;
  /** Number of flows compared (the shorter length when lengths differ). */
  compared: number;
  lengthMismatch: boolean;
  firstDifference: AssignmentDifference | null;
  differences: AssignmentDifference[];
  /** Per-server counts in each sequence, to tell a permutation from a different distribution. */
  counts: { expected: Record<string, number>; actual: Record<string, number> };
}

function countOf(xs: readonly (string | null)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) {
    const k = x ?? '(none)';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export function compareAssignments(expected: readonly (string | null)[], actual: readonly (string | null)[]): AssignmentComparison {
  const n = Math.min(expected.length, actual.length);
  const differences: AssignmentDifference[] = [];
  for (let i = 0; i < n; i++) {
    if (expected[i] !== actual[i]) differences.push({ index: i, expected: expected[i], actual: actual[i] });
  }
  const lengthMismatch = expected.length !== actual.length;
  return {
    equal: differences.length === 0 && !lengthMismatch,
    compared: n,
    lengthMismatch,
    firstDifference: differences[0] ?? null,
    differences,
    counts: { expected: countOf(expected), actual: countOf(actual) },
  };
}

/** One line per difference (up to `limit`), for failure messages. */
export function formatComparison(c: AssignmentComparison, limit = 10): string {
  if (c.equal) return `all ${c.compared} flows agree`;
  const lines = [`${c.differences.length} of ${c.compared} flows differ${c.lengthMismatch ? ' (and the lengths differ)' : ''}`];
  for (const d of c.differences.slice(0, limit)) lines.push(`  flow ${d.index}: expected ${d.expected ?? 'none'}, got ${d.actual ?? 'none'}`);
  if (c.differences.length > limit) lines.push(`  ... ${c.differences.length - limit} more`);
  lines.push(`  counts expected ${JSON.stringify(c.counts.expected)} actual ${JSON.stringify(c.counts.actual)}`);
  return lines.join('\n');
}

/** Runs a scenario through the reference model and through an alternative model, and compares. */
export function compareModels(scenario: unknown, alternative: RunOptions['scheduler']): AssignmentComparison {
  const ref = runScenario(scenario);
  const alt = runScenario(scenario, { scheduler: alternative });
  return compareAssignments(ref.assignments, alt.assignments);
}

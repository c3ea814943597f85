// junit.xml from results.json: one <testsuite> per suite file, one <testcase> per test. `vslab merge` writes
// it for the joined shards (Playwright's own junit.xml of each shard covers only that shard).
import type { RunResults, TestResult } from './results';

function esc(s: string): string {
  // XML 1.0 has no place for most control characters: drop them rather than write an unreadable file.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function testcase(t: TestResult): string {
  const head = `    <testcase name="${esc(t.title)}" classname="${esc(t.file)}" time="${(t.durationMs / 1000).toFixed(3)}"`;
  const why = esc(t.reason ?? t.status);
  switch (t.status) {
    case 'passed': return `${head}>\n    </testcase>`;
    case 'known-failure': return `${head}>\n      <system-out>known failure: ${why}</system-out>\n    </testcase>`;
    case 'failed': return `${head}>\n      <failure message="${why}" type="FAILURE">${why}</failure>\n    </testcase>`;
    default: return `${head}>\n      <skipped message="${esc(t.status)}: ${why}"/>\n    </testcase>`;
  }
}

export function renderJunit(r: RunResults): string {
  const files = [...new Set(r.tests.map((t) => t.file))];
  const suites = files.map((f) => {
    const ts = r.tests.filter((t) => t.file === f);
    const skipped = ts.filter((t) => t.status === 'skipped' || t.status === 'not-applicable').length;
    const failures = ts.filter((t) => t.status === 'failed').length;
    const time = ts.reduce((a, t) => a + t.durationMs, 0) / 1000;
    return `  <testsuite name="${esc(f)}" timestamp="${esc(r.startedAt)}" hostname="${esc(r.director)} on ${esc(r.backend)}" tests="${ts.length}" failures="${failures}" skipped="${skipped}" time="${time.toFixed(3)}" errors="0">\n${ts.map(testcase).join('\n')}\n  </testsuite>`;
  });
  const s = r.summary;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites id="" name="vslab" tests="${s.tests}" failures="${s.failed}" skipped="${s.skipped + s.notApplicable}" errors="${r.errors.length}" time="${(r.durationMs / 1000).toFixed(3)}">\n${suites.join('\n')}\n</testsuites>\n`;
}

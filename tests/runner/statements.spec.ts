// A statement a test declares is judged only by checks that ran: a test that stopped before its checks
// (a traffic timeout, a lab that failed) must not count its statements as passed.
import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestRecord, type ChecksFile } from '../../src/runner/suite-api';

test('a test that evaluated no check leaves its declared statements unjudged', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-stmt-'));
  try {
    const rec = new TestRecord('t1', dir, 'stopped early', 'x.spec.ts', ['FWD-COM-001', 'FWD-NAT-001']);
    rec.write();
    const f = JSON.parse(fs.readFileSync(path.join(dir, 'checks.json'), 'utf8')) as ChecksFile;
    expect(f.declared).toEqual(['FWD-COM-001', 'FWD-NAT-001']);
    expect(f.statements).toEqual({});
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

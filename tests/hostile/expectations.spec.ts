// Expectations that can never fail are refused (issue 11): every field of an expected layer must exist
// in that layer's schema with the right kind, count/after/before must be well-formed, and a run
// directory's capture path must stay inside it. Each is a usage error (exit 2) naming the JSON path.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { PcapngWriter } from '../../src/capture/pcapng';
import { FileSink } from '../../src/capture/sink';
import { UsageError } from '../../src/cli/command';
import { runReplay } from '../../src/cli/commands/replay';
import { buildPacket } from '../../src/packet/build';
import { CLI } from '../lab/host';

let tmp = '';
test.beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-expect-'));
});
test.afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SYN = buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.2', dst: '198.19.0.100' }, { type: 'tcp', sport: 40000, dport: 80, flags: 'S' }]);

/** A test directory whose capture holds one SYN to 198.19.0.100 on link c:eth0. */
function testDir(file: Record<string, unknown>): string {
  const dir = path.join(tmp, 'run', 't1');
  fs.mkdirSync(dir, { recursive: true });
  const w = new PcapngWriter(new FileSink(path.join(dir, 'capture.pcapng')));
  const i = w.addInterface({ linkType: 1, name: 'c:eth0', snapLen: 65535 });
  w.writePacket(i, 1764000000, 5000, SYN, SYN.length);
  w.close();
  fs.writeFileSync(path.join(dir, 'expectations.json'), JSON.stringify({ version: 1, testId: 't1', ...file }));
  return path.join(tmp, 'run');
}

async function replay(runDir: string): Promise<{ code?: number; out: string; error?: Error }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  try {
    return { code: await runReplay([runDir], { out, err: out }), out: text };
  } catch (e) {
    return { out: text, error: e as Error };
  }
}

const exp = (over: Record<string, unknown>) => ({ id: 'e', link: 'c:eth0', layers: [{ type: 'eth' }, { type: 'ipv4', dst: '198.19.0.100' }, { type: 'tcp' }], ...over });

test('an absence expectation with a misspelt field is a usage error, not a PASS', async () => {
  // Spelt right, the packet is there, so "absent" fails: the check can fail.
  const good = await replay(testDir({ expectations: [exp({ mode: 'absent' })] }));
  expect(good.code).toBe(1);
  expect(good.out).toMatch(/FAIL e \[absent on c:eth0\]/);
  const r = await replay(testDir({ expectations: [exp({ mode: 'absent', layers: [{ type: 'eth' }, { type: 'ipv4', dstt: '198.19.0.100' }, { type: 'tcp' }] })] }));
  expect(r.error).toBeInstanceOf(UsageError);
  expect(r.error!.message).toMatch(/\$\.expectations\[0\]\.layers\[1\]\.dstt: a ipv4 layer has no field "dstt"/);
});

const bad: Array<{ what: string; file: Record<string, unknown>; where: string; message: RegExp }> = [
  { what: 'a field of the wrong kind', file: { expectations: [exp({ layers: [{ type: 'eth' }, { type: 'ipv4', ttl: '64' }] })] }, where: '$.expectations[0].layers[1].ttl', message: /must be number/ },
  { what: 'a misspelt expectation key', file: { expectations: [exp({ mdoe: 'absent' })] }, where: '$.expectations[0].mdoe', message: /unknown expectation field "mdoe"/ },
  { what: 'a count that is not a number', file: { expectations: [exp({ count: { min: 'abc' } })] }, where: '$.expectations[0].count.min', message: /whole number >= 0/ },
  { what: 'a negative count', file: { expectations: [exp({ count: { max: -1 } })] }, where: '$.expectations[0].count.max', message: /whole number >= 0/ },
  { what: 'a count with min above max', file: { expectations: [exp({ count: { min: 3, max: 1 } })] }, where: '$.expectations[0].count', message: /min 3 is above max 1/ },
  { what: 'a misspelt count key', file: { expectations: [exp({ count: { minimum: 1 } })] }, where: '$.expectations[0].count.minimum', message: /unknown count field/ },
  { what: 'an "after" that is not a timestamp', file: { expectations: [exp({ after: 'garbage' })] }, where: '$.expectations[0].after', message: /must be a timestamp/ },
  { what: 'a "before" that is a number', file: { expectations: [exp({ before: 12 })] }, where: '$.expectations[0].before', message: /must be a timestamp/ },
  { what: 'a capture path that climbs out of the run', file: { capture: '../../../etc/passwd', expectations: [exp({})] }, where: '$.capture', message: /must be a file inside the test directory/ },
  { what: 'an absolute capture path', file: { capture: '/etc/passwd', expectations: [exp({})] }, where: '$.capture', message: /must be a file inside the test directory/ },
  { what: 'a misspelt top-level key', file: { expectatons: [], expectations: [exp({})] }, where: '$.expectatons', message: /unknown expectations-file field/ },
];

for (const c of bad) {
  test(`expectations: ${c.what} is a usage error at ${c.where}`, async () => {
    const r = await replay(testDir(c.file));
    expect(r.error, `exit ${r.code}: ${r.out}`).toBeInstanceOf(UsageError);
    expect(r.error!.message).toContain(`expectations.json: ${c.where}: `);
    expect(r.error!.message).toMatch(c.message);
  });
}

test('a capture that is a link out of the run directory is refused', async () => {
  const run = testDir({ capture: 'cap.pcapng', expectations: [exp({})] });
  const outside = path.join(tmp, 'outside.pcapng');
  fs.copyFileSync(path.join(run, 't1', 'capture.pcapng'), outside);
  fs.symlinkSync(outside, path.join(run, 't1', 'cap.pcapng'));
  const r = await replay(run);
  expect(r.error).toBeInstanceOf(UsageError);
  expect(r.error!.message).toMatch(/\$\.capture: "cap\.pcapng" resolves \(through a link\) outside the test directory/);
});

test('`vslab replay` exits 2 on a bad expectation and names its JSON path', () => {
  const run = testDir({ expectations: [exp({ count: { min: 'abc' } })] });
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'replay', run]);
  expect(r.status).toBe(2);
  expect(r.stderr.toString()).toContain('$.expectations[0].count.min: must be a whole number >= 0 (found "abc")');
});

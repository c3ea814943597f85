// `vslab pcap merge` never destroys what it reads (issue 11): an output that is one of the inputs is
// refused, and the output is written to a temporary file renamed into place only once the merge is
// complete, so a failed merge leaves no empty or partial output and an existing file untouched.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { PcapWriter } from '../../src/capture/pcap';
import { FileSink } from '../../src/capture/sink';
import { UsageError } from '../../src/cli/command';
import { runPcap } from '../../src/cli/commands/pcap';
import { buildPacket } from '../../src/packet/build';

let tmp = '';
test.beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h11-merge-'));
});
test.afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function sample(file: string, n = 5): Buffer {
  const w = new PcapWriter(new FileSink(file));
  for (let i = 0; i < n; i++) w.writePacket(1764000000, i, buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.1', id: i }, { type: 'udp' }]));
  w.close();
  return fs.readFileSync(file);
}

async function merge(args: string[]): Promise<{ code?: number; error?: Error }> {
  const out = new PassThrough();
  out.resume();
  try {
    return { code: await runPcap(['merge', ...args], { out, err: out }) };
  } catch (e) {
    return { error: e as Error };
  }
}

test('merge refuses an output that is one of its inputs, however it is spelt, and leaves it intact', async () => {
  const a = path.join(tmp, 'a.pcap');
  const b = path.join(tmp, 'b.pcap');
  const bytes = sample(a);
  sample(b);
  fs.mkdirSync(path.join(tmp, 'sub'));
  fs.symlinkSync(a, path.join(tmp, 'link.pcap'));
  fs.linkSync(a, path.join(tmp, 'hard.pcap'));
  for (const out of [a, path.join(tmp, 'sub', '..', 'a.pcap'), path.join(tmp, 'link.pcap'), path.join(tmp, 'hard.pcap')]) {
    const r = await merge(['-o', out, b, `${a}=c:eth0`]);
    expect(r.error, out).toBeInstanceOf(UsageError);
    expect(r.error!.message).toMatch(/is also an input/);
    expect(fs.readFileSync(a).equals(bytes)).toBe(true);
  }
  expect(fs.readdirSync(tmp).sort()).toEqual(['a.pcap', 'b.pcap', 'hard.pcap', 'link.pcap', 'sub']);
});

test('a merge that fails part-way leaves no output behind, and an existing output untouched', async () => {
  const a = path.join(tmp, 'a.pcap');
  const cut = path.join(tmp, 'cut.pcap');
  sample(a);
  const whole = sample(cut, 50);
  fs.writeFileSync(cut, whole.subarray(0, whole.length - 7)); // the last record is cut short
  const out = path.join(tmp, 'out.pcapng');
  const r = await merge(['-o', out, a, cut]);
  expect(r.error).toBeInstanceOf(UsageError);
  expect(r.error!.message).toMatch(/byte \d+/);
  expect(fs.readdirSync(tmp).sort()).toEqual(['a.pcap', 'cut.pcap']);
  fs.writeFileSync(out, 'previous merge');
  expect((await merge(['-o', out, a, cut])).error).toBeInstanceOf(UsageError);
  expect(fs.readFileSync(out, 'utf8')).toBe('previous merge');
  expect(fs.readdirSync(tmp).sort()).toEqual(['a.pcap', 'cut.pcap', 'out.pcapng']);
  // and a good merge replaces it, leaving no temporary file
  expect((await merge(['-o', out, a])).code).toBe(0);
  expect(fs.readFileSync(out).readUInt32LE(0)).toBe(0x0a0d0d0a);
  expect(fs.readdirSync(tmp).sort()).toEqual(['a.pcap', 'cut.pcap', 'out.pcapng']);
});

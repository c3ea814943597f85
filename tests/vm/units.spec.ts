// VM backend pieces that need no VM: the frame codec, the plan renderer, bzImage parsing, options.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { planLab } from '../../src/backend/plan';
import { encodeFrame, FrameDecoder, FrameType } from '../../src/backend/vm/protocol';
import { renderPlanScript } from '../../src/backend/vm/plan-script';
import { crashExcerpt } from '../../src/backend/vm/guest';
import { parseKernelOption } from '../../src/backend/vm/kernel';
import { bzImagePayload, extractVmlinux, isElf } from '../../src/backend/vm/vmlinux';
import { loadTopologyFile } from '../../src/topology/load';

test('frames survive any split of the byte stream and keep binary fields intact', () => {
  const binary = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
  const frames = [
    encodeFrame(7, FrameType.Run, ['collect', '', '', 1000, binary, 0, 'sh', '-c', 'echo hi']),
    encodeFrame(8, FrameType.Ping, []),
    encodeFrame(0xfffffffe, FrameType.Netlink, ['ns1', 16, 5000, Buffer.alloc(70000, 0xab)]),
  ];
  const stream = Buffer.concat(frames);
  for (const step of [1, 3, 9, 4096, stream.length]) {
    const d = new FrameDecoder();
    const got = [];
    for (let off = 0; off < stream.length; off += step) got.push(...d.push(stream.subarray(off, off + step)));
    expect(got.map((f) => f.id)).toEqual([7, 8, 0xfffffffe]);
    expect(got[0].type).toBe(FrameType.Run);
    expect(got[0].fields.map((f) => f.toString())).toEqual(['collect', '', '', '1000', binary.toString(), '0', 'sh', '-c', 'echo hi']);
    expect(got[0].fields[4].equals(binary)).toBe(true);
    expect(got[1].fields).toEqual([]);
    expect(got[2].fields[3].length).toBe(70000);
  }
  expect(() => new FrameDecoder().push(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/corrupt frame/);
});

test('the NAT plan renders to ip -batch blocks in plan order, with lo up in every node namespace', () => {
  const model = loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'));
  const ops = planLab(model, 'vslabvm-unit');
  const script = renderPlanScript(ops);
  const nsAdd = [...script.matchAll(/^netns add (\S+)$/gm)].map((m) => m[1]);
  expect(nsAdd).toEqual(ops.filter((o) => o.op === 'netns').map((o) => o.ns));
  for (const n of model.nodes) {
    const block = new RegExp(`ip -n vslab-vslabvm-unit--${n.name} -batch - <<'VSLAB_EOF' \\|\\| fail "bringing up[^\\n]*\\nlink set lo up\\n`);
    expect(script).toMatch(block);
  }
  // every veth of the plan appears, peers placed in their namespace
  for (const o of ops) if (o.op === 'veth') expect(script).toContain(`link add ${o.name} address ${o.mac} mtu ${o.mtu} type veth peer name ${o.peerName}`);
  // namespaces before devices, devices before addresses, addresses before routes
  const at = (s: string) => script.indexOf(s);
  expect(at('netns add')).toBeLessThan(at('type bridge'));
  expect(at('type bridge')).toBeLessThan(at('type veth'));
  expect(at('type veth')).toBeLessThan(at('addr add'));
  expect(at('addr add')).toBeLessThan(at('route add'));
});

test('GUE receivers are rendered for each outer family a real server is reached over (fou binds IPv4 and IPv6 apart)', () => {
  const model = loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'forwarding', 'topologies', 'tun.yaml'));
  const script = renderPlanScript(planLab(model, 'vslabvm-unit'));
  for (const rs of ['rs1', 'rs2', 'rs3', 'rs4']) {
    const block = script.split(/\nVSLAB_EOF\n/).find((b) => b.includes(`vslab-vslabvm-unit--${rs} -batch - <<'VSLAB_EOF' || fail "setting up tunnel receivers`));
    expect(block, `tunnel block of ${rs}`).toBeDefined();
    expect(block).toMatch(/^fou add port 6080 gue$/m);
    expect(block).toMatch(/^fou add port 6080 gue -6$/m);
  }
});

test('the plan renderer refuses values that could escape the script', () => {
  expect(() => renderPlanScript([{ op: 'netns', ns: 'a; reboot' }])).toThrow(/namespace name/);
  expect(() => renderPlanScript([{ op: 'netns', ns: 'a' }, { op: 'sysctl', ns: 'a', key: 'net/ipv4/ip_forward', value: '1$(reboot)' }])).toThrow(/sysctl value/);
  expect(() => renderPlanScript([{ op: 'netns', ns: 'a' }, { op: 'addr', ns: 'a', dev: 'eth0', cidr: '1.2.3.4/24 dev lo' }])).toThrow(/address/);
  // an nft ruleset containing the usual delimiter gets another one
  const s = renderPlanScript([{ op: 'netns', ns: 'a' }, { op: 'nft', ns: 'a', ruleset: 'table ip t {}\nVSLAB_EOF\n' }]);
  expect(s).toContain("<<'VSLAB_EOF_0'");
});

test('kernel options: bookworm by default, backports by name, an image needs its modules', () => {
  expect(parseKernelOption(undefined)).toEqual({ kind: 'debian', suite: 'bookworm' });
  expect(parseKernelOption('backports')).toEqual({ kind: 'debian', suite: 'bookworm-backports' });
  expect(() => parseKernelOption('/boot/vmlinuz-x')).toThrow(/--modules/);
  expect(parseKernelOption('/boot/vmlinuz-x', '/lib/modules/x')).toEqual({ kind: 'local', image: '/boot/vmlinuz-x', modules: '/lib/modules/x' });
});

test('vmlinux is extracted from a bzImage by its setup header, and anything else is refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-unit-'));
  try {
    // A minimal bzImage: setup header fields at their boot-protocol offsets, a gzip payload holding an "ELF".
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(1000, 7)]);
    const payload = zlib.gzipSync(elf);
    const setupSects = 4;
    const image = Buffer.alloc((setupSects + 1) * 512 + 100 + payload.length);
    image[0x1f1] = setupSects;
    image.write('HdrS', 0x202, 'latin1');
    image.writeUInt16LE(0x20f, 0x206);
    image.writeUInt32LE(100, 0x248);
    image.writeUInt32LE(payload.length, 0x24c);
    payload.copy(image, (setupSects + 1) * 512 + 100);
    fs.writeFileSync(path.join(dir, 'bzImage'), image);
    expect(bzImagePayload(image, 'test').format).toBe('gzip');
    await extractVmlinux(path.join(dir, 'bzImage'), path.join(dir, 'vmlinux'));
    expect(isElf(path.join(dir, 'vmlinux'))).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'vmlinux')).equals(elf)).toBe(true);
    expect(() => bzImagePayload(Buffer.alloc(4096), 'not-a-kernel')).toThrow(/not-a-kernel is neither an ELF vmlinux nor an x86 bzImage/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a crash report starts at the panic line however long the stack dump that follows it', () => {
  const boot = Array.from({ length: 30 }, (_, i) => `[    1.${String(i).padStart(6, '0')}] boot line ${i}`);
  const dump = Array.from({ length: 200 }, (_, i) => `[    2.${String(i).padStart(6, '0')}]  ? frame_${i}+0x10/0x20`);
  const console = [...boot, '[    2.300000] sysrq: Trigger a crash', '[    2.300001] Kernel panic - not syncing: sysrq triggered crash', ...dump, '[    2.9] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---'];
  const ex = crashExcerpt(console).split('\n');
  expect(ex).toContain('[    2.300001] Kernel panic - not syncing: sysrq triggered crash');
  expect(ex).toContain('[    2.300000] sysrq: Trigger a crash'); // a little context before it
  expect(ex[ex.length - 1]).toMatch(/end Kernel panic/); // and the end of the report
  expect(ex.some((l) => /console lines left out/.test(l))).toBe(true);
  expect(ex.length).toBeLessThanOrEqual(76);
  // a short report is shown whole; no crash line: the last 40 lines
  expect(crashExcerpt([...boot.slice(0, 3), 'BUG: unable to handle page fault', 'x'])).toBe([...boot.slice(0, 3), 'BUG: unable to handle page fault', 'x'].join('\n'));
  expect(crashExcerpt([...boot, ...boot]).split('\n')).toEqual([...boot, ...boot].slice(-40));
});

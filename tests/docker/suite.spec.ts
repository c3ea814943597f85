// The forwarding suite on the docker backend: its labs are containers, the nftables director programs the
// director's container, the checks run on the captures of every link; what the director cannot do is not applicable
// with the reason (here: tunnels), never passed. One NAT test over IPv6 and one TUN test keep it short; the whole
// suite is measured in docs/docker.md.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { docker, LABEL_LAB } from '../../src/backend/docker/engine';
import { CLI } from '../lab/host';

test('vslab test suites/forwarding --backend docker: a NAT test passes through containers, TUN is not applicable with its reason', async () => {
  test.setTimeout(400_000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'h13-suite-'));
  try {
    const r = spawnSync(CLI[0], [...CLI.slice(1), 'test', 'suites/forwarding', '--director', 'nftables', '--backend', 'docker', '--workers', '1',
      '--grep', '/nat\\.spec\\.ts tcp6: handshake|tun\\.spec\\.ts ipip-tcp4: handshake', '--out', out, '--json'],
    { encoding: 'utf8', env: { ...process.env, VSLAB_LAB_NAME_PREFIX: 'h13-' } });
    expect(r.status, `stderr: ${r.stderr.slice(-1500)}\nstdout: ${r.stdout.slice(-1500)}`).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(res.backend).toBe('docker');
    const byId = new Map<string, { status: string; checks: number; reason?: string }>(res.tests.map((t: { id: string }) => [t.id, t]));
    const nat = byId.get('forwarding.nat.tcp6-handshake-and-data-on-every-hop-port-mapped')!;
    expect(nat.status).toBe('passed');
    expect(nat.checks).toBeGreaterThan(10);
    const tun = byId.get('forwarding.tun.ipip-tcp4-handshake-and-data-on-every-hop')!;
    expect(tun.status).toBe('not-applicable');
    expect(JSON.stringify(tun)).toMatch(/nftables can program none of lab fwtun's services: method tun/);
    expect(res.summary).toMatchObject({ failed: 0, passed: 1, notApplicable: 1 });
    // The run's lab was a docker lab carrying the run's prefix, and it is gone.
    expect(res.labs.map((l: { backend: string }) => l.backend)).toEqual(['docker']);
    expect(await docker().listContainers({ all: true, filters: { label: [`${LABEL_LAB}=h13-fwnat`] } })).toEqual([]);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

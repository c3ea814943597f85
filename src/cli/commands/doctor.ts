// What this host can do: root, tools, kernel features, and which backend vslab will use.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FILE_REQUIREMENTS, TOOL_REQUIREMENTS, aptInstallLine, which } from '../../host/requirements';
import { native } from '../../native';
import { linkIndexes } from '../../backend/rtnl';
import { parse, printJson } from '../args';
import type { CliCommand } from '../command';

const usage = 'vslab doctor [--json]';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it is missing. */
  fix?: string;
  /** false: vslab works without it (some features are then unavailable). */
  required: boolean;
  /** The Debian package that provides it (tools and files). */
  package?: string;
}


function probeNamespace(): { ok: boolean; links: Set<string>; nft: boolean; error?: string } {
  const path = `/run/netns/vslab-doctor--${process.pid}`;
  try {
    native().netnsCreate(path);
  } catch (e) {
    return { ok: false, links: new Set(), nft: false, error: (e as Error).message };
  }
  try {
    const fd = native().netlinkOpen(path, 0);
    const links = new Set(linkIndexes(fd).keys());
    native().netlinkClose(fd);
    let nft = false;
    try { execFileSync('nsenter', [`--net=${path}`, '--', 'nft', 'list', 'tables'], { stdio: 'ignore', timeout: 10_000 }); nft = true; } catch { nft = false; }
    return { ok: true, links, nft };
  } finally {
    native().netnsDelete(path);
  }
}

export function runChecks(): { checks: Check[]; backend: { labs: string; kernelIpvs: string } } {
  const checks: Check[] = [];
  const root = process.getuid?.() === 0;
  checks.push({ name: 'root', ok: root, detail: root ? 'running as root' : `running as uid ${process.getuid?.()}`, fix: 'run vslab as root (it creates namespaces and links)', required: true });
  // Every program and file of the host requirements list (src/host/requirements.json), the one list
  // scripts/setup.sh installs from; essential ones (on every Debian system) are not worth a line.
  for (const t of TOOL_REQUIREMENTS) {
    if (t.essential) continue;
    const p = which(t.tool);
    checks.push({ name: `tool ${t.tool}`, ok: !!p, detail: p ? p : `not found (needed for ${t.for})`, fix: aptInstallLine([t.package]), required: t.need === 'required', package: t.package });
  }
  for (const f of FILE_REQUIREMENTS) {
    const ok = fs.existsSync(f.path);
    checks.push({ name: `file ${path.basename(f.path)}`, ok, detail: ok ? f.path : `${f.path} not found (needed for ${f.for})`, fix: aptInstallLine([f.package]), required: f.need === 'required', package: f.package });
  }
  const probe = root ? probeNamespace() : { ok: false, links: new Set<string>(), nft: false, error: 'needs root' };
  checks.push({ name: 'kernel netns+veth', ok: probe.ok, detail: probe.ok ? 'network namespaces work' : `cannot create a network namespace: ${probe.error}`, fix: 'a kernel with CONFIG_NET_NS and veth', required: true });
  const ipvs = fs.existsSync('/proc/net/ip_vs') || fs.existsSync('/sys/module/ip_vs');
  const modules = fs.existsSync(`/lib/modules/${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}/modules.dep`);
  checks.push({ name: 'kernel ip_vs', ok: ipvs, detail: ipvs ? 'IPVS is available on this kernel' : `no IPVS on this kernel${modules ? ' (try: modprobe ip_vs)' : ' and no loadable modules'}`, fix: 'use --backend vm: vslab boots a kernel with IPVS under qemu', required: false });
  const ipip = probe.links.has('tunl0');
  checks.push({ name: 'kernel ipip', ok: ipip, detail: ipip ? 'ipip tunnels available' : 'no ipip on this kernel (TUN real servers cannot decapsulate)', fix: 'use --backend vm for tunnel labs', required: false });
  const gre = probe.links.has('gre0');
  checks.push({ name: 'kernel gre', ok: gre, detail: gre ? 'gre tunnels available' : 'no ip_gre on this kernel', fix: 'use --backend vm for GRE tunnel labs', required: false });
  checks.push({ name: 'kernel nftables', ok: probe.nft, detail: probe.nft ? 'nftables works in a namespace' : 'nft cannot list tables in a namespace', fix: 'apt-get install nftables; a kernel with nf_tables', required: true });
  const kvm = fs.existsSync('/dev/kvm');
  checks.push({ name: 'kvm', ok: kvm, detail: kvm ? '/dev/kvm present (vslab still verifies a guest boots)' : 'no /dev/kvm: VMs run under TCG software emulation (slower, works)', required: false });
  const dockerSock = fs.existsSync('/var/run/docker.sock');
  checks.push({ name: 'docker daemon', ok: dockerSock, detail: dockerSock ? 'docker socket present' : 'no docker daemon running', fix: 'apt-get install docker.io && dockerd &', required: false });
  return {
    checks,
    backend: {
      labs: 'netns',
      kernelIpvs: ipvs ? 'netns (host kernel has IPVS)' : 'vm (host kernel lacks IPVS: --backend vm boots one under qemu)',
    },
  };
}

export const command: CliCommand = {
  name: 'doctor',
  summary: 'check the host: root, tools, kernel features, and which backend will be used',
  usage,
  async run(args) {
    const { values } = parse(args, { json: { type: 'boolean' } }, usage);
    const r = runChecks();
    if (values.json) printJson(r);
    else {
      for (const c of r.checks) console.log(`${c.ok ? ' ok ' : c.required ? 'FAIL' : 'warn'}  ${c.name.padEnd(22)} ${c.detail}${c.ok || !c.fix ? '' : `\n      -> ${c.fix}`}`);
      const missing = r.checks.filter((c) => !c.ok && c.package).map((c) => c.package!);
      if (missing.length) console.log(`\nto install everything missing: ${aptInstallLine(missing)}  (or: bash scripts/setup.sh)`);
      console.log(`\nlabs run on: ${r.backend.labs}; kernel IPVS director: ${r.backend.kernelIpvs}`);
    }
    return r.checks.some((c) => c.required && !c.ok) ? 3 : 0;
  },
};

import { BACKEND_KINDS, isBackendKind, upLab } from '../../backend';
import type { BackendKind } from '../../backend/types';
import { hostRoutedPrefixes } from '../../backend/registry';
import { loadTopologyFile } from '../../topology/load';
import { programDirectors } from '../../director/program';
import { DIRECTOR_NAMES, directorDriver, isDirectorName, type DirectorKind } from '../../director/registry';
import { parse, printJson, progressPrinter } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab up <topology.yaml> [--backend netns|vm|docker] [--director NAME|none] [--name NAME] [--kernel bookworm|backports|VMLINUZ [--modules DIR]] [--json]';

export const command: CliCommand = {
  name: 'up',
  summary: 'bring a lab up from a topology file (it stays up until `vslab down`)',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { backend: { type: 'string' }, name: { type: 'string' }, kernel: { type: 'string' }, modules: { type: 'string' }, director: { type: 'string' }, json: { type: 'boolean' } }, usage);
    if (positionals.length !== 1) throw new UsageError(`expected one topology file\nusage: ${usage}`);
    const backend = (values.backend ?? 'netns') as BackendKind;
    if (!isBackendKind(backend)) throw new UsageError(`unknown backend "${backend}" (${BACKEND_KINDS.join(', ')})`);
    if (values.name !== undefined && !/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(values.name)) throw new UsageError(`--name "${values.name}": use lower-case letters, digits and single hyphens`);
    // Kernel IPVS is programmed where the kernel has it (the VM); on the netns backend the host kernel decides.
    const director = (values.director ?? (backend === 'vm' ? 'ipvs' : 'none')) as DirectorKind;
    if (director !== 'none' && !isDirectorName(director)) throw new UsageError(`unknown director "${director}" (${[...DIRECTOR_NAMES, 'none'].join(', ')})`);
    // Namespaces and containers share this host's kernel: a driver says where it cannot program (kernel IPVS without the host's IPVS).
    const unavailable = director === 'none' ? undefined : directorDriver(director).unavailable(backend);
    if (unavailable) throw new UsageError(`--director ${director}: ${unavailable}`);
    if ((values.kernel || values.modules) && backend !== 'vm') throw new UsageError('--kernel and --modules apply to --backend vm');
    const t0 = performance.now();
    const model = loadTopologyFile(positionals[0], { hostPrefixes: hostRoutedPrefixes() });
    const parseMs = performance.now() - t0;
    const progress = progressPrinter(!!values.json);
    const lab = await upLab(model, { backend, name: values.name, kernel: values.kernel, modules: values.modules, progress });
    let programmed: Awaited<ReturnType<typeof programDirectors>> = [];
    try {
      if (director !== 'none') progress(`programming the director(s) with ${director}`);
      programmed = await programDirectors(director, lab);
    } catch (e) {
      await lab.down().catch(() => {});
      throw new Error(`the lab came up but programming its director failed, so it was taken down again: ${(e as Error).message}`);
    }
    const differences = programmed.flatMap((p) => p.result.differences.map((d) => ({ director: p.node, ...d })));
    const summary = {
      name: lab.name,
      backend: lab.backend,
      topology: model.file,
      readyMs: Math.round(lab.readyMs * 10) / 10,
      director: director === 'none' ? null : { driver: director, programmed: programmed.map((p) => ({ node: p.node, changes: p.result.changes })), differences },
      parseMs: Math.round(parseMs * 10) / 10,
      nodes: model.nodes.map((n) => ({
        name: n.name, role: n.role,
        interfaces: n.interfaces.map((i) => ({ name: i.name, segment: i.segment, mac: i.mac, ipv4: i.ipv4 && `${i.ipv4.addr}/${i.ipv4.prefixLen}`, ipv6: i.ipv6 && `${i.ipv6.addr}/${i.ipv6.prefixLen}`, extra: i.extraAddrs })),
        loopback: n.loopbackAddrs,
      })),
      services: model.services.map((s) => ({ name: s.name, protocol: s.protocol, vip: s.vip, port: s.port, fwmark: s.fwmark, scheduler: s.scheduler, realServers: s.realServers.map((r) => ({ node: r.node, addr: r.addr, port: r.port, method: r.method, weight: r.weight })) })),
    };
    if (values.json) printJson(summary);
    else {
      console.log(`lab ${lab.name} is up (${lab.backend}, ${model.nodes.length} nodes, ready in ${summary.readyMs} ms)`);
      for (const n of summary.nodes) console.log(`  ${n.name.padEnd(12)} ${n.role.padEnd(12)} ${n.interfaces.map((i) => `${i.name} ${[i.ipv4, i.ipv6].filter(Boolean).join(' ')}`).join(', ')}`);
      for (const p of programmed) console.log(`  director ${p.node}: ${director} programmed (${p.result.changes} changes)`);
      for (const d of differences) console.log(`  DIFFERENCE on ${d.director}: ${JSON.stringify(d)}`);
      console.log(`run commands with \`vslab exec ${lab.name} <node> -- <cmd>\`; remove it with \`vslab down ${lab.name}\``);
    }
    return differences.length ? 1 : 0;
  },
};

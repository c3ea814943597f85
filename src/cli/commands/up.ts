import { upLab } from '../../backend';
import type { BackendKind } from '../../backend/types';
import { hostRoutedPrefixes } from '../../backend/registry';
import { loadTopologyFile } from '../../topology/load';
import { parse, printJson, progressPrinter } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab up <topology.yaml> [--backend netns|vm] [--name NAME] [--kernel VMLINUZ] [--json]';

export const command: CliCommand = {
  name: 'up',
  summary: 'bring a lab up from a topology file (it stays up until `vslab down`)',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { backend: { type: 'string' }, name: { type: 'string' }, kernel: { type: 'string' }, json: { type: 'boolean' } }, usage);
    if (positionals.length !== 1) throw new UsageError(`expected one topology file\nusage: ${usage}`);
    const backend = (values.backend ?? 'netns') as BackendKind;
    if (!['netns', 'vm', 'docker'].includes(backend)) throw new UsageError(`unknown backend "${backend}" (netns, vm, docker)`);
    if (values.name !== undefined && !/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(values.name)) throw new UsageError(`--name "${values.name}": use lower-case letters, digits and single hyphens`);
    const t0 = performance.now();
    const model = loadTopologyFile(positionals[0], { hostPrefixes: hostRoutedPrefixes() });
    const parseMs = performance.now() - t0;
    const progress = progressPrinter(!!values.json);
    const lab = await upLab(model, { backend, name: values.name, kernel: values.kernel, progress });
    const summary = {
      name: lab.name,
      backend: lab.backend,
      topology: model.file,
      readyMs: Math.round(lab.readyMs * 10) / 10,
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
      console.log(`run commands with \`vslab exec ${lab.name} <node> -- <cmd>\`; remove it with \`vslab down ${lab.name}\``);
    }
    return 0;
  },
};

import { loadTopologyFile } from '../../topology/load';
import type { LabModel } from '../../topology/model';
import { parse } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab graph <topology.yaml> [--format mermaid|dot]';

const id = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

export function toMermaid(lab: LabModel): string {
  const lines = ['graph LR'];
  const shape: Record<string, [string, string]> = { client: ['([', '])'], director: ['{{', '}}'], 'real-server': ['[', ']'], router: ['((', '))'] };
  for (const n of lab.nodes) {
    const [o, c] = shape[n.role];
    const lo = n.loopbackAddrs.length ? `<br/>lo ${n.loopbackAddrs.join(' ')}` : '';
    lines.push(`  ${id(n.name)}${o}"${n.name}<br/><i>${n.role}</i>${lo}"${c}`);
  }
  for (const s of lab.segments) {
    const nets = [s.ipv4 && `${s.ipv4.addr}/${s.ipv4.prefixLen}`, s.ipv6 && `${s.ipv6.addr}/${s.ipv6.prefixLen}`].filter(Boolean).join('<br/>');
    lines.push(`  seg_${id(s.name)}[/"${s.name} (${s.kind})<br/>${nets}"/]`);
    for (const m of s.members) {
      const i = lab.nodes.find((n) => n.name === m.node)!.interfaces.find((x) => x.name === m.iface)!;
      lines.push(`  ${id(m.node)} ---|"${m.iface} ${[i.ipv4?.addr, i.ipv6?.addr].filter(Boolean).join(' ')}"| seg_${id(s.name)}`);
    }
  }
  for (const svc of lab.services) for (const r of svc.realServers) lines.push(`  ${id(svc.director)} -.->|"${svc.name} ${svc.protocol}/${svc.port} ${r.method}"| ${id(r.node)}`);
  return lines.join('\n') + '\n';
}

export function toDot(lab: LabModel): string {
  const shape: Record<string, string> = { client: 'ellipse', director: 'hexagon', 'real-server': 'box', router: 'circle' };
  const lines = [`graph "${lab.name}" {`, '  rankdir=LR;'];
  for (const n of lab.nodes) lines.push(`  "${n.name}" [shape=${shape[n.role]}, label="${n.name}\\n${n.role}"];`);
  for (const s of lab.segments) {
    lines.push(`  "seg:${s.name}" [shape=plaintext, label="${s.name}\\n${[s.ipv4 && `${s.ipv4.addr}/${s.ipv4.prefixLen}`, s.ipv6 && `${s.ipv6.addr}/${s.ipv6.prefixLen}`].filter(Boolean).join('\\n')}"];`);
    for (const m of s.members) lines.push(`  "${m.node}" -- "seg:${s.name}" [label="${m.iface}"];`);
  }
  for (const svc of lab.services) for (const r of svc.realServers) lines.push(`  "${svc.director}" -- "${r.node}" [style=dashed, label="${svc.name} ${r.method}"];`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

export const command: CliCommand = {
  name: 'graph',
  summary: 'draw a topology as Mermaid or Graphviz dot',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { format: { type: 'string' } }, usage);
    if (positionals.length !== 1) throw new UsageError(`expected one topology file\nusage: ${usage}`);
    const format = values.format ?? 'mermaid';
    if (format !== 'mermaid' && format !== 'dot') throw new UsageError(`unknown format "${format}" (mermaid, dot)`);
    const lab = loadTopologyFile(positionals[0]);
    process.stdout.write(format === 'dot' ? toDot(lab) : toMermaid(lab));
    return 0;
  },
};

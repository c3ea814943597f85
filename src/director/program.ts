// Programs every director of a running lab with its services through a director driver, and
// reports what the director holds that differs from the model.
import type { RunningLab } from '../backend/types';
import { directorHost } from './host';
import { IpvsDirector } from './ipvs';
import type { ApplyResult, DirectorDriver } from './types';

export const DIRECTOR_KINDS = ['ipvs', 'none'] as const;
export type DirectorKind = (typeof DIRECTOR_KINDS)[number];

export interface ProgrammedDirector {
  node: string;
  driver: DirectorDriver;
  result: ApplyResult;
}

export async function openDirector(kind: DirectorKind, lab: RunningLab, node: string): Promise<DirectorDriver> {
  if (kind === 'ipvs') return IpvsDirector.open(directorHost(lab.node(node)));
  throw new Error(`no director driver "${kind}"`);
}

/** Applies each director's services. Full-NAT on mainline IPVS is NAT plus the lab's SNAT rules,
 *  which only see IPVS-forwarded packets when IPVS keeps them conntracked (net.ipv4.vs.conntrack=1). */
export async function programDirectors(kind: DirectorKind, lab: RunningLab): Promise<ProgrammedDirector[]> {
  if (kind === 'none') return [];
  const out: ProgrammedDirector[] = [];
  for (const d of lab.model.nodes.filter((n) => n.role === 'director')) {
    const services = lab.model.services.filter((s) => s.director === d.name);
    if (!services.length) continue;
    const driver = await openDirector(kind, lab, d.name);
    const result = await driver.apply(services);
    if (kind === 'ipvs' && services.some((s) => s.realServers.some((r) => r.method === 'fullnat'))) {
      const r = await lab.node(d.name).exec(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/vs/conntrack']);
      if (r.code !== 0) throw new Error(`director ${d.name}: cannot enable net.ipv4.vs.conntrack for Full-NAT: ${r.stderr.trim()}`);
    }
    out.push({ node: d.name, driver, result });
  }
  return out;
}

// Programs every director of a running lab with its services through the driver named on the command
// line (src/director/registry.ts), and reports what the director holds that differs from the model.
// Services the implementation cannot express are left out, each with its reason: the tests that use
// them are not applicable (never failed, never silently skipped).
import type { RunningLab } from '../backend/types';
import type { LabModel, ServiceModel } from '../topology/model';
import { directorDriver, type DirectorKind } from './registry';
import type { ApplyResult, DirectorDriver } from './types';

export { DIRECTOR_NAMES, isDirectorName, type DirectorKind } from './registry';

export interface ProgrammedDirector {
  node: string;
  driver: DirectorDriver;
  result: ApplyResult;
  /** Services of this director the driver cannot program, with the reason. */
  unsupported: Map<string, string>;
}

export async function openDirector(kind: DirectorKind, lab: RunningLab, node: string): Promise<DirectorDriver> {
  const def = directorDriver(kind);
  const why = def.unavailable(lab.backend);
  if (why) throw new Error(`director ${kind} cannot run on this lab: ${why}`);
  return def.open(lab, node);
}

/** The services `driver` can program, and the others with the driver's reason. */
export async function partitionServices(driver: DirectorDriver, services: ServiceModel[]): Promise<{ supported: ServiceModel[]; unsupported: Map<string, string> }> {
  await driver.capabilities(); // some drivers learn what they can do from the implementation (adapters' describe)
  const supported: ServiceModel[] = [];
  const unsupported = new Map<string, string>();
  for (const s of services) {
    const why = driver.unsupported?.(s);
    if (why) unsupported.set(s.name, why);
    else supported.push(s);
  }
  return { supported, unsupported };
}

/**
 * Why a lab is pointless for this director: every service it has is one the driver declines (known from
 * the model, before the lab is built). Undefined when the driver can program at least one.
 */
export function labBeyondDirector(kind: DirectorKind, model: LabModel): string | undefined {
  const def = directorDriver(kind);
  if (!def.declines || !model.services.length) return undefined;
  const reasons = model.services.map((s) => def.declines!(model, s.director, s));
  if (reasons.some((r) => !r)) return undefined;
  return `director ${kind} can program none of lab ${model.name}'s services: ${[...new Set(reasons)].join('; ')}`;
}

/** Applies each director's services ("none": leaves the directors alone). */
export async function programDirectors(kind: DirectorKind, lab: RunningLab): Promise<ProgrammedDirector[]> {
  if (kind === 'none') return [];
  const out: ProgrammedDirector[] = [];
  for (const d of lab.model.nodes.filter((n) => n.role === 'director')) {
    const services = lab.model.services.filter((s) => s.director === d.name);
    if (!services.length) continue;
    const driver = await openDirector(kind, lab, d.name);
    try {
      const { supported, unsupported } = await partitionServices(driver, services);
      const result = await driver.apply(supported);
      out.push({ node: d.name, driver, result, unsupported });
    } catch (e) {
      await driver.close().catch(() => undefined);
      throw e;
    }
  }
  return out;
}

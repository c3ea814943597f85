// The implementations under test, registered in one place. Each lives in one file behind DirectorDriver
// (types.ts) and exports a DirectorDriverDefinition; add a new one to DRIVERS. `vslab test/run/up
// --director NAME` accept any name here ("none" is `vslab up`'s "leave the director unprogrammed").
import type { BackendKind, RunningLab } from '../backend/types';
import { ADAPTER_PROTOCOL, EXTERNAL_PREFIX, externalUnavailable, openExternal } from './external';
import { haproxyDriver } from './haproxy';
import { ipvsDriver } from './ipvs';
import { keepalivedDriver } from './keepalived';
import { nftablesDriver } from './nftables';
import { nginxDriver } from './nginx';
import type { LabModel, ServiceModel } from '../topology/model';
import type { DirectorDriver } from './types';

export interface DirectorDriverDefinition {
  /** The --director name. */
  name: string;
  /** One line for --help and the matrix. */
  summary: string;
  /** Host programs the vm backend copies into the guests of a run against this driver (beyond the default image). */
  guestTools?: string[];
  /** Why it cannot direct a lab on this backend of this host (undefined when it can). */
  unavailable(backend: BackendKind): string | undefined;
  /** Why it cannot program `service` of director `node`, known from the model before any lab is up (see DirectorDriver.unsupported). */
  declines?(model: LabModel, node: string, service: ServiceModel): string | undefined;
  /** The driver for one director node of a running lab; it may run programs there (node.exec/spawn). */
  open(lab: RunningLab, node: string): Promise<DirectorDriver>;
}

const DRIVERS: DirectorDriverDefinition[] = [ipvsDriver, nftablesDriver, keepalivedDriver, haproxyDriver, nginxDriver];

/** Registered driver names, in registration order. */
export const DIRECTOR_NAMES: readonly string[] = DRIVERS.map((d) => d.name);

/** A --director value: a registered name (or "none" where allowed). */
export type DirectorKind = string;

/** The named driver (or the adapter of "external:PATH"), or an error listing the known ones. */
export function directorDriver(name: string): DirectorDriverDefinition {
  if (name.startsWith(EXTERNAL_PREFIX)) {
    return {
      name, summary: `an external adapter (${ADAPTER_PROTOCOL}, docs/adapter-protocol.md)`,
      unavailable: (backend) => externalUnavailable(name, backend),
      open: (lab, node) => openExternal(name, lab, node),
    };
  }
  const d = DRIVERS.find((x) => x.name === name);
  if (!d) throw new UnknownDirectorError(name);
  return d;
}

export function isDirectorName(name: string): boolean {
  return DRIVERS.some((d) => d.name === name) || (name.startsWith(EXTERNAL_PREFIX) && name.length > EXTERNAL_PREFIX.length);
}

export class UnknownDirectorError extends Error {
  override name = 'UnknownDirectorError';
  constructor(readonly director: string) {
    super(`unknown director "${director}" (known: ${DIRECTOR_NAMES.join(', ')}, or ${EXTERNAL_PREFIX}PATH for an adapter)`);
  }
}

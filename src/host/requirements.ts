// What vslab needs from the host: one list (requirements.json) read by scripts/setup.sh, `vslab doctor`
// and the VM image builder, so a tool is installed, reported and copied into guests from the same entry.
import * as fs from 'fs';
import * as path from 'path';
import list from './requirements.json';

export type Need = 'required' | 'optional';

export interface ToolRequirement {
  /** The program's name as vslab runs it (looked up on PATH). */
  tool: string;
  /** The Debian package that provides it. */
  package: string;
  need: Need;
  /** What needs it: said when it is missing. */
  for: string;
  /** Copied into the VM guest image (required ones must then exist on the host). */
  guest?: boolean;
  /** Part of every Debian system. */
  essential?: boolean;
}

export interface FileRequirement {
  path: string;
  package: string;
  need: Need;
  for: string;
}

export const TOOL_REQUIREMENTS: readonly ToolRequirement[] = list.tools as ToolRequirement[];
export const FILE_REQUIREMENTS: readonly FileRequirement[] = list.files as FileRequirement[];

/** The requirement for a program, or undefined when vslab does not know it. */
export function toolRequirement(tool: string): ToolRequirement | undefined {
  return TOOL_REQUIREMENTS.find((t) => t.tool === tool);
}

/** A program's path on PATH (plus the sbin directories, which a non-login root shell may lack). */
export function which(bin: string, envPath = process.env.PATH): string | undefined {
  const dirs = [...(envPath ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, bin);
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  return undefined;
}

/** `apt-get install` line for the packages that provide what is missing. */
export function aptInstallLine(packages: Iterable<string>): string {
  return `apt-get install -y --no-install-recommends ${[...new Set(packages)].sort().join(' ')}`;
}

/** The error for a required program that is not there, saying which package brings it. */
export function missingToolMessage(tool: string): string {
  const r = toolRequirement(tool);
  return r ? `${tool} is not installed (needed for ${r.for}): ${aptInstallLine([r.package])}, or run \`bash scripts/setup.sh\``
    : `${tool} is not installed`;
}

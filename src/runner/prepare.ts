// Preparing a lab for conformance checks, once per lab: honest checksums on the wire (offloads off), the
// director programmed through its driver, the requested fault applied, a responder on every real server.
import type { RunningLab } from '../backend/types';
import { applyFault, faultByName, type AppliedFault } from '../director/faults';
import { openDirector, partitionServices, programDirectors, type DirectorKind } from '../director/program';
import type { DirectorCapabilities, DirectorDriver } from '../director/types';
import type { LabModel } from '../topology/model';
import { startResponder, type ResponderHandle } from '../traffic';

export interface PreparedLab {
  lab: RunningLab;
  model: LabModel;
  /** Driver per director node. */
  directors: Map<string, DirectorDriver>;
  capabilities: Map<string, DirectorCapabilities>;
  /** Services the driver cannot express (not programmed), with its reason: tests using them are not applicable. */
  unsupported: Map<string, string>;
  responders: Map<string, ResponderHandle>;
  fault?: AppliedFault;
  /** Milliseconds from the start of bring-up until the lab was prepared. */
  readyMs: number;
  /**
   * When the last traffic run in this lab ended (ms since the epoch; set by the suites' Traffic). A director
   * whose counters are folded late (DirectorCapabilities.countersFoldMs) may not show it until a fold after it.
   */
  lastTrafficAt?: number;
  /** Stop responders and close drivers (the lab itself is taken down by its pool). */
  release(): Promise<void>;
}

export interface PrepareOptions {
  director: DirectorKind;
  fault?: string;
  unserved: string[];
  progress?: (msg: string) => void;
  startedAt?: number;
}

/**
 * veth devices checksum locally generated packets lazily (CHECKSUM_PARTIAL): a capture would show a wrong
 * TCP/UDP checksum on every packet and a director that breaks checksums could not be told from one that
 * does not. With transmit checksumming (and the segmentation offloads that need it) off, every packet
 * carries its real checksum and full-size segments stay wire-sized.
 */
export async function disableOffloads(lab: RunningLab): Promise<void> {
  await Promise.all(lab.model.nodes.filter((n) => n.interfaces.length).map(async (n) => {
    const script = n.interfaces.map((i) => `ethtool -K ${i.name} tx off sg off tso off gso off gro off`).join(' && ');
    const r = await lab.node(n.name).exec(['sh', '-c', script], { timeoutMs: 60_000 });
    if (r.code !== 0) {
      const missing = /not found/.test(r.stderr);
      throw new Error(`node ${n.name}: cannot turn checksum offloads off (${r.stderr.trim() || `exit ${r.code}`})${missing ? '; install ethtool (apt-get install ethtool) — on the VM backend it is copied into the guest image when the host has it' : ''}`);
    }
  }));
}

/** One responder per real-server node, listening on every port its services use (except unserved services). */
export async function startResponders(lab: RunningLab, unserved: string[]): Promise<Map<string, ResponderHandle>> {
  const ports = new Map<string, { tcp: Set<number>; udp: Set<number> }>();
  for (const s of lab.model.services) {
    if (unserved.includes(s.name)) continue;
    for (const r of s.realServers) {
      const p = ports.get(r.node) ?? { tcp: new Set<number>(), udp: new Set<number>() };
      (s.protocol === 'udp' ? p.udp : p.tcp).add(r.port);
      ports.set(r.node, p);
    }
  }
  const handles = new Map<string, ResponderHandle>();
  // No per-answer log: nothing reads it, and a responder outliving the worker that started it (the run's
  // shared VM) should not write to a host connection that is no longer its own.
  for (const [node, p] of ports) handles.set(node, startResponder(lab.node(node), { name: node, tcp: [...p.tcp], udp: [...p.udp], readyTimeoutMs: 60_000, log: false }));
  try {
    await Promise.all([...handles.values()].map((h) => h.ready));
  } catch (e) {
    await Promise.all([...handles.values()].map((h) => h.stop().catch(() => undefined)));
    throw e;
  }
  return handles;
}

export async function prepareLab(lab: RunningLab, opts: PrepareOptions): Promise<PreparedLab> {
  const progress = opts.progress ?? (() => undefined);
  const t0 = opts.startedAt ?? performance.now();
  let responders = new Map<string, ResponderHandle>();
  const directors = new Map<string, DirectorDriver>();
  try {
    progress(`${lab.name}: checksum offloads off`);
    await disableOffloads(lab);
    progress(`${lab.name}: programming the director (${opts.director})`);
    const programmed = await programDirectors(opts.director, lab);
    const unsupported = new Map<string, string>();
    for (const p of programmed) {
      directors.set(p.node, p.driver);
      for (const [s, why] of p.unsupported) unsupported.set(s, why);
      if (p.result.differences.length) throw new Error(`director ${p.node} does not hold what was asked: ${JSON.stringify(p.result.differences)}`);
    }
    const capabilities = new Map<string, DirectorCapabilities>();
    for (const [node, d] of directors) capabilities.set(node, await d.capabilities());
    let fault: AppliedFault | undefined;
    if (opts.fault) {
      progress(`${lab.name}: applying fault ${opts.fault}`);
      fault = await applyFault(faultByName(opts.fault), lab);
    }
    progress(`${lab.name}: starting responders`);
    responders = await startResponders(lab, opts.unserved);
    return {
      lab, model: lab.model, directors, capabilities, unsupported, responders, fault, readyMs: performance.now() - t0,
      async release() {
        await Promise.all([...responders.values()].map((r) => r.stop().catch(() => undefined)));
        for (const d of directors.values()) await d.close().catch(() => undefined);
      },
    };
  } catch (e) {
    await Promise.all([...responders.values()].map((r) => r.stop().catch(() => undefined)));
    for (const d of directors.values()) await d.close().catch(() => undefined);
    throw e;
  }
}

/**
 * A lab an earlier worker prepared in the run's shared VM: open the drivers again and take the rest as it
 * is (director programmed, fault applied, responders running in the guest).
 */
export async function adoptPreparedLab(lab: RunningLab, opts: { director: DirectorKind; fault?: AppliedFault; startedAt?: number }): Promise<PreparedLab> {
  const directors = new Map<string, DirectorDriver>();
  const capabilities = new Map<string, DirectorCapabilities>();
  const unsupported = new Map<string, string>();
  if (opts.director !== 'none') {
    for (const n of lab.model.nodes.filter((x) => x.role === 'director' && lab.model.services.some((s) => s.director === x.name))) {
      const d = await openDirector(opts.director, lab, n.name);
      directors.set(n.name, d);
      capabilities.set(n.name, await d.capabilities());
      for (const [s, why] of (await partitionServices(d, lab.model.services.filter((s) => s.director === n.name))).unsupported) unsupported.set(s, why);
    }
  }
  return {
    lab, model: lab.model, directors, capabilities, unsupported, responders: new Map(), fault: opts.fault, readyMs: performance.now() - (opts.startedAt ?? performance.now()),
    async release() {
      for (const d of directors.values()) await d.close().catch(() => undefined);
    },
  };
}

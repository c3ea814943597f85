// The traffic client sessions of prepared labs: one long-lived client (`client.js --serve`) per client node
// of a prepared lab, started on its first run and stopped when the pool closes the lab. Under TCG a
// client's start is most of a short run; a session pays it once per lab and worker.
import { ClientSession } from '../traffic';
import type { PreparedLab } from './prepare';

const sessions = new WeakMap<PreparedLab, Map<string, Promise<ClientSession>>>();

/** The node's session in this prepared lab: a running one, else a new one (the last one ended or failed). */
export async function clientSession(p: PreparedLab, node: string): Promise<ClientSession> {
  let byNode = sessions.get(p);
  if (!byNode) sessions.set(p, (byNode = new Map()));
  const have = byNode.get(node);
  if (have) {
    const s = await have.catch(() => null);
    if (s?.alive) return s;
  }
  const started = ClientSession.start(p.lab.node(node));
  byNode.set(node, started);
  return started;
}

/** Stops every session of the lab (the pool calls this before it releases or leaves the lab). */
export async function stopClientSessions(p: PreparedLab): Promise<void> {
  const byNode = sessions.get(p);
  if (!byNode) return;
  sessions.delete(p);
  for (const s of await Promise.allSettled(byNode.values())) if (s.status === 'fulfilled') s.value.stop();
}

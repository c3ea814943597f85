// How a director driver reaches the director node of a running lab: a netlink transport into the
// node's network namespace, and a way to read files there (/proc/net/ip_vs_conn). Backends differ:
//  - netns, docker: the node's namespace is a file of this host (LabNode.netnsPath); the native helper opens a socket inside it.
//  - vm: the node lives in a guest; its agent relays netlink (a node offering netlink()/netlinkTransact()).
// Anything else can implement DirectorHost directly.
import type { LabNode } from '../backend/types';
import { LocalNetlinkTransport, type NetlinkTransport } from '../netlink/transport';

export interface DirectorHost {
  /** The node's name in the lab. */
  readonly name: string;
  /** A netlink transport of the given protocol (16 = generic) into the node's network namespace. */
  netlink(protocol: number): NetlinkTransport;
  /** The text of a file as seen inside the node (procfs files are per namespace). */
  readFile(path: string): Promise<string>;
  /** Release what netlink() opened. */
  close(): void;
}

/** A node that can give a netlink transport itself (e.g. a VM node whose guest agent relays netlink). */
export interface NetlinkCapableNode {
  netlink(protocol: number): NetlinkTransport;
}

/** A node that relays single netlink exchanges (the VM guest agent's shape). */
export interface NetlinkRelayNode {
  netlinkTransact(protocol: number, request: Buffer): Promise<Buffer>;
}

function hasNetlink(n: unknown): n is NetlinkCapableNode {
  return typeof (n as NetlinkCapableNode).netlink === 'function';
}
function hasRelay(n: unknown): n is NetlinkRelayNode {
  return typeof (n as NetlinkRelayNode).netlinkTransact === 'function';
}

/** A DirectorHost for a node of a running lab, whatever its backend. */
export function directorHost(node: LabNode): DirectorHost {
  const opened: LocalNetlinkTransport[] = [];
  const netlink = (protocol: number): NetlinkTransport => {
    if (hasNetlink(node)) return node.netlink(protocol);
    if (hasRelay(node)) return { transact: (req) => node.netlinkTransact(protocol, req) };
    if (node.netnsPath) {
      const t = new LocalNetlinkTransport(node.netnsPath, protocol);
      opened.push(t);
      return t;
    }
    throw new Error(`node ${node.name}: its backend offers no netlink access (needs a node with a namespace on this host, or one with netlink()/netlinkTransact())`);
  };
  return {
    name: node.name,
    netlink,
    async readFile(path: string): Promise<string> {
      const r = await node.exec(['cat', path], { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`cat ${path} in ${node.name} exited with ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    },
    close() {
      for (const t of opened.splice(0)) t.close();
    },
  };
}

import { attachLab } from '../../backend';
import { readLabState } from '../../backend/registry';
import type { NodeProcess } from '../../backend/types';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab exec [--host] <lab> <node> -- <command> [args...]';

const help = `${usage}
  Runs the command inside the node. A container node (--backend docker) runs its image's program, in
  the container (like docker exec); other nodes run the host's program in the node's network namespace.
  --host   run the host's program in the node's network namespace, also on a container node
           (tcpdump, nft, ip... that the image does not have)
  Exit status: the command's; 127 when the node's image has no such program.`;

export const command: CliCommand = {
  name: 'exec',
  summary: 'run a command inside a lab node (a container node: its image\'s program)',
  usage: help,
  async run(args) {
    const sep = args.indexOf('--');
    let head = sep >= 0 ? args.slice(0, sep) : args.slice(0, 3);
    const host = head.includes('--host');
    head = head.filter((a) => a !== '--host');
    if (sep < 0 && !host) head = head.slice(0, 2);
    const cmd = sep >= 0 ? args.slice(sep + 1) : args.slice(host ? 3 : 2);
    const unknown = head.find((a) => a.startsWith('-'));
    if (unknown) throw new UsageError(`unknown option ${unknown}\nusage: ${usage}`);
    if (head.length !== 2 || !cmd.length) throw new UsageError(`usage: ${usage}`);
    const [labName, nodeName] = head;
    const state = readLabState(labName);
    if (!state?.model) throw new UsageError(`no lab named ${labName} is up (see \`vslab ls\`)`);
    if (!state.model.nodes.some((n) => n.name === nodeName)) throw new UsageError(`lab ${labName} has no node "${nodeName}" (nodes: ${state.model.nodes.map((n) => n.name).join(', ')})`);
    const lab = await attachLab(labName, state.model);
    const node = lab.node(nodeName);
    const p: NodeProcess & { missing?: { program: string; detail: string } } = !host && node.spawnInImage ? node.spawnInImage(cmd) : node.spawn(cmd);
    process.stdin.isTTY ? p.stdin.end() : process.stdin.pipe(p.stdin);
    p.stdout.pipe(process.stdout);
    p.stderr.pipe(process.stderr);
    const { code, signal } = await p.wait();
    process.stdin.unpipe(p.stdin);
    process.stdin.pause();
    if (p.missing) {
      process.stderr.write(`vslab exec: image ${node.image ?? '?'} (node ${nodeName}) has no program ${p.missing.program} (${p.missing.detail}); `
        + `\`vslab exec --host ${labName} ${nodeName} -- ...\` runs the host's program in the node's network namespace\n`);
      return 127;
    }
    return code ?? (signal ? 128 + 15 : 1);
  },
};

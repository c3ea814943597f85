import { attachLab } from '../../backend';
import { readLabState } from '../../backend/registry';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab exec <lab> <node> -- <command> [args...]';

export const command: CliCommand = {
  name: 'exec',
  summary: "run a command inside a lab node's network namespace",
  usage,
  async run(args) {
    const sep = args.indexOf('--');
    const head = sep >= 0 ? args.slice(0, sep) : args.slice(0, 2);
    const cmd = sep >= 0 ? args.slice(sep + 1) : args.slice(2);
    if (head.length !== 2 || !cmd.length) throw new UsageError(`usage: ${usage}`);
    const [labName, nodeName] = head;
    const state = readLabState(labName);
    if (!state?.model) throw new UsageError(`no lab named ${labName} is up (see \`vslab ls\`)`);
    if (!state.model.nodes.some((n) => n.name === nodeName)) throw new UsageError(`lab ${labName} has no node "${nodeName}" (nodes: ${state.model.nodes.map((n) => n.name).join(', ')})`);
    const lab = await attachLab(labName, state.model);
    const p = lab.node(nodeName).spawn(cmd);
    process.stdin.isTTY ? p.stdin.end() : process.stdin.pipe(p.stdin);
    p.stdout.pipe(process.stdout);
    p.stderr.pipe(process.stderr);
    const { code, signal } = await p.wait();
    process.stdin.unpipe(p.stdin);
    process.stdin.pause();
    return code ?? (signal ? 128 + 15 : 1);
  },
};

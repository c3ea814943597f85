// Snapshots of what the host namespace shows, to prove labs leave it exactly as they found it.
import { execFileSync } from 'child_process';

const sh = (cmd: string[]) => execFileSync(cmd[0], cmd.slice(1)).toString();

export interface HostSnapshot { links: string; netns: string[]; routes4: string; routes6: string; nft: string }

export function hostSnapshot(): HostSnapshot {
  return {
    links: sh(['ip', '-br', 'link']),
    netns: sh(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith('vslab-')).sort(),
    routes4: sh(['ip', 'route', 'show', 'table', 'all']),
    routes6: sh(['ip', '-6', 'route', 'show', 'table', 'all']).split('\n').filter((l) => !/^(local|multicast) /.test(l) || true).join('\n'),
    nft: sh(['nft', 'list', 'ruleset']),
  };
}

export function vslabNamespaces(lab: string): string[] {
  return sh(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`vslab-${lab}--`));
}

export const CLI = ['node', `${__dirname}/../../bin/vslab.js`];

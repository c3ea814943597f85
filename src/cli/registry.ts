// Every subcommand, in the order `vslab help` lists them.
import type { CliCommand } from './command';
import { command as up } from './commands/up';
import { command as down } from './commands/down';
import { command as ls } from './commands/ls';
import { command as exec } from './commands/exec';
import { command as run } from './commands/run';
import { command as graph } from './commands/graph';
import { command as doctor } from './commands/doctor';
import { command as gc } from './commands/gc';
import { command as predict } from './commands/predict';
import { command as pcap } from './commands/pcap';
import { command as replay } from './commands/replay';
import { command as test } from './commands/test';
import { command as merge } from './commands/merge';
import { command as report } from './commands/report';
import { command as images } from './commands/images';
import { command as matrix } from './commands/matrix';

export const commands: CliCommand[] = [run, up, down, ls, exec, graph, doctor, gc, images, predict, pcap, replay, test, merge, report, matrix];

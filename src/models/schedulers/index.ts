// Registry: scheduler name -> reference model factory.

import type { SchedulerFactory, SchedulerName } from '../scheduler';
import { createDh } from './dh';
import { createFo } from './fo';
import { createLblc } from './lblc';
import { createLblcr } from './lblcr';
import { createLc } from './lc';
import { createMh } from './mh';
import { createNq } from './nq';
import { createOvf } from './ovf';
import { createRr } from './rr';
import { createSed } from './sed';
import { createSh } from './sh';
import { createTwos } from './twos';
import { createWlc } from './wlc';
import { createWrr } from './wrr';

export const SCHEDULER_FACTORIES: Readonly<Record<SchedulerName, SchedulerFactory>> = {
  rr: createRr,
  wrr: createWrr,
  lc: createLc,
  wlc: createWlc,
  sed: createSed,
  nq: createNq,
  fo: createFo,
  ovf: createOvf,
  twos: createTwos,
  sh: createSh,
  dh: createDh,
  mh: createMh,
  lblc: createLblc,
  lblcr: createLblcr,
};

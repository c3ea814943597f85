// One forwarding oracle per method behind one interface.
import type { ForwardingMethod, LabModel } from '../../topology/model';
import type { Flow, FlowPlan, PlanOptions } from '../types';

export interface ForwardingOracle {
  readonly method: ForwardingMethod;
  /** Expected headers of the flow on every link it crosses, both directions, plus links it must avoid. */
  plan(lab: LabModel, flow: Flow, opts?: PlanOptions): FlowPlan;
}

// The actor runner's protocols: the step machine and the actors a run needs beyond the Data,
// Student and Teacher every run has. A run's protocol is composed from its methods
// (compose.ts); one defined outside the repository is one more ProtocolDefinition (module.ts).
import type { RunSpec } from '../spec/schema.ts';
import type { Role } from '../actors/roles/index.ts';
import type { stepMachine } from './blocks.ts';
import { composeProtocol } from './compose.ts';

export interface ProtocolActor {
  name: string;
  role: Role;
  /** Added to the common init body (spec, config, encoderDim, data). */
  init?: Record<string, unknown>;
}

export interface ProtocolDefinition {
  name: string;
  step: ReturnType<typeof stepMachine>;
  /** Extra actors. Ones with role `projector` are trainable heads: saved under `proj.`, stepped by `update`. */
  actors: ProtocolActor[];
}

/** The protocol of a spec: its methods' routes composed into one step. */
export function protocolFor(spec: RunSpec): ProtocolDefinition {
  return composeProtocol(spec);
}

export { composeProtocol };
export { runMachine } from './runMachine.ts';
export * as blocks from './blocks.ts';

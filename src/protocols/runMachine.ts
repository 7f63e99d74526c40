// The outer run machine: start actors → (load a checkpoint) → train steps → evaluate every N
// (beside training) → checkpoint every K → finish; a failed actor sends the run to `recovering`
// (restart it, reload everyone from the last checkpoint, replay), a NaN/Inf or an error that is
// not an actor's death ends it in `failed`. It only decides: starting, saving, recovering and
// finishing are promise actors the runner provides (src/run/actorRun.ts), and so are the
// side-effect actions (logging a step, starting an evaluation). Tests provide fakes (no threads).
import { assign, fromPromise, setup } from 'xstate';
import type { ActorSystem } from '../actors/system.ts';
import type { RunContext, StepFailure, StepOutput } from './context.ts';
import type { StepLog } from '../build/stepLog.ts';
import { stepMachine } from './blocks.ts';

/** The type of every step machine; the runner provides the run's own (compose.ts). */
const anyStep = stepMachine('(provided by the runner)', {}, 'done');

export interface RunMachineInput {
  total: number;
  checkpointEvery: number;
  evalEvery: number;
  /** Restarts allowed after actor failures before giving up. */
  maxRestarts: number;
}

export interface Started { sys: ActorSystem; run: RunContext; step: number }

export interface RunMachineContext extends RunMachineInput {
  sys: ActorSystem | null;
  run: RunContext | null;
  /** Steps completed. */
  step: number;
  restarts: number;
  lastLog: StepLog | null;
  failure: (StepFailure & { step: number }) | null;
}

export const runMachine = setup({
  types: {} as { context: RunMachineContext; input: RunMachineInput },
  actors: {
    start: fromPromise<Started, void>(async () => { throw new Error('provide start'); }),
    step: anyStep,
    checkpoint: fromPromise<void, { step: number }>(async () => { throw new Error('provide checkpoint'); }),
    recover: fromPromise<{ step: number; run?: RunContext }, { failure: StepFailure & { step: number } }>(async () => { throw new Error('provide recover'); }),
    finish: fromPromise<void, { step: number }>(async () => { throw new Error('provide finish'); }),
  },
  actions: {
    logStep: (_, _log: StepLog) => {},
    evaluate: (_, _step: number) => {},
    reportFailure: (_, _f: StepFailure & { step: number }) => {},
  },
  guards: {
    finished: ({ context: c }) => c.step >= c.total,
    checkpointDue: ({ context: c }) => c.step % c.checkpointEvery === 0,
    evalDue: ({ context: c }) => c.evalEvery > 0 && c.step % c.evalEvery === 0,
  },
}).createMachine({
  id: 'run',
  context: ({ input }) => ({ ...input, sys: null, run: null, step: 0, restarts: 0, lastLog: null, failure: null }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'start',
        onDone: { target: 'training', actions: assign(({ event }) => ({ sys: event.output.sys, run: event.output.run, step: event.output.step })) },
        onError: { target: 'failed', actions: assign(({ event }) => ({ failure: { kind: 'error' as const, error: event.error as Error, where: 'start', step: 0 } })) },
      },
    },
    training: {
      always: { guard: 'finished', target: 'finishing' },
      invoke: {
        src: 'step',
        input: ({ context: c }) => ({ sys: c.sys!, run: c.run!, step: c.step + 1 }),
        onDone: [
          {
            guard: ({ event, context: c }) => !(event.output as StepOutput).ok && (event.output as Extract<StepOutput, { ok: false }>).failure.kind === 'actor' && c.restarts < c.maxRestarts,
            target: 'recovering',
            actions: [
              assign(({ event }) => { const o = event.output as Extract<StepOutput, { ok: false }>; return { failure: { ...o.failure, step: o.step } }; }),
              { type: 'reportFailure', params: ({ context: c }) => c.failure! },
            ],
          },
          {
            guard: ({ event }) => !(event.output as StepOutput).ok,
            target: 'failed',
            actions: [
              assign(({ event }) => { const o = event.output as Extract<StepOutput, { ok: false }>; return { failure: { ...o.failure, step: o.step } }; }),
              { type: 'reportFailure', params: ({ context: c }) => c.failure! },
            ],
          },
          {
            target: 'stepped',
            actions: [
              assign(({ event, context: c }) => ({ step: c.step + 1, lastLog: (event.output as Extract<StepOutput, { ok: true }>).log })),
              { type: 'logStep', params: ({ context: c }) => c.lastLog! },
            ],
          },
        ],
        onError: { target: 'failed', actions: assign(({ event, context: c }) => ({ failure: { kind: 'error' as const, error: event.error as Error, where: 'step', step: c.step + 1 } })) },
      },
    },
    stepped: {
      entry: { type: 'evaluate', params: ({ context: c }) => c.step },
      always: [
        { guard: 'finished', target: 'finishing' },
        { guard: 'checkpointDue', target: 'checkpointing' },
        { target: 'training' },
      ],
    },
    checkpointing: {
      invoke: {
        src: 'checkpoint',
        input: ({ context: c }) => ({ step: c.step }),
        onDone: 'training',
        onError: { target: 'failed', actions: assign(({ event, context: c }) => ({ failure: { kind: 'error' as const, error: event.error as Error, where: 'checkpoint', step: c.step } })) },
      },
    },
    recovering: {
      invoke: {
        src: 'recover',
        input: ({ context: c }) => ({ failure: c.failure! }),
        // Starting over from nothing brings a fresh run context (its random streams from the seed):
        // the machine must step with that one, not the one whose streams had already advanced.
        onDone: { target: 'training', actions: assign(({ event, context: c }) => ({ step: event.output.step, run: event.output.run ?? c.run, restarts: c.restarts + 1, failure: null })) },
        onError: { target: 'failed', actions: assign(({ event, context: c }) => ({ failure: { kind: 'error' as const, error: event.error as Error, where: 'recover', step: c.step } })) },
      },
    },
    finishing: {
      invoke: {
        src: 'finish',
        input: ({ context: c }) => ({ step: c.step }),
        onDone: 'done',
        onError: { target: 'failed', actions: assign(({ event, context: c }) => ({ failure: { kind: 'error' as const, error: event.error as Error, where: 'finish', step: c.step } })) },
      },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
  },
});

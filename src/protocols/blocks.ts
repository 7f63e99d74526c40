// The building blocks protocol step machines are made of (xstate v5, one `setup` shared by all):
//   ask(to, type, body, {save, from, meta})   one message to one actor, its reply kept in out[save]
//   together({ a: ask(...), b: ask(...) })    a parallel state: independent actors at the same time
//   compute(fn)                               a pure coordinator decision (assign), then move on
//   plus the common steps: fetch, noise, clip, update, ema, release, and checkLoss.
// Each block takes the name of the state that follows, so a protocol reads top to bottom like
// its paper's algorithm box. Any failure (an actor error, a dead worker, a NaN) ends the step in
// `failed` with what failed and where; the run machine decides what to do about it.
import { assign, fromPromise, setup } from 'xstate';
import { sampleTimes, uniformTimesteps } from '../diffusion/index.ts';
import { clipCoefficient } from '../optim/clip.ts';
import { emaDecay } from '../build/parts.ts';
import { ActorError, ActorFailure } from '../actors/ref.ts';
import type { ActorSystem } from '../actors/system.ts';
import { initialStepContext, type StepContext, type StepFailure, type StepInput, type StepOutput } from './context.ts';

interface AskInput {
  sys: ActorSystem;
  to: string;
  type: string;
  body: unknown;
  step: number;
  from?: string;
  meta?: Record<string, unknown>;
}

export const stepSetup = setup({
  types: {} as { context: StepContext; input: StepInput; output: StepOutput },
  actors: {
    ask: fromPromise<any, AskInput>(({ input: i }) => i.sys.ask(i.to, i.type, i.body, { step: i.step, from: i.from, meta: i.meta })),
    release: fromPromise<void, { sys: ActorSystem; step: number }>(({ input }) => input.sys.release(input.step)),
  },
});

type Ctx = StepContext;
/** A state node config (kept loose: blocks are assembled into machines by stepMachine). */
export type StateConfig = Record<string, any>;

function failureOf(e: unknown, where: string): StepFailure {
  const error = e instanceof Error ? e : new Error(String(e));
  return { kind: error instanceof ActorFailure ? 'actor' : 'error', error, where };
}

const onError = (where: string) => ({
  target: '#step.failed',
  actions: assign({ failure: ({ event }: { event: { error: unknown } }) => failureOf(event.error, where) }),
});

export interface AskOptions {
  /** Keep the reply in context.out[save]. */
  save?: string;
  /** The logical sender shown in the trace (whose output the message carries). */
  from?: string;
  /** Trace routing labels, e.g. { grad_of: ['proj'] }. */
  meta?: (c: Ctx) => Record<string, unknown>;
  /** Fold the reply into the context another way. */
  then?: (c: Ctx, reply: any) => Partial<Ctx>;
}

/** One message; `body` runs inside the step's arena (allocations are recycled at release). */
export function ask(to: string, type: string, body: (c: Ctx) => unknown, o: AskOptions, next: string): StateConfig {
  return {
    invoke: {
      src: 'ask',
      input: ({ context: c }: { context: Ctx }): AskInput => ({
        sys: c.sys, to, type, step: c.step, from: o.from, meta: o.meta?.(c),
        body: c.sys.inStep(c.step, () => body(c)),
      }),
      onDone: {
        target: next,
        actions: assign((({ context: c, event }: { context: Ctx; event: { output: any } }) => ({
          ...(o.save && { out: { ...c.out, [o.save]: event.output } }),
          ...o.then?.(c, event.output),
        })) as any),
      },
      onError: onError(`${to}.${type}`),
    },
  };
}

/** Independent messages at the same time; moves on when all replied. */
export function together(regions: Record<string, (next: string) => StateConfig>, next: string): StateConfig {
  return {
    type: 'parallel',
    states: Object.fromEntries(Object.entries(regions).map(([k, make]) => [k, {
      initial: 'run',
      states: { run: make('finished'), finished: { type: 'final' } },
    }])),
    onDone: next,
  };
}

/** A coordinator decision (allocations charged to the step). */
export function compute(fn: (c: Ctx) => Partial<Ctx>, next: string): StateConfig {
  return {
    entry: assign(({ context: c }: { context: Ctx }) => c.sys.inStep(c.step, () => fn(c))),
    always: next,
  };
}

// ---------------------------------------------------------------- the common steps

export const fetch = (next: string): StateConfig => ask('data', 'next', () => ({}), { then: (_c, b) => ({ batch: b }) }, next);

/** ε ~ N(0, I) like x from the noise stream; t from the time stream (flow times or DDPM steps). */
export const noise = (next: string): StateConfig => compute((c) => {
  const { spec, rngs, path } = c.run;
  const x = c.batch!.z ?? c.batch!.x; // the model's input: the latents in a frozen latent space
  const B = x.shape[0];
  const eps = rngs.noise.normal(x.shape);
  const d = spec.diffusion;
  const t = d.objective === 'ddpm'
    ? uniformTimesteps(rngs.time, B, 1000)
    : sampleTimes(rngs.time, B, d.time_sampling === 'uniform' ? { kind: 'uniform' } : { kind: 'logitNormal', mean: d.logit_normal_mean, std: d.logit_normal_std }, path);
  return { eps, t };
}, next);

/** The total loss must be finite before anything is differentiated (the reference checks it there too). */
export function checkLoss(total: (c: Ctx) => { loss: number; terms: Record<string, number> }, next: string, who = 'student'): StateConfig {
  return {
    entry: assign(({ context: c }: { context: Ctx }) => total(c)),
    always: [
      {
        guard: ({ context: c }: { context: Ctx }) => !Number.isFinite(c.loss),
        target: '#step.failed',
        actions: assign(({ context: c }: { context: Ctx }) => ({
          failure: { kind: 'nonfinite' as const, where: `${who}.forward`, error: new Error(`loss became ${c.loss} at step ${c.step} (${c.run.spec.protocol} loss; terms ${JSON.stringify(c.terms)})`) },
        })),
      },
      { target: next },
    ],
  };
}

/** Global gradient-norm clip over every trainable actor's share; the LR factor of this step. */
export const clip = (next: string): StateConfig => ({
  entry: assign(({ context: c }: { context: Ctx }) => {
    const total = Math.sqrt(Object.values(c.sumSq).reduce((a, b) => a + b, 0));
    return { gradNorm: total, coef: clipCoefficient(total, c.run.spec.train.grad_clip), lrFactor: c.run.schedule(c.step - 1) };
  }),
  always: [
    {
      guard: ({ context: c }: { context: Ctx }) => !Number.isFinite(c.gradNorm),
      target: '#step.failed',
      actions: assign(({ context: c }: { context: Ctx }) => ({
        failure: { kind: 'nonfinite' as const, where: 'backward', error: new Error(`gradient norm became ${c.gradNorm} at step ${c.step}`) },
      })),
    },
    { target: next },
  ],
});

/**
 * The student's backward seeded with the projector's gradient (already weighted) for the tapped
 * block; the student's and the projector's shares of Σ‖g‖² go to the clip.
 */
export function headBackward(block: (c: Ctx) => number, gradOf: string[], next: string): StateConfig {
  return ask('student', 'backward', (c) => ({ grads: { [block(c)]: c.out.align.grad } }), {
    from: 'projector', meta: () => ({ grad_of: gradOf }),
    then: (c, r) => ({ sumSq: { student: r.sumSq, projector: c.out.align.sumSq } }),
  }, next);
}

/** AdamW on every trainable actor, at the same clip factor and LR factor. */
export function update(actors: string[], next: string): StateConfig {
  return together(Object.fromEntries(actors.map((a) => [a, (n: string) => ask(a, 'step', (c) => ({ coef: c.coef, lrFactor: c.lrFactor }), { save: a === 'student' ? 'params' : undefined }, n)])), next);
}

/** The teacher folds in the parameters the student lent (EMA with the spec's decay and warm-up). */
export const ema = (next: string): StateConfig => ask('teacher', 'ema', (c) => ({ params: c.out.params.params, decay: emaDecay(c.run.spec, c.step - 1) }), { from: 'student' }, next);

/** End the step everywhere (leases, tapes, buffers). */
export const release = (next: string): StateConfig => ({
  invoke: {
    src: 'release',
    input: ({ context: c }: { context: Ctx }) => ({ sys: c.sys, step: c.step }),
    onDone: next,
    onError: onError('release'),
  },
});

/**
 * Assemble a step machine from blocks; it starts at `initial` and ends in `done` or `failed`.
 * (Its xstate id is always `step`, the target the blocks' failure transitions name.)
 */
export function stepMachine(protocol: string, states: Record<string, StateConfig>, initial = 'fetch') {
  return stepSetup.createMachine({
    id: 'step',
    description: `one training step of ${protocol}`,
    context: ({ input }) => initialStepContext(input),
    initial,
    states: { ...states, done: { type: 'final' }, failed: { type: 'final' } } as any,
    output: ({ context: c }): StepOutput => c.failure
      ? { ok: false, step: c.step, failure: c.failure }
      : { ok: true, log: { step: c.step, loss: c.loss, terms: c.terms, lr: c.run.spec.train.lr * c.lrFactor, grad_norm: c.gradNorm } },
  });
}

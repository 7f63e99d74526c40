// The plan of one training step, read from the run's methods once, the same for both engines: the
// blocks the student taps, the align terms (which method, which block, which key in the logs), the
// teacher queries, whether the encoder's features feed the forward, the coordinator's RNG streams
// and draws, and the sum L = Σ own terms + Σ align terms. Both engines walk this plan: the
// reference on one tape (run/reference.ts), the step machine across actors (protocols/compose.ts).
import type { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { add, mul } from '../autograd/ops/index.ts';
import { velocityLoss } from '../diffusion/index.ts';
import type { AlignTerm, StepValues, StudentForward, WeightedTerm } from '../methods/method.ts';
import type { ActiveMethod } from '../methods/registry.ts';
import type { RunSpec } from '../spec/schema.ts';
import { backboneHook, jointVae, vaeFrozen, methodsOf, methodStreams, prefixTokens, readsEncoder, studentTaps } from './parts.ts';

export interface PlannedAlign {
  /** Key in metrics.jsonl (the term's name, or `<method>.<name>` when two methods use one name). */
  key: string;
  m: ActiveMethod;
  term: AlignTerm<any>;
  /** Index of the term in its method's alignTerms (how a message names it). */
  index: number;
  tap: number;
}

export interface StepPlan {
  methods: ActiveMethod[];
  taps: number[];
  aligns: PlannedAlign[];
  /** Methods that read the EMA teacher's hidden state. */
  teachers: ActiveMethod[];
  encoder: boolean;
  /** The encoder's features feed the student's forward (so they come before it, not beside it). */
  featuresFirst: boolean;
  prefixTokens: number;
  streams: string[];
  /** A VAE trained with the backbone, its method and its align term. */
  vae: ReturnType<typeof jointVae>;
  /** The joint VAE never changes (learning rate 0): it only encodes, with no loss, alignment pass or step. */
  vaeFrozen: boolean;
}

export function stepPlan(spec: RunSpec): StepPlan {
  const methods = methodsOf(spec);
  const raw = methods.flatMap((m) => (m.def.alignTerms ?? []).map((term, index) => ({ m, term, index, tap: term.tap(m.s), key: term.name })));
  const vae = jointVae(spec);
  const dup = new Set(raw.filter((a, i) => raw.findIndex((b) => b.key === a.key) !== i).map((a) => a.key));
  return {
    methods,
    taps: studentTaps(spec),
    aligns: raw.map((a) => (dup.has(a.key) ? { ...a, key: `${a.m.def.name}.${a.key}` } : a)),
    teachers: methods.filter((m) => m.def.teacher),
    encoder: readsEncoder(spec),
    featuresFirst: !!backboneHook(spec)?.hook.readsFeatures,
    prefixTokens: prefixTokens(spec),
    streams: methodStreams(spec),
    vae,
    vaeFrozen: !!vae && vaeFrozen(vae),
  };
}

/** Each method's draws for this step, in the methods' order (the order of the RNG draws is part of the run). */
export function drawAll(plan: StepPlan, v: Omit<StepValues, 'draws' | 'feats'>, rngs: Record<string, Rng>, encoderDim: number | null): Record<string, Record<string, any>> {
  const draws: Record<string, Record<string, any>> = {};
  for (const m of plan.methods) if (m.def.draw) draws[m.def.name] = m.def.draw(m.s, v, rngs, { encoderDim });
  return draws;
}

/** The student's own weighted terms: the velocity loss (`diff`, at the methods' diffWeight), the backbone's, the methods' student terms. */
export function ownTerms(plan: StepPlan, f: StudentForward): [string, WeightedTerm][] {
  const weight = plan.methods.reduce((w, m) => w * (m.def.diffWeight?.(m.s) ?? 1), 1);
  const out: [string, WeightedTerm][] = [['diff', { value: velocityLoss(f.out, f.target).loss, weight }], ...Object.entries(f.terms)];
  for (const m of plan.methods) {
    if (m.def.studentTerms) out.push(...Object.entries(m.def.studentTerms(m.s, f, { prefixTokens: plan.prefixTokens })));
  }
  return out;
}

/** Σ weight·value over weighted terms, on the tape (a weight of 1 adds the term itself). */
export function weightedSum(terms: readonly WeightedTerm[]): Tensor {
  let total: Tensor | null = null;
  for (const { value, weight } of terms) {
    const w = weight === 1 ? value : mul(value, weight);
    total = total ? add(total, w) : w;
  }
  if (!total) throw new Error('weightedSum: no terms');
  return total;
}

/** Extra logged numbers from the methods' draws (SRA's weight). */
export function loggedNumbers(plan: StepPlan, v: StepValues): Record<string, number> {
  return Object.assign({}, ...plan.methods.map((m) => m.def.logged?.(m.s, v) ?? {}));
}

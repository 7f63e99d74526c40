// Adapters between diffactor's time convention (t=0 data, t=1 noise: REPA, SRA, REG, DeepFlow,
// REPA-E, RAE) and the flipped one (t'=0 noise, t'=1 data: LayerSync/SiT ICPlan, DDT, ReDi, SVG).
// With t' = 1 − t the flipped interpolant t'·x + (1−t')·ε equals ours at t, and its velocity
// x − ε is ours negated (dt' = −dt). Every map here is an involution. Not here: VE/EDM σ
// conventions (EPG), SD3's integer σ·1000 (SoftREPA).
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { neg } from '../autograd/ops/index.ts';
import type { ModelFn } from './types.ts';

/** t' = 1 − t (either direction). */
export const flipTime = (t: number): number => 1 - t;

export function flipTimes(ts: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ts.length);
  for (let i = 0; i < ts.length; i++) out[i] = 1 - ts[i];
  return out;
}

/** A velocity in one convention as the other sees it: −v (differentiable). */
export const flipVelocity = (v: Tensor): Tensor => neg(v);

/**
 * A velocity model trained in the flipped convention, seen in ours (and vice versa):
 * v(x, t, y) = −model(x, 1 − t, y).
 */
export function flipModel(model: ModelFn): ModelFn {
  return (x, t, y) => {
    const tf = tensor(flipTimes(t.data), t.shape, t.dtype);
    return neg(model(x, tf, y));
  };
}

/** A timestep shift s in the flipped convention is the shift 1/s in ours: 1 − τ_s(1−t) = τ_{1/s}(t) (SVG's 0.4 ≡ 2.5). */
export function flipShift(s: number): number {
  if (!(s > 0)) throw new Error(`flipShift: shift must be > 0, got ${s}`);
  return 1 / s;
}

/**
 * Guidance interval [lo, hi] given in the flipped convention, in ours: [1−hi, 1−lo]. (DDT's open
 * interval (0.3, 1.0) corresponds to REPA-time (0, 0.7); the endpoints' openness is not converted.)
 */
export function flipInterval(lo: number, hi: number): [number, number] {
  return [1 - hi, 1 - lo];
}

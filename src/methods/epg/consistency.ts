// EPG's consistency fine-tuning (stage 'consistency'; Wang et al., arXiv 2510.12586, §"consistency
// model"; official github.com/AMAP-ML/EPG rcm/rcm_denoiser.py ConsisTuneStep, gen_denoise and
// get_scalings_for_boundary_condition, rcm/resample.py LogNormalSamplerECT, gen_train.py,
// configs/imagenet256_consistency.py; the pair sampling is ECT's, Geng et al., arXiv 2406.14548):
//   parametrisation  f(x, σ) = c_skip(σ)·x + c_out(σ)·F(c_in·x, 250·ln σ), with the boundary at
//                    σ_min' = σ_min·shift:  c_skip = σ_d²/((σ − σ_min')² + σ_d²),
//                    c_out = (σ − σ_min')·σ_d/√(σ² + σ_d²)  ⇒ f(x, σ_min') = x exactly
//   pair             t ~ max(exp(P_mean + P_std·n), σ_min) per sample (unshifted), the ECT stage
//                    s(k) = δ for k < d0, else ⌊(k − d0 + d1)/d1⌋ + δ (k the completed steps), and
//                    r = max(t·(1 − q^{−s}·(1 + κ·sigmoid(−b·t))), σ_min); both ×shift, one ε:
//                    x_t = x + t·ε, x_r = x + r·ε (the same trajectory, r ≤ t)
//   target           sg f(x_r, r) from the online model itself (the official target network is
//                    re-synchronised to the online one after every step: target_update(0)); stage
//                    s = 0 is the denoising warm-up with target x
//   loss             w·ρ(f(x_t, t) − target), w = 1/(t − r) (shifted; 0 where t = r), mean over the batch,
//                    ρ(d) = √(‖d‖² + c²) − c the pseudo-Huber over the whole sample (ECT; c 0.06 in the
//                    released config, the class default 0.08)
// Ours: ρ is the pseudo-Huber itself; the official code writes ‖d‖²/sg√(‖d‖² + c²), whose
// gradient is exactly 2·∇ρ (a constant factor Adam does not see, up to its ε) and whose value is
// not ρ. The official perceptual term (InfoNCE through the frozen stage-1 encoder and projector)
// is index.ts perceptualTerm, behind epg.perceptual_weight; the official dropout 0.5 is not built.
import { add, mul, pow, sub, sum } from '../../autograd/index.ts';
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { EDM } from '../../diffusion/ve.ts';

/** The consistency-model scalings with the boundary at sigmaMin (the shifted σ_min): c_skip(σ_min) = 1, c_out(σ_min) = 0. */
export function cmScalings(sigma: number, sigmaMin: number, sigmaData: number = EDM.sigmaData): { cSkip: number; cOut: number } {
  if (!(sigma > 0) || !(sigmaMin > 0) || !(sigmaData > 0)) throw new Error(`epg cmScalings: σ, σ_min and σ_data must be > 0, got ${sigma}, ${sigmaMin}, ${sigmaData}`);
  const d = sigma - sigmaMin;
  return { cSkip: (sigmaData * sigmaData) / (d * d + sigmaData * sigmaData), cOut: (d * sigmaData) / Math.sqrt(sigma * sigma + sigmaData * sigmaData) };
}

/** f(x, σ) = c_skip(σ)·x + c_out(σ)·F per sample, x and F (B, ...). */
export function applyBoundary(x: Tensor, f: Tensor, sigmas: ArrayLike<number>, sigmaMin: number, sigmaData: number = EDM.sigmaData): Tensor {
  const B = x.shape[0];
  if (sigmas.length !== B) throw new Error(`epg applyBoundary: ${sigmas.length} noise levels for a batch of ${B}`);
  const sc = Array.from(sigmas, (s) => cmScalings(s, sigmaMin, sigmaData));
  const per = (v: number[], like: Tensor) => tensor(v, [B, ...like.shape.slice(1).map(() => 1)], like.dtype);
  return add(mul(x, per(sc.map((c) => c.cSkip), x)), mul(f, per(sc.map((c) => c.cOut), f)));
}

/** ECT's stage after k completed steps: δ before d0, then one more every d1 steps. */
export function ectStage(k: number, d: readonly [number, number], delta: number): number {
  return k < d[0] ? delta : Math.floor((k - d[0] + d[1]) / d[1]) + delta;
}

export interface EctPair { q: number; k: number; b: number; sigmaMin: number }

/** ECT's smaller noise level r of t (both unshifted) at a stage: t·(1 − q^{−s}·(1 + κ·sigmoid(−b·t))), at least σ_min. */
export function ectR(t: number, stage: number, p: EctPair): number {
  const adj = 1 + p.k / (1 + Math.exp(p.b * t));
  return Math.max(t * (1 - adj / p.q ** stage), p.sigmaMin);
}

/** The pseudo-Huber ρ(d_b) = √(‖d_b‖² + c²) − c of each sample of d (B, ...), (B). */
export function pseudoHuber(d: Tensor, c: number): Tensor {
  if (d.ndim < 1) throw new Error(`epg pseudoHuber: expected (B, ...), got ${fmtShape(d.shape)}`);
  if (!(c > 0)) throw new Error(`epg pseudoHuber: c must be > 0, got ${c}`);
  const axes = Array.from({ length: d.ndim - 1 }, (_, i) => i + 1);
  const sq = axes.length ? sum(mul(d, d), axes) : mul(d, d);
  return sub(pow(add(sq, c * c), 0.5), c);
}

/** ECT's weights 1/(t − r) of shifted pairs, 0 where t = r. */
export function ectWeights(t: ArrayLike<number>, r: ArrayLike<number>): Float64Array {
  return Float64Array.from(t, (tv, i) => (tv === r[i] ? 0 : 1 / (tv - r[i])));
}

/** mean_b w_b·ρ(pred_b − target_b), the target held as given (the caller's stop-gradient). */
export function consistencyObjective(pred: Tensor, target: Tensor, weights: Float64Array, c: number): Tensor {
  if (pred.shape.join() !== target.shape.join()) throw new Error(`epg consistency loss: prediction ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} differ`);
  const rho = pseudoHuber(sub(pred, target), c);
  return mul(sum(mul(rho, tensor(Array.from(weights), [weights.length], rho.dtype))), 1 / weights.length);
}

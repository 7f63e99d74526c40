// EPG's pre-training losses (Wang et al., arXiv 2510.12586; official github.com/AMAP-ML/EPG,
// rcm/rcm_denoiser.py PreTrainStep, read through methods-b §7):
//   InfoNCE(q, k; τ) = (1/B)·Σ_i [logsumexp_j(q̂_i·k̂_j/τ) − q̂_i·k̂_i/τ], q̂, k̂ L2-normalised rows
//                      (methods-b P3); the other samples of the batch are the negatives
//   contrastive        InfoNCE(p(v1), sg p⁻(v2)) + InfoNCE(p(v2), sg p⁻(v1)), p⁻ the EMA target's
//   consistency        InfoNCE(e(x + σ·ε, σ), sg e(x + σ′·ε, σ′)), both from the online encoder
// The stop-gradients are the callers' (model.ts computes the targets under noGrad).
// The consistency term's temperature (rcm/rcm_denoiser.py get_tau, rcm/utils.py
// create_ema_and_scales_fn; methods-b §7 "Adaptive temperature"):
//   constant       τ = τ_min
//   interpolated   τ(σ̃) = τ_min + (σ̃ − σ_min)/(σ_max − σ_min)·(τ_max − τ_min), σ̃ the UNSHIFTED σ (σ·64/H)
//   τ_max(k)       constant: τ_max;  cosine: end·cos(π/2·(1.5k/K + 1)) + τ_max while 1.5k/K + 1 ≤ 2, else end
//                  (k the completed steps of K; the official code's form, discontinuous at k = 2K/3 unless τ_max = 2·end)
import { add, crossEntropy, matmul, mul, transpose } from '../../autograd/index.ts';
import { unitNormalize } from '../../autograd/ops/unitNormalize.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';

/** InfoNCE of queries q (B, D) against keys k (B, D), positives on the diagonal, mean over the batch. */
export function infoNce(q: Tensor, k: Tensor, tau: number): Tensor {
  if (q.ndim !== 2 || k.ndim !== 2 || q.shape[0] !== k.shape[0] || q.shape[1] !== k.shape[1]) {
    throw new Error(`epg infoNce: q and k must both be (B, D), got ${fmtShape(q.shape)} and ${fmtShape(k.shape)}`);
  }
  if (!(tau > 0)) throw new Error(`epg infoNce: the temperature must be > 0, got ${tau}`);
  const logits = mul(matmul(unitNormalize(q), transpose(unitNormalize(k), 0, 1)), 1 / tau); // (B, B)
  return crossEntropy(logits, Int32Array.from({ length: q.shape[0] }, (_, i) => i));
}

/** The symmetric contrastive term: InfoNCE(p1, t2) + InfoNCE(p2, t1). */
export function symmetricInfoNce(p1: Tensor, p2: Tensor, t1: Tensor, t2: Tensor, tau: number): Tensor {
  return add(infoNce(p1, t2, tau), infoNce(p2, t1, tau));
}

/** The interpolated temperature at the unshifted σ̃: τ_min at σ_min, τ_max at σ_max, linear (so monotone) between. */
export function interpolatedTau(sigmaTilde: number, tauMin: number, tauMax: number, sigmaMin: number, sigmaMax: number): number {
  if (!(sigmaMax > sigmaMin)) throw new Error(`epg interpolatedTau: need sigma_min < sigma_max, got ${sigmaMin}, ${sigmaMax}`);
  return ((sigmaTilde - sigmaMin) / (sigmaMax - sigmaMin)) * tauMax + ((sigmaMax - sigmaTilde) / (sigmaMax - sigmaMin)) * tauMin;
}

/** τ_max after k of K steps: `start` (constant), or the official cosine schedule from `start` towards `end`. */
export function tauMaxAt(schedule: 'constant' | 'cosine', k: number, K: number, start: number, end: number): number {
  if (schedule === 'constant') return start;
  const a = (1.5 * k) / K + 1;
  return a <= 2 ? end * Math.cos((Math.PI / 2) * a) + start : end;
}

// DDPM training losses for ε-prediction models (DiT): q_sample, the ε-MSE (L_simple) and DiT's
// hybrid loss L_simple + L_vlb for learned variances (improved-DDPM, loss type MSE, not rescaled).
// L_vlb is the KL(q(x_{t−1}|x_t,x_0) ‖ p(x_{t−1}|x_t)) in bits per dim, or at t = 0 the
// discretized Gaussian NLL of x_0; its mean uses the stop-gradiented ε̂, so it trains only the
// variance half. The VLB is one fused op (float64 inside) with a hand-written backward to v.
// Not here: the schedule (ddpmSchedule.ts), sampling (ddpmSampler.ts).
import { empty, tensor, type Tensor } from '../tensor/tensor.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';
import { add, mean, mul, record, split } from '../autograd/index.ts';
import type { DdpmSchedule } from './ddpmSchedule.ts';
import { modelLogVariance, modelLogVarianceDv, posteriorMean, predictX0 } from './ddpmPosterior.ts';
import { discretizedGaussianLogLik, normalKl, normalKlDlv2 } from './gaussianTerms.ts';
import { meanFlatMse, type PerSampleLoss } from './flowLoss.ts';

/** Integer timestep indices, checked against the schedule. */
function steps(s: DdpmSchedule, t: ArrayLike<number> | Tensor, batch: number): Int32Array {
  const v: ArrayLike<number> = 'shape' in t && 'data' in t ? (t as Tensor).data : (t as ArrayLike<number>);
  if (v.length !== batch) throw new Error(`ddpm: ${v.length} timesteps for a batch of ${batch}`);
  const out = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    if (!Number.isInteger(v[i]) || v[i] < 0 || v[i] >= s.T) throw new Error(`ddpm: timestep ${v[i]} at ${i} is not an integer in [0, ${s.T})`);
    out[i] = v[i];
  }
  return out;
}

/** (B, 1, ..., 1) tensor of table[t_b]. */
function gatherCoef(table: Float64Array, ts: Int32Array, like: Tensor): Tensor {
  const c = new Float64Array(ts.length);
  for (let i = 0; i < ts.length; i++) c[i] = table[ts[i]];
  return tensor(c, [ts.length, ...like.shape.slice(1).map(() => 1)], like.dtype);
}

/** x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (differentiable in x_0 and ε). */
export function qSample(s: DdpmSchedule, x0: Tensor, eps: Tensor, t: ArrayLike<number> | Tensor): Tensor {
  const ts = steps(s, t, x0.shape[0]);
  return add(mul(x0, gatherCoef(s.sqrtAlphasCumprod, ts, x0)), mul(eps, gatherCoef(s.sqrtOneMinusAlphasCumprod, ts, x0)));
}

/** L_simple: mean_flat((ε̂ − ε)²) per sample, then the batch mean. */
export const epsLoss = (epsPred: Tensor, eps: Tensor): PerSampleLoss => meanFlatMse(epsPred, eps);

/**
 * Per-sample VLB term in bits (B): KL at t > 0, decoder NLL at t = 0 (improved-DDPM
 * _vb_terms_bpd with clip_denoised = False). epsPred is read as a constant (stop-gradient);
 * the gradient flows to v, the learned-variance output in [−1, 1]. All of (B, ...) shape.
 */
export function vlbTerms(
  s: DdpmSchedule, x0: Tensor, xt: Tensor, epsPred: Tensor, v: Tensor, t: ArrayLike<number> | Tensor,
): Tensor {
  for (const [n, a] of [['xt', xt], ['epsPred', epsPred], ['v', v]] as const) {
    if (!sameShape(a.shape, x0.shape)) throw new Error(`vlbTerms: ${n} ${fmtShape(a.shape)} differs from x0 ${fmtShape(x0.shape)}`);
  }
  const B = x0.shape[0], P = B === 0 ? 0 : x0.size / B;
  const ts = steps(s, t, B);
  const dv = new Float64Array(x0.size); // ∂ term_b / ∂ v, saved for the backward
  const out = empty([B], v.dtype);
  const X0 = x0.data, XT = xt.data, E = epsPred.data, V = v.data;
  for (let b = 0; b < B; b++) {
    const tb = ts[b], lvTrue = s.posteriorLogVarianceClipped[tb], dlv = modelLogVarianceDv(s, tb);
    let acc = 0;
    for (let i = b * P; i < (b + 1) * P; i++) {
      const mModel = posteriorMean(s, tb, predictX0(s, tb, XT[i], E[i]), XT[i]);
      const lv = modelLogVariance(s, tb, 'learned', V[i]);
      if (tb === 0) {
        const [ll, dll] = discretizedGaussianLogLik(X0[i], mModel, 0.5 * lv);
        acc -= ll;
        dv[i] = -dll * 0.5 * dlv;
      } else {
        const mTrue = posteriorMean(s, tb, X0[i], XT[i]);
        acc += normalKl(mTrue, lvTrue, mModel, lv);
        dv[i] = normalKlDlv2(mTrue, lvTrue, mModel, lv) * dlv;
      }
    }
    out.data[b] = acc / P / Math.LN2;
  }
  return record('ddpmVlb', [v], out, (g) => {
    const dV = empty(v.shape, v.dtype);
    const scale = 1 / P / Math.LN2;
    for (let b = 0; b < B; b++) {
      const gb = g.data[b] * scale;
      for (let i = b * P; i < (b + 1) * P; i++) dV.data[i] = gb * dv[i];
    }
    return [dV];
  });
}

export interface HybridLoss extends PerSampleLoss {
  /** (B) L_simple per sample */
  mse: Tensor;
  /** (B) L_vlb per sample, bits per dim */
  vb: Tensor;
}

/**
 * DiT's training loss with learn_sigma: modelOut (B, 2C, ...) = [ε̂ ; v]; x0, xt, eps (B, C, ...).
 * perSample = mse + vb; loss = its batch mean. ε̂ gets gradient from mse only, v from vb only.
 */
export function hybridLoss(
  s: DdpmSchedule, modelOut: Tensor, x0: Tensor, xt: Tensor, eps: Tensor, t: ArrayLike<number> | Tensor,
): HybridLoss {
  const C = x0.shape[1];
  if (x0.ndim < 2 || modelOut.ndim !== x0.ndim || modelOut.shape[1] !== 2 * C || modelOut.shape[0] !== x0.shape[0]) {
    throw new Error(`hybridLoss: model output ${fmtShape(modelOut.shape)} must be (B, 2C, ...) for x0 ${fmtShape(x0.shape)}`);
  }
  const [epsPred, v] = split(modelOut, [C, C], 1);
  const { perSample: mse } = meanFlatMse(epsPred, eps);
  const vb = vlbTerms(s, x0, xt, epsPred, v, t);
  const perSample = add(mse, vb);
  return { mse, vb, perSample, loss: mean(perSample) };
}

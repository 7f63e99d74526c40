// SVG's two operations on the residual branch's output h_res before it joins the frozen encoder's
// features (Shi et al., "Latent Diffusion Model without Variational Autoencoder", arXiv 2510.15301;
// official code github.com/shiml20/SVG autoencoder/ldm/models/dino_decoder.py, `encode` and
// `match_distribution`; methods-b §6), channel-last here: tokens (B, N, C).
//   mask (train only):  with probability p per sample, ALL of h_res (N, r) becomes the learnt
//                       mask vector (r), broadcast over tokens: h ← h·(1 − f_b) + m·f_b
//   distribution matching (use_outnorm):
//     μ_X = mean_c mean_{b,n} X[b,n,c],  σ_X = mean_c std_{b,n} X[b,n,c]  (std unbiased, as torch)
//     h_res ← (h_res − μ_r) / (σ_r + 1e-6) · σ_d + μ_d
//   with all four scalars DETACHED (numbers here) and batch statistics in training AND at inference.
// So the matching is an affine map with constant scalars: its gradient is σ_d / (σ_r + 1e-6).
// Not here: the residual ViT and decoder (model.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, mul, reshape, sub } from '../../autograd/ops/index.ts';

/** eps added to the residual's σ (match_distribution's default). */
export const SVG_MATCH_EPS = 1e-6;

/** μ (mean of per-channel means) and σ (mean of per-channel unbiased stds) of tokens (B, N, C), in float64. */
export function channelMeanStd(x: Tensor): { mean: number; std: number } {
  if (x.ndim !== 3) throw new Error(`channelMeanStd: expected tokens (B, N, C), got ${fmtShape(x.shape)}`);
  const [B, N, C] = x.shape, n = B * N, d = x.data;
  if (n < 2) throw new Error(`channelMeanStd: an unbiased std needs at least 2 rows, got B·N = ${n}`);
  const m = new Float64Array(C), v = new Float64Array(C);
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) m[c] += d[i * C + c];
  for (let c = 0; c < C; c++) m[c] /= n;
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) { const e = d[i * C + c] - m[c]; v[c] += e * e; }
  let mean = 0, std = 0;
  for (let c = 0; c < C; c++) { mean += m[c]; std += Math.sqrt(v[c] / (n - 1)); }
  return { mean: mean / C, std: std / C };
}

/** h_res (B, N, r) matched to the scalar statistics of h_enc (B, N, d); both read detached. */
export function matchDistribution(hEnc: Tensor, hRes: Tensor, eps = SVG_MATCH_EPS): Tensor {
  if (hEnc.ndim !== 3 || hRes.ndim !== 3 || hEnc.shape[0] !== hRes.shape[0] || hEnc.shape[1] !== hRes.shape[1]) {
    throw new Error(`matchDistribution: expected h_enc (B, N, d) and h_res (B, N, r) of one batch and grid, got ${fmtShape(hEnc.shape)} and ${fmtShape(hRes.shape)}`);
  }
  return matchWithStats(hRes, channelMeanStd(hEnc), channelMeanStd(hRes), eps);
}

/** The matching's affine map with its statistics given (numbers: no gradient flows into them). */
export function matchWithStats(hRes: Tensor, enc: { mean: number; std: number }, res: { mean: number; std: number }, eps = SVG_MATCH_EPS): Tensor {
  return add(mul(sub(hRes, res.mean), enc.std / (res.std + eps)), enc.mean); // (B, N, r)
}

/**
 * h_res (B, N, r) with the samples whose flag is set replaced by the mask vector (r):
 * h·(1 − f) + m·f, f (B) in {0, 1}. The mask vector receives the gradient of the masked samples.
 */
export function maskResidual(hRes: Tensor, maskToken: Tensor, flags: ArrayLike<number>): Tensor {
  const [B, , r] = hRes.shape;
  if (hRes.ndim !== 3 || flags.length !== B || maskToken.size !== r) throw new Error(`maskResidual: h_res ${fmtShape(hRes.shape)}, ${flags.length} flags and a mask vector of ${maskToken.size} do not fit (B, N, r)`);
  const f = new Float32Array(B), keep = new Float32Array(B);
  for (let b = 0; b < B; b++) { f[b] = flags[b] ? 1 : 0; keep[b] = 1 - f[b]; }
  const kt = tensor(keep, [B, 1, 1], hRes.dtype), ft = tensor(f, [B, 1, 1], hRes.dtype);
  return add(mul(hRes, kt), mul(reshape(maskToken, [1, 1, r]), ft)); // (B, N, r)
}

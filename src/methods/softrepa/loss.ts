// SoftREPA's contrastive loss over denoising errors (Lee et al., arXiv 2503.08250, Eq. for the
// soft-token objective; official code github.com/softrepa/SoftREPA `train.py`, `sampler.py`):
// B images and B captions, ONE time t and ONE noise ε shared by all B² pairs,
//   z_i     = path(x_i, ε, t)                      the noised image i (SD3: (1−σ)x_i + σε)
//   E[i,j]  = mean over (C,H,W) of (target_i − v(z_i, t, c_j))²      target_i = ε − x_i (ours: the path's)
//   ℓ[i,j]  = s · exp(−E[i,j] / τ)                  s = 4.0, τ = 0.07 (fixed: not optimised)
//   L       = CE over j of ℓ[i,:] with target j = i, averaged over i
// plus dweight · mean_i E[i,i], which the engines add as the `diff` term (MethodDefinition.diffWeight).
// Pair k = i·B + j is image i with caption j (row-major over (image, caption)).
// Not here: the model (model.ts), which parameters train (index.ts).
import { full, type Tensor } from '../../tensor/tensor.ts';
import { crossEntropy, exp, indexSelect, mean, mul, pow, reshape, sub } from '../../autograd/index.ts';
import { flowTrainingPair, type Interpolant } from '../../diffusion/index.ts';

/** SD3 run_train.sh / train.py: logit scale and temperature (declared parameters, never in the optimiser). */
export const SOFTREPA_SCALE = 4.0;
export const SOFTREPA_TEMPERATURE = 0.07;

/** Image index i and caption index j of every pair k = i·B + j. */
export function pairIndices(b: number): { image: Int32Array; caption: Int32Array } {
  const image = new Int32Array(b * b), caption = new Int32Array(b * b);
  for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) { image[i * b + j] = i; caption[i * b + j] = j; }
  return { image, caption };
}

/** The pairs' shared noised images and targets: ε = eps[0] and t = t[0] for every image (t may hold just one). (B, ...) each. */
export function sharedNoising(path: Interpolant, x: Tensor, eps: Tensor, t: ArrayLike<number>): { xt: Tensor; target: Tensor; t: Float64Array; eps: Tensor } {
  const b = x.shape[0], per = x.size / b;
  if (eps.shape[0] < 1 || eps.size / eps.shape[0] !== per) throw new Error('softrepa: the noise does not match the images');
  if (t.length < 1) throw new Error('softrepa: no time drawn');
  const shared = full(x.shape, 0, x.dtype);
  for (let i = 0; i < b; i++) shared.data.set(eps.data.subarray(0, per), i * per);
  const ts = new Float64Array(b).fill(t[0]);
  const { xt, target } = flowTrainingPair(path, x, shared, ts);
  return { xt, target, t: ts, eps: shared };
}

/** E (B, B) from predictions v (B², C, H, W) of pair k = i·B + j and targets (B, C, H, W). */
export function pairErrors(v: Tensor, target: Tensor): Tensor {
  const b = target.shape[0];
  if (v.shape[0] !== b * b) throw new Error(`softrepa: ${v.shape[0]} pair predictions for ${b} images (need B² = ${b * b})`);
  const d = sub(v, indexSelect(target, 0, pairIndices(b).image)); // (B², C, H, W)
  const axes = Array.from({ length: v.ndim - 1 }, (_, i) => i + 1);
  return reshape(mean(pow(d, 2), axes), [b, b]); // (B, B)
}

/** ℓ = s · exp(−E/τ), elementwise. */
export function softRepaLogits(e: Tensor, scale: number, temperature: number): Tensor {
  if (!(temperature > 0)) throw new Error(`softrepa.temperature must be > 0, got ${temperature}`);
  return mul(exp(mul(e, -1 / temperature)), scale);
}

/** Cross-entropy of each image's row of logits against its own caption (the diagonal), mean over images. */
export function softRepaLoss(e: Tensor, scale: number, temperature: number): Tensor {
  if (e.ndim !== 2 || e.shape[0] !== e.shape[1]) throw new Error(`softrepa: E must be (B, B), got (${e.shape.join(', ')})`);
  return crossEntropy(softRepaLogits(e, scale, temperature), Int32Array.from({ length: e.shape[0] }, (_, i) => i));
}

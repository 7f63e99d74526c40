// What UniFlow's claim is measured on (issue 13, item 4; docs/methods.md, "UniFlow"): the features a
// linear probe reads — the mean of x_norm_patchtokens and x_norm_clstoken, as the stand-in encoder's
// own probe (standins/ssl/probe.ts) — of the trained student E_U and of the frozen teacher E_T, and the
// tokenizer as a Reconstruct (encode, then the Euler decode from seeded noise) for
// rae/recon.ts's reconstructionError (MSE in [−1, 1], PSNR in [0, 1]). Deterministic: the noise of
// batch k is Rng(seed).child(k).
// Not here: the probe itself (eval/linearProbe.ts) and the report (scripts/uniflow-eval.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { tidy } from '../../tensor/tidy.ts';
import { noGrad } from '../../autograd/tape.ts';
import type { ImageDataset } from '../../data/index.ts';
import type { FrozenEncoder } from '../encoder.ts';
import type { Reconstruct } from '../rae/recon.ts';
import type { UniFlowModel } from './model.ts';

/** Images (B, C, H, W) in [−1, 1] → patch tokens (B, N, d) and class token (B, d). */
export type TokenEncoder = (x: Tensor) => { tokens: Tensor; cls: Tensor };

export const studentTokens = (m: UniFlowModel): TokenEncoder => (x) => m.encode(x);
export const teacherTokens = (e: FrozenEncoder): TokenEncoder => (x) => { const f = e.features(x); return { tokens: f.patch, cls: f.cls }; };

export interface TokenFeatures {
  /** (n, d) mean patch token and class token, float64; labels (n). */
  patchMean: Float64Array;
  cls: Float64Array;
  labels: Int32Array;
  n: number;
  dim: number;
}

/** Features of the first n images of ds (all when n exceeds its count), in batches. */
export function tokenFeatures(encode: TokenEncoder, ds: ImageDataset, n: number, batch = 128): TokenFeatures {
  if (!Number.isInteger(n) || n < 1) throw new Error(`tokenFeatures: n must be a positive integer, got ${n}`);
  const count = Math.min(n, ds.count), per = ds.channels * ds.height * ds.width;
  let out: TokenFeatures | null = null;
  const labels = new Int32Array(count);
  for (let lo = 0; lo < count; lo += batch) {
    const b = Math.min(batch, count - lo), x = new Float32Array(b * per);
    for (let j = 0; j < b; j++) labels[lo + j] = ds.get(lo + j, x, j * per);
    noGrad(() => tidy(() => {
      const { tokens, cls } = encode(tensor(x, [b, ds.channels, ds.height, ds.width]));
      const [, t, d] = tokens.shape;
      out ??= { patchMean: new Float64Array(count * d), cls: new Float64Array(count * d), labels, n: count, dim: d };
      for (let i = 0; i < b; i++) {
        for (let k = 0; k < d; k++) out.cls[(lo + i) * d + k] = cls.data[i * d + k];
        for (let s = 0; s < t; s++) for (let k = 0; k < d; k++) out.patchMean[(lo + i) * d + k] += tokens.data[(i * t + s) * d + k] / t;
      }
    }));
  }
  return out!;
}

/** The tokenizer's reconstruction: encode x, decode from N(0, I) noise (Rng(seed).child(k) for the k-th call) in `steps` Euler steps. */
export function uniflowReconstruct(m: UniFlowModel, seed: number, steps = 1): Reconstruct {
  let k = 0;
  return (x) => m.reconstruct(x, new Rng(seed).child(k++).normal(x.shape), steps);
}

// The held-out denoising loss: the training objective's image term on test images, at a fixed
// stratified grid of times (sample i of n at t = (i + 0.5) / n) with fixed noise, so values at
// different steps and of different methods are comparable. SiT/DiT: the velocity (or ε) MSE. REG:
// the same image velocity MSE, with the encoder's class token of each test image fed in noised at
// the image's t with its own fixed noise (REG loss.py) — the class-token and
// alignment terms are left out so the number means the same as the others'. REPA-E is not measured:
// its latent space moves with the VAE, so a latent loss is not comparable across steps. In a frozen
// latent space (spec.latent) the loss is the latents' (fixed, so comparable across steps).
import { noGrad } from '../autograd/tape.ts';
import { split } from '../autograd/ops/layout.ts';
import { tidy } from '../tensor/tidy.ts';
import { fromData, type Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { openDataset } from '../data/index.ts';
import { DdpmSchedule, epsLoss, flowTrainingPair, interpolantByName, qSample, velocityLoss } from '../diffusion/index.ts';
import { SiT } from '../models/sit.ts';
import { RegSiT } from '../models/reg.ts';
import { regClsPair } from '../methods/reg/loss.ts';
import type { FrozenEncoder } from '../methods/encoder.ts';
import type { RunSpec } from '../spec/schema.ts';
import { latentSpaceOf } from '../build/latentSpace.ts';

export interface HeldOutOptions {
  /** Dataset override (--data). */
  data?: string;
  /** Test images used (default 256). */
  count?: number;
  /** Model batch (default 64): the value does not depend on it. */
  batch?: number;
  /** REG: the frozen encoder whose class token the model is given. */
  encoder?: FrozenEncoder;
}

/** A function of the model (eval mode) giving its held-out loss; fixed images, noise and times. */
export function heldOutLoss(spec: RunSpec, o: HeldOutOptions = {}): (model: SiT | RegSiT) => number {
  const name = o.data ?? spec.data.dataset;
  const ds = openDataset(name, { split: 'test', size: spec.data.size, seed: spec.seed, count: name === 'builtin' ? 512 : undefined });
  const n = Math.min(o.count ?? 256, ds.count), B = o.batch ?? 64;
  let shape = [ds.channels, ds.height, ds.width], per = ds.channels * ds.height * ds.width;
  let xs: Float32Array = new Float32Array(n * per);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) ys[i] = ds.get(i, xs, i * per);
  // In a frozen latent space the model denoises the images' latents: encode them once.
  const space = latentSpaceOf(spec);
  const pixels = { xs, shape, per };
  if (space) {
    const z = space.encode(fromData(xs, [n, ...shape]));
    xs = z.data as Float32Array;
    shape = z.shape.slice(1);
    per = z.size / n;
  }
  const noise = new Rng(spec.seed).child('evaluator').child('noise');
  const eps = noise.normal([n, ...shape]).data as Float32Array;
  const path = interpolantByName(spec.diffusion.path);
  const ddpm = spec.diffusion.objective === 'ddpm' ? DdpmSchedule.linear() : null;
  // REG: the clean class tokens and their noise, computed once.
  let cls: { g: Float32Array; epsG: Float32Array; d: number } | null = null;
  const rows = (a: Float32Array, s: number, m: number, w: number, sh: number[]): Tensor => fromData(a.subarray(s * w, (s + m) * w), [m, ...sh]);
  return (model) => {
    if (model instanceof RegSiT && !cls) {
      if (!o.encoder) throw new Error('heldOutLoss: a REG model needs the frozen encoder (its class token is an input)');
      const d = model.clsDim, g = new Float32Array(n * d);
      for (let s = 0; s < n; s += B) tidy(() => { g.set(o.encoder!.features(rows(pixels.xs, s, Math.min(B, n - s), pixels.per, pixels.shape)).cls.data, s * d); });
      cls = { g, epsG: noise.child('cls').normal([n, d]).data as Float32Array, d };
    }
    let sum = 0;
    noGrad(() => {
      for (let s = 0; s < n; s += B) {
        const m = Math.min(B, n - s);
        sum += tidy(() => {
          const x = rows(xs, s, m, per, shape), e = rows(eps, s, m, per, shape);
          const y = ys.subarray(s, s + m);
          if (ddpm) {
            const t = Int32Array.from({ length: m }, (_, i) => Math.floor(((s + i + 0.5) / n) * ddpm.T));
            // A DiT that learns its variance outputs (B, 2C, ...): ε̂ is the first C channels (hybridLoss).
            const out = (model as SiT).forward(qSample(ddpm, x, e, t), t, y).out, c = e.shape[1];
            return epsLoss(out.shape[1] === 2 * c ? split(out, [c, c], 1)[0] : out, e).loss.item() * m;
          }
          const t = Float64Array.from({ length: m }, (_, i) => (s + i + 0.5) / n);
          const { xt, target } = flowTrainingPair(path, x, e, t);
          if (model instanceof RegSiT) {
            const c = cls!;
            const gt = regClsPair(path, rows(c.g, s, m, c.d, [c.d]), rows(c.epsG, s, m, c.d, [c.d]), t).xt;
            return velocityLoss(model.forward(xt, t, y, { cls: gt }).out, target).loss.item() * m;
          }
          return velocityLoss(model.forward(xt, t, y).out, target).loss.item() * m;
        });
      }
    });
    return sum / n;
  };
}

// REG's Euler–Maruyama sampler with the class-token stream (github.com/Martinser/REG samplers.py; the
// image part is §0.4's SDE sampler, diffusion/sdeSampler.ts): the image x and the class token g
// start from independent N(0, I); each step makes one model call on (x, g) giving (v, v_g), and
// each stream takes the same update — score from its own velocity, drift d = v − ½·w·s, its own
// Brownian noise — on the grid linspace(1, tLast, N) then 0, the last step noiseless. Inside the
// guidance interval the batch is [x; x] with [g; g] (the unconditional half keeps the same noisy
// class token) and labels [y; null]; the image velocity is guided with `guidance.scale`, the
// class velocity with `clsScale` (≤ 0: conditional only). Guiding v equals REG's guiding of the
// drift, which is affine in v with the same x-terms in both halves. Image noise comes from
// `rng` exactly as sampleSde draws it, class noise from `clsRng`. The final g is returned but
// REG discards it. Not here: the model (models/reg.ts), ODE sampling (REG has none).
import { full, tensor, type DType, type Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { tidy } from '../../tensor/tidy.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import {
  cfgCombine, guidanceActive, linear, scoreCoefs, sdeDiffusion, sdeGrid,
  type Guidance, type Interpolant, type ProgressFn,
} from '../../diffusion/index.ts';

/** x (B, ...), t (B), y (B), g (B, d) -> image velocity (B, ...) and class velocity (B, d). */
export type RegModelFn = (x: Tensor, t: Tensor, y: Tensor, g: Tensor) => { v: Tensor; vg: Tensor };

export interface RegSdeOptions {
  steps: number;
  /** Image noise (drawn as sampleSde draws it). */
  rng: Rng;
  /** Class-token noise. */
  clsRng: Rng;
  interpolant?: Interpolant;
  tLast?: number;
  guidance?: Guidance;
  /** Guidance scale of the class velocity (REG's cls_cfg_scale); default the image scale; ≤ 0 conditional only. */
  clsScale?: number;
  onStep?: ProgressFn;
}

interface Pred { v: Float64Array; vg: Float64Array }

function evalReg(
  model: RegModelFn, x: Float64Array, xShape: readonly number[], g: Float64Array, gShape: readonly number[],
  t: number, y: Tensor, dtype: DType, guided: Guidance | null, clsScale: number,
): Pred {
  const B = xShape[0];
  return tidy(() => {
    if (!guided) {
      const o = model(tensor(x, xShape, dtype), full([B], t, dtype), y, tensor(g, gShape, dtype));
      return { v: Float64Array.from(o.v.data), vg: Float64Array.from(o.vg.data) };
    }
    const twice = (a: Float64Array) => { const d = new Float64Array(2 * a.length); d.set(a); d.set(a, a.length); return d; };
    const y2 = new Float64Array(2 * B);
    y2.set(y.data);
    y2.fill(guided.nullClass, B);
    const o = model(tensor(twice(x), [2 * B, ...xShape.slice(1)], dtype), full([2 * B], t, dtype), tensor(y2, [2 * B], y.dtype), tensor(twice(g), [2 * B, ...gShape.slice(1)], dtype));
    const halves = (d: ArrayLike<number>, n: number) => [Float64Array.from({ length: n }, (_, i) => d[i]), Float64Array.from({ length: n }, (_, i) => d[n + i])];
    const [vc, vu] = halves(o.v.data, x.length);
    const [gc, gu] = halves(o.vg.data, g.length);
    return { v: cfgCombine(vc, vu, guided.scale), vg: clsScale > 0 ? cfgCombine(gc, gu, clsScale) : gc };
  });
}

export function sampleSdeReg(model: RegModelFn, noise: Tensor, clsNoise: Tensor, y: Tensor, opts: RegSdeOptions): { x: Tensor; g: Tensor } {
  const p = opts.interpolant ?? linear, N = opts.steps, grid = sdeGrid(N, opts.tLast);
  const B = noise.shape[0];
  if (clsNoise.ndim !== 2 || clsNoise.shape[0] !== B) throw new Error(`sampleSdeReg: class noise ${fmtShape(clsNoise.shape)} must be (${B}, d)`);
  if (y.size !== B) throw new Error(`sampleSdeReg: ${y.size} labels for a batch of ${B}`);
  const gd = opts.guidance, clsScale = opts.clsScale ?? gd?.scale ?? 1;
  const x = Float64Array.from(noise.data), g = Float64Array.from(clsNoise.data);
  noGrad(() => {
    for (let i = 0; i < N; i++) {
      const t = grid[i], dt = grid[i + 1] - t, w = sdeDiffusion(t);
      const last = i === N - 1;
      const xi = last ? null : opts.rng.normalArray(x.length);
      const xig = last ? null : opts.clsRng.normalArray(g.length);
      const { v, vg } = evalReg(model, x, noise.shape, g, clsNoise.shape, t, y, noise.dtype, guidanceActive(gd, t) ? gd! : null, clsScale);
      if (v.length !== x.length || vg.length !== g.length) {
        throw new Error(`sampleSdeReg: model returned ${v.length} + ${vg.length} values for states of ${x.length} + ${g.length}`);
      }
      const [a, b] = scoreCoefs(p, t); // s = a·v − b·x
      const noiseScale = Math.sqrt(w) * Math.sqrt(Math.abs(dt));
      for (const [state, vel, z] of [[x, v, xi], [g, vg, xig]] as const) {
        for (let j = 0; j < state.length; j++) {
          const drift = vel[j] - 0.5 * w * (a * vel[j] - b * state[j]);
          state[j] += drift * dt + (z ? noiseScale * z[j] : 0);
        }
      }
      opts.onStep?.(i + 1, N);
    }
  });
  return { x: tensor(x, noise.shape, noise.dtype), g: tensor(g, clsNoise.shape, clsNoise.dtype) };
}

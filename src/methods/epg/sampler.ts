// EPG's sampler (Wang et al., arXiv 2510.12586; official github.com/AMAP-ML/EPG rcm/rcm_denoiser.py
// sample / sample_heun / sample_euler, read through methods-b §7): Euler or Heun (Karras et al.
// 2022, Algorithm 1 without churn) on the shifted Karras grid, from x = σ_0·ε:
//   σ_0 > … > σ_{N−1} the N-point grid ×shift, then σ_N = 0      (N = sample.steps)
//   D = clamp(D(x, σ_i), −1, 1),  d = (x − D)/σ_i,  x' = x + (σ_{i+1} − σ_i)·d
//   Heun: d' from D(x', σ_{i+1}), x ← x + (σ_{i+1} − σ_i)·(d + d')/2, except the last step (to 0) is Euler
// so one step is x = D(σ_0·ε, σ_0) (the official `onestep`), and Heun costs 2N − 1 evaluations
// (build/draw.ts modelCallsPerSample). Classifier-free guidance D_u + w·(D_c − D_u) (the null class
// = numClasses) only where σ_i ∈ (lo, hi] (EPG: (0.19, 1.61]); the official grid has no trailing 0
// (N points, N − 1 steps); ours appends it, as EDM's sampler does, so `--steps 1` is one model call.
import { noGrad } from '../../autograd/tape.ts';
import { tidy } from '../../tensor/tidy.ts';
import { add, clamp, concat, div, mul, slice, sub } from '../../autograd/index.ts';
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { karrasSigmas, type KarrasGrid } from '../../diffusion/ve.ts';

/** D(x_σ, σ (B), labels (B)) → x0 (B, C, H, W). */
export type EpgDenoiser = (x: Tensor, sigmas: Float64Array, labels: Int32Array) => Tensor;

export interface EpgSampleOptions {
  steps: number;
  heun: boolean;
  shift: number;
  grid: KarrasGrid;
  /** Guidance scale (≤ 1: none), the null class, and the σ interval (lo, hi] where it applies. */
  cfg: number;
  nullClass: number;
  interval: readonly [number, number];
  onStep?: (i: number, n: number) => void;
}

/** The σ's a run of `steps` steps visits: the shifted Karras grid of `steps` points, then 0. */
export function samplingSigmas(steps: number, shift: number, grid: KarrasGrid): Float64Array {
  const g = karrasSigmas(steps, shift, grid);
  const out = new Float64Array(steps + 1);
  out.set(g);
  return out;
}

function guided(den: EpgDenoiser, x: Tensor, sigma: number, y: Int32Array, o: EpgSampleOptions): Tensor {
  const B = y.length, sig = new Float64Array(B).fill(sigma);
  const [lo, hi] = o.interval;
  let d: Tensor;
  if (o.cfg > 1 && sigma > lo && sigma <= hi) {
    const both = den(concat([x, x], 0), new Float64Array(2 * B).fill(sigma), Int32Array.from([...y, ...new Array<number>(B).fill(o.nullClass)]));
    const c = slice(both, 0, 0, B), u = slice(both, 0, B, 2 * B);
    d = add(u, mul(sub(c, u), o.cfg));
  } else {
    d = den(x, sig, y);
  }
  return clamp(d, -1, 1);
}

/** Images (B, C, H, W) from noise ε (B, C, H, W) and labels y. */
export function sampleEpg(den: EpgDenoiser, noise: Tensor, y: Int32Array, o: EpgSampleOptions): Tensor {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`epg sampler: sample.steps must be an integer ≥ 1, got ${o.steps}`);
  const s = samplingSigmas(o.steps, o.shift, o.grid);
  return noGrad(() => {
    let x = mul(noise, s[0]);
    for (let i = 0; i < o.steps; i++) {
      const sc = s[i], sn = s[i + 1], xi = x;
      const per = (v: number): Tensor => tensor([v], [1, 1, 1, 1], xi.dtype);
      // Each step's intermediates go back to the pool when it ends (tidy); untracked, a 100-image
      // batch of 39 model calls held ≈ 17 GB before the garbage collector let any go.
      x = tidy(() => {
        const d = div(sub(xi, guided(den, xi, sc, y, o)), per(sc));
        const x2 = add(xi, mul(d, sn - sc));
        if (!(o.heun && sn > 0)) return x2;
        const d2 = div(sub(x2, guided(den, x2, sn, y, o)), per(sn));
        return add(xi, mul(add(d, d2), (sn - sc) / 2));
      });
      o.onStep?.(i + 1, o.steps);
    }
    return x;
  });
}

export interface ConsistencySampleOptions {
  steps: number;
  shift: number;
  grid: KarrasGrid;
  /** The fresh noise z_i (like ε) of evaluation i ≥ 1. */
  renoise: (i: number) => Tensor;
  onStep?: (i: number, n: number) => void;
}

/**
 * The σ's a consistency model's `steps` evaluations start from: the first `steps` points of the
 * (steps + 1)-point shifted Karras grid (whose last point is the boundary σ_min·shift): 1 step is
 * σ_max·shift alone (the official `onestep`), 2 steps add the middle of a 3-point grid.
 */
export function consistencySigmas(steps: number, shift: number, grid: KarrasGrid): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`epg consistency sampler: sample.steps must be an integer ≥ 1, got ${steps}`);
  return karrasSigmas(steps + 1, shift, grid).slice(0, steps);
}

/**
 * Multistep consistency sampling (Song et al. 2023, arXiv 2303.01469, Algorithm 1): x = f(σ_0·ε, σ_0);
 * then for each further σ_i, x = f(x + √(σ_i² − σ_min²)·z_i, σ_i), σ_min = grid.sigmaMin·shift; f
 * clamped to [−1, 1] as the official sampler's denoiser does. One step is clamp(f(σ_0·ε, σ_0)).
 */
export function sampleConsistency(den: EpgDenoiser, noise: Tensor, y: Int32Array, o: ConsistencySampleOptions): Tensor {
  const s = consistencySigmas(o.steps, o.shift, o.grid), sMin = o.grid.sigmaMin * o.shift, B = y.length;
  return noGrad(() => {
    let x = tidy(() => clamp(den(mul(noise, s[0]), new Float64Array(B).fill(s[0]), y), -1, 1));
    o.onStep?.(1, o.steps);
    for (let i = 1; i < o.steps; i++) {
      const prev = x;
      x = tidy(() => clamp(den(add(prev, mul(o.renoise(i), Math.sqrt(s[i] * s[i] - sMin * sMin))), new Float64Array(B).fill(s[i]), y), -1, 1));
      o.onStep?.(i + 1, o.steps);
    }
    return x;
  });
}

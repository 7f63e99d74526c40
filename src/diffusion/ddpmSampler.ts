// DDPM ancestral and DDIM(η) samplers for ε-prediction models on a (possibly respaced) DDPM
// schedule (improved-DDPM p_sample_loop / ddim_sample_loop, clip_denoised off by default as DiT
// samples). Step i runs schedule index i = S−1 .. 0 and the model receives the original timestep
// timestepMap[i]; no noise is added at i = 0. A 'learned' variance model returns (B, 2C, ...)
// and, unless told otherwise, guidance touches only its ε channels. The step functions are pure
// (noise passed in) so fixtures can check them; the loops draw noise from the Rng only when it is
// used (i > 0, and η > 0 for DDIM), so DDIM η=1 and DDPM with β̃ consume the same numbers.
// Not here: training losses (ddpmLoss.ts), flow samplers.
import { tensor, type Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { noGrad } from '../autograd/tape.ts';
import type { DdpmSchedule } from './ddpmSchedule.ts';
import { modelLogVariance, posteriorMean, predictEps, predictX0, type DdpmVariance } from './ddpmPosterior.ts';
import { evalModel, guidanceActive, type Guidance } from './guidance.ts';
import type { ModelFn, ProgressFn } from './types.ts';

export interface DdpmStepArgs {
  schedule: DdpmSchedule;
  /** schedule index (not the original timestep) */
  i: number;
  /** (B, ...) current x_i, float64 */
  x: Float64Array;
  batch: number;
  /** model output: (B, P) ε̂, or (B, 2P) [ε̂ ; v] when variance is 'learned' */
  out: Float64Array;
  variance: DdpmVariance;
  /** standard normals like x, or null (then no noise: the mean, e.g. at i = 0) */
  noise: Float64Array | null;
  clipDenoised?: boolean;
}

/** Split helpers: ε̂ and v of element j (sample b, offset k) in the model output. */
function outputReader(a: DdpmStepArgs): { eps: (b: number, k: number) => number; v: (b: number, k: number) => number; P: number } {
  const P = a.x.length / a.batch, learned = a.variance === 'learned', per = learned ? 2 * P : P;
  if (a.out.length !== a.batch * per) throw new Error(`ddpm step: model output has ${a.out.length} values, expected ${a.batch * per} (${a.variance} variance)`);
  return { eps: (b, k) => a.out[b * per + k], v: (b, k) => (learned ? a.out[b * per + P + k] : 0), P };
}

const clip = (v: number, on: boolean | undefined) => (on ? Math.min(Math.max(v, -1), 1) : v);

/** x_{i−1} = μ_θ(x_i) + [i > 0]·exp(½ log σ²)·z (improved-DDPM p_sample). */
export function ddpmStep(a: DdpmStepArgs): Float64Array {
  const s = a.schedule, i = a.i, r = outputReader(a);
  const next = new Float64Array(a.x.length);
  for (let b = 0; b < a.batch; b++) {
    for (let k = 0; k < r.P; k++) {
      const j = b * r.P + k;
      const x0 = clip(predictX0(s, i, a.x[j], r.eps(b, k)), a.clipDenoised);
      const m = posteriorMean(s, i, x0, a.x[j]);
      const lv = modelLogVariance(s, i, a.variance, r.v(b, k));
      next[j] = i > 0 && a.noise ? m + Math.exp(0.5 * lv) * a.noise[j] : m;
    }
  }
  return next;
}

/** DDIM update (Song et al. eq. 12) with σ_i = η·√((1−ᾱ_{i−1})/(1−ᾱ_i))·√(1−ᾱ_i/ᾱ_{i−1}). */
export function ddimStep(a: DdpmStepArgs & { eta: number }): Float64Array {
  const s = a.schedule, i = a.i, r = outputReader(a);
  const ab = s.alphasCumprod[i], abPrev = s.alphasCumprodPrev[i];
  const sigma = a.eta * Math.sqrt((1 - abPrev) / (1 - ab)) * Math.sqrt(1 - ab / abPrev);
  const cEps = Math.sqrt(Math.max(1 - abPrev - sigma * sigma, 0)), cX0 = Math.sqrt(abPrev);
  const next = new Float64Array(a.x.length);
  for (let b = 0; b < a.batch; b++) {
    for (let k = 0; k < r.P; k++) {
      const j = b * r.P + k;
      const x0 = clip(predictX0(s, i, a.x[j], r.eps(b, k)), a.clipDenoised);
      const eps = predictEps(s, i, a.x[j], x0); // re-derived, so clipping is consistent
      const m = cX0 * x0 + cEps * eps;
      next[j] = i > 0 && a.noise ? m + sigma * a.noise[j] : m;
    }
  }
  return next;
}

export interface DdpmSampleOptions {
  /** The (respaced) schedule to walk; DiT: DdpmSchedule.linear().respace(spacedTimesteps(1000, 250)). */
  schedule: DdpmSchedule;
  rng: Rng;
  variance?: DdpmVariance;
  clipDenoised?: boolean;
  /** Interval in original timestep units (what the model receives). */
  guidance?: Guidance;
  onStep?: ProgressFn;
}

/** Ancestral sampling from x_{S−1} = noise; one model call per schedule step. */
export function sampleDdpm(model: ModelFn, noise: Tensor, y: Tensor, opts: DdpmSampleOptions): Tensor {
  return loop(model, noise, y, opts, (args) => ddpmStep(args), () => true);
}

export interface DdimSampleOptions extends DdpmSampleOptions { eta?: number }

/** DDIM(η) sampling (η = 0: deterministic); one model call per schedule step. */
export function sampleDdim(model: ModelFn, noise: Tensor, y: Tensor, opts: DdimSampleOptions): Tensor {
  const eta = opts.eta ?? 0;
  if (!(eta >= 0)) throw new Error(`sampleDdim: eta must be >= 0, got ${eta}`);
  return loop(model, noise, y, opts, (args) => ddimStep({ ...args, eta }), () => eta > 0);
}

function loop(
  model: ModelFn, noise: Tensor, y: Tensor, opts: DdpmSampleOptions,
  step: (a: DdpmStepArgs) => Float64Array, usesNoise: () => boolean,
): Tensor {
  const s = opts.schedule, variance = opts.variance ?? 'fixedLarge', shape = noise.shape, B = shape[0];
  let g = opts.guidance;
  if (g && variance === 'learned' && g.channels === undefined && shape.length > 1) g = { ...g, channels: shape[1] };
  let x: Float64Array = Float64Array.from(noise.data);
  noGrad(() => {
    for (let n = 0; n < s.T; n++) {
      const i = s.T - 1 - n, tModel = s.timestepMap[i];
      const z = i > 0 && usesNoise() ? opts.rng.normalArray(x.length) : null;
      const { out } = evalModel(model, x, shape, tModel, y, noise.dtype, g, guidanceActive(g, tModel));
      x = step({ schedule: s, i, x, batch: B, out, variance, noise: z, clipDenoised: opts.clipDenoised });
      opts.onStep?.(n + 1, s.T);
    }
  });
  return tensor(x, shape, noise.dtype);
}

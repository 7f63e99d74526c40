// The discrete DDPM noise schedule (Ho et al.; improved-DDPM/DiT's GaussianDiffusion) in float64:
// β_t, ᾱ_t and the posterior q(x_{t−1} | x_t, x_0) coefficients, plus timestep respacing (DiT
// samples 250 of the 1000 training steps). Index t = 0 is the least noisy step, t = T−1 the
// noisiest: the same direction as diffactor's continuous t. Not here: losses (ddpmLoss.ts),
// samplers (ddpmSampler.ts).

export class DdpmSchedule {
  readonly T: number;
  readonly betas: Float64Array;
  readonly logBetas: Float64Array;
  readonly alphasCumprod: Float64Array;
  readonly alphasCumprodPrev: Float64Array;
  readonly sqrtAlphasCumprod: Float64Array;
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
  readonly sqrtRecipAlphasCumprod: Float64Array;
  readonly sqrtRecipm1AlphasCumprod: Float64Array;
  /** β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t); 0 at t = 0. */
  readonly posteriorVariance: Float64Array;
  /** log β̃_t with t = 0 replaced by β̃_1 (β̃_0 = 0 has no log). */
  readonly posteriorLogVarianceClipped: Float64Array;
  readonly posteriorMeanCoef1: Float64Array;
  readonly posteriorMeanCoef2: Float64Array;
  /** The original-schedule timestep the model sees at each step (identity unless respaced). */
  readonly timestepMap: Int32Array;

  constructor(betas: ArrayLike<number>, timestepMap?: ArrayLike<number>) {
    const T = betas.length;
    if (T < 2) throw new Error(`DdpmSchedule: need at least 2 steps, got ${T}`);
    for (let i = 0; i < T; i++) {
      if (!(betas[i] > 0 && betas[i] <= 1)) throw new Error(`DdpmSchedule: β[${i}] = ${betas[i]} is not in (0, 1]`);
    }
    const f = () => new Float64Array(T);
    this.T = T;
    this.betas = Float64Array.from(betas);
    this.logBetas = f(); this.alphasCumprod = f(); this.alphasCumprodPrev = f();
    this.sqrtAlphasCumprod = f(); this.sqrtOneMinusAlphasCumprod = f();
    this.sqrtRecipAlphasCumprod = f(); this.sqrtRecipm1AlphasCumprod = f();
    this.posteriorVariance = f(); this.posteriorLogVarianceClipped = f();
    this.posteriorMeanCoef1 = f(); this.posteriorMeanCoef2 = f();
    let ac = 1;
    for (let t = 0; t < T; t++) {
      const b = this.betas[t], prev = ac;
      ac *= 1 - b;
      this.logBetas[t] = Math.log(b);
      this.alphasCumprod[t] = ac;
      this.alphasCumprodPrev[t] = prev;
      this.sqrtAlphasCumprod[t] = Math.sqrt(ac);
      this.sqrtOneMinusAlphasCumprod[t] = Math.sqrt(1 - ac);
      this.sqrtRecipAlphasCumprod[t] = Math.sqrt(1 / ac);
      this.sqrtRecipm1AlphasCumprod[t] = Math.sqrt(1 / ac - 1);
      this.posteriorVariance[t] = (b * (1 - prev)) / (1 - ac);
      this.posteriorMeanCoef1[t] = (b * Math.sqrt(prev)) / (1 - ac);
      this.posteriorMeanCoef2[t] = ((1 - prev) * Math.sqrt(1 - b)) / (1 - ac);
    }
    for (let t = 0; t < T; t++) this.posteriorLogVarianceClipped[t] = Math.log(this.posteriorVariance[t === 0 ? 1 : t]);
    this.timestepMap = timestepMap ? Int32Array.from(timestepMap) : Int32Array.from({ length: T }, (_, i) => i);
    if (this.timestepMap.length !== T) throw new Error(`DdpmSchedule: timestepMap has ${this.timestepMap.length} entries for ${T} steps`);
  }

  /**
   * DDPM's linear β schedule as DiT names it: β from start·(1000/T) to end·(1000/T), linearly,
   * so any T keeps the same continuous-time limit (T = 1000: 1e-4 .. 0.02).
   */
  static linear(T = 1000, start = 1e-4, end = 0.02): DdpmSchedule {
    const scale = 1000 / T, s0 = scale * start, s1 = scale * end;
    // numpy.linspace's arithmetic (i·step + start, exact endpoint), so β matches to the last bit
    const step = (s1 - s0) / (T - 1);
    const betas = new Float64Array(T);
    for (let i = 0; i < T; i++) betas[i] = i * step + s0;
    betas[T - 1] = s1;
    return new DdpmSchedule(betas);
  }

  /**
   * The schedule restricted to the given original timesteps (improved-DDPM's SpacedDiffusion):
   * new β_i = 1 − ᾱ_{k_i} / ᾱ_{k_{i−1}}, so ᾱ at kept steps is unchanged; the model still
   * receives the original index k_i (timestepMap). Respacing a respaced schedule composes.
   */
  respace(use: Iterable<number>): DdpmSchedule {
    const keep = [...new Set(use)].sort((a, b) => a - b);
    for (const k of keep) if (!Number.isInteger(k) || k < 0 || k >= this.T) throw new Error(`respace: timestep ${k} not in [0, ${this.T})`);
    const betas: number[] = [], map: number[] = [];
    let last = 1;
    for (const k of keep) {
      betas.push(1 - this.alphasCumprod[k] / last);
      last = this.alphasCumprod[k];
      map.push(this.timestepMap[k]);
    }
    return new DdpmSchedule(betas, map);
  }
}

/**
 * improved-DDPM's space_timesteps(T, [count]) with one section: `count` steps evenly spread over
 * [0, T−1] by rounding (both ends kept). Python rounds halves to even; so does this.
 */
export function spacedTimesteps(T: number, count: number): number[] {
  if (!Number.isInteger(count) || count < 1 || count > T) throw new Error(`spacedTimesteps: cannot take ${count} of ${T} steps`);
  const stride = count <= 1 ? 1 : (T - 1) / (count - 1);
  const out: number[] = [];
  let cur = 0;
  for (let i = 0; i < count; i++) {
    out.push(roundHalfEven(cur));
    cur += stride;
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/** improved-DDPM's "ddimN": range(0, T, k) with the integer stride k that gives exactly N steps. */
export function ddimTimesteps(T: number, count: number): number[] {
  for (let k = 1; k < T; k++) {
    if (Math.ceil(T / k) === count) return Array.from({ length: count }, (_, i) => i * k);
  }
  throw new Error(`ddimTimesteps: no integer stride gives exactly ${count} of ${T} steps`);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

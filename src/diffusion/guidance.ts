// Classifier-free guidance as REPA's samplers do it, and the training-side label dropout.
// Inside the guidance interval [lo, hi] (inclusive) with scale > 1 the model runs once on the
// batch [x; x] with labels [y; null] (conditional half first, REPA order) and the prediction is
// v_u + w·(v_c − v_u); outside, it runs conditional-only on the single batch. `evalModel` is the
// one place samplers call a model: float64 state in, float64 prediction out, tensors recycled.
// Not here: which time decides the interval (each sampler says), DDT's always-doubled batch.
import { full, tensor, type DType, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { fmtShape } from '../tensor/shape.ts';
import type { Rng } from '../tensor/rng.ts';
import type { ModelFn } from './types.ts';

export interface Guidance {
  /** w; guidance runs only when w > 1 (REPA), otherwise the model is conditional-only. */
  scale: number;
  /** The null label index (num_classes; 1000 for ImageNet). */
  nullClass: number;
  /** [lo, hi], inclusive, in the time the model receives (default [0, 1] for flow samplers: always). */
  interval?: readonly [number, number];
  /**
   * Guide only the first `channels` output channels (dim 1) and take the rest from the
   * conditional half: DiT guides ε but not the learned-variance channels. Default: all.
   */
  channels?: number;
}

/** True when a model call at time t is guided: scale > 1 and lo ≤ t ≤ hi. */
export function guidanceActive(g: Guidance | undefined, t: number): boolean {
  if (!g || !(g.scale > 1)) return false;
  const [lo, hi] = g.interval ?? [-Infinity, Infinity];
  return t >= lo && t <= hi;
}

/** v_u + w·(v_c − v_u), elementwise. */
export function cfgCombine(cond: ArrayLike<number>, uncond: ArrayLike<number>, scale: number): Float64Array {
  if (cond.length !== uncond.length) throw new Error(`cfgCombine: ${cond.length} vs ${uncond.length} values`);
  const out = new Float64Array(cond.length);
  for (let i = 0; i < out.length; i++) out[i] = uncond[i] + scale * (cond[i] - uncond[i]);
  return out;
}

/**
 * One model evaluation at a single time t for the whole batch. x (B, ...) as float64 data and its
 * shape; the model sees tensors of `dtype`. guided: run [x; x] with [y; null] and combine.
 * Returns the prediction (B, ...out) as float64 and its shape.
 */
export function evalModel(
  model: ModelFn, x: Float64Array, shape: readonly number[], t: number, y: Tensor, dtype: DType,
  g?: Guidance, guided = false,
): { out: Float64Array; shape: number[] } {
  const B = shape[0];
  if (y.size !== B) throw new Error(`evalModel: ${y.size} labels for a batch of ${B}`);
  return tidy(() => {
    if (!guided) {
      const o = model(tensor(x, shape, dtype), full([B], t, dtype), y);
      if (o.shape[0] !== B) throw new Error(`evalModel: model returned ${fmtShape(o.shape)} for a batch of ${B}`);
      return { out: Float64Array.from(o.data), shape: [...o.shape] };
    }
    const g2 = g as Guidance;
    const x2 = new Float64Array(2 * x.length);
    x2.set(x);
    x2.set(x, x.length);
    const y2 = new Float64Array(2 * B);
    y2.set(y.data);
    y2.fill(g2.nullClass, B);
    const o = model(tensor(x2, [2 * B, ...shape.slice(1)], dtype), full([2 * B], t, dtype), tensor(y2, [2 * B], y.dtype));
    if (o.shape[0] !== 2 * B) throw new Error(`evalModel: model returned ${fmtShape(o.shape)} for a guided batch of ${2 * B}`);
    const per = o.size / (2 * B);
    const channels = o.ndim > 1 ? o.shape[1] : 1;
    const guidedPer = g2.channels === undefined ? per : Math.min(g2.channels, channels) * (per / channels);
    const out = new Float64Array(B * per);
    const d = o.data, half = B * per, w = g2.scale;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < per; j++) {
        const i = b * per + j, c = d[i];
        out[i] = j < guidedPer ? d[half + i] + w * (c - d[half + i]) : c;
      }
    }
    return { out, shape: [B, ...o.shape.slice(1)] };
  });
}

/**
 * Label dropout for CFG training: each label becomes nullClass with probability p, decided by
 * one uniform per sample from rng (REPA's LabelEmbedder: rand < p). Returns a new (B) tensor.
 */
export function dropLabels(y: Tensor | ArrayLike<number>, p: number, nullClass: number, rng: Rng, dtype: DType = 'float32'): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropLabels: p must be in [0, 1], got ${p}`);
  const src: ArrayLike<number> = 'shape' in y && 'data' in y ? (y as Tensor).data : (y as ArrayLike<number>);
  const u = rng.uniformArray(src.length);
  const out = new Float64Array(src.length);
  for (let i = 0; i < out.length; i++) out[i] = u[i] < p ? nullClass : src[i];
  return tensor(out, [out.length], 'shape' in y && 'data' in y ? (y as Tensor).dtype : dtype);
}

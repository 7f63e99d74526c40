// The conditioning and position embeddings of DiT/SiT (facebookresearch/DiT models.py,
// sihyun-yu/REPA models/sit.py): the frequency embedding of the timestep and its MLP, the class
// embedding with a null class for classifier-free guidance, and the fixed 2-D sin-cos position
// table. Not here: the transformer blocks (sit.ts).
import { tensor, type Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/linear.ts';
import { Embedding } from '../nn/embedding.ts';
import { Sequential } from '../nn/sequential.ts';
import { SiLU } from '../nn/activation.ts';
import { normal } from '../nn/init.ts';

/**
 * The sinusoidal timestep features [cos(t f_k) ++ sin(t f_k)], f_k = exp(-ln(maxPeriod) k / half),
 * k < half = dim/2 (cos first; a zero column pads an odd dim). The phase t f_k is computed in
 * float64 and only the result is rounded to float32. (The official code forms it in float32: at
 * DDPM steps near 1000 that moves the phase by up to ~3e-5, and torch's float32 exp can be 1 ulp
 * off; diffactor keeps the exact phase.) t (B) -> (B, dim).
 */
export function timestepFrequencies(t: ArrayLike<number>, dim: number, maxPeriod = 10000): Float32Array {
  const half = Math.floor(dim / 2);
  const freqs = new Float64Array(half); // (half)
  for (let k = 0; k < half; k++) freqs[k] = Math.exp((-Math.log(maxPeriod) * k) / half);
  const out = new Float32Array(t.length * dim); // (B, dim), zero pad column included
  for (let b = 0; b < t.length; b++) {
    for (let k = 0; k < half; k++) {
      const arg = t[b] * freqs[k];
      out[b * dim + k] = Math.cos(arg);
      out[b * dim + half + k] = Math.sin(arg);
    }
  }
  return out;
}

/**
 * TimestepEmbedder: mlp = Linear(256 -> D), SiLU, Linear(D -> D) on the frequency features of
 * timeScale * t. Both Linears' weights are N(0, 0.02) and biases 0 (DiT/SiT initialize_weights).
 * maxPeriod: the features' longest period (10000 in DiT/SiT; 10 in DDT's TimestepEmbedder).
 */
export class TimestepEmbedder extends Module {
  readonly mlp: Sequential;

  constructor(readonly hiddenSize: number, rng: Rng, readonly frequencySize = 256, readonly timeScale = 1, readonly maxPeriod = 10000) {
    super();
    const l0 = new Linear(frequencySize, hiddenSize, rng.child('mlp.0'));
    const l2 = new Linear(hiddenSize, hiddenSize, rng.child('mlp.2'));
    this.mlp = this.child('mlp', new Sequential([l0, SiLU(), l2]));
    for (const l of [l0, l2]) {
      normal(l.weight, rng.child(`init.${l === l0 ? 0 : 2}`), 0.02);
      l.bias!.data.fill(0);
    }
  }

  /** t (B) -> (B, D). */
  forward(t: ArrayLike<number>): Tensor {
    const scaled = this.timeScale === 1 ? t : Array.from(t, (v) => v * this.timeScale);
    const freq = tensor(timestepFrequencies(scaled, this.frequencySize, this.maxPeriod), [t.length, this.frequencySize]); // (B, 256)
    return this.mlp.forward(freq);
  }
}

export interface LabelDropOptions {
  /** Drop labels at random with the dropout probability (training mode). Needs rng. */
  training: boolean;
  rng?: Rng;
  /** Per-sample force-drop mask (CFG's unconditional half): when given it replaces the random drop. */
  forceDrop?: ArrayLike<number | boolean>;
}

/**
 * LabelEmbedder: `embedding_table` holds numClasses rows plus, when dropoutProb > 0, one null row
 * at index numClasses (the unconditional class for CFG). Table init N(0, 0.02).
 */
export class LabelEmbedder extends Module {
  readonly embedding_table: Embedding;

  constructor(readonly numClasses: number, readonly hiddenSize: number, readonly dropoutProb: number, rng: Rng) {
    super();
    const rows = numClasses + (dropoutProb > 0 ? 1 : 0);
    this.embedding_table = this.child('embedding_table', new Embedding(rows, hiddenSize, rng.child('embedding_table')));
    normal(this.embedding_table.weight, rng.child('init'), 0.02);
  }

  /**
   * The labels after dropout: as token_drop in the official code, a force-drop mask replaces the
   * random drop; the random drop (u < p with u ~ U(0,1) from rng) happens only when training.
   */
  dropLabels(labels: ArrayLike<number>, opts: LabelDropOptions): Int32Array {
    const out = Int32Array.from(labels);
    for (let i = 0; i < out.length; i++) {
      if (!Number.isInteger(labels[i]) || labels[i] < 0 || labels[i] > this.numClasses) {
        throw new Error(`LabelEmbedder: label ${labels[i]} at ${i} is not in [0, ${this.numClasses}]`);
      }
    }
    let drop: ArrayLike<number | boolean> | null = null;
    if (opts.forceDrop) {
      if (opts.forceDrop.length !== out.length) throw new Error(`LabelEmbedder: forceDrop has ${opts.forceDrop.length} entries for ${out.length} labels`);
      drop = opts.forceDrop;
    } else if (opts.training && this.dropoutProb > 0) {
      if (!opts.rng) throw new Error('LabelEmbedder: label dropout in training mode needs an rng (pass { rng } to forward)');
      const p = this.dropoutProb;
      drop = Array.from(opts.rng.uniformArray(out.length), (u) => u < p);
    }
    if (drop) {
      for (let i = 0; i < out.length; i++) {
        if (!drop[i]) continue;
        if (this.dropoutProb <= 0) throw new Error('LabelEmbedder: cannot drop labels: this model has no null class (class dropout 0)');
        out[i] = this.numClasses;
      }
    }
    return out;
  }

  /** labels (B) already dropped -> (B, D). */
  forward(labels: Int32Array): Tensor {
    return this.embedding_table.forward(labels);
  }
}

/**
 * MAE/DiT get_2d_sincos_pos_embed for a square grid: token (row i, col j) at index i*grid + j gets
 * [emb1d(D/2, j) ++ emb1d(D/2, i)] — the COLUMN first, because the official code builds the grid
 * with numpy's meshgrid(w, h). emb1d(E, q) = [sin(q w_k)]_k ++ [cos(q w_k)]_k with
 * w_k = 10000^(-k / (E/2)), k < E/2. Computed in float64 like numpy. Returns (grid*grid, D).
 */
export function sincosPosEmbed2d(dim: number, grid: number): Float64Array {
  if (dim % 4 !== 0) throw new Error(`sincosPosEmbed2d: hidden size ${dim} must be a multiple of 4`);
  const half = dim / 2, quarter = dim / 4;
  const omega = new Float64Array(quarter);
  for (let k = 0; k < quarter; k++) omega[k] = 1 / 10000 ** (k / quarter);
  const out = new Float64Array(grid * grid * dim);
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const o = (i * grid + j) * dim;
      for (const [q, base] of [[j, 0], [i, half]] as const) {
        for (let k = 0; k < quarter; k++) {
          out[o + base + k] = Math.sin(q * omega[k]);
          out[o + base + quarter + k] = Math.cos(q * omega[k]);
        }
      }
    }
  }
  return out;
}

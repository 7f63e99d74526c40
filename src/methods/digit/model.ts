// The DiGIT backbone (Zhu et al., arXiv 2410.12490; DAMO-NLP-SG/DiGIT): everything a DiGIT run
// trains and samples with, in one module so that checkpoints, the EMA and `diffactor sample` carry
// it whole:
//   tokenizer.centroids  (K, d) the k-means codebook (a buffer: fitted once at build, kmeans.ts)
//   gpt.*                the causal GPT over the g×g code grid (gpt.ts), sized by the spec's model
//                        section (hidden_size, depth, num_heads, mlp_ratio)
//   decoder.*            the token-to-pixel conv decoder (decoder.ts)
// Sampling (OwnSampler: it owns every sampler name; sample.steps is not read): the GPT draws the
// N = g² codes of each image in raster order from its class token with temperature / top-k / top-p
// (sampling.ts), the uniform of code i of image b being Φ(noise[b, i]); the decoder renders them.
// No classifier-free guidance (the paper's class-conditional results use none): cfg > 1 is refused.
// forward() is not a velocity: the engines call the method's hook (index.ts), and what reads a
// velocity model's forward (held-out loss, CKNNA/probe) gets an error that says so.
// Not here: the features the codes come from and the loss weights (index.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { fromData } from '../../tensor/tensor.ts';
import { noGrad } from '../../autograd/tape.ts';
import { tidy } from '../../tensor/tidy.ts';
import { Module } from '../../nn/module.ts';
import { gridSize, type SiTConfig } from '../../models/config.ts';
import type { OwnSampleSettings } from '../method.ts';
import { KMeansTokenizer } from './kmeans.ts';
import { DigitGpt } from './gpt.ts';
import { TokenDecoder } from './decoder.ts';
import { checkTokenSampling, drawFrom, filteredProbs, normalCdf, type TokenSampling } from './sampling.ts';
import type { NotProbeable, OwnForward } from '../partialForward.ts';

export interface DigitModelOptions {
  /** K codes. */
  codes: number;
  /** Width d of the features the codes cluster (encoder width, or C·p² for raw patches). */
  featureDim: number;
  decoderEmbed: number;
  decoderWidth: number;
  sampling: TokenSampling;
}

class Codebook extends Module {
  readonly centroids: Tensor;
  constructor(k: number, d: number) {
    super();
    this.centroids = this.buffer('centroids', [k, d]);
  }
}

export class DigitModel extends Module implements NotProbeable, OwnForward {
  /** No hidden state of noised images and no velocity forward: the evaluator measures DiGIT's samples only (partialForward.ts). */
  readonly probeable = false;
  readonly flowForward = false;
  readonly config: SiTConfig;
  readonly tokenizer: Codebook;
  readonly gpt: DigitGpt;
  readonly decoder: TokenDecoder;
  sampling: TokenSampling;

  constructor(config: SiTConfig, o: DigitModelOptions, rng: Rng) {
    super();
    this.config = config;
    if (!Number.isInteger(config.mlpRatio)) throw new Error(`digit: the GPT's MLP width is mlp_ratio · hidden_size with an integer model.mlp_ratio, got ${config.mlpRatio}`);
    checkTokenSampling(o.sampling);
    this.sampling = { ...o.sampling };
    const g = gridSize(config);
    this.tokenizer = this.child('tokenizer', new Codebook(o.codes, o.featureDim));
    this.gpt = this.child('gpt', new DigitGpt({
      vocab: o.codes, numClasses: config.numClasses, seqLen: g * g, dim: config.hiddenSize, depth: config.depth, heads: config.numHeads, mlpRatio: config.mlpRatio,
    }, rng.child('gpt')));
    this.decoder = this.child('decoder', new TokenDecoder({
      vocab: o.codes, grid: g, patch: config.patchSize, channels: config.inChannels, embedDim: o.decoderEmbed, width: o.decoderWidth,
    }, rng.child('decoder')));
  }

  /** The codebook as a tokenizer (reads the buffer in place: loaded weights are seen). */
  codebook(): KMeansTokenizer {
    const [k, d] = this.tokenizer.centroids.shape;
    return new KMeansTokenizer(this.tokenizer.centroids.data as Float32Array, k, d);
  }

  /** Sets the codebook from a fit. */
  setCodebook(t: KMeansTokenizer): void {
    const [k, d] = this.tokenizer.centroids.shape;
    if (t.k !== k || t.dim !== d) throw new Error(`digit: a (${t.k}, ${t.dim}) codebook for a model of (${k}, ${d})`);
    this.tokenizer.centroids.data.set(t.centroids);
  }

  forward(): never {
    throw new Error('digit: the DiGIT model is an autoregressive token model, not a velocity model: it has no forward(x_t, t, y) (the held-out velocity loss, CKNNA and the probe do not apply; the evaluator measures its samples)');
  }

  ownsSampler(_sampler: string): boolean { return true; }

  /** Codes (B·N) drawn autoregressively for classes y, uniforms Φ(noise[b, i]). */
  sampleCodes(noise: Tensor, y: ArrayLike<number>, onStep?: (i: number, n: number) => void): Int32Array {
    const b = y.length, n = this.gpt.config.seqLen, k = this.gpt.config.vocab;
    const per = noise.size / Math.max(b, 1);
    if (noise.shape[0] !== b || per < n) throw new Error(`digit: the sampler needs ${n} noise values per image for ${b} images, got shape [${noise.shape.join(', ')}]`);
    const codes = new Int32Array(b * n);
    // Rows are drawn independently, SAMPLE_ROWS at a time: an evaluation's 1,000 images in one
    // batch would put 64,000 tokens through every forward.
    const chunks = Math.ceil(b / SAMPLE_ROWS), labels = Array.from(y);
    return noGrad(() => {
      for (let c = 0; c < chunks; c++) {
        const r0 = c * SAMPLE_ROWS, r1 = Math.min(b, r0 + SAMPLE_ROWS);
        this.sampleRows(codes.subarray(r0 * n, r1 * n), labels.slice(r0, r1), (r, i) => noise.data[(r0 + r) * per + i], (i) => onStep?.(c * n + i, chunks * n));
      }
      return codes;
    });
  }

  /** Draws the codes (rows·N, in place) of y.length rows; u(r, i) is the normal deviate of row r's code i. */
  private sampleRows(codes: Int32Array, y: number[], u: (r: number, i: number) => number, onStep: (i: number) => void): void {
    const b = y.length, n = this.gpt.config.seqLen, k = this.gpt.config.vocab;
    for (let i = 0; i < n; i++) {
      // The GPT runs on the prefix padded to a multiple of PREFIX_BUCKET tokens: attention is
      // causal, so position i reads only positions ≤ i and the padding changes nothing it sees.
      // A new length per token would give every call new buffer sizes that the pool can never
      // reuse (the shared buffers then pile up faster than the garbage collector frees them:
      // 18 GB by the 56th token for 80 images); eight lengths are reused across tokens and
      // batches. tidy hands every buffer of the call back: only position i's logits leave it.
      const len = prefixLength(i, n);
      const logits = tidy(() => {
        const all = this.gpt.forwardIds(this.gpt.inputIds(prefix(codes, b, n, len - 1), y, len), b, len).data; // (B, len, K)
        const out = new Float32Array(b * k);
        for (let r = 0; r < b; r++) out.set(all.subarray((r * len + i) * k, (r * len + i + 1) * k), r * k);
        return out;
      });
      for (let r = 0; r < b; r++) codes[r * n + i] = drawFrom(filteredProbs(logits.subarray(r * k, (r + 1) * k), this.sampling), normalCdf(u(r, i)));
      onStep(i + 1);
    }
  }

  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    if (s.cfg > 1) throw new Error(`digit samples without classifier-free guidance (the paper's class-conditional model uses none): sample.cfg / eval.cfg must be 1, got ${s.cfg}`);
    const codes = this.sampleCodes(noise, Array.from(y.data), onStep);
    return noGrad(() => this.decoder.forward(codes));
  }
}

/** Images drawn together (sampleCodes). */
export const SAMPLE_ROWS = 64;

/** Prefix lengths are rounded up to a multiple of this (sampleCodes). */
export const PREFIX_BUCKET = 8;

/** The sequence length the GPT runs on to predict code i of n: i + 1 rounded up to the bucket. */
export function prefixLength(i: number, n: number): number {
  return Math.min(n, Math.ceil((i + 1) / PREFIX_BUCKET) * PREFIX_BUCKET);
}

/** The first i codes of each row (B·N) as (B·i), for a sequence of i + 1 inputs. */
function prefix(codes: Int32Array, b: number, n: number, i: number): Int32Array {
  const out = new Int32Array(b * i);
  for (let r = 0; r < b; r++) out.set(codes.subarray(r * n, r * n + i), r * i);
  return out;
}

/** Unfolded image patches (B, g·g, C·p·p), (c, py, px) order: the raw-pixel features of the control. */
export function rawPatches(x: Tensor, p: number): Tensor {
  const [b, c, h, w] = x.shape, gh = h / p, gw = w / p, d = c * p * p;
  if (!Number.isInteger(gh) || !Number.isInteger(gw)) throw new Error(`digit: image ${h}×${w} is not a grid of ${p}-pixel patches`);
  const out = new Float32Array(b * gh * gw * d), src = x.data;
  for (let n = 0; n < b; n++) for (let gy = 0; gy < gh; gy++) for (let gx = 0; gx < gw; gx++) {
    const o = ((n * gh + gy) * gw + gx) * d;
    for (let ch = 0; ch < c; ch++) for (let py = 0; py < p; py++) for (let px = 0; px < p; px++) {
      out[o + (ch * p + py) * p + px] = src[((n * c + ch) * h + gy * p + py) * w + gx * p + px];
    }
  }
  return fromData(out, [b, gh * gw, d]);
}


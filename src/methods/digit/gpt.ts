// DiGIT's stage-1 student: a decoder-only (GPT) transformer over the k-means token ids of the
// frozen encoder's patch grid (Zhu et al., "Stabilize the Latent Space for Image Autoregressive
// Modeling", NeurIPS 2024, arXiv 2410.12490; DAMO-NLP-SG/DiGIT
// fairseq_user/image_generation_stage1/model.py and config/stage1/dino_base.yaml, methods-b §8):
//   input      [c, s_1 .. s_{N−1}]  c = the class token, an id in the vocabulary region K .. K+C−1
//              after the K code ids (the official class-conditional model replaces BOS by a
//              class token at a vocabulary offset), so code ids and class ids never collide
//   embed      tok_emb(ids) + pos_emb[0..n−1]  (learned positions, one per input position)
//   blocks     pre-norm: h + attn(ln_1(h)) with causal multi-head attention (query i sees keys
//              j ≤ i), then h + mlp(ln_2(h)), MLP D → 4D → D with exact GELU
//   head       ln_f, then Linear(D → K, no bias): logits over the K codes for s_1 .. s_N
//   loss       cross-entropy of the logits against [s_1 .. s_N], label smoothing ε (official 0.1)
// Our choices (small scale): no EOS (the length is fixed at N = h·w), no embedding scale √D and
// no dropout; GPT-2 init (every Linear and embedding N(0, 0.02), biases 0, LayerNorm 1/0).
// Only the K code ids are predicted, so the head has K outputs; the class ids are inputs only.
// Not here: the tokenizer (kmeans.ts), sampling (sampling.ts), the method (index.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { tidy } from '../../tensor/tidy.ts';
import { isGradEnabled } from '../../autograd/tape.ts';
import {
  add, crossEntropy, embedding, gelu, permute, reshape, scaledDotProductAttention, slice,
} from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { LayerNorm } from '../../nn/layerNorm.ts';
import { normal, zeros } from '../../nn/init.ts';

export interface GptConfig {
  /** K, the code vocabulary (k-means clusters). */
  vocab: number;
  /** Classes C; class c is the input id K + c. */
  numClasses: number;
  /** N, tokens per image (the grid h·w); the model reads positions 0..N−1. */
  seqLen: number;
  dim: number;
  depth: number;
  heads: number;
  /** MLP width = mlpRatio · dim. */
  mlpRatio: number;
}

/** Throws naming the field unless every size is a positive integer and heads divides dim. */
export function checkGptConfig(c: GptConfig, where = 'GPT'): GptConfig {
  for (const k of ['vocab', 'numClasses', 'seqLen', 'dim', 'depth', 'heads', 'mlpRatio'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.dim % c.heads !== 0) throw new Error(`${where}: dim ${c.dim} is not divisible by heads ${c.heads}`);
  return c;
}

const STD = 0.02;

function gptLinear(inF: number, outF: number, rng: Rng, bias = true): Linear {
  const l = new Linear(inF, outF, rng, { bias });
  normal(l.weight, rng.child('w'), STD);
  if (l.bias) zeros(l.bias);
  return l;
}

/** Causal multi-head self-attention: packed c_attn Linear(D → 3D), c_proj Linear(D → D). */
export class CausalSelfAttention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;

  constructor(readonly dim: number, readonly heads: number, rng: Rng) {
    super();
    this.c_attn = this.child('c_attn', gptLinear(dim, 3 * dim, rng.child('c_attn')));
    this.c_proj = this.child('c_proj', gptLinear(dim, dim, rng.child('c_proj')));
  }

  /** x (B, n, D) -> (B, n, D); position i reads positions ≤ i only. */
  forward(x: Tensor): Tensor {
    const [b, n, d] = x.shape, h = this.heads, hd = d / h;
    const qkv = permute(reshape(this.c_attn.forward(x), [b, n, 3, h, hd]), [2, 0, 3, 1, 4]); // (3, B, H, n, hd)
    const part = (i: number): Tensor => reshape(slice(qkv, 0, i, i + 1), [b, h, n, hd]);
    const o = scaledDotProductAttention(part(0), part(1), part(2), 1 / Math.sqrt(hd), { causal: true }); // (B, H, n, hd)
    return this.c_proj.forward(reshape(permute(o, [0, 2, 1, 3]), [b, n, d]));
  }
}

export class GptBlock extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: LayerNorm;
  readonly fc: Linear;
  readonly proj: Linear;

  constructor(dim: number, heads: number, mlpRatio: number, rng: Rng) {
    super();
    this.ln_1 = this.child('ln_1', new LayerNorm(dim));
    this.attn = this.child('attn', new CausalSelfAttention(dim, heads, rng.child('attn')));
    this.ln_2 = this.child('ln_2', new LayerNorm(dim));
    this.fc = this.child('fc', gptLinear(dim, mlpRatio * dim, rng.child('fc')));
    this.proj = this.child('proj', gptLinear(mlpRatio * dim, dim, rng.child('proj')));
  }

  forward(x: Tensor): Tensor {
    const h = add(x, this.attn.forward(this.ln_1.forward(x)));
    return add(h, this.proj.forward(gelu(this.fc.forward(this.ln_2.forward(h)))));
  }
}

export class DigitGpt extends Module {
  readonly config: GptConfig;
  /** (K + C, D): codes 0..K−1, then the class tokens. */
  readonly tok_emb: Tensor;
  /** (N, D) learned positions. */
  readonly pos_emb: Tensor;
  readonly blocks: ModuleList<GptBlock>;
  readonly ln_f: LayerNorm;
  readonly head: Linear;

  constructor(config: GptConfig, rng: Rng) {
    super();
    const c = (this.config = checkGptConfig({ ...config }));
    this.tok_emb = normal(this.param('tok_emb', [c.vocab + c.numClasses, c.dim]), rng.child('tok_emb'), STD);
    this.pos_emb = normal(this.param('pos_emb', [c.seqLen, c.dim]), rng.child('pos_emb'), STD);
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: c.depth }, (_, i) => new GptBlock(c.dim, c.heads, c.mlpRatio, rng.child(`block${i}`)))));
    this.ln_f = this.child('ln_f', new LayerNorm(c.dim));
    this.head = this.child('head', gptLinear(c.dim, c.vocab, rng.child('head'), false));
  }

  /**
   * The input ids [K + y_b, codes_b[0..n−2]] of each row: codes (B·m) with m ≥ n − 1 (only the
   * first n − 1 of each row are read), y (B) class ids in 0..C−1. Returns (B·n) ids.
   */
  inputIds(codes: ArrayLike<number>, y: ArrayLike<number>, n: number): Int32Array {
    const c = this.config, b = y.length;
    if (n < 1 || n > c.seqLen) throw new Error(`DigitGpt: sequence length ${n} is outside 1..${c.seqLen}`);
    if (b === 0 || codes.length % b !== 0 || codes.length / b < n - 1) throw new Error(`DigitGpt: ${codes.length} codes for ${b} rows cannot give ${n - 1} per row`);
    const m = codes.length / b, ids = new Int32Array(b * n);
    for (let i = 0; i < b; i++) {
      const cls = y[i];
      if (!Number.isInteger(cls) || cls < 0 || cls >= c.numClasses) throw new Error(`DigitGpt: class ${cls} of row ${i} is not in 0..${c.numClasses - 1}`);
      ids[i * n] = c.vocab + cls;
      for (let j = 1; j < n; j++) {
        const s = codes[i * m + j - 1];
        if (!Number.isInteger(s) || s < 0 || s >= c.vocab) throw new Error(`DigitGpt: code ${s} at row ${i}, position ${j - 1} is not in 0..${c.vocab - 1}`);
        ids[i * n + j] = s;
      }
    }
    return ids;
  }

  /** Logits (B, n, K) for input ids (B·n) laid out as inputIds returns them. */
  forwardIds(ids: Int32Array, b: number, n: number): Tensor {
    if (ids.length !== b * n) throw new Error(`DigitGpt: ${ids.length} ids for (B, n) = (${b}, ${n})`);
    let h = add(embedding(this.tok_emb, ids, [b, n]), slice(this.pos_emb, 0, 0, n)); // (B, n, D)
    // Without a tape nothing inside a block is needed after it: sampling keeps one block's buffers.
    for (const blk of this.blocks.items) h = isGradEnabled() ? blk.forward(h) : tidy(() => blk.forward(h));
    return this.head.forward(this.ln_f.forward(h)); // (B, n, K)
  }

  /** Teacher-forced logits (B, N, K) of the full sequences codes (B·N) under classes y (B). */
  forward(codes: ArrayLike<number>, y: ArrayLike<number>): Tensor {
    const n = this.config.seqLen;
    if (codes.length !== y.length * n) throw new Error(`DigitGpt: expected B·N = ${y.length}·${n} codes, got ${codes.length}`);
    for (let i = 0; i < codes.length; i++) {
      const s = codes[i];
      if (!Number.isInteger(s) || s < 0 || s >= this.config.vocab) throw new Error(`DigitGpt: code ${s} at row ${Math.floor(i / n)}, position ${i % n} is not in 0..${this.config.vocab - 1}`);
    }
    return this.forwardIds(this.inputIds(codes, y, n), y.length, n);
  }
}

/** Next-token cross-entropy, mean over B·N positions: logits (B, N, K) against codes (B·N). */
export function nextTokenLoss(logits: Tensor, codes: ArrayLike<number>, labelSmoothing = 0): Tensor {
  if (logits.ndim !== 3) throw new Error(`nextTokenLoss: logits must be (B, N, K), got ${fmtShape(logits.shape)}`);
  const [b, n, k] = logits.shape;
  if (codes.length !== b * n) throw new Error(`nextTokenLoss: ${codes.length} targets for B·N = ${b * n} positions`);
  return crossEntropy(reshape(logits, [b * n, k]), Int32Array.from(codes), { labelSmoothing });
}

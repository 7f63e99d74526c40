// DiGIT's pixel stage at small scale: a non-autoregressive conv decoder from the token grid to
// pixels. The paper's stage 2 is a second AR transformer that generates VQGAN codes conditioned on
// the k-means tokens, rendered by the frozen VQGAN decoder (Zhu et al., arXiv 2410.12490;
// DAMO-NLP-SG/DiGIT fairseq_user/image_generation_stage2/model.py); methods-b §8 names a conv
// decoder from cluster embeddings as the simpler small-scale substitute — a DEVIATION: the pixels
// are a deterministic function of the tokens, nothing is sampled in stage 2.
//   embed   code ids (B, h, w) → emb(ids) (B, E, h, w)            (E = embed_dim)
//   conv_in 3×3 E → W, SiLU
//   ups.i   log2(p) times: nearest ×2, 3×3 W → W, SiLU             (p = the encoder's patch side)
//   conv_out 3×3 W → C                                            → (B, C, h·p, w·p)
// Trained with the mean squared error to the image (data range [−1, 1]) on the true tokens of the
// training images. Init: torch's defaults for the convs, N(0, 1) for the table (nn.Embedding).
// Not here: the tokenizer (kmeans.ts), the GPT (gpt.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { embedding, mseLoss, permute, silu, upsampleNearest } from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Conv2d } from '../../nn/conv2d.ts';
import { normal } from '../../nn/init.ts';

export interface TokenDecoderConfig {
  /** K codes. */
  vocab: number;
  /** Token grid side g (the image side is g · patch). */
  grid: number;
  /** Pixels per token side, a power of two ≥ 1. */
  patch: number;
  /** Image channels C. */
  channels: number;
  embedDim: number;
  width: number;
}

export function checkTokenDecoderConfig(c: TokenDecoderConfig, where = 'TokenDecoder'): TokenDecoderConfig {
  for (const k of ['vocab', 'grid', 'patch', 'channels', 'embedDim', 'width'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${c[k]}`);
  }
  if ((c.patch & (c.patch - 1)) !== 0) throw new Error(`${where}: patch ${c.patch} must be a power of two (the decoder doubles the grid log2(patch) times)`);
  return c;
}

export class TokenDecoder extends Module {
  readonly config: TokenDecoderConfig;
  /** (K, E) code embeddings. */
  readonly emb: Tensor;
  readonly conv_in: Conv2d;
  readonly ups: ModuleList<Conv2d>;
  readonly conv_out: Conv2d;

  constructor(config: TokenDecoderConfig, rng: Rng) {
    super();
    const c = (this.config = checkTokenDecoderConfig({ ...config }));
    this.emb = normal(this.param('emb', [c.vocab, c.embedDim]), rng.child('emb'));
    this.conv_in = this.child('conv_in', new Conv2d(c.embedDim, c.width, 3, rng.child('conv_in'), { padding: 1 }));
    const n = Math.round(Math.log2(c.patch));
    this.ups = this.child('ups', new ModuleList(Array.from({ length: n }, (_, i) => new Conv2d(c.width, c.width, 3, rng.child(`up${i}`), { padding: 1 }))));
    this.conv_out = this.child('conv_out', new Conv2d(c.width, c.channels, 3, rng.child('conv_out'), { padding: 1 }));
  }

  /** Codes (B·g·g, row-major per image) → images (B, C, g·p, g·p). */
  forward(codes: ArrayLike<number>): Tensor {
    const g = this.config.grid;
    if (codes.length % (g * g) !== 0) throw new Error(`TokenDecoder: ${codes.length} codes are not whole ${g}×${g} grids`);
    const b = codes.length / (g * g);
    let h = permute(embedding(this.emb, Int32Array.from(codes), [b, g, g]), [0, 3, 1, 2]); // (B, E, g, g)
    h = silu(this.conv_in.forward(h));
    for (const up of this.ups.items) h = silu(up.forward(upsampleNearest(h, 2)));
    return this.conv_out.forward(h); // (B, C, g·p, g·p)
  }
}

/** The decoder's loss: mean squared error between the decoded tokens and the images. */
export function reconstructionLoss(recon: Tensor, x: Tensor): Tensor {
  return mseLoss(recon, x);
}

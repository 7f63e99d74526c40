// SoftREPA's text encoder stand-in (issue 12, item 4). SD3 reads captions with frozen text
// encoders (CLIP, T5) through a trained `context_embedder`; here the frozen encoder is a pair of
// fixed random tables, word (V, d_text) and position (L, d_text), each N(0, 1), summed:
//   txt[b, k] = embedding[ids[b, k]] + position[k]                                  (B, L, d_text)
// Why frozen and untrained: the claim under test is about the soft tokens, not the encoder; a
// fixed injective map from (word, position) to vectors is all the caption-conditioned SiT needs to
// read class names (its trained context_embedder and attention do the reading in stage 1, as SD3's
// do over T5), and with nothing to train it cannot drift between stage 1 and stage 2. Both tables
// are buffers: in the state dict (so a checkpoint carries them), never parameters, never a gradient.
// Not here: the vocabulary and captions (captions.ts), the projection to the SiT width (model.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { add, indexSelect, reshape } from '../../autograd/index.ts';
import { Module } from '../../nn/module.ts';

export class FrozenTextEncoder extends Module {
  /** (V, d_text) word vectors. */
  readonly embedding: Tensor;
  /** (1, L, d_text) position vectors. */
  readonly position: Tensor;

  constructor(readonly vocabSize: number, readonly maxTokens: number, readonly dim: number, rng: Rng) {
    super();
    this.embedding = this.buffer('embedding', [vocabSize, dim], (d) => d.set(rng.child('embedding').normalArray(vocabSize * dim)));
    this.position = this.buffer('position', [1, maxTokens, dim], (d) => d.set(rng.child('position').normalArray(maxTokens * dim)));
  }

  /** ids (B·L) row-major -> (B, L, d_text). */
  forward(ids: Int32Array): Tensor {
    const L = this.maxTokens;
    if (ids.length % L !== 0) throw new Error(`FrozenTextEncoder: ${ids.length} ids is not a whole number of ${L}-token captions`);
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= this.vocabSize) throw new Error(`FrozenTextEncoder: token id ${ids[i]} at ${i} is not in [0, ${this.vocabSize})`);
    }
    const rows = indexSelect(this.embedding, 0, ids); // (B·L, d_text)
    return add(reshape(rows, [ids.length / L, L, this.dim]), this.position); // (B, L, d_text)
  }
}

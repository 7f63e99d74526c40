// nn.Embedding: a (num, dim) table, state_dict name `weight`, initialised N(0, 1) as PyTorch.
// Lookup is indexSelect on the table, so the table's gradient is a scatter-add over the indices.
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { indexSelect, type Indices } from '../autograd/ops/layout.ts';
import { reshape } from '../autograd/ops/shape.ts';
import { Module } from './module.ts';
import { normal } from './init.ts';

export class Embedding extends Module {
  readonly weight: Tensor; // (num, dim)

  constructor(readonly numEmbeddings: number, readonly dim: number, rng: Rng) {
    super();
    this.weight = normal(this.param('weight', [numEmbeddings, dim]), rng);
  }

  /** Integer indices (any shape S given as a tensor, or flat) -> (...S, dim). */
  forward(indices: Indices): Tensor {
    const rows = indexSelect(this.weight, 0, indices); // (n, dim)
    const shape = Array.isArray(indices) || indices instanceof Int32Array ? [rows.shape[0]] : (indices as Tensor).shape;
    return reshape(rows, [...shape, this.dim]);
  }
}

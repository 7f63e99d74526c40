// nn.Sequential: children named 0, 1, 2, … applied in order, so state_dict names match PyTorch's
// (`t_embedder.mlp.0.weight`, `adaLN_modulation.1.bias`, `projectors.0.4.weight`).
import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';

/** A module with a one-tensor forward. */
export type Layer = Module & { forward(x: Tensor): Tensor };

export class Sequential extends Module {
  readonly layers: Layer[];
  constructor(layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.child(String(i), m));
  }

  at<M extends Layer = Layer>(i: number): M {
    return this.layers[i < 0 ? this.layers.length + i : i] as M;
  }

  forward(x: Tensor): Tensor {
    for (const m of this.layers) x = m.forward(x);
    return x;
  }
}

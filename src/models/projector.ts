// REPA's projector (models/sit.py build_mlp): Linear(D -> H), SiLU, Linear(H -> H), SiLU,
// Linear(H -> z_dim), applied token-wise to a tapped hidden state. Children are named 0..4 like
// the nn.Sequential, so inside REPA's SiT checkpoint they are `projectors.<i>.{0,2,4}.*`
// (repaStateDict). Initialised like REPA: xavier-uniform weights, zero biases. Not here: the
// alignment loss (methods/).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { Linear } from '../nn/linear.ts';
import { Sequential } from '../nn/sequential.ts';
import { SiLU } from '../nn/activation.ts';
import { xavierUniform, zeros } from '../nn/init.ts';
import type { Module } from '../nn/module.ts';

/** forward: h (B, T, D) -> (B, T, z_dim). */
export class Projector extends Sequential {
  constructor(readonly hiddenSize: number, readonly projectorDim: number, readonly zDim: number, rng: Rng) {
    const linears = [
      new Linear(hiddenSize, projectorDim, rng.child('0')),
      new Linear(projectorDim, projectorDim, rng.child('2')),
      new Linear(projectorDim, zDim, rng.child('4')),
    ];
    super([linears[0], SiLU(), linears[1], SiLU(), linears[2]]);
    linears.forEach((l, i) => {
      xavierUniform(l.weight, rng.child(`init.${2 * i}`));
      zeros(l.bias!);
    });
  }
}

/**
 * One state dict in the layout of REPA's SiT, which owns its projectors: the backbone's entries
 * plus `projectors.<i>.<name>` for each projector.
 */
export function repaStateDict(backbone: Module, projectors: readonly Projector[]): Map<string, Tensor> {
  const out = backbone.stateDict();
  projectors.forEach((p, i) => {
    for (const [k, v] of p.stateDict()) out.set(`projectors.${i}.${k}`, v);
  });
  return out;
}

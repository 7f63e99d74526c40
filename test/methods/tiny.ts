// Test helpers for the method tests: tiny models (a 3-block SiT on 1×8×8 images, patch 2 → 4×4
// tokens; a 1-block ViT encoder on the same grid), weights perturbed so that the adaLN-Zero and
// final zeros are not zero and every gradient path is open, and gradient inspection.
import { Rng } from '../../src/tensor/rng.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import type { Module } from '../../src/nn/module.ts';
import { createSiT, type SiT } from '../../src/models/sit.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { FrozenEncoder, type EncoderNormalization } from '../../src/methods/encoder.ts';
import type { SimpleHead } from '../../src/methods/sra/loss.ts';
import type { Linear } from '../../src/nn/linear.ts';

export const tinySiTConfig = (depth = 3) => sitPreset('SiT-T/2', { depth, hiddenSize: 16, numHeads: 2, inputSize: 8, inChannels: 1 });

/** Add N(0, std²) to every parameter (not buffers). */
export function perturb(m: Module, seed: number, std = 0.05): void {
  const rng = new Rng(seed);
  for (const [, p] of m.namedParameters()) {
    const n = rng.normalArray(p.size, 0, std);
    for (let i = 0; i < p.size; i++) p.data[i] += n[i];
  }
}

export function tinySiT(seed: number, depth = 3): SiT {
  const m = createSiT(tinySiTConfig(depth), seed);
  perturb(m, seed + 1000);
  return m;
}

export function tinyEncoder(seed: number, normalization: EncoderNormalization = 'identity', inChannels = 1, embedDim = 8): FrozenEncoder {
  const vit = createViT(vitPreset('ViT-T/4', { imgSize: 8, patchSize: 2, inChannels, embedDim, depth: 1, numHeads: 2 }), seed);
  return new FrozenEncoder(vit, { normalization, grid: 4 });
}

/** Largest |grad| of a parameter (0 when it has none). */
export function gradMax(p: Tensor): number {
  if (!p.grad) return 0;
  let m = 0;
  for (const v of p.grad.data) m = Math.max(m, Math.abs(v));
  return m;
}

/** Parameters (by name) whose gradient has a non-zero entry. */
export function withGrad(m: Module, prefix = ''): string[] {
  return m.namedParameters(prefix).filter(([, p]) => gradMax(p) > 0).map(([n]) => n);
}

export function zeroAllGrads(...ms: Module[]): void {
  for (const m of ms) for (const p of m.parameters()) p.grad = null;
}

/** Make an SRA head (D → 2D → D) exactly the identity: SiLU(x) − SiLU(−x) = x, linear1 = [I; −I], linear2 = [I, −I], zero biases. */
export function makeIdentity(h: SimpleHead): SimpleHead {
  const d = h.linear2.outFeatures;
  const set = (l: Linear, f: (i: number, j: number) => number) => {
    for (let i = 0; i < l.outFeatures; i++) for (let j = 0; j < l.inFeatures; j++) l.weight.data[i * l.inFeatures + j] = f(i, j);
    l.bias!.data.fill(0);
  };
  set(h.linear1, (i, j) => (i % d === j ? (i < d ? 1 : -1) : 0));
  set(h.linear2, (i, j) => (j % d === i ? (j < d ? 1 : -1) : 0));
  return h;
}

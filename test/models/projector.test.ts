// REPA projector: Sequential names 0/2/4 (REPA's build_mlp), token-wise
// Linear-SiLU-Linear-SiLU-Linear against a plain-loop reference, xavier weights with zero biases,
// gradients flowing to the tapped hidden state, and the merged REPA state_dict layout.
import { describe, expect, it } from 'vitest';
import { backward, sum } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { Projector, repaStateDict } from '../../src/models/projector.ts';
import { createSiT } from '../../src/models/sit.ts';
import { sitPreset } from '../../src/models/presets.ts';
import type { Linear } from '../../src/nn/linear.ts';
import { expectClose } from '../kernels/expectClose.ts';

function denseRef(x: number[], l: Linear, rows: number, act: boolean): number[] {
  const [o, i] = l.weight.shape, w = l.weight.data, b = l.bias!.data;
  const y: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < o; j++) {
      let s = b[j];
      for (let k = 0; k < i; k++) s += x[r * i + k] * w[j * i + k];
      y.push(act ? s / (1 + Math.exp(-s)) : s);
    }
  }
  return y;
}

describe('Projector', () => {
  it('is REPA build_mlp: names 0/2/4, xavier init, zero bias, token-wise MLP', () => {
    const p = new Projector(12, 20, 6, new Rng(1));
    expect(p.namedParameters().map(([k]) => k)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias', '4.weight', '4.bias']);
    for (const [i, fanIn, fanOut] of [[0, 12, 20], [2, 20, 20], [4, 20, 6]]) {
      const l = p.at<Linear>(i);
      const a = Math.sqrt(6 / (fanIn + fanOut));
      const mx = Math.max(...l.weight.toArray().map(Math.abs));
      expect(mx).toBeLessThanOrEqual(a);
      expect(mx).toBeGreaterThan(0.7 * a);
      expect(l.bias!.toArray().every((v) => v === 0)).toBe(true);
    }
    // non-zero biases so the reference checks them too
    for (const i of [0, 2, 4]) p.at<Linear>(i).bias!.data.set(new Rng(10 + i).normalArray(p.at<Linear>(i).bias!.size));
    const h = new Rng(2).normal([2, 3, 12]).requireGrad();
    const z = p.forward(h);
    expect(z.shape).toEqual([2, 3, 6]);
    const h1 = denseRef(h.toArray(), p.at<Linear>(0), 6, true);
    const h2 = denseRef(h1, p.at<Linear>(2), 6, true);
    expectClose('projector', z.data, denseRef(h2, p.at<Linear>(4), 6, false), 1e-5, 1e-5);
    backward(sum(z));
    expect(h.grad!.toArray().some((v) => v !== 0)).toBe(true);
  });

  it('repaStateDict merges the backbone and projectors.<i>.* as in REPA checkpoints', () => {
    const model = createSiT(sitPreset('SiT-T/2', { depth: 2 }), 0);
    const sd = repaStateDict(model, [new Projector(64, 32, 16, new Rng(1)), new Projector(64, 32, 8, new Rng(2))]);
    expect(sd.get('projectors.1.4.weight')!.shape).toEqual([8, 32]);
    expect(sd.has('projectors.0.0.bias')).toBe(true);
    expect(sd.has('blocks.1.attn.qkv.weight')).toBe(true);
    expect(sd.size).toBe(model.stateDict().size + 12);
  });
});

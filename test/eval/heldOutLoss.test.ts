// The held-out loss against a per-image computation written out here from the definitions: the
// linear path x_t = (1 − t)·x + t·ε, target ε − x, t_i = (i + 0.5)/n, the evaluator's fixed noise
// stream; for REG the encoder's class token g_t = (1 − t)·g + t·ε_g with its own fixed noise.
// Batched (any batch size) and per-image values must agree.
import { describe, expect, it } from 'vitest';
import { heldOutLoss } from '../../src/eval/heldOutLoss.ts';
import { openDataset } from '../../src/data/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { fromData } from '../../src/tensor/tensor.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { buildBackbone, buildEncoder } from '../../src/build/parts.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { SiT } from '../../src/models/sit.ts';
import { DdpmSchedule } from '../../src/diffusion/index.ts';
import { RegSiT } from '../../src/models/reg.ts';
import type { FrozenEncoder } from '../../src/methods/encoder.ts';
import type { RunSpec } from '../../src/spec/schema.ts';
import { tinySpec } from '../actors/specs.ts';

/** Random weights everywhere (adaLN-Zero starts at zero output: every loss would be the same). */
function randomise<M extends SiT>(m: M, seed: number): M {
  const r = new Rng(seed);
  for (const [name, p] of m.namedParameters()) p.data.set(r.child(name).normalArray(p.size, 0, 0.1));
  return m.eval() as M;
}

function setup(protocol: 'sit-baseline' | 'reg' | 'dit-baseline') {
  const spec = tinySpec(protocol);
  const data = openTrainData(spec);
  const config = modelConfigFor(spec, data);
  const encoder = protocol === 'reg' ? buildEncoder(spec, data, config) : undefined;
  const model = randomise(buildBackbone(spec, config, encoder ? encoder.dim : null) as SiT, 3);
  return { spec, model, encoder };
}

/** mean_i mean_elements (v̂_i − (ε_i − x_i))², one image at a time. */
function perImage(spec: RunSpec, model: SiT, n: number, encoder?: FrozenEncoder): number {
  const ds = openDataset(spec.data.dataset, { split: 'test', size: spec.data.size, seed: spec.seed, count: 512 });
  const shape = [1, ds.channels, ds.height, ds.width], per = ds.channels * ds.height * ds.width;
  const noise = new Rng(spec.seed).child('evaluator').child('noise');
  const eps = noise.normalArray(n * per);
  let epsG: ReturnType<Rng['normalArray']> | undefined;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const x = new Float32Array(per);
    const y = ds.get(i, x, 0);
    const t = (i + 0.5) / n;
    const e = eps.subarray(i * per, (i + 1) * per);
    const xt = fromData(x.map((v, j) => (1 - t) * v + t * e[j]), shape);
    const out = noGrad(() => {
      if (!(model instanceof RegSiT)) return model.forward(xt, [t], [y]).out;
      const g = encoder!.features(fromData(x, shape)).cls.data;
      const all = (epsG ??= noise.child('cls').normalArray(n * g.length));
      const eg = all.subarray(i * g.length, (i + 1) * g.length);
      return model.forward(xt, [t], [y], { cls: fromData(Float32Array.from(g, (v, j) => (1 - t) * v + t * eg[j]), [1, g.length]) }).out;
    });
    let se = 0;
    for (let j = 0; j < per; j++) se += (out.data[j] - (e[j] - x[j])) ** 2;
    total += se / per;
  }
  return total / n;
}

/** DDPM: mean_i mean_elements (ε̂_i − ε_i)² at step ⌊(i + 0.5)/n · T⌋, ε̂ the first C of the DiT's 2C output channels. */
function perImageDdpm(spec: RunSpec, model: SiT, n: number): number {
  const ds = openDataset(spec.data.dataset, { split: 'test', size: spec.data.size, seed: spec.seed, count: 512 });
  const shape = [1, ds.channels, ds.height, ds.width], per = ds.channels * ds.height * ds.width;
  const eps = new Rng(spec.seed).child('evaluator').child('noise').normalArray(n * per);
  const s = DdpmSchedule.linear();
  let total = 0;
  for (let i = 0; i < n; i++) {
    const x = new Float32Array(per);
    const y = ds.get(i, x, 0);
    const t = Math.floor(((i + 0.5) / n) * s.T), a = s.sqrtAlphasCumprod[t], b = s.sqrtOneMinusAlphasCumprod[t];
    const e = eps.subarray(i * per, (i + 1) * per);
    const out = noGrad(() => model.forward(fromData(x.map((v, j) => a * v + b * e[j]), shape), Int32Array.of(t), [y]).out);
    expect(out.shape[1]).toBe(2 * ds.channels); // ε̂ and the variance interpolation v
    let se = 0;
    for (let j = 0; j < per; j++) se += (out.data[j] - e[j]) ** 2;
    total += se / per;
  }
  return total / n;
}

describe('heldOutLoss', () => {
  it('DiT (DDPM, learned variance): the ε MSE of the first C output channels, whatever the batch', () => {
    const { spec, model } = setup('dit-baseline');
    const want = perImageDdpm(spec, model, 10);
    for (const batch of [64, 3]) expect(heldOutLoss(spec, { count: 10, batch })(model)).toBeCloseTo(want, 5);
  });

  it('SiT: the velocity MSE on the fixed grid, whatever the batch', () => {
    const { spec, model } = setup('sit-baseline');
    const want = perImage(spec, model, 10);
    for (const batch of [64, 3]) expect(heldOutLoss(spec, { count: 10, batch })(model)).toBeCloseTo(want, 5);
  });

  it("REG: the image's velocity MSE with the encoder's class token noised at the image's t", () => {
    const { spec, model, encoder } = setup('reg');
    expect(model).toBeInstanceOf(RegSiT);
    const want = perImage(spec, model, 9, encoder);
    const f = heldOutLoss(spec, { count: 9, batch: 4, encoder });
    expect(f(model)).toBeCloseTo(want, 5);
    expect(f(model)).toBe(f(model)); // fixed noise: the same number again
    // The class token is an input that matters: another encoder's tokens give another loss.
    const other = buildEncoder({ ...spec, seed: spec.seed + 1 }, openTrainData(spec), model.config);
    expect(Math.abs(heldOutLoss(spec, { count: 9, encoder: other })(model) - want)).toBeGreaterThan(1e-6);
    expect(() => heldOutLoss(spec, { count: 9 })(model)).toThrow(/a REG model needs the frozen encoder/);
  });
});

// The sampling pool against the in-process path: sampleGrid on worker threads must return
// drawSamples' images bit for bit (tiny SiT / DiT / REG models with random weights, every
// sampler, chunks that do not divide the labels or the batches). Also: row streams against whole
// draws, the chunk plan, the per-worker model cache, errors naming the tensor, and a clean close.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SamplePool, planChunks, sampleGrid } from '../../src/actors/samplePool.ts';
import { RowRng } from '../../src/actors/sampleTask.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { drawSamples, type SampleSettings } from '../../src/build/draw.ts';
import { createSiT } from '../../src/models/sit.ts';
import { createRegSiT } from '../../src/models/reg.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { fromData, type Tensor } from '../../src/tensor/tensor.ts';
import type { Module } from '../../src/nn/module.ts';

const sit = sitPreset('SiT-T/2', { hiddenSize: 32, numHeads: 2 }); // depth 2, 4x8x8, 10 classes
const dit = sitPreset('DiT-T/2', { hiddenSize: 32, numHeads: 2 }); // learns sigma

/** Random weights everywhere (adaLN-Zero starts at zero output, which would make any test pass). */
function randomise<M extends Module>(m: M, seed: number): M {
  const r = new Rng(seed);
  for (const [name, p] of m.namedParameters()) p.data.set(r.child(name).normalArray(p.size, 0, 0.15));
  return m;
}

function settings(o: Partial<SampleSettings>): SampleSettings {
  return { sampler: 'euler', steps: 3, cfg: 1, guidance_low: 0, guidance_high: 1, per_class: 1, ...o };
}

/** Bit equality with the first mismatch and the max difference in the message. */
function expectSameBits(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  let first = -1, max = 0, count = 0;
  for (let i = 0; i < want.length; i++) {
    if (Object.is(got[i], want[i])) continue;
    if (first < 0) first = i;
    count++;
    max = Math.max(max, Math.abs(got[i] - want[i]));
  }
  expect(count, `first mismatch at ${first}: ${got[first]} vs ${want[first]}; max |diff| ${max}`).toBe(0);
}

/** The images are finite and not all alike, so equality means something. */
function expectNonTrivial(x: Float32Array, n: number): void {
  const per = x.length / n;
  expect(x.every(Number.isFinite)).toBe(true);
  let differ = false;
  for (let i = 0; i < per && !differ; i++) differ = x[i] !== x[per + i];
  expect(differ).toBe(true);
}

const labels11 = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];

describe('RowRng', () => {
  it('draws exactly the rows of the whole-batch draw and leaves the stream where the whole draw would', () => {
    const base = new Rng(77).child('sample').child(2);
    // per = 3 and 5 (odd: rows start mid-block and mid Box–Muller pair), rows including the last
    for (const [rows, per] of [[7, 3], [5, 5], [4, 256]]) {
      for (let row0 = 0; row0 < rows; row0++) {
        for (let count = 1; row0 + count <= rows; count++) {
          const whole = base.child('x');
          const part = new RowRng(base, rows, row0, count).child('x');
          for (let draw = 0; draw < 2; draw++) {
            const w = whole.normalArray(rows * per), p = part.normalArray(count * per);
            expect(Array.from(p)).toEqual(Array.from(w.subarray(row0 * per, (row0 + count) * per)));
            const wu = whole.uniformArray(rows * per), pu = part.uniformArray(count * per);
            expect(Array.from(pu)).toEqual(Array.from(wu.subarray(row0 * per, (row0 + count) * per)));
          }
          expect(part.counter).toBe(whole.counter);
        }
      }
    }
  });

  it('refuses draws that are not whole rows and raw words', () => {
    const r = new RowRng(new Rng(1), 4, 1, 2);
    expect(() => r.normalArray(5)).toThrow(/not 2 rows/);
    expect(() => r.randintArray(0, 3, 4)).toThrow(/only normal and uniform/);
    expect(() => new RowRng(new Rng(1), 4, 3, 2)).toThrow(/not inside a batch of 4/);
  });
});

describe('planChunks', () => {
  it('covers every label once, in order, with no chunk across a batch boundary', () => {
    for (const [total, batch, chunk] of [[11, 100, 3], [11, 5, 4], [10, 5, 5], [1, 3, 7], [23, 7, 3]]) {
      const plan = planChunks(total, batch, chunk);
      let next = 0;
      for (const c of plan) {
        expect(c.start).toBe(next);
        expect(c.start).toBe(c.k * batch + c.row0);
        expect(c.n).toBeGreaterThan(0);
        expect(c.n).toBeLessThanOrEqual(chunk);
        expect(c.row0 + c.n).toBeLessThanOrEqual(c.rows);
        expect(c.rows).toBe(Math.min(batch, total - c.k * batch));
        next += c.n;
      }
      expect(next).toBe(total);
    }
  });
});

/** A REG run's spec: its methods build the model from the weights. */
const REG_SPEC = parseSpec({ name: 'reg-sampling', methods: ['reg'], sample: { sampler: 'sde' } });

describe('sampleGrid on a pool', () => {
  let pool: SamplePool;
  beforeAll(() => { pool = new SamplePool({ threads: 2 }); });
  afterAll(async () => { await pool.close(); });

  const cases: { name: string; s: Partial<SampleSettings>; model: 'sit' | 'dit' | 'reg'; batch?: number; chunk: number }[] = [
    { name: 'euler, cfg 1, chunk 3 of 11', model: 'sit', s: { sampler: 'euler' }, chunk: 3 },
    { name: 'heun, cfg 2.5 in [0, 0.6], batches of 5, chunk 4', model: 'sit', s: { sampler: 'heun', cfg: 2.5, guidance_high: 0.6 }, batch: 5, chunk: 4 },
    { name: 'euler, cfg 4, chunk 2', model: 'sit', s: { sampler: 'euler', cfg: 4 }, chunk: 2 },
    { name: 'sde, cfg 1.5, batches of 7, chunk 3', model: 'sit', s: { sampler: 'sde', cfg: 1.5, steps: 4 }, batch: 7, chunk: 3 },
    { name: 'DiT ddpm (learned sigma), cfg 2, chunk 4', model: 'dit', s: { sampler: 'ddpm', cfg: 2, steps: 4 }, chunk: 4 },
    { name: 'DiT ddim, chunk 5', model: 'dit', s: { sampler: 'ddim', steps: 3 }, chunk: 5 },
    { name: 'REG sde, cfg 2, chunk 3', model: 'reg', s: { sampler: 'sde', cfg: 2, steps: 3 }, chunk: 3 },
  ];

  for (const c of cases) {
    it(`${c.name}: bit-identical to drawSamples in-process`, async () => {
      const model = c.model === 'reg' ? randomise(createRegSiT(sit, 8, 0), 5) : randomise(createSiT(c.model === 'dit' ? dit : sit, 0), 5);
      const s = settings(c.s);
      const progress: [number, number][] = [];
      const got = await sampleGrid(pool, {
        config: model.config, weights: model.stateDict(), sampleSpec: s, seed: 11, labels: labels11,
        spec: c.model === 'reg' ? REG_SPEC : undefined, batch: c.batch, chunk: c.chunk,
        onProgress: (d, t) => progress.push([d, t]),
      });
      const want = drawSamples(model, s, { seed: 11, labels: labels11, batch: c.batch });
      expectSameBits(got, want);
      expectNonTrivial(want, labels11.length);
      const total = planChunks(labels11.length, c.batch ?? 100, c.chunk).length;
      expect(progress).toEqual(Array.from({ length: total }, (_, i) => [i + 1, total]));
    });
  }

  it('builds the model once per worker, loads weights once per version, and reloads new weights', async () => {
    // One thread, so which worker ran which chunk is known.
    const one = new SamplePool({ threads: 1 });
    try {
      const s = settings({ steps: 2 });
      const labels = Array.from({ length: 7 }, (_, i) => i % 10);
      const m1 = randomise(createSiT(sit, 0), 22);
      const a = await sampleGrid(one, { config: sit, weights: m1.stateDict(), sampleSpec: s, seed: 1, labels, chunk: 2 });
      expect(one.stats).toEqual({ tasks: 4, failed: 0, images: 7, builds: 1, loads: 1 });
      expectSameBits(a, drawSamples(m1, s, { seed: 1, labels }));

      // New weights, not in shared memory this time (copied once into it): a new version reloads
      // them without rebuilding, and the images follow the new weights.
      const m2 = randomise(createSiT(sit, 0), 23);
      const plain = new Map<string, Tensor>([...m2.stateDict()].map(([k, t]) => [k, fromData(Float32Array.from(t.data), t.shape)]));
      const b = await sampleGrid(one, { config: sit, weights: plain, sampleSpec: s, seed: 1, labels, chunk: 3, weightsVersion: 'm2' });
      expect(one.stats).toEqual({ tasks: 7, failed: 0, images: 14, builds: 1, loads: 2 });
      expectSameBits(b, drawSamples(m2, s, { seed: 1, labels }));

      // The same version again: nothing reloads. Another architecture: built anew.
      await sampleGrid(one, { config: sit, weights: plain, sampleSpec: s, seed: 2, labels: labels.slice(0, 2), chunk: 1, weightsVersion: 'm2' });
      expect(one.stats).toEqual({ tasks: 9, failed: 0, images: 16, builds: 1, loads: 2 });
      const m3 = randomise(createSiT(dit, 0), 24);
      await sampleGrid(one, { config: dit, weights: m3.stateDict(), sampleSpec: settings({ sampler: 'ddim', steps: 2 }), seed: 2, labels: [1], weightsVersion: 'm2' });
      expect(one.stats).toEqual({ tasks: 10, failed: 0, images: 17, builds: 2, loads: 3 });
    } finally {
      await one.close();
    }
  });

  it('a task error rejects with a message naming the tensor, and the pool keeps working', async () => {
    const model = randomise(createSiT(sit, 0), 31);
    const s = settings({ steps: 2 });
    const bogus = new Map(model.stateDict());
    bogus.set('blocks.0.attn.bogus', fromData(new Float32Array(4), [4]));
    await expect(sampleGrid(pool, { config: sit, weights: bogus, sampleSpec: s, seed: 1, labels: labels11, chunk: 2 }))
      .rejects.toThrow(/blocks\.0\.attn\.bogus/);

    const missing = new Map(model.stateDict());
    missing.delete('final_layer.linear.weight');
    await expect(sampleGrid(pool, { config: sit, weights: missing, sampleSpec: s, seed: 1, labels: labels11, chunk: 4 }))
      .rejects.toThrow(/final_layer\.linear\.weight/);

    await expect(sampleGrid(pool, { config: sit, weights: model.stateDict(), sampleSpec: s, seed: 1, labels: [0, 10] }))
      .rejects.toThrow(/labels\[1\] = 10/);

    // A REG checkpoint without its class-token projector is named too.
    await expect(sampleGrid(pool, { config: sit, weights: model.stateDict(), sampleSpec: settings({ sampler: 'sde' }), seed: 1, labels: [0], spec: REG_SPEC }))
      .rejects.toThrow(/cls_projectors2\.weight/);

    const ok = await sampleGrid(pool, { config: sit, weights: model.stateDict(), sampleSpec: s, seed: 1, labels: labels11, chunk: 4 });
    expectSameBits(ok, drawSamples(model, s, { seed: 1, labels: labels11 }));
    // No worker was killed mid-reply (piscina would report it outside any task).
    expect(pool.workerErrors).toEqual([]);
  });

  it('after a failed chunk no further chunk is sent, and running ones are not killed', async () => {
    const one = new SamplePool({ threads: 1 });
    try {
      const model = randomise(createSiT(sit, 0), 32);
      const bogus = new Map(model.stateDict());
      bogus.set('bogus', fromData(new Float32Array(1), [1]));
      // 6 chunks on one thread: the first fails, the other five are never sent.
      await expect(sampleGrid(one, { config: sit, weights: bogus, sampleSpec: settings({ steps: 1 }), seed: 1, labels: labels11, chunk: 2 }))
        .rejects.toThrow(/chunk 1\/6 .*bogus/);
      expect(one.stats).toMatchObject({ tasks: 0, failed: 1 });
      // Two threads, 6 chunks: the two in flight settle (both fail), nothing else starts.
      const two = new SamplePool({ threads: 2 });
      try {
        await expect(sampleGrid(two, { config: sit, weights: bogus, sampleSpec: settings({ steps: 1 }), seed: 1, labels: labels11, chunk: 2 }))
          .rejects.toThrow(/bogus/);
        expect(two.stats).toMatchObject({ tasks: 0, failed: 2 });
        expect(two.workerErrors).toEqual([]);
      } finally {
        await two.close();
      }
    } finally {
      await one.close();
    }
  });

  it('a closed pool refuses work, and closing twice is fine', async () => {
    const p = new SamplePool({ threads: 1 });
    const model = randomise(createSiT(sit, 0), 41);
    const s = settings({ steps: 1 });
    const x = await sampleGrid(p, { config: sit, weights: model.stateDict(), sampleSpec: s, seed: 1, labels: [1, 2] });
    expectSameBits(x, drawSamples(model, s, { seed: 1, labels: [1, 2] }));
    await p.close();
    await p.close();
    await expect(sampleGrid(p, { config: sit, weights: model.stateDict(), sampleSpec: s, seed: 1, labels: [1] })).rejects.toThrow(/closed/);
    expect(() => new SamplePool({ threads: 0 })).toThrow(/threads must be a positive integer/);
  });
});

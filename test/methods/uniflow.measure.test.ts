// The measurement tool of UniFlow's claim (src/methods/uniflow/measure.ts, scripts/uniflow-eval.ts)
// computes what it says, not its values: the probe features are the mean patch token and the class
// token (equal to the stand-in probe's extractFeatures for the teacher; the untrained student's equal
// the teacher's exactly); the tokenizer's reconstruction error is the MSE/PSNR of its seeded one-step
// decode, recomputed here by hand; the script, on a 2-step tiny run and a 1-step tiny RAE run, reports
// probes of student and teacher and reconstruction errors of UniFlow, the VAE and RAE, each
// recomputed here from the checkpoints.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { enableGrad, noGrad } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { clearPool, poolStats } from '../../src/tensor/pool.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { FrozenEncoder } from '../../src/methods/encoder.ts';
import { UniFlowModel } from '../../src/methods/uniflow/model.ts';
import { studentTokens, teacherTokens, tokenFeatures, uniflowReconstruct } from '../../src/methods/uniflow/measure.ts';
import { reconstructionError } from '../../src/methods/rae/recon.ts';
import { extractFeatures } from '../../src/standins/ssl/probe.ts';
import { linearProbe } from '../../src/eval/linearProbe.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { buildEncoder, samplingModel } from '../../src/build/parts.ts';
import { openDataset } from '../../src/data/open.ts';
import { runActors } from '../../src/run/actorRun.ts';
import type { ImageDataset } from '../../src/data/index.ts';
import { uniflowEval } from '../../scripts/uniflow-eval.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb } from './tiny.ts';

const config = sitPreset('SiT-T/2', { depth: 1, hiddenSize: 16, numHeads: 2, inputSize: 16, inChannels: 1, patchSize: 4, numClasses: 3 });

function setup(seed: number): { m: UniFlowModel; teacher: FrozenEncoder; data: ImageDataset } {
  const vit = createViT(vitPreset('ViT-T/4', { imgSize: 16, patchSize: 4, inChannels: 1, embedDim: 8, depth: 2, numHeads: 2 }), seed);
  perturb(vit, seed + 7, 0.3);
  const teacher = new FrozenEncoder(vit, { normalization: 'identity', grid: 4 });
  const m = new UniFlowModel(config, { vit: vit.config, grid: 4, normalization: 'identity', refPerClass: 1, decoder: { latentChannels: 4, width: 16, heads: 2, gtbDepth: 1, mlpRatio: 2, flowWidth: 8, flowDepth: 1 } }, new Rng(seed));
  m.setTeacher(teacher);
  perturb(m.decoder, seed + 1, 0.2);
  const rng = new Rng(seed + 3), n = 7, per = 256, x = rng.normalArray(n * per, 0, 0.5), y = rng.randintArray(0, 3, n);
  const data = { name: 'stub', count: n, channels: 1, height: 16, width: 16, numClasses: 3, classNames: ['a', 'b', 'c'], label: (i: number) => y[i], get: (i: number, out: Float32Array, off: number) => { for (let k = 0; k < per; k++) out[off + k] = x[i * per + k]; return y[i]; } } as unknown as ImageDataset;
  return { m, teacher, data };
}

describe('UniFlow measurement', () => {
  it('probe features: mean patch token and class token; the teacher\'s equal the stand-in probe\'s; the untrained student\'s equal the teacher\'s', () => {
    const { m, teacher, data } = setup(1);
    const ft = tokenFeatures(teacherTokens(teacher), data, 100, 3); // batches of 3 over 7 images
    const ref = extractFeatures(teacher.vit, data, Int32Array.from({ length: 7 }, (_, i) => i));
    expect(ft.n).toBe(7);
    expect(Array.from(ft.labels)).toEqual(Array.from(ref.labels));
    expectClose('patchMean', ft.patchMean, ref.patchMean, 1e-6, 1e-5);
    expectClose('cls', ft.cls, ref.cls, 1e-6, 1e-5);
    const fs = tokenFeatures(studentTokens(m), data, 5);
    expect(fs.n).toBe(5);
    expect(Array.from(fs.patchMean)).toEqual(Array.from(ft.patchMean.subarray(0, 5 * 8)));
    perturb(m.encoder, 9, 0.1);
    expect(Array.from(tokenFeatures(studentTokens(m), data, 5).cls)).not.toEqual(Array.from(ft.cls.subarray(0, 5 * 8)));
    expect(() => tokenFeatures(studentTokens(m), data, 0)).toThrow(/n must be a positive integer/);
  });

  it('reconstruction error of the one-step decode from seeded noise, recomputed by hand', () => {
    const { m, data } = setup(2);
    const r = reconstructionError(uniflowReconstruct(m, 5, 1), data, 7, 4); // batches of 4 and 3
    let se = 0;
    for (const [k, lo, b] of [[0, 0, 4], [1, 4, 3]]) {
      const x = new Float32Array(b * 256);
      for (let j = 0; j < b; j++) data.get(lo + j, x, j * 256);
      const xt = tensor(x, [b, 1, 16, 16]), eps = new Rng(5).child(k).normal([b, 1, 16, 16]);
      const rec = noGrad(() => { const c = m.decoder.condition(m.decoder.latent(m.encode(xt).tokens)); return m.decoder.decode(c, eps, 1); });
      for (let i = 0; i < x.length; i++) { const d = Math.min(1, Math.max(-1, rec.data[i])) - x[i]; se += d * d; }
    }
    const mse = se / (7 * 256);
    expect(r.images).toBe(7);
    expect(r.mse).toBeCloseTo(mse, 6);
    expect(r.psnr).toBeCloseTo(10 * Math.log10(4 / mse), 4);
  });

  it('a multi-step decode without a tape frees each step (its buffers do not grow with the steps) and equals the decode with a tape', () => {
    const { m, data } = setup(3);
    const x = new Float32Array(4 * 256);
    for (let j = 0; j < 4; j++) data.get(j, x, j * 256);
    const eps = new Rng(6).child('eps').normal([4, 1, 16, 16]);
    const c = noGrad(() => m.decoder.condition(m.decoder.latent(m.encode(tensor(x, [4, 1, 16, 16])).tokens)));
    const taped = enableGrad(() => m.decoder.decode(c, eps, 12));
    // Buffers a decode takes from an empty pool: freed per step, a later step reuses an earlier
    // one's and only its result (the next x, one buffer) stays; kept to the end, 12 steps would take
    // about 4× those of 3.
    const created = (steps: number): number => {
      clearPool();
      const before = poolStats().created;
      noGrad(() => tidy(() => m.decoder.decode(c, eps, steps)));
      return poolStats().created - before;
    };
    const [three, twelve] = [created(3), created(12)];
    expect(three).toBeGreaterThan(0);
    expect(twelve).toBeLessThanOrEqual(three + 9 + 2);
    expect(Array.from(noGrad(() => m.decoder.decode(c, eps, 12)).data)).toEqual(Array.from(taped.data));
  });

  it('scripts/uniflow-eval.ts on tiny runs: probes of student and teacher, reconstruction errors of UniFlow, the VAE and RAE', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'uniflow-eval-'));
    const uf = path.join(dir, 'uf'), rae = path.join(dir, 'rae');
    const spec = tinySpec('uniflow');
    await runActors({ spec: { ...spec, train: { ...spec.train, steps: 2, checkpoint_every: 2 } }, out: uf, quiet: true, samples: false });
    const rs = tinySpec('rae');
    await runActors({ spec: { ...rs, train: { ...rs.train, steps: 1, checkpoint_every: 1 } }, out: rae, quiet: true, samples: false });
    const vae = path.resolve('specs/standins/vae-builtin.safetensors');
    const r = uniflowEval({ checkpoint: path.join(uf, 'checkpoint.safetensors'), vae, rae: path.join(rae, 'checkpoint.safetensors'), trainImages: 40, testImages: 30, reconImages: 20, steps: 1 });
    expect(r.step).toBe(2);
    expect(r.probe).toMatchObject({ trainImages: 40, testImages: 30 });
    // recompute: the teacher's probe from its features; UniFlow's error from the checkpoint's EMA model
    const c = loadCheckpoint(path.join(uf, 'checkpoint.safetensors'));
    const d = c.spec.data, open = (split: 'train' | 'test') => openDataset(d.dataset, { split, size: d.size, count: d.builtin_count });
    const train = open('train'), test = open('test'), enc = buildEncoder(c.spec, test, c.config);
    const a = tokenFeatures(teacherTokens(enc), train, 40), b = tokenFeatures(teacherTokens(enc), test, 30);
    expect(r.probe.teacher.cls).toBe(linearProbe({ trainX: a.cls, trainY: a.labels, testX: b.cls, testY: b.labels, numClasses: train.numClasses, dim: a.dim }).accuracy);
    for (const v of [r.probe.student.patchMean, r.probe.student.cls, r.probe.teacher.patchMean]) expect(v >= 0 && v <= 1).toBe(true);
    const model = samplingModel(c.spec, c.config, c.ema) as UniFlowModel;
    expect(r.recon.uniflow).toEqual({ ...reconstructionError(uniflowReconstruct(model.eval(), c.spec.seed, 1), test, 20), steps: 1 });
    for (const e of [r.recon.uniflow, r.recon.vae!, r.recon.rae!]) {
      expect(e.images).toBe(20);
      expect(e.mse).toBeGreaterThan(0);
      expect(e.psnr).toBeCloseTo(10 * Math.log10(4 / e.mse), 10);
    }
    expect(r.recon.vae!.mse).not.toBe(r.recon.rae!.mse);
    expect(() => uniflowEval({ checkpoint: path.join(rae, 'checkpoint.safetensors'), trainImages: 1, testImages: 1, reconImages: 1, steps: 1 })).toThrow(/is not a UniFlow checkpoint/);
  }, 240_000);
});

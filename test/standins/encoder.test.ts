// The stand-in self-supervised encoder (src/standins/ssl): the shipped files load through
// loadDinov2 and FrozenEncoder (and through a REPA spec's `encoder.checkpoint`) with 8×8 patch
// tokens, deterministically; DINO steps reduce the loss on a fixed crop set; the teacher is the EMA
// of the student; training is a function of the seed; `trainEncoder` writes a loadable file and a
// report. Augmentation and loss maths are in test/standins/ssl/.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDinov2 } from '../../src/models/dinov2.ts';
import { FrozenEncoder } from '../../src/methods/encoder.ts';
import { openDataset, sampleSize, type ImageDataset } from '../../src/data/index.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { buildEncoder } from '../../src/build/parts.ts';
import { modelConfigFor } from '../../src/build/setup.ts';
import { vitPreset } from '../../src/models/vit.ts';
import type { Plane } from '../../src/data/transforms.ts';
import { DinoTrainer, defaultDinoConfig, schedulesAt, sslConfig, type DinoConfig } from '../../src/standins/ssl/dino.ts';
import { trainEncoder } from '../../src/standins/ssl/train.ts';

const SHIPPED = {
  'fashion-mnist': 'specs/standins/encoder-fashion-mnist.safetensors',
  builtin: 'specs/standins/encoder-builtin.safetensors',
} as const;

function images(ds: ImageDataset, n: number): Tensor {
  const sz = sampleSize(ds), x = new Float32Array(n * sz);
  for (let i = 0; i < n; i++) ds.get(i, x, i * sz);
  return tensor(x, [n, ds.channels, ds.height, ds.width]);
}

describe.each(Object.entries(SHIPPED))('shipped encoder (%s)', (data, file) => {
  it('is under 5 MB and loads with loadDinov2 into a FrozenEncoder giving 8x8 patch tokens, deterministically', () => {
    expect(existsSync(file), `${file} missing: run npx diffactor standin encoder --data ${data}`).toBe(true);
    expect(statSync(file).size).toBeLessThan(5 * 1024 * 1024);
    const ds = openDataset(data, { split: 'test' });
    const enc = new FrozenEncoder(loadDinov2(file, { resampleTo: 8 }), { normalization: 'identity', grid: 8 });
    expect(enc.vit.config.inChannels).toBe(ds.channels);
    const x = images(ds, 6);
    const a = enc.features(x), b = enc.features(x);
    expect(a.patch.shape).toEqual([6, 64, enc.dim]);
    expect(a.cls.shape).toEqual([6, enc.dim]);
    expect(Array.from(a.patch.data)).toEqual(Array.from(b.patch.data));
    expect(Array.from(a.cls.data)).toEqual(Array.from(b.cls.data));
    for (const v of a.patch.data) expect(Number.isFinite(v)).toBe(true);
    // A learned map: two different images do not get the same class token.
    let diff = 0;
    for (let k = 0; k < enc.dim; k++) diff += Math.abs(a.cls.data[k] - a.cls.data[enc.dim + k]);
    expect(diff / enc.dim).toBeGreaterThan(1e-3);
    for (const p of enc.vit.parameters()) expect(p.requiresGrad).toBe(false);
  });

  it('is what a REPA spec builds from encoder.checkpoint (8x8 grid of the SiT)', () => {
    const base = loadSpec('specs/repa.yaml');
    const spec = { ...base, data: { ...base.data, dataset: data }, encoder: { ...base.encoder!, checkpoint: file, normalization: 'identity' as const } };
    const ds = openDataset(data, { split: 'test' });
    const enc = buildEncoder(spec, ds, modelConfigFor(spec, ds));
    const ref = new FrozenEncoder(loadDinov2(file), { normalization: 'identity', grid: 8 });
    const x = images(ds, 3);
    expect(enc.grid).toBe(8);
    expect(Array.from(enc.features(x).patch.data)).toEqual(Array.from(ref.features(x).patch.data));
  });
});

/** A tiny DINO setup that runs in milliseconds per step. */
function tinyConfig(over: Partial<DinoConfig> = {}): DinoConfig {
  const vit = vitPreset('ViT-T/4', { inChannels: 3, embedDim: 32, depth: 1, numHeads: 2 });
  const c = defaultDinoConfig(vit);
  return { ...c, head: { hidden: 32, bottleneck: 16, prototypes: 24 }, multiCrop: { ...c.multiCrop, localCrops: 2 }, freezeLastLayer: 0, warmup: 0, ...over };
}

function planes(n: number, offset = 0): Plane[] {
  const ds = openDataset('builtin', { split: 'train', count: 64 });
  return Array.from({ length: n }, (_, i) => {
    const d = new Float32Array(sampleSize(ds));
    ds.get(offset + i, d, 0);
    return { data: d, channels: 3, height: 32, width: 32 };
  });
}

describe('DINO + iBOT trainer', () => {
  it('reduces the loss on a fixed crop set with a frozen teacher', () => {
    // Teacher momentum 1 and center momentum 1 freeze the targets: plain descent on one objective.
    const t = new DinoTrainer(tinyConfig({ teacherMomentum: [1, 1], centerMomentum: 1, lr: 2e-3, minLrFactor: 1 }), 3);
    const imgs = planes(8);
    const losses = Array.from({ length: 8 }, () => t.step(imgs, 0.5, 'fixed').loss);
    expect(losses[7]).toBeLessThan(losses[0] - 0.05);
  });

  it('with Sinkhorn-Knopp centering and KoLeo, also reduces the loss on a fixed crop set', () => {
    const t = new DinoTrainer(tinyConfig({ centering: 'sinkhorn', koleoWeight: 0.1, teacherMomentum: [1, 1], lr: 2e-3, minLrFactor: 1 }), 4);
    const imgs = planes(8);
    const first = t.step(imgs, 0.5, 'fixed');
    let last = first;
    for (let i = 0; i < 7; i++) last = t.step(imgs, 0.5, 'fixed');
    expect(last.loss).toBeLessThan(first.loss - 0.05);
    expect(first.koleo).toBeGreaterThan(0);
  });

  it('with the shipped contrastive objective (InfoNCE on class and masked patch tokens), reduces the loss on a fixed crop set', () => {
    const c = sslConfig(vitPreset('ViT-T/4', { inChannels: 3, embedDim: 32, depth: 1, numHeads: 2 }), 'contrastive');
    const t = new DinoTrainer({ ...c, head: { ...c.head, hidden: 32, bottleneck: 16 }, multiCrop: { ...c.multiCrop, localCrops: 2 }, teacherMomentum: [1, 1], lr: 2e-3, minLrFactor: 1, warmup: 0 }, 6);
    const imgs = planes(8);
    const first = t.step(imgs, 0.5, 'fixed');
    let last = first;
    for (let i = 0; i < 7; i++) last = t.step(imgs, 0.5, 'fixed');
    expect(first.contrast).toBeGreaterThan(0);
    expect(first.patchContrast).toBeGreaterThan(0);
    expect(first.dino).toBe(0);
    expect(last.loss).toBeLessThan(first.loss - 0.05);
  });

  it('keeps the teacher at the EMA of the student: t1 = m·t0 + (1 − m)·s1', () => {
    const cfg = tinyConfig({ teacherMomentum: [0.9, 0.9] });
    const t = new DinoTrainer(cfg, 5);
    const t0 = new Map([...t.teacher.stateDict()].map(([k, v]) => [k, Float64Array.from(v.data)]));
    const m = schedulesAt(cfg, 0.25).momentum;
    expect(m).toBeCloseTo(0.9, 12);
    t.step(planes(4), 0.25);
    const s1 = t.student.stateDict();
    for (const [k, v] of t.teacher.stateDict()) {
      const a = t0.get(k)!, s = s1.get(k)!.data;
      for (let i = 0; i < v.size; i += Math.max(1, Math.floor(v.size / 7))) expect(v.data[i]).toBeCloseTo(m * a[i] + (1 - m) * s[i], 6);
    }
  });

  it('is a function of the seed', () => {
    const run = (seed: number) => {
      const t = new DinoTrainer(tinyConfig(), seed);
      const imgs = planes(4);
      t.step(imgs, 0.1);
      t.step(imgs, 0.2);
      return Array.from(t.teacher.backbone.stateDict().get('blocks.0.attn.qkv.weight')!.data);
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('follows its schedules: warm-up then cosine lr, teacher temperature ramp, momentum to 1', () => {
    const c = defaultDinoConfig(vitPreset('ViT-T/4'));
    expect(schedulesAt(c, c.warmup / 2).lr).toBeCloseTo(0.5, 12);
    expect(schedulesAt(c, c.warmup).lr).toBeCloseTo(1, 12);
    expect(schedulesAt(c, 1).lr).toBeCloseTo(c.minLrFactor, 12);
    expect(schedulesAt(c, 0).teacherTemp).toBe(c.teacherTemp[0]);
    expect(schedulesAt(c, c.teacherTempWarmup).teacherTemp).toBeCloseTo(c.teacherTemp[1], 12);
    expect(schedulesAt(c, 0).momentum).toBeCloseTo(c.teacherMomentum[0], 12);
    expect(schedulesAt(c, 0.5).momentum).toBeCloseTo((c.teacherMomentum[0] + c.teacherMomentum[1]) / 2, 12);
    expect(schedulesAt(c, 1).momentum).toBeCloseTo(c.teacherMomentum[1], 12);
  });
});

describe('trainEncoder (the `standin encoder` command)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'encoder-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a DINOv2-layout file that loadDinov2 reads, and a report with the probe accuracies', () => {
    const out = path.join(dir, 'enc.safetensors');
    const report = trainEncoder({ data: 'builtin', steps: 2, out, batchSize: 8, embedDim: 32, depth: 1, numHeads: 2, probeTrain: 60, probeTest: 30, quiet: true });
    const vit = loadDinov2(out);
    expect(vit.config).toMatchObject({ embedDim: 32, depth: 1, numHeads: 2, patchSize: 4, imgSize: 32, inChannels: 3 });
    const json = JSON.parse(readFileSync(path.join(dir, 'enc.json'), 'utf8')) as Record<string, unknown>;
    expect(json.steps).toBe('2');
    const probe = report.probe as Record<string, { patchMean: { accuracy: number }; cls: { accuracy: number } }>;
    for (const k of ['trained', 'random_init_same_arch', 'placeholder_vit_p4']) {
      expect(probe[k].patchMean.accuracy).toBeGreaterThanOrEqual(0);
      expect(probe[k].cls.accuracy).toBeLessThanOrEqual(1);
    }
  }, 120_000);
});

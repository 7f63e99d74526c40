// The repa, sra and reg protocols on the reference trainer: exact resume for each (metrics with
// their loss terms, weights, EMA, heads), the checkpoint layout (official names unprefixed, heads
// under `proj.`, their AdamW state under `opt.proj.`), the frozen encoder unchanged by training and
// loadable from a DINOv2-layout file, SRA's teacher changing only by EMA and its epoch-based weight,
// REG's sample grid through its SDE sampler and `diffactor sample`, and the spec's method sections.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSpec, parseSpec } from '../../src/spec/load.ts';
import { runTraining } from '../../src/run/run.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { Trainer } from '../../src/run/reference.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { buildEncoder } from '../../src/build/parts.ts';
import { sample } from '../../src/cli/sample.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { makeIdentity, perturb } from '../methods/tiny.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { saveDinov2 } from '../../src/models/dinov2.ts';
import type { SimpleHead } from '../../src/methods/sra/loss.ts';
import { methodsOf } from '../../src/build/parts.ts';

const base = {
  seed: 3,
  data: { dataset: 'builtin', size: 16, builtin_count: 64 },
  model: { preset: 'SiT-S/4', hidden_size: 32, depth: 2, num_heads: 2 },
  train: { steps: 6, batch_size: 8, lr: 1e-3, checkpoint_every: 3, log_every: 1, warmup_steps: 2, schedule: 'cosine', ema_decay: 0.9 },
  sample: { sampler: 'euler', steps: 2, per_class: 1 },
};
const encoder = { preset: 'ViT-T/4', embed_dim: 16, depth: 1, num_heads: 2 };
const specs = {
  repa: (over: Record<string, unknown> = {}) => parseSpec({ ...base, name: 'repa', protocol: 'repa', encoder, repa: { encoder_depth: 1, projector_dim: 24 }, ...over }),
  sra: (over: Record<string, unknown> = {}) => parseSpec({
    ...base, name: 'sra', protocol: 'sra',
    // the spec's EMA as written (train.ema_decay): these tests check the EMA against it
    sra: { student_block: 1, teacher_block: 2, loss: 'sml1', steps_per_epoch: 2, decay_start_epoch: 0, decay_epochs: 1, teacher_ema: 'literal' }, ...over,
  }),
  reg: (over: Record<string, unknown> = {}) => parseSpec({
    ...base, name: 'reg', protocol: 'reg', encoder, reg: { encoder_depth: 1, projector_dim: 24 },
    sample: { sampler: 'sde', steps: 3, per_class: 1, cfg: 1.5, cls_cfg: 1.5 }, ...over,
  }),
};

const dir = () => mkdtempSync(path.join(tmpdir(), 'protocol-'));
const strip = (l: string) => { const o = JSON.parse(l); delete o.wall_s; delete o.it_s; return o; };
const metrics = (d: string) => readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map(strip);
const same = (a: Map<string, { data: ArrayLike<number> }>, b: Map<string, { data: ArrayLike<number> }>, what: string) => {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
};

describe.each(['repa', 'sra', 'reg'] as const)('protocol %s', (name) => {
  it('resume continues to exactly the numbers of an uninterrupted run (terms, weights, EMA, heads)', () => {
    const a = dir(), b = dir();
    const full = runTraining({ spec: specs[name](), out: a, quiet: true, samples: false });
    runTraining({ spec: specs[name](), out: b, steps: 3, quiet: true, samples: false });
    const resumed = runTraining({ out: b, steps: 6, resume: true, quiet: true, samples: false });
    expect(resumed.trainer.step).toBe(6);
    const m = metrics(a);
    expect(metrics(b)).toEqual(m);
    const terms = { repa: ['diff', 'proj'], sra: ['diff', 'align', 'align_weight'], reg: ['diff', 'proj', 'cls'] }[name];
    for (const l of m) for (const k of terms) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
    same(full.trainer.model.stateDict(), resumed.trainer.model.stateDict(), 'model');
    same(full.trainer.emaModel.stateDict(), resumed.trainer.emaModel.stateDict(), 'ema');
    same(full.trainer.heads!.stateDict(), resumed.trainer.heads!.stateDict(), 'heads');
  });

  it('checkpoint: official model names unprefixed, heads under proj., their moments under opt.proj.', () => {
    const d = dir();
    runTraining({ spec: specs[name]({ train: { ...base.train, steps: 1 } }), out: d, quiet: true, samples: false });
    const c = loadCheckpoint(path.join(d, 'checkpoint.safetensors'));
    const heads = name === 'sra' ? ['ap_head.linear1.weight', 'ap_head.linear1.bias', 'ap_head.linear2.weight', 'ap_head.linear2.bias']
      : ['projectors.0.0.weight', 'projectors.0.0.bias', 'projectors.0.2.weight', 'projectors.0.2.bias', 'projectors.0.4.weight', 'projectors.0.4.bias'];
    expect([...c.proj.keys()].sort()).toEqual(heads.sort());
    for (const k of heads) expect([...c.opt.keys()]).toContain(`proj.${k}.exp_avg`);
    expect([...c.model.keys()].every((k) => !/^(ema|opt|proj)\./.test(k) && !k.startsWith('projectors') && !k.startsWith('ap_head'))).toBe(true);
    expect([...c.ema.keys()].sort()).toEqual([...c.model.keys()].sort());
    if (name === 'reg') {
      for (const k of ['cls_projectors2.weight', 'wg_norm.weight', 'wg_norm.bias', 'final_layer.linear_cls.weight']) expect(c.model.has(k), k).toBe(true);
      expect(c.model.get('pos_embed')!.shape).toEqual([1, 1 + 16, 32]);
      expect(c.model.get('cls_projectors2.weight')!.shape).toEqual([32, 16]);
    }
    if (name === 'repa') expect(c.proj.get('projectors.0.4.weight')!.shape).toEqual([16, 24]);
  });
});

describe('frozen encoder in training', () => {
  it('REPA: the encoder weights never change; L = L_diff + λ·L_proj as logged', () => {
    const spec = specs.repa();
    const data = openTrainData(spec);
    const t = new Trainer(spec, data);
    const before = new Map([...t.encoder!.vit.stateDict()].map(([k, v]) => [k, Float32Array.from(v.data)]));
    const fresh = buildEncoder(spec, data, t.config).vit.stateDict();
    const logs = [t.trainStep(), t.trainStep(), t.trainStep()];
    for (const [k, v] of t.encoder!.vit.stateDict()) {
      expect(Array.from(v.data), k).toEqual(Array.from(before.get(k)!));
      expect(Array.from(v.data), `${k} = the seed's encoder`).toEqual(Array.from(fresh.get(k)!.data));
      expect(v.grad ?? null).toBeNull();
    }
    for (const l of logs) expect(l.loss).toBeCloseTo(l.terms.diff + 0.5 * l.terms.proj, 5);
    expect(t.opt.params.some(([n]) => n.startsWith('proj.projectors.0.'))).toBe(true);
    expect(t.opt.params.length).toBe(t.model.parameters().length + 6); // the encoder is not optimised
  });

  it('loads a DINOv2-layout safetensors file named by encoder.checkpoint (imagenet normalisation)', () => {
    const d = dir(), file = path.join(d, 'enc.safetensors');
    const vit = createViT(vitPreset('ViT-T/4', { imgSize: 16, patchSize: 4, embedDim: 16, depth: 1, numHeads: 2 }), 11);
    saveDinov2(vit, file);
    const spec = specs.repa({ encoder: { checkpoint: file, normalization: 'imagenet' } });
    const t = new Trainer(spec, openTrainData(spec));
    for (const [k, v] of vit.stateDict()) expect(Array.from(t.encoder!.vit.stateDict().get(k)!.data), k).toEqual(Array.from(v.data));
    expect(t.encoder!.normalization).toBe('imagenet');
    expect(Number.isFinite(t.trainStep().terms.proj)).toBe(true);
    expect(() => specs.repa({ encoder: { checkpoint: file, depth: 3 } })).not.toThrow();
    expect(() => new Trainer(specs.repa({ encoder: { checkpoint: file, depth: 3 } }), openTrainData(spec))).toThrow(/encoder.depth only apply to the seed-initialised encoder/);
  });
});

describe('SRA in training', () => {
  it('the teacher starts as the student and then changes only by EMA; it never holds a gradient', () => {
    const spec = specs.sra();
    const t = new Trainer(spec, openTrainData(spec));
    const decay = spec.train.ema_decay;
    const ref = new Map(t.model.namedParameters().map(([k, p]) => [k, Float64Array.from(p.data)]));
    for (const [k, p] of t.emaModel.namedParameters()) expect(Array.from(p.data), k).toEqual(Array.from(ref.get(k)!));
    for (let s = 0; s < 4; s++) {
      t.trainStep();
      let worst = 0;
      for (const [k, p] of t.model.namedParameters()) {
        const e = ref.get(k)!;
        for (let i = 0; i < e.length; i++) e[i] = decay * e[i] + (1 - decay) * p.data[i];
      }
      for (const [k, p] of t.emaModel.namedParameters()) {
        const e = ref.get(k)!;
        for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(p.data[i] - e[i]));
        expect(p.grad ?? null, k).toBeNull();
      }
      expect(worst, `step ${s + 1}: max |EMA − reference EMA|`).toBeLessThan(1e-6);
    }
    expect(t.emaModel.training).toBe(false);
  });

  it('identity case through the trainer: L_s = L_T, t_max = 0, identity head, teacher = student give L_align = 0', () => {
    // perturbed weights so that blocks depend on t and labels; dropout 0.5 so that the teacher must
    // get the student's post-dropout labels (and the same x, ε) for the loss to vanish
    const run = (sra: Record<string, unknown>) => {
      const spec = specs.sra({ model: { ...base.model, class_dropout_prob: 0.5 }, sra: { student_block: 2, teacher_block: 2, t_max: 0, loss: 'l2', ...sra } });
      const t = new Trainer(spec, openTrainData(spec));
      perturb(t.model, 1);
      t.ema.copyFrom();
      makeIdentity((t.heads!.of('sra') as unknown as { ap_head: SimpleHead }).ap_head);
      return t.trainStep().terms.align;
    };
    expect(run({})).toBeLessThan(1e-10);
    expect(run({ t_max: 0.5 })).toBeGreaterThan(1e-6);
    expect(run({ student_block: 1 })).toBeGreaterThan(1e-6);
  });

  it('the sml1 weight follows epochs of steps_per_epoch steps (w·0.1^((epoch − start)/span) after start)', () => {
    const r = runTraining({ spec: specs.sra(), out: dir(), quiet: true, samples: false });
    // steps_per_epoch 2, start 0, span 1: epochs 0, 0, 1, 1, 2, 2
    expect(r.logs.map((l) => l.terms.align_weight)).toEqual([0, 0, 1, 1, 2, 2].map((e) => (e > 0 ? 0.2 * 0.1 ** e : 0.2)));
    expect(r.logs[3].terms.align_weight).toBeCloseTo(0.02, 12);
    const d = specs.sra({ sra: { student_block: 1, teacher_block: 2 } });
    expect(d.sra).toMatchObject({ loss: 'cos', cos_axis: 'tokens', weight: 0.5, weight_schedule: 'constant', t_max: 0.2 });
  });
});

describe('REG in training and sampling', () => {
  it('draws the end-of-run grid with the REG SDE sampler; `diffactor sample` reads the checkpoint', () => {
    const d = dir();
    runTraining({ spec: specs.reg({ train: { ...base.train, steps: 2 } }), out: d, quiet: true });
    expect(existsSync(path.join(d, 'samples.png'))).toBe(true);
    const out = path.join(d, 'again.png');
    sample({ checkpoint: path.join(d, 'checkpoint.safetensors'), out, perClass: 1, steps: 2, classes: '0,1' });
    expect(existsSync(out)).toBe(true);
  });
});

describe('method sections in the spec', () => {
  it('fills the sections a protocol reads, rejects the others, checks block indices and REG sampling', () => {
    const r = parseSpec({ name: 'r', protocol: 'repa' });
    expect(r.repa).toEqual({ encoder_depth: 4, proj_coeff: 0.5, projector_dim: 2048 });
    expect(r.encoder).toMatchObject({ checkpoint: null, preset: 'ViT-P/4', normalization: 'identity' });
    expect(parseSpec({ name: 'b' }).repa).toBeUndefined();
    expect(() => parseSpec({ name: 'x', protocol: 'sra', repa: {} })).toThrow(/repa: section 'repa' is not read by sra \(it reads: sra\)/);
    expect(() => parseSpec({ name: 'x', encoder: {} })).toThrow(/section 'encoder' is not read by sit-baseline/);
    expect(() => parseSpec({ name: 'x', protocol: 'sra', sra: { loss: 'huber' } })).toThrow(/sra.loss/);
    const deep = specs.repa({ repa: { encoder_depth: 5 } });
    expect(() => new Trainer(deep, openTrainData(deep))).toThrow(/repa.encoder_depth = 5 but the model has 2 blocks/);
    const ode = specs.reg({ sample: { sampler: 'heun' } });
    expect(() => new Trainer(ode, openTrainData(ode))).toThrow(/REG samples with sde only \(sample\.sampler: sde, got heun\)/);
    expect(parseSpec(JSON.parse(JSON.stringify(specs.sra())))).toEqual(specs.sra()); // resolved specs re-parse to themselves
  });
});

describe('shipped specs', () => {
  const root = path.resolve(import.meta.dirname, '../../specs');
  it.each(readdirSync(root).filter((f) => f.endsWith('.yaml')))('%s loads and builds its trainer', (file) => {
    const spec = loadSpec(path.join(root, file));
    expect(spec.name).toBe(file.replace(/\.yaml$/, ''));
    // A second stage reads the first stage's checkpoint, which a fresh clone has not trained yet:
    // building it must then say which file is missing and how to make it.
    // (Any method's file field, MethodDefinition.files: softrepa.init, epg.init.)
    const missing = methodsOf(spec).flatMap((m) => Object.entries(m.def.files?.(m.s) ?? {})).find(([, f]) => f && !existsSync(f));
    if (missing) {
      expect(() => new Trainer(spec, openTrainData(spec, 'builtin'))).toThrow(new RegExp(`${missing[0].replace('.', '\\.')}: .* does not exist: train stage 1 first`));
      return;
    }
    // A frozen latent space that is a first stage's run checkpoint (RAE stage 2) is not there either.
    const latent = (spec as { latent?: { autoencoder: string } }).latent?.autoencoder;
    if (latent && !existsSync(latent)) {
      expect(() => new Trainer(spec, openTrainData(spec, 'builtin'))).toThrow(/latent\.autoencoder: .* not found .*train that run first/);
      return;
    }
    // A spec whose encoder or VAE stand-in (or frozen latent space) was trained on its own dataset (1-channel Fashion-MNIST)
    // needs that data (installed by .ci/run); the others build on the always-available built-in set.
    // So does a second stage whose first stage was trained here (its checkpoint fits the spec's data, not the built-in set).
    const stageFile = methodsOf(spec).some((m) => Object.values(m.def.files?.(m.s) ?? {}).some((f) => f && existsSync(f)));
    const ownData = !!(spec.encoder?.checkpoint || (spec.repa_e as { vae_checkpoint?: string | null } | undefined)?.vae_checkpoint || latent || stageFile);
    const t = new Trainer(spec, ownData ? openTrainData(spec) : openTrainData(spec, 'builtin'));
    const T = (t.config.inputSize / t.config.patchSize) ** 2;
    // The encoder reads images: REPA-E's SiT reads latents, its VAE (and encoder) the image channels.
    const imageChannels = t.vae ? t.vae.config.inChannels : t.config.inChannels;
    if (t.encoder) expect(t.encoder.features(new Rng(0).normal([2, imageChannels, 32, 32])).patch.shape).toEqual([2, T, t.encoder.dim]);
    // Heads exactly when a listed method declares some (the baselines and LayerSync add none).
    expect(t.heads === null).toBe(!methodsOf(spec).some((m) => m.def.heads));
  });
});

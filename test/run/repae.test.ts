// The repa-e protocol on the reference trainer: exact resume (6 steps = 3 + resume + 3, bit for bit:
// metrics with every term, SiT with BN buffers, EMA with BN buffers, projector, VAE, the
// discriminator of its loss, all three AdamWs, RNG streams), the checkpoint layout (`vae.`,
// `vae_opt.`, `vae_disc.`, `vae_disc_opt.`, `bn.*` as model entries), invariant (f)
// (one (t, ε) per step for both passes: each stream advances by one draw, and a step recomputed by
// hand from the pieces with that pair gives the logged terms exactly), (i) (the EMA averages the
// BN buffers, closed form), the VAE step leaving BN alone (the counter counts SiT steps only), a
// VAE checkpoint's weights and latent stats (scaling/shift → BN init), the decoded sample grid,
// and spec errors that name the field.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { parseSpec } from '../../src/spec/load.ts';
import { runTraining } from '../../src/run/run.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { Trainer } from '../../src/run/reference.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { detach } from '../../src/autograd/index.ts';
import { linear, sampleTimes } from '../../src/diffusion/index.ts';
import { RepaESiT, repaeSitLoss, vaeAlignGrad } from '../../src/methods/index.ts';
import { createVAE, vaePreset } from '../../src/models/vae.ts';
import { saveSdVae } from '../../src/models/sdVae.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { sectionOf } from '../../src/methods/registry.ts';
import { repaE } from '../../src/methods/repa-e/index.ts';
import type { ProjectorHeads } from '../../src/methods/projectorHeads.ts';

const base = {
  name: 'repa-e', seed: 3, protocol: 'repa-e',
  data: { dataset: 'builtin', size: 16, builtin_count: 64 },
  model: { preset: 'SiT-S/1', hidden_size: 32, depth: 2, num_heads: 2 },
  encoder: { preset: 'ViT-T/4', embed_dim: 16, depth: 1, num_heads: 2 },
  repa_e: { encoder_depth: 1, projector_dim: 24, vae: 'VAE-T', vae_lr: 1e-3, disc: 'PatchGAN-T', disc_lr: 1e-3 },
  train: { steps: 6, batch_size: 8, lr: 1e-3, checkpoint_every: 3, log_every: 1, warmup_steps: 2, schedule: 'cosine', ema_decay: 0.9 },
  sample: { sampler: 'euler', steps: 2, per_class: 1 },
};
const spec = (over: Record<string, unknown> = {}) => parseSpec({ ...base, ...over });
const trainer = (over: Record<string, unknown> = {}) => { const s = spec(over); return new Trainer(s, openTrainData(s)); };

const dir = () => mkdtempSync(path.join(tmpdir(), 'repae-'));
const strip = (l: string) => { const o = JSON.parse(l); delete o.wall_s; delete o.it_s; return o; };
const metrics = (d: string) => readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map(strip);
const same = (a: Map<string, { data: ArrayLike<number> }>, b: Map<string, { data: ArrayLike<number> }>, what: string) => {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
};

describe('protocol repa-e', () => {
  it('resume continues to exactly the numbers of an uninterrupted run (terms, SiT + BN, EMA + BN, projector, VAE, discriminator, all AdamWs, RNG)', () => {
    const a = dir(), b = dir();
    const full = runTraining({ spec: spec(), out: a, quiet: true, samples: false });
    runTraining({ spec: spec(), out: b, steps: 3, quiet: true, samples: false });
    const resumed = runTraining({ out: b, steps: 6, resume: true, quiet: true, samples: false });
    expect(resumed.trainer.step).toBe(6);
    const m = metrics(a);
    expect(metrics(b)).toEqual(m);
    for (const l of m) {
      for (const k of ['diff', 'proj', 'vae_l1', 'vae_kl', 'vae_lpips', 'vae_gan', 'vae_align', 'vae_grad_norm', 'disc_loss']) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
    }
    const [fa, fb] = [full.trainer, resumed.trainer];
    same(fa.model.stateDict(), fb.model.stateDict(), 'model');
    same(fa.emaModel.stateDict(), fb.emaModel.stateDict(), 'ema');
    same(fa.heads!.stateDict(), fb.heads!.stateDict(), 'heads');
    same(fa.vae!.stateDict(), fb.vae!.stateDict(), 'vae');
    same(fa.vaeOpt!.state().tensors, fb.vaeOpt!.state().tensors, 'vae AdamW');
    const [da, db] = [fa.vaeParts!.disc!, fb.vaeParts!.disc!];
    same(da.module.stateDict(), db.module.stateDict(), 'discriminator (weights, BN buffers)');
    same(da.opt.state().tensors, db.opt.state().tensors, 'discriminator AdamW');
    expect(db.opt.state().step).toBe(6);
    same(fa.opt.state().tensors, fb.opt.state().tensors, 'SiT AdamW');
    expect(fb.trainState().rng).toEqual(fa.trainState().rng);
    expect(Object.keys(fa.rngs).sort()).toEqual(['dropout', 'noise', 'posterior', 'time']);
  });

  it('checkpoint: SiT and BN buffers unprefixed, ema.bn.*, the VAE under vae. (diffusers names), its AdamW under vae_opt., the discriminator under vae_disc. (taming names) and vae_disc_opt.', () => {
    const d = dir();
    runTraining({ spec: spec({ train: { ...base.train, steps: 2 } }), out: d, quiet: true, samples: false });
    const c = loadCheckpoint(path.join(d, 'checkpoint.safetensors'));
    for (const k of ['bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'blocks.1.attn.qkv.weight', 'pos_embed']) expect(c.model.has(k), k).toBe(true);
    expect([...c.ema.keys()].sort()).toEqual([...c.model.keys()].sort());
    expect(c.model.get('bn.num_batches_tracked')!.data[0]).toBe(2);
    expect(c.config).toMatchObject({ inChannels: 4, inputSize: 4, patchSize: 1 });
    const vaeKeys = [...createVAE(vaePreset('VAE-T', { inChannels: 3, outChannels: 3 }), 0).stateDict().keys()];
    expect([...c.vae!.keys()].sort()).toEqual([...vaeKeys].sort());
    expect(vaeKeys).toContain('encoder.conv_in.weight');
    for (const k of vaeKeys) expect(c.vaeOpt!.has(`${k}.exp_avg`), `vae_opt.${k}.exp_avg`).toBe(true);
    expect(c.state.vaeOptStep).toBe(2);
    expect(c.disc!.has('main.0.weight') && c.disc!.has('main.3.running_var') && c.disc!.has('main.3.num_batches_tracked')).toBe(true);
    for (const k of c.disc!.keys()) if (!/running_|num_batches/.test(k)) expect(c.discOpt!.has(`${k}.exp_avg`), `vae_disc_opt.${k}.exp_avg`).toBe(true);
    expect(c.state.discOptStep).toBe(2);
    expect([...c.proj.keys()]).toContain('projectors.0.0.weight');
    expect([...c.model.keys()].some((k) => k.startsWith('vae') || k.startsWith('encoder.') || k.startsWith('main.'))).toBe(false);
  });

  it('(f) one (t, ε) per step serves both passes: each stream moves by one draw, and the pieces with that pair give the logged terms exactly', () => {
    const A = trainer(), Bt = trainer();
    const before = A.trainState().rng;
    const log = A.trainStep();
    const after = A.trainState().rng;
    const batch = base.train.batch_size, latent = batch * 4 * 4 * 4;
    const oneDraw = (k: string, draw: (r: Rng) => void) => { const r = Rng.fromState(before[k]); draw(r); expect(after[k], k).toEqual(r.state()); };
    oneDraw('time', (r) => r.uniformArray(batch));
    oneDraw('noise', (r) => r.normalArray(latent));
    oneDraw('posterior', (r) => r.normalArray(latent));
    oneDraw('dropout', (r) => r.uniformArray(batch));
    tidy(() => {
      const s = sectionOf(Bt.spec, repaE), model = Bt.model as RepaESiT, projector = (Bt.heads!.of('repa-e') as ProjectorHeads).projector();
      const { x, y } = Bt.loader.next();
      const feats = Bt.encoder!.features(x);
      const post = Bt.vae!.forward(x, Bt.rngs.posterior);
      const t = sampleTimes(Bt.rngs.time, batch, { kind: 'uniform' }, linear);
      const eps = Bt.rngs.noise.normal(post.z.shape);
      const align = vaeAlignGrad(model, projector, post.z, t, eps, y, feats.patch, { depth: s.encoder_depth, coeff: s.vae_align_coeff, path: linear });
      expect(log.terms.vae_align).toBe(align.loss);
      model.train();
      const sit = repaeSitLoss(model, projector, detach(post.z), t, eps, y, Bt.rngs.dropout, feats.patch, { depth: s.encoder_depth, coeff: s.proj_coeff, path: linear });
      expect(log.terms.diff).toBe(sit.diff);
      expect(log.terms.proj).toBe(sit.proj);
      expect(log.loss).toBe(sit.loss.item());
    });
  });

  it('(i) the EMA averages the BN buffers (closed form) and copies the counter; BN moves once per step (never in the VAE step)', () => {
    const T = trainer({ train: { ...base.train, ema_decay: 0.7 } });
    const m = T.model as RepaESiT, e = T.emaModel as RepaESiT;
    let ema = { rm: Array.from(e.bn.running_mean!.data), rv: Array.from(e.bn.running_var!.data) };
    expect(ema.rm).toEqual([0, 0, 0, 0]);
    expect(ema.rv).toEqual([1, 1, 1, 1]);
    for (let k = 1; k <= 3; k++) {
      T.trainStep();
      const rm = Array.from(m.bn.running_mean!.data), rv = Array.from(m.bn.running_var!.data);
      ema = { rm: ema.rm.map((v, i) => 0.7 * v + 0.3 * rm[i]), rv: ema.rv.map((v, i) => 0.7 * v + 0.3 * rv[i]) };
      expectClose(`ema running_mean after ${k}`, e.bn.running_mean!.data, ema.rm, 1e-6, 1e-5);
      expectClose(`ema running_var after ${k}`, e.bn.running_var!.data, ema.rv, 1e-6, 1e-5);
      expect(rm.some((v) => v !== 0)).toBe(true);
      expect(m.bn.num_batches_tracked!.data[0]).toBe(k);
      expect(e.bn.num_batches_tracked!.data[0]).toBe(k);
    }
  });

  it('trains the VAE and the SiT, never the frozen encoder', () => {
    const T = trainer();
    const snap = (m: { stateDict(): Map<string, { data: ArrayLike<number> }> }) => new Map([...m.stateDict()].map(([k, t]) => [k, Array.from(t.data)]));
    const vae0 = snap(T.vae!), enc0 = snap(T.encoder!.vit), sit0 = snap(T.model);
    T.trainStep();
    T.trainStep();
    const changed = (m: { stateDict(): Map<string, { data: ArrayLike<number> }> }, s0: Map<string, number[]>) =>
      [...m.stateDict()].filter(([k, t]) => Array.from(t.data).some((v, i) => v !== s0.get(k)![i])).length;
    expect(changed(T.vae!, vae0)).toBe(T.vae!.stateDict().size);
    expect(changed(T.encoder!.vit, enc0)).toBe(0);
    expect(changed(T.model, sit0)).toBeGreaterThan(10);
    // vae_lr 0 (specs/repa-latent.yaml, REPA-E's control): the VAE stays bit for bit, the SiT trains.
    const F = trainer({ repa_e: { ...base.repa_e, vae_lr: 0, vae_align_coeff: 0 } });
    const fvae0 = snap(F.vae!), fsit0 = snap(F.model);
    F.trainStep();
    F.trainStep();
    expect(changed(F.vae!, fvae0)).toBe(0);
    expect(changed(F.model, fsit0)).toBeGreaterThan(10);
  });

  it('a frozen VAE (vae_lr 0) only encodes: skipping its loss, alignment pass and step changes nothing the SiT sees', () => {
    const frozen = { repa_e: { ...base.repa_e, vae_lr: 0, vae_align_coeff: 0.7 } };
    const skip = trainer(frozen), full = trainer(frozen);
    expect(skip.plan.vaeFrozen).toBe(true);
    // The computation before the skip: the VAE's loss and alignment pass on the tape, its zero-lr step.
    (full as unknown as { plan: object }).plan = { ...full.plan, vaeFrozen: false };
    for (let i = 0; i < 3; i++) {
      const a = skip.trainStep(), b = full.trainStep();
      expect(a.loss).toBe(b.loss);
      expect(a.grad_norm).toBe(b.grad_norm);
      expect(Object.keys(b.terms)).toEqual(expect.arrayContaining(['vae_l1', 'vae_align', 'vae_grad_norm']));
      expect(Object.keys(a.terms).filter((k) => k.startsWith('vae_') || k === 'disc_loss')).toEqual([]);
      expect(b.terms.vae_grad_norm).toBeGreaterThan(0); // not vacuous: the skipped step had a gradient
    }
    const ca = skip.checkpoint(), cb = full.checkpoint();
    same(cb.model, ca.model, 'SiT + BN');
    same(cb.ema, ca.ema, 'EMA');
    same(cb.opt, ca.opt, 'SiT AdamW');
    same(cb.vae!, ca.vae!, 'VAE');
    expect(ca.state.rng).toEqual(cb.state.rng);
    expect(skip.plan.vaeFrozen && trainer().plan.vaeFrozen).toBe(false); // a trained VAE is not skipped
  });

  it('a VAE checkpoint: its weights are the starting VAE, its scaling/shift factors initialise the BN', () => {
    const d = dir(), file = path.join(d, 'vae.safetensors');
    const v = createVAE(vaePreset('VAE-T', { inChannels: 3, outChannels: 3, scalingFactor: 0.5, shiftFactor: 0.25 }), 11);
    saveSdVae(v, file);
    const T = trainer({ repa_e: { encoder_depth: 1, projector_dim: 24, vae_checkpoint: file } });
    same(v.stateDict(), T.vae!.stateDict(), 'vae');
    for (const m of [T.model, T.emaModel] as RepaESiT[]) {
      expect(Array.from(m.bn.running_mean!.data)).toEqual([0.25, 0.25, 0.25, 0.25]);
      expect(Array.from(m.bn.running_var!.data)).toEqual([4, 4, 4, 4]);
    }
    expect(trainer({ repa_e: { vae_checkpoint: file, vae: 'VAE-T', latent_channels: 4 } }).vae!.config.latentChannels).toBe(4);
    expect(() => trainer({ repa_e: { vae_checkpoint: file, latent_channels: 8 } })).toThrow(/repa_e\.latent_channels is 8 but repa_e\.vae_checkpoint .* has 4/);
    expect(() => trainer({ repa_e: { vae_checkpoint: file, vae: 'VAE-P' } })).toThrow(/repa_e\.vae VAE-P has blocks \[32, 64, 64\] × 1 but repa_e\.vae_checkpoint .* holds blocks \[8, 16, 16\] × 1/);
    expect(() => trainer({ repa_e: { vae_checkpoint: path.join(d, 'missing.safetensors') } })).toThrow(/repa_e\.vae_checkpoint .*missing\.safetensors/);
    saveSdVae(createVAE(vaePreset('VAE-T', { inChannels: 1, outChannels: 1 }), 0), file);
    expect(() => trainer({ repa_e: { vae_checkpoint: file } })).toThrow(/repa_e\.vae_checkpoint .* maps 1 -> 1 channels but the data has 3/);
  });

  it('the sample grid is decoded to images by the tuned VAE', () => {
    const d = dir();
    runTraining({ spec: spec({ train: { ...base.train, steps: 1 } }), out: d, quiet: true });
    const png = PNG.sync.read(readFileSync(path.join(d, 'samples.png')));
    // 10 classes × 1 per class, 16×16 images (not the 4×4 latents), 1 px padding, zoom 2.
    expect([png.width, png.height]).toEqual([(1 * 17 + 1) * 2, (10 * 17 + 1) * 2]);
  });

  it('spec errors name the field', () => {
    expect(() => trainer({ repa_e: { encoder_depth: 5 } })).toThrow(/repa_e\.encoder_depth = 5 but the model has 2 blocks/);
    expect(() => spec({ repa_e: { encoder_depth: 1, extra: 1 } })).toThrow(/repa_e: unknown field\(s\) extra/);
    expect(() => spec({ repa_e: { bn_momentum: 0 } })).toThrow(/repa_e\.bn_momentum/);
    expect(() => spec({ repa_e: { kl_weight: -1 } })).toThrow(/repa_e\.kl_weight/);
    expect(() => spec({ repa_e: { vae_lr: -1e-4 } })).toThrow(/repa_e\.vae_lr/);
    expect(() => spec({ protocol: 'repa' })).toThrow(/section 'repa_e' is not read by repa /);
    expect(() => trainer({ repa_e: { vae: 'VAE-X' } })).toThrow(/repa_e\.vae .*unknown VAE preset 'VAE-X'/);
    expect(() => trainer({ data: { ...base.data, size: 18 } })).toThrow(/repa_e\.vae downsamples by 4 but data\.size is 18/);
    const filled = spec({ repa_e: undefined });
    expect(filled.repa_e).toMatchObject({ encoder_depth: 2, projector_dim: 512, proj_coeff: 0.5, vae_align_coeff: 1.5, vae_lr: 1e-4, l1_weight: 1, kl_weight: 1e-6, bn_momentum: 0.1, bn_eps: 1e-4, vae_checkpoint: null });
  });
});

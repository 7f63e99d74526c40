// REPA-E's full VAE loss (loss/losses.py with configs/l1_lpips_kl_gan.yaml): L1 + KL + the
// perceptual term on the LPIPS stand-in + the PatchGAN generator term, and the discriminator's own
// step right after the VAE's. On the reference trainer and, where it matters, on actors:
//   - the perceptual and GAN terms reach the VAE's encoder and decoder, never the SiT or its heads;
//   - (h) the discriminator's loss never reaches the VAE, and the generator's never reaches D;
//   - with perceptual_weight 0 and disc_weight 0 nothing is built and the loss is L1 + KL, bit for bit;
//   - one step's logged terms against an independent computation from the pieces;
//   - exact resume across a checkpoint holding the discriminator, on actors (the reference's is in repae.test.ts);
//   - the dataset (--data) picks the perceptual stand-in in both engines; spec errors name the field.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSpec } from '../../src/spec/load.ts';
import { Trainer } from '../../src/run/reference.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { jointVae } from '../../src/build/parts.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/index.ts';
import { vaeRegLoss, type RepaELossParts } from '../../src/methods/index.ts';
import { loadPerceptualNet } from '../../src/models/perceptualFile.ts';
import { perceptualLoss } from '../../src/models/perceptualLoss.ts';
import { createPatchGan, patchGanPreset } from '../../src/models/patchGan.ts';
import { generatorLoss } from '../../src/models/ganLoss.ts';
import { tinySpec } from '../actors/specs.ts';

const R = { encoder_depth: 1, projector_dim: 24, vae: 'VAE-T', vae_lr: 1e-3, disc: 'PatchGAN-T', disc_lr: 1e-3 };
const base = {
  name: 'repa-e-loss', seed: 3, protocol: 'repa-e',
  data: { dataset: 'builtin', size: 16, builtin_count: 64 },
  model: { preset: 'SiT-S/1', hidden_size: 32, depth: 2, num_heads: 2 },
  encoder: { preset: 'ViT-T/4', embed_dim: 16, depth: 1, num_heads: 2 },
  repa_e: R,
  train: { steps: 6, batch_size: 8, lr: 1e-3, checkpoint_every: 3, log_every: 1, warmup_steps: 2, schedule: 'cosine', ema_decay: 0.9 },
  sample: { sampler: 'euler', steps: 2, per_class: 1 },
};
const spec = (over: Record<string, unknown> = {}) => parseSpec({ ...base, ...over });
const trainer = (repa: Record<string, unknown> = {}, o: { dataset?: string } = {}) => {
  const s = spec({ repa_e: { ...R, ...repa } });
  return new Trainer(s, openTrainData(s), o);
};
/** The official l1 and kl weights, R's too. */
const R_DEFAULTS = { l1: 1, kl: 1e-6 };
const dir = (what: string) => mkdtempSync(path.join(tmpdir(), `repae-loss-${what}-`));

const copy = (t: Tensor) => Float64Array.from(t.data);
const snapshot = (entries: Iterable<readonly [string, Tensor]>) => new Map([...entries].map(([k, t]) => [k, copy(t)]));
const firstMoments = (opt: { state(): { tensors: Map<string, Tensor> } }) =>
  new Map([...opt.state().tensors].filter(([k]) => k.endsWith('.exp_avg')).map(([k, t]) => [k.slice(0, -'.exp_avg'.length), copy(t)]));
const nonzero = (a: Float64Array | undefined) => !!a && a.some((v) => v !== 0);
const sameMaps = (a: Map<string, { data: ArrayLike<number> }>, b: Map<string, { data: ArrayLike<number> }>, what: string) => {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
};

describe('REPA-E VAE loss: where each term goes', () => {
  // Only one term of the VAE's loss on at a time (L1, KL and the alignment at weight 0).
  const only = (o: Record<string, unknown>) => trainer({ l1_weight: 0, kl_weight: 0, vae_align_coeff: 0, perceptual_weight: 0, disc_weight: 0, ...o });

  it('the perceptual and the GAN term each reach the VAE\'s decoder and encoder, and never the SiT or its projector', () => {
    const none = only({});
    const l0 = none.trainStep();
    const sit0 = firstMoments(none.opt);
    // Control: with every VAE term at 0 the VAE's gradient is 0.
    expect([...firstMoments(none.vaeOpt!).values()].some(nonzero)).toBe(false);
    for (const [what, o, term] of [['perceptual', { perceptual_weight: 1 }, 'vae_lpips'], ['GAN', { disc_weight: 0.1 }, 'vae_gan']] as const) {
      const T = only(o);
      const l = T.trainStep();
      expect(Number.isFinite(l.terms[term]) && l.terms[term] !== 0, `${what}: ${term} logged`).toBe(true);
      const g = firstMoments(T.vaeOpt!);
      for (const k of ['decoder.conv_out.weight', 'decoder.conv_in.weight', 'encoder.conv_out.weight', 'encoder.conv_in.weight']) {
        expect(nonzero(g.get(k)), `${what} term reaches ${k}`).toBe(true);
      }
      const enc = [...g].filter(([k]) => k.startsWith('encoder.')), dec = [...g].filter(([k]) => k.startsWith('decoder.'));
      expect(enc.filter(([, v]) => nonzero(v)).length / enc.length, `${what}: share of encoder tensors reached`).toBeGreaterThan(0.5);
      expect(dec.filter(([, v]) => nonzero(v)).length / dec.length, `${what}: share of decoder tensors reached`).toBeGreaterThan(0.5);
      // The SiT and its projector get exactly the gradient they get without the term.
      const sit = firstMoments(T.opt);
      expect([...sit.keys()]).toEqual([...sit0.keys()]);
      for (const [k, v] of sit0) expect(Array.from(sit.get(k)!), `${what}: SiT/projector ${k}`).toEqual(Array.from(v));
      expect([l.loss, l.grad_norm, l.terms.diff, l.terms.proj]).toEqual([l0.loss, l0.grad_norm, l0.terms.diff, l0.terms.proj]);
    }
  });

  it('(h) the discriminator\'s loss never reaches the VAE, and the generator\'s term never reaches D', () => {
    const T = trainer();
    const j = jointVae(T.spec)!, parts = T.vaeParts as RepaELossParts, D = parts.disc!.module;
    tidy(() => {
      const { x } = T.loader.next();
      const post = T.vae!.forward(x, T.rngs.posterior);
      const reg = j.vae.regularizer(j.m.s, x, post.recon, post, parts, 1);
      backward(reg.loss);
      for (const [k, p] of D.namedParameters()) {
        expect(p.requiresGrad, `D '${k}' frozen in the generator's pass`).toBe(false);
        expect(!p.grad || p.grad.data.every((v) => v === 0), `no generator gradient on D '${k}'`).toBe(true);
      }
      const vaeGrads = new Map(T.vae!.namedParameters().map(([k, p]) => [k, copy(p.grad!)]));
      const vaeWeights = snapshot(T.vae!.namedParameters()), d0 = snapshot(D.namedParameters());
      expect([...vaeGrads.values()].some(nonzero)).toBe(true);
      const logged = j.vae.afterUpdate!(j.m.s, parts, x, post.recon, 1, 1);
      expect(Object.keys(logged)).toEqual(['disc_loss']);
      expect(logged.disc_loss).toBeGreaterThan(0);
      for (const [k, p] of T.vae!.namedParameters()) {
        expect(Array.from(p.grad!.data), `VAE gradient '${k}' untouched by D's step`).toEqual(Array.from(vaeGrads.get(k)!));
        expect(Array.from(p.data), `VAE weight '${k}'`).toEqual(Array.from(vaeWeights.get(k)!));
      }
      // D learns: every weight moves (the last conv's bias may not: while every logit lies in
      // (−1, 1) its hinge gradient is −½ + ½ = 0).
      const moved = new Set([...D.namedParameters()].filter(([k, p]) => Array.from(p.data).some((v, i) => v !== d0.get(k)![i])).map(([k]) => k));
      for (const [k] of D.namedParameters()) if (k.endsWith('.weight')) expect(moved.has(k), `D '${k}' stepped`).toBe(true);
      for (const p of D.parameters()) expect(p.requiresGrad).toBe(false);
    });
  });

  it('with perceptual_weight 0 and disc_weight 0 nothing is built and the loss is the old L1 + KL, bit for bit', () => {
    const T = trainer({ perceptual_weight: 0, disc_weight: 0 });
    const j = jointVae(T.spec)!, parts = T.vaeParts as RepaELossParts;
    expect(parts.perceptual).toBeNull();
    expect(parts.disc).toBeNull();
    tidy(() => {
      const { x } = T.loader.next();
      const post = T.vae!.forward(x, T.rngs.posterior);
      const reg = j.vae.regularizer(j.m.s, x, post.recon, post, parts, 1);
      const old = vaeRegLoss(x, post.recon, post, { l1: R_DEFAULTS.l1, kl: R_DEFAULTS.kl });
      expect(reg.loss.item()).toBe(old.loss.item());
      expect(reg.terms).toEqual({ vae_l1: old.l1, vae_kl: old.kl });
      expect(j.vae.afterUpdate!(j.m.s, parts, x, post.recon, 1, 1)).toEqual({});
    });
    const l = T.trainStep();
    for (const k of ['vae_lpips', 'vae_gan', 'disc_loss']) expect(k in l.terms, k).toBe(false);
    const c = T.checkpoint();
    expect(c.disc).toBeUndefined();
    expect(c.state.discOptStep).toBeUndefined();
  });
});

it('one step: L1, KL, LPIPS, the generator and the discriminator terms equal an independent computation from the pieces', () => {
  const A = trainer(), B = trainer();
  const log = A.trainStep();
  tidy(() => {
    const { x } = B.loader.next();
    const post = B.vae!.forward(x, B.rngs.posterior);
    const xs = x.data, rs = post.recon.data, n = x.size, batch = x.shape[0];
    let l1 = 0;
    for (let i = 0; i < n; i++) l1 += Math.abs(rs[i] - xs[i]);
    l1 /= n;
    let kl = 0;
    for (let i = 0; i < post.mean.size; i++) {
      const m = post.mean.data[i], lv = post.logvar.data[i];
      kl += 0.5 * (m * m + Math.exp(lv) - 1 - lv);
    }
    kl /= batch;
    const lpips = perceptualLoss(loadPerceptualNet('builtin').net, x, post.recon).item();
    // A fresh PatchGAN of the same preset and seed, in train mode (its BN on batch statistics).
    const fresh = () => createPatchGan(patchGanPreset('PatchGAN-T', { inChannels: 3 }), base.seed).train();
    const gan = generatorLoss(fresh().forward(post.recon)).item();
    const D = fresh(), real = D.forward(x).data, fake = D.forward(post.recon).data;
    let hr = 0, hf = 0;
    for (const v of real) hr += Math.max(0, 1 - v);
    for (const v of fake) hf += Math.max(0, 1 + v);
    const hinge = 0.5 * (hr / real.length + hf / fake.length);
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
    expect(rel(log.terms.vae_l1, l1)).toBeLessThan(1e-6);
    expect(rel(log.terms.vae_kl, kl)).toBeLessThan(1e-5);
    expect(log.terms.vae_lpips).toBe(lpips);
    expect(log.terms.vae_gan).toBe(gan);
    expect(rel(log.terms.disc_loss, hinge)).toBeLessThan(1e-6);
    // The VAE's regulariser: 1·L1 + 1e-6·KL + 1·LPIPS + 0.1·(−mean D(x̂)), the official weights.
    const j = jointVae(B.spec)!;
    const reg = j.vae.regularizer(j.m.s, x, post.recon, post, B.vaeParts!, 1).loss.item();
    expect(rel(reg, l1 + 1e-6 * kl + lpips + 0.1 * gan)).toBeLessThan(1e-6);
    expect(lpips).toBeGreaterThan(0);
  });
});

it('on actors: 6 steps == 3 + resume 3, bit for bit, the discriminator and its AdamW included', async () => {
  // A constant schedule: a cosine one depends on the total steps, which differ between the two legs.
  const s = tinySpec('repa-e', { train: { ...tinySpec('repa-e').train, steps: 6, schedule: 'constant' } });
  const a = dir('whole'), b = dir('resumed');
  const whole = await runActors({ spec: s, out: a, placement: 'local', quiet: true, samples: false });
  await runActors({ spec: { ...s, train: { ...s.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
  expect(loadCheckpoint(path.join(b, 'checkpoint.safetensors')).state.discOptStep).toBe(3);
  const resumed = await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
  expect(resumed.logs).toEqual(whole.logs.slice(3));
  const metrics = (d: string) => readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });
  expect(metrics(b)).toEqual(metrics(a));
  for (const m of metrics(a)) for (const k of ['vae_lpips', 'vae_gan', 'disc_loss']) expect(Number.isFinite(m[k]), `${k} at step ${m.step}`).toBe(true);
  const [ca, cb] = [a, b].map((d) => loadCheckpoint(path.join(d, 'checkpoint.safetensors')));
  for (const key of ['model', 'ema', 'proj', 'opt', 'vae', 'vaeOpt', 'disc', 'discOpt'] as const) sameMaps(ca[key]!, cb[key]!, key);
  expect(ca.disc!.has('main.0.weight')).toBe(true);
  expect(ca.disc!.has('main.3.running_mean')).toBe(true);
  expect(cb.state.discOptStep).toBe(6);
  expect(cb.state.rng).toEqual(ca.state.rng);
}, 120_000);

describe('the dataset picks the perceptual stand-in; spec errors name the field', () => {
  it('the --data override reaches the VAE loss in both engines', async () => {
    // A spec on Fashion-MNIST run on the built-in set: the loss must load the builtin (3-channel) net.
    const s = tinySpec('repa-e', { data: { dataset: 'fashion-mnist', size: 16 }, train: { ...tinySpec('repa-e').train, steps: 1 } });
    const T = new Trainer(s, openTrainData(s, 'builtin'), { dataset: 'builtin' });
    expect((T.vaeParts as RepaELossParts).perceptual!.config.inChannels).toBe(3);
    expect(() => new Trainer(s, openTrainData(s, 'builtin'))).toThrow(/repa_e\.perceptual_net .*the fashion-mnist stand-in.* reads 1-channel images but the data has 3/);
    const run = await runActors({ spec: s, data: 'builtin', out: dir('data'), placement: 'local', quiet: true, samples: false });
    expect(Number.isFinite(run.logs[0].terms.vae_lpips)).toBe(true);
  }, 60_000);

  it('defaults cite the official config; bad values and missing nets name the field', () => {
    expect(spec({ repa_e: undefined }).repa_e).toMatchObject({ perceptual_weight: 1, perceptual_net: null, disc_weight: 0.1, disc_start: 0, disc: 'PatchGAN-S', disc_lr: 1e-4 });
    expect(() => spec({ repa_e: { disc: 'PatchGAN-X' } })).toThrow(/repa_e\.disc/);
    expect(() => spec({ repa_e: { perceptual_weight: -1 } })).toThrow(/repa_e\.perceptual_weight/);
    expect(() => spec({ repa_e: { disc_start: 1.5 } })).toThrow(/repa_e\.disc_start/);
    expect(() => trainer({}, { dataset: '/data/my-images' })).toThrow(/repa_e\.perceptual_net is null but no perceptual net ships for dataset '\/data\/my-images'.*perceptual_weight 0/);
    expect(() => trainer({ perceptual_net: '/nonexistent/net.safetensors' })).toThrow(/repa_e\.perceptual_net: loadPerceptualNet: .*does not exist/);
    // Without the term no net is needed.
    expect((trainer({ perceptual_weight: 0 }, { dataset: '/data/my-images' }).vaeParts as RepaELossParts).perceptual).toBeNull();
    // The official discriminator builds for the image channels.
    expect((trainer({ disc: 'PatchGAN-official' }).vaeParts as RepaELossParts).disc!.module.config).toMatchObject({ inChannels: 3, ndf: 64, nLayers: 3 });
  });
});

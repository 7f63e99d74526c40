// REPA-E's invariants (REPA-E (github.com/End2End-Diffusion/REPA-E) "Invariants to property-test") on tiny models, as fast-check
// properties over seeds and the method's coefficients:
//   (a) the SiT's backward on z.detach() leaves every VAE gradient empty
//   (b) the VAE step's align pass gives the SiT and projector no gradient and leaves the BN's
//       running stats, counter, modes and requires-grad flags as they were
//   (c) BN train: batch statistics, running update with the unbiased variance (closed form)
//   (d) BN eval: (x − rm)/√(rv + eps), no affine, and its gradient is g/√(rv + eps)
//   (e) initLatentBn then latentStats round-trips (up to eps); denormalizeLatent inverts BN eval
//   (f) one (t, ε) serves both passes — in test/train/repae.test.ts, on the trainer
//   (g) the REPA gradient reaches the VAE's encoder and not its decoder; L1 reaches both, KL the encoder
//   (h) the discriminator's loss never reaches the VAE — in test/run/repaeVaeLoss.test.ts (with where the
//       perceptual and GAN terms go)
//   (i) the EMA averages the BN buffers — in test/train/repae.test.ts
// plus: the VAE's gradient equals the gradient of (alignment + regulariser) alone — against one
// graph through VAE, BN and frozen SiT (the official formulation), and unchanged when the
// diffusion loss of the detached latent is added to that graph.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, zeros, type Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { add, backward, detach, mul } from '../../src/autograd/index.ts';
import { interpolate, linear as linearPath } from '../../src/diffusion/index.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { Projector } from '../../src/models/projector.ts';
import { createVAE, vaePreset, type VAE } from '../../src/models/vae.ts';
import {
  RepaESiT, alignOnlyLoss, denormalizeLatent, hiddenAfterBlock, initLatentBn, latentStats, repaProjLoss, repaeSitLoss,
  vaeAlignGrad, vaeBackward, vaeRegLoss,
} from '../../src/methods/index.ts';
import { perturb, withGrad, zeroAllGrads, gradMax } from './tiny.ts';
import { expectClose } from '../kernels/expectClose.ts';

const B = 3, SIDE = 16, LAT = 4, GRID = 4, DZ = 8, DEPTH = 2;

interface Parts {
  vae: VAE; model: RepaESiT; projector: Projector;
  x: Tensor; y: Int32Array; target: Tensor; t: Float64Array; eps: Tensor; posterior: Rng;
}

/** A VAE-T (1×16×16 → 4×4×4), a 3-block SiT-T/1 with its BN (perturbed, so every path is open), a projector, a batch. */
function parts(seed: number, bnStats = true): Parts {
  const vae = createVAE(vaePreset('VAE-T', { inChannels: 1, outChannels: 1 }), seed);
  const model = new RepaESiT(sitPreset('SiT-T/1', { inChannels: LAT, inputSize: GRID, depth: 3, hiddenSize: 16, numHeads: 2 }), new Rng(seed).child('model'), { eps: 1e-4, momentum: 0.1 });
  perturb(model, seed + 1);
  if (bnStats) initLatentBn(model.bn, { bias: [0.3, -0.2, 0.1, 0], scale: [0.8, 1.3, 2, 0.5] });
  const projector = new Projector(16, 24, DZ, new Rng(seed).child('proj'));
  const r = new Rng(seed).child('batch');
  return {
    vae, model, projector,
    x: r.uniform([B, 1, SIDE, SIDE], -1, 1), y: Int32Array.from([0, 3, 7]), target: r.normal([B, GRID * GRID, DZ]),
    t: r.uniformArray(B), eps: r.normal([B, LAT, GRID, GRID]), posterior: r.child('posterior'),
  };
}

const opts = { depth: DEPTH, path: linearPath };
const nonzero = (ts: Iterable<[string, Tensor]>) => [...ts].filter(([, p]) => gradMax(p) > 0).map(([n]) => n);
const copy = (t: Tensor) => Float64Array.from(t.data);
const gradsOf = (m: { namedParameters(): [string, Tensor][] }) => new Map(m.namedParameters().map(([n, p]) => [n, p.grad ? Float64Array.from(p.grad.data) : null]));
const seeds = fc.integer({ min: 0, max: 10_000 });

describe('REPA-E invariants', () => {
  it('(a) after the SiT backward on z.detach() no VAE parameter has a gradient; the SiT and projector do', () => {
    fc.assert(fc.property(seeds, fc.constantFrom(0, 0.5, 1.7), (seed, coeff) => tidy(() => {
      const p = parts(seed);
      const post = p.vae.forward(p.x, p.posterior);
      p.model.train();
      const sit = repaeSitLoss(p.model, p.projector, detach(post.z), p.t, p.eps, p.y, new Rng(seed).child('drop'), p.target, { ...opts, coeff });
      backward(sit.loss);
      expect(nonzero(p.vae.namedParameters())).toEqual([]);
      expect(withGrad(p.model).length).toBeGreaterThan(p.model.parameters().length / 2);
      expect(withGrad(p.projector).length).toBe(coeff > 0 ? p.projector.parameters().length : 0);
    })), { seed: 1, numRuns: 4 });
  });

  it('repaeSitLoss refuses a latent that still reaches the VAE and an eval-mode SiT', () => tidy(() => {
    const p = parts(5);
    const post = p.vae.forward(p.x, p.posterior);
    p.model.train();
    expect(() => repaeSitLoss(p.model, p.projector, post.z, p.t, p.eps, p.y, new Rng(0), p.target, { ...opts, coeff: 0.5 })).toThrow(/detached/);
    p.model.eval();
    expect(() => repaeSitLoss(p.model, p.projector, detach(post.z), p.t, p.eps, p.y, new Rng(0), p.target, { ...opts, coeff: 0.5 })).toThrow(/train mode/);
  }));

  it('(b) the align pass: no SiT/projector gradient, BN running stats and counter unchanged, modes and flags restored', () => {
    fc.assert(fc.property(seeds, fc.boolean(), fc.double({ min: 0.1, max: 3, noNaN: true }), (seed, training, coeff) => tidy(() => {
      const p = parts(seed);
      p.model.train(training);
      const post = p.vae.forward(p.x, p.posterior);
      const rm = copy(p.model.bn.running_mean!), rv = copy(p.model.bn.running_var!), n = p.model.bn.num_batches_tracked!.data[0];
      const g = vaeAlignGrad(p.model, p.projector, post.z, p.t, p.eps, p.y, p.target, { ...opts, coeff });
      expect(Math.max(...Array.from(g.grad.data, Math.abs))).toBeGreaterThan(0);
      expect(withGrad(p.model)).toEqual([]);
      expect(withGrad(p.projector)).toEqual([]);
      expect(Array.from(p.model.bn.running_mean!.data)).toEqual(Array.from(rm, Math.fround));
      expect(Array.from(p.model.bn.running_var!.data)).toEqual(Array.from(rv, Math.fround));
      expect(p.model.bn.num_batches_tracked!.data[0]).toBe(n);
      expect(p.model.training).toBe(training);
      expect(p.model.bn.training).toBe(training);
      expect([...p.model.parameters(), ...p.projector.parameters()].every((q) => q.requiresGrad)).toBe(true);
      // The VAE's graph is untouched by the align pass (its own tape): z still backpropagates.
      expect(post.z.requiresGrad).toBe(true);
    })), { seed: 2, numRuns: 4 });
  });

  it('(c) BN in the SiT step: batch statistics normalise; running stats move with the unbiased variance', () => {
    fc.assert(fc.property(seeds, fc.double({ min: 0.01, max: 1, noNaN: true }), (seed, m) => tidy(() => {
      const model = new RepaESiT(sitPreset('SiT-T/1', { inChannels: LAT, inputSize: GRID, depth: 1, hiddenSize: 16, numHeads: 2 }), new Rng(0), { eps: 1e-4, momentum: m });
      initLatentBn(model.bn, { bias: [0.5, -1, 0, 2], scale: [1, 0.5, 2, 1] });
      const rm0 = copy(model.bn.running_mean!), rv0 = copy(model.bn.running_var!);
      const z = new Rng(seed).normal([B, LAT, GRID, GRID], 0.4, 1.7);
      const y = model.train().bn.forward(z);
      const per = GRID * GRID, count = B * per;
      for (let c = 0; c < LAT; c++) {
        const v: number[] = [];
        for (let b = 0; b < B; b++) for (let j = 0; j < per; j++) v.push(z.data[(b * LAT + c) * per + j]);
        const mean = v.reduce((s, a) => s + a, 0) / count;
        const sq = v.reduce((s, a) => s + (a - mean) ** 2, 0);
        expectClose(`running_mean ${c}`, [model.bn.running_mean!.data[c]], [(1 - m) * rm0[c] + m * mean], 1e-6, 1e-6);
        expectClose(`running_var ${c}`, [model.bn.running_var!.data[c]], [(1 - m) * rv0[c] + m * sq / (count - 1)], 1e-6, 1e-6);
        const out: number[] = [], want: number[] = [];
        for (let b = 0; b < B; b++) for (let j = 0; j < per; j++) {
          const i = (b * LAT + c) * per + j;
          out.push(y.data[i]);
          want.push((z.data[i] - mean) / Math.sqrt(sq / count + 1e-4));
        }
        expectClose(`normalised channel ${c}`, out, want, 1e-5, 1e-5);
      }
      expect(model.bn.num_batches_tracked!.data[0]).toBe(1);
    })), { seed: 3, numRuns: 20 });
  });

  it('(d) BN in the VAE step: (z − rm)/√(rv + eps) with no affine; dL/dz = coeff·dL/dx̄/√(rv + eps)', () => {
    fc.assert(fc.property(seeds, fc.double({ min: 0.1, max: 3, noNaN: true }), (seed, coeff) => tidy(() => {
      const p = parts(seed);
      expect(p.model.bn.namedParameters()).toEqual([]);
      const { bias, scale } = latentStats(p.model.bn);
      const z = new Rng(seed).child('z').normal([B, LAT, GRID, GRID], 0.2, 1.5);
      const per = GRID * GRID;
      const want = Array.from(z.data, (v, i) => {
        const c = Math.floor(i / per) % LAT;
        return (v - p.model.bn.running_mean!.data[c]) / Math.sqrt(p.model.bn.running_var!.data[c] + 1e-4);
      });
      expectClose('BN eval', p.model.eval().bn.forward(z).data, want, 1e-6, 1e-6);
      // The gradient at z from vaeAlignGrad against an independent composition that starts at x̄.
      const g = vaeAlignGrad(p.model, p.projector, z, p.t, p.eps, p.y, p.target, { ...opts, coeff }).grad;
      zeroAllGrads(p.model, p.projector);
      const xbar = tensor(want, z.shape).requireGrad();
      const h = hiddenAfterBlock(p.model, interpolate(linearPath, xbar, p.eps, p.t), p.t, p.y, DEPTH);
      backward(mul(repaProjLoss([{ pred: p.projector.forward(h), target: p.target }]), coeff));
      const ref = Array.from(xbar.grad!.data, (v, i) => v * scale[Math.floor(i / per) % LAT]);
      expectClose('dL/dz', g.data, ref, 1e-7, 1e-5);
      expect(bias.length).toBe(LAT);
    })), { seed: 4, numRuns: 4 });
  });

  it('(e) initLatentBn → latentStats round-trips (scale up to eps); denormalizeLatent inverts BN eval', () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: LAT, maxLength: LAT }),
      fc.array(fc.double({ min: 0.05, max: 5, noNaN: true }), { minLength: LAT, maxLength: LAT }),
      seeds,
      (bias, scale, seed) => tidy(() => {
        const model = new RepaESiT(sitPreset('SiT-T/1', { inChannels: LAT, inputSize: GRID, depth: 1, hiddenSize: 16, numHeads: 2 }), new Rng(0), { eps: 1e-4, momentum: 0.1 });
        initLatentBn(model.bn, { bias, scale });
        const s = latentStats(model.bn);
        expectClose('bias', s.bias, bias, 1e-6, 1e-6);
        // scale' = 1/√(1/s² + eps) = s/√(1 + eps·s²): low by at most eps·s²/2 (plus float32 storage of 1/s²).
        for (let c = 0; c < LAT; c++) {
          expect(s.scale[c]).toBeLessThanOrEqual(scale[c] * (1 + 1e-6));
          expect(s.scale[c]).toBeGreaterThanOrEqual(scale[c] * (1 - 1e-4 * scale[c] ** 2 / 2 - 1e-6));
        }
        const x = new Rng(seed).normal([2, LAT, 3, 3]);
        expectClose('BN_eval(denorm(x))', model.eval().bn.forward(denormalizeLatent(x, model.bn)).data, x.data, 1e-5, 1e-4);
        const z = new Rng(seed + 1).normal([2, LAT, 3, 3], 0, 2);
        expectClose('denorm(BN_eval(z))', denormalizeLatent(model.bn.forward(z), model.bn).data, z.data, 1e-5, 1e-4);
      }),
    ), { seed: 5, numRuns: 30 });
    const bn = new RepaESiT(sitPreset('SiT-T/1', { inChannels: LAT, inputSize: GRID, depth: 1, hiddenSize: 16, numHeads: 2 }), new Rng(0), { eps: 1e-4, momentum: 0.1 }).bn;
    expect(() => initLatentBn(bn, { bias: [0, 0], scale: 1 })).toThrow(/2 entries for 4 latent channels/);
    expect(() => initLatentBn(bn, { bias: 0, scale: 0 })).toThrow(/scale of channel 0/);
  });

  it('(g) the REPA gradient reaches the VAE encoder only; L1 reaches encoder and decoder, KL the encoder only', () => {
    fc.assert(fc.property(seeds, (seed) => tidy(() => {
      const p = parts(seed);
      const isDecoder = (n: string) => n.startsWith('decoder.') || n.startsWith('post_quant_conv.');
      const encoderSide = p.vae.namedParameters().filter(([n]) => !isDecoder(n)).map(([n]) => n);
      const decoderSide = p.vae.namedParameters().filter(([n]) => isDecoder(n)).map(([n]) => n);
      const run = (w: { l1: number; kl: number }, align: boolean): string[] => {
        zeroAllGrads(p.vae);
        const post = p.vae.forward(p.x, new Rng(seed).child('xi'));
        const g = align ? vaeAlignGrad(p.model, p.projector, post.z, p.t, p.eps, p.y, p.target, { ...opts, coeff: 1.5 }).grad : zeros(post.z.shape);
        vaeBackward(vaeRegLoss(p.x, post.recon, post, w).loss, post.z, g);
        return nonzero(p.vae.namedParameters()).sort();
      };
      expect(run({ l1: 0, kl: 0 }, true)).toEqual([...encoderSide].sort());
      expect(run({ l1: 1, kl: 0 }, false)).toEqual([...encoderSide, ...decoderSide].sort());
      expect(run({ l1: 0, kl: 1 }, false)).toEqual([...encoderSide].sort());
    })), { seed: 6, numRuns: 3 });
  });

  it("the VAE's gradient is that of alignment + regulariser alone: split halves = one graph through the frozen SiT, and the diffusion loss adds nothing", () => {
    fc.assert(fc.property(
      seeds, fc.double({ min: 0, max: 2, noNaN: true }), fc.double({ min: 0.1, max: 2, noNaN: true }), fc.double({ min: 0, max: 1e-2, noNaN: true }),
      (seed, coeff, l1, kl) => tidy(() => {
        const p = parts(seed);
        const w = { l1, kl };
        // The trainer's way: the Student's half (own tape) then the VAE's backward seeded with g at z.
        let post = p.vae.forward(p.x, new Rng(seed).child('xi'));
        const g = vaeAlignGrad(p.model, p.projector, post.z, p.t, p.eps, p.y, p.target, { ...opts, coeff }).grad;
        vaeBackward(vaeRegLoss(p.x, post.recon, post, w).loss, post.z, g);
        const split = gradsOf(p.vae);
        // The official way: one graph, SiT and projector frozen (requires_grad False) and in eval mode.
        const frozen = [...p.model.parameters(), ...p.projector.parameters()];
        const oneGraph = (withDiffusion: boolean) => {
          zeroAllGrads(p.vae, p.model, p.projector);
          post = p.vae.forward(p.x, new Rng(seed).child('xi'));
          p.model.eval();
          for (const q of frozen) q.requireGrad(false);
          let loss = add(vaeRegLoss(p.x, post.recon, post, w).loss, mul(alignOnlyLoss(p.model, p.projector, post.z, p.t, p.eps, p.y, p.target, opts), coeff));
          for (const q of frozen) q.requireGrad(true);
          if (withDiffusion) {
            p.model.train();
            loss = add(loss, repaeSitLoss(p.model, p.projector, detach(post.z), p.t, p.eps, p.y, new Rng(1), p.target, { ...opts, coeff: 0.5 }).loss);
          }
          backward(loss);
          return gradsOf(p.vae);
        };
        for (const [name, ref] of [['one graph', oneGraph(false)], ['one graph + diffusion loss', oneGraph(true)]] as const) {
          for (const [n, a] of split) {
            const b = ref.get(n)!;
            expect(a === null, `${name}: ${n} has a gradient in only one computation`).toBe(b === null);
            if (a && b) expectClose(`${name}: ${n}`, a, b, 1e-6, 1e-4);
          }
        }
        // The diffusion loss did reach the SiT in that graph (so "adds nothing" is not vacuous).
        expect(withGrad(p.model).length).toBeGreaterThan(0);
      }),
    ), { seed: 7, numRuns: 4 });
  });

  it('vaeRegLoss: l1·mean|x − x̂| + kl·Σ KL / B against a plain loop', () => {
    fc.assert(fc.property(seeds, fc.double({ min: 0, max: 3, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, l1, kl) => tidy(() => {
      const r = new Rng(seed);
      const x = r.uniform([2, 1, 4, 4], -1, 1), xh = r.normal([2, 1, 4, 4]);
      const mean = r.normal([2, 3, 2, 2]), logvar = r.normal([2, 3, 2, 2], 0, 0.5);
      const got = vaeRegLoss(x, xh, { mean, logvar }, { l1, kl });
      let a = 0;
      for (let i = 0; i < x.size; i++) a += Math.abs(x.data[i] - xh.data[i]);
      let k = 0;
      for (let i = 0; i < mean.size; i++) k += 0.5 * (mean.data[i] ** 2 + Math.exp(logvar.data[i]) - 1 - logvar.data[i]);
      expectClose('l1', [got.l1], [a / x.size], 1e-6, 1e-6);
      expectClose('kl', [got.kl], [k / 2], 1e-5, 1e-6);
      expectClose('loss', [got.loss.item()], [l1 * a / x.size + kl * k / 2], 1e-5, 1e-5);
    })), { seed: 8, numRuns: 20 });
  });
});

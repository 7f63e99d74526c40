// REPA-E's GAN and perceptual pieces against PyTorch (test/fixtures/gan/gan.safetensors, written by
// test/fixtures/make_gan_fixture.py from taming's NLayerDiscriminator / weights_init, REPA-E's
// loss/losses.py and taming's calculate_adaptive_weight): the discriminator loads strictly under
// taming's names; train-mode logits, running statistics and eval logits; the adaptive weight; one
// whole discriminator step (two forwards, hinge, clip 1.0, AdamW); the LPIPS distance with unit
// weights. float32 here vs a float64 reference.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { type Tensor } from '../../src/tensor/tensor.ts';
import { Tape, backward, noGrad, withTape, abs, mean, sub, conv2d } from '../../src/autograd/index.ts';
import { NLayerDiscriminator, parsePatchGanConfig } from '../../src/models/patchGan.ts';
import { adaptiveGanWeight, createDiscriminatorOptimizer, discriminatorStep, ganGeneratorTerm, hingeDLoss } from '../../src/models/ganLoss.ts';
import { lpipsFromFeatures } from '../../src/models/perceptualLoss.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { expectClose } from '../kernels/expectClose.ts';

const fx = readSafetensors(join(import.meta.dirname, '../fixtures/gan/gan.safetensors'));
const t = (k: string): Tensor => {
  const v = fx.tensors.get(k);
  if (!v) throw new Error(`fixture has no ${k}`);
  return v;
};
const weightsOf = (prefix: string): Map<string, Tensor> => new Map([...fx.tensors]
  .filter(([k]) => k.startsWith(`${prefix}.`) && !k.startsWith(`${prefix}.in.`) && !k.startsWith(`${prefix}.out.`))
  .map(([k, v]) => [k.slice(prefix.length + 1), v]));
const disc = (prefix: string): NLayerDiscriminator => {
  const d = new NLayerDiscriminator(parsePatchGanConfig(fx.metadata[prefix]), new Rng(0));
  d.loadStateDict(weightsOf(prefix), true);
  return d;
};
const check = (what: string, got: Tensor, want: Tensor, tol = 1e-4): void => {
  expect(got.shape, what).toEqual(want.shape);
  expectClose(what, got.data, want.data, tol, tol);
};

describe('PatchGAN discriminator: parity with PyTorch', () => {
  for (const p of ['a', 'b']) {
    it(`${p} (${fx.metadata[p]}): train logits, running statistics, eval logits`, () => {
      const d = disc(p);
      check('train logits', noGrad(() => d.train().forward(t(`${p}.in.x`))), t(`${p}.out.train_logits`));
      for (const [name, buf] of d.namedBuffers()) {
        if (name.endsWith('num_batches_tracked')) { expect(buf.item(), name).toBe(1); continue; }
        expectClose(name, buf.data, t(`${p}.out.running.${name}`).data, 1e-5, 1e-5);
      }
      check('eval logits', noGrad(() => d.eval().forward(t(`${p}.in.x`))), t(`${p}.out.eval_logits`));
    });
  }
});

describe("taming's adaptive weight: parity with torch.autograd.grad", () => {
  it('‖∇W nll‖, ‖∇W g‖ and d_weight (disc weight 0.1) for recon = conv(h, W)', () => {
    const d = disc('b').train();
    const W = t('adaptive.in.W');
    W.requireGrad();
    const tape = new Tape();
    const { nll, recon } = withTape(tape, () => {
      const recon = conv2d(t('adaptive.in.h'), W, t('adaptive.in.bW'), { padding: 1 });
      return { recon, nll: mean(abs(sub(recon, t('adaptive.in.x')))) };
    });
    const term = withTape(tape, () => ganGeneratorTerm(d, recon, { step: 0, discWeight: 0.1, adaptive: { nll, lastLayer: W, tape } }));
    expectClose('nll', [nll.item()], [t('adaptive.out.nll').item()], 1e-6, 1e-5);
    expectClose('g', [term.gLoss], [t('adaptive.out.g').item()], 1e-6, 1e-4);
    expectClose('‖∇nll‖', [term.adaptive!.nllGradNorm], [t('adaptive.out.nll_grad_norm').item()], 1e-7, 1e-4);
    expectClose('‖∇g‖', [term.adaptive!.gGradNorm], [t('adaptive.out.g_grad_norm').item()], 1e-7, 1e-4);
    expectClose('d_weight', [term.dWeight], [t('adaptive.out.d_weight').item()], 1e-6, 1e-4);
    // the weighted term equals d_weight · g and the graph is intact for the VAE's backward
    expectClose('loss', [term.loss.item()], [term.dWeight * term.gLoss], 1e-7, 1e-6);
    expect(W.grad).toBeNull();
    backward(withTape(tape, () => term.loss), { tape });
    expect(W.grad).not.toBeNull();
    for (const p of d.parameters()) expect(p.grad).toBeNull(); // D frozen in the generator pass
    // adaptiveGanWeight on its own gives the same number
    const tape2 = new Tape();
    const again = withTape(tape2, () => {
      const r = conv2d(t('adaptive.in.h'), W, t('adaptive.in.bW'), { padding: 1 });
      const nll2 = mean(abs(sub(r, t('adaptive.in.x'))));
      const g2 = mean(d.eval().forward(r));
      return { nll2, g2 };
    });
    expect(adaptiveGanWeight(again.nll2, again.g2, W, { tape: tape2 }).weight).toBeGreaterThan(0);
    W.requireGrad(false);
    W.grad = null;
  });
});

describe('discriminator step: parity with PyTorch (hinge, clip 1.0, AdamW lr 1e-4)', () => {
  it('gradients, loss, grad norm, parameters and running statistics after one step', () => {
    // the gradients of the same loss, before clipping
    const dg = disc('b').train();
    for (const p of dg.parameters()) p.requireGrad(true);
    const tape = new Tape();
    const loss = withTape(tape, () => hingeDLoss(dg.forward(t('step.in.real')), dg.forward(t('step.in.fake'))));
    expectClose('loss', [loss.item()], [t('step.out.loss').item()], 1e-6, 1e-5);
    backward(loss, { tape });
    for (const [name, p] of dg.namedParameters()) expectClose(`grad ${name}`, p.grad!.data, t(`step.out.grad.${name}`).data, 2e-6, 1e-3);

    const d = disc('b').train();
    const opt = createDiscriminatorOptimizer(d);
    const r = discriminatorStep(d, opt, t('step.in.real'), t('step.in.fake'), { step: 0 });
    expectClose('loss', [r.loss], [t('step.out.loss').item()], 1e-6, 1e-5);
    expectClose('grad norm', [r.gradNorm], [t('step.out.grad_norm').item()], 1e-6, 1e-4);
    for (const [name, p] of d.namedParameters()) {
      // AdamW's first step moves each weight by ≈ lr·sign(g): float32 vs float64 differ only where g ≈ 0
      expectClose(`param ${name}`, p.data, t(`step.out.param.${name}`).data, 2e-6, 1e-5);
      expect(p.requiresGrad, name).toBe(false); // frozen again after the step
    }
    for (const [name, buf] of d.namedBuffers()) {
      if (name.endsWith('num_batches_tracked')) { expect(buf.item(), name).toBe(2); continue; }
      expectClose(name, buf.data, t(`step.out.running.${name}`).data, 1e-5, 1e-5);
    }
  });
});

describe('LPIPS distance with unit weights: parity with PyTorch', () => {
  it('normalize_tensor, squared difference, channel sum, spatial mean, stage sum (zero vectors included)', () => {
    const xs = [0, 1].map((s) => t(`lpips.in.x.${s}`)), ys = [0, 1].map((s) => t(`lpips.in.y.${s}`));
    check('d', lpipsFromFeatures(xs, ys), t('lpips.out.d'), 1e-6);
  });
});

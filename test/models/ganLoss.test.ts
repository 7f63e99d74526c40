// REPA-E's GAN terms (models/ganLoss.ts) on their own and around a real VAE: gradchecks of the hinge
// and generator losses, the fixed weight REPA-E uses (0.1) and its start step, taming's adaptive
// weight against an independent computation (two ordinary backward passes on fresh graphs), and
// the invariants of the step: the generator term reaches the VAE and never D's parameters, the
// discriminator step never reaches the VAE, and a leaked gradient in D is caught.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Tape, abs, add, backward, gradcheck, mean, sub, withTape, noGrad } from '../../src/autograd/index.ts';
import { VAE, vaePreset } from '../../src/models/vae.ts';
import { createPatchGan, patchGanPreset } from '../../src/models/patchGan.ts';
import {
  adaptiveGanWeight, createDiscriminatorOptimizer, discriminatorStep, ganGeneratorTerm, generatorLoss, hingeDLoss, setDiscriminatorTrainable,
} from '../../src/models/ganLoss.ts';
import { expectClose } from '../kernels/expectClose.ts';

/** Logits kept 0.05 away from the hinge kinks at ±1. */
function logits(shape: number[], seed: number): Tensor {
  const x = new Rng(seed).normal(shape, 0, 1.5, 'float64');
  for (let i = 0; i < x.size; i++) for (const k of [-1, 1]) if (Math.abs(x.data[i] - k) < 0.05) x.data[i] = k + 0.05 * Math.sign(x.data[i] - k || 1);
  return x;
}

const l2 = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

describe('hinge and generator losses', () => {
  it('values: 0.5·(mean relu(1 − r) + mean relu(1 + f)) and −mean f', () => {
    const r = tensor([2, 0.5, -1], [3, 1, 1, 1], 'float64'), f = tensor([-2, 0, 1, 0.5], [4, 1, 1, 1], 'float64');
    expect(hingeDLoss(r, f).item()).toBeCloseTo(0.5 * ((0 + 0.5 + 2) / 3 + (0 + 1 + 2 + 1.5) / 4), 14);
    expect(generatorLoss(f).item()).toBeCloseTo(-(-2 + 0 + 1 + 0.5) / 4, 14);
  });

  it('pass gradcheck (both inputs of the hinge; the generator loss)', () => {
    const r = gradcheck(hingeDLoss, [logits([2, 1, 3, 3], 1), logits([2, 1, 3, 3], 2)]);
    expect(r.ok, r.message).toBe(true);
    const g = gradcheck(generatorLoss, [logits([3, 1, 2, 2], 3)]);
    expect(g.ok, g.message).toBe(true);
  });
});

describe('around a VAE (REPA-E step 2 and 3)', () => {
  const x = new Rng(0).uniform([2, 3, 32, 32], -1, 1);

  it("ganGeneratorTerm: REPA-E's fixed d_weight 0.1; off before discStart; reaches the VAE, never D", () => {
    const vae = new VAE(vaePreset('VAE-T'), new Rng(1));
    const disc = createPatchGan(patchGanPreset('PatchGAN-T'), 2);
    const { recon } = vae.forward(x);
    const term = ganGeneratorTerm(disc, recon, { step: 0 });
    expect(term.dWeight).toBe(0.1);
    expect(term.factor).toBe(1);
    expect(term.adaptive).toBeUndefined();
    expectClose('loss', [term.loss.item()], [0.1 * term.gLoss], 1e-7, 1e-6);
    backward(term.loss);
    expect(vae.decoder.conv_out.weight.grad).not.toBeNull();
    for (const p of disc.parameters()) { expect(p.grad).toBeNull(); expect(p.requiresGrad).toBe(false); }
    // before the start: a constant 0, D not even run (its running statistics do not move)
    const bn = disc.stateDict().get('main.3.running_mean')!;
    const before = Array.from(bn.data);
    const off = ganGeneratorTerm(disc, recon, { step: 4, discStart: 5 });
    expect(off.loss.item()).toBe(0);
    expect(off.loss.requiresGrad).toBe(false);
    expect(off.factor).toBe(0);
    expect(Array.from(bn.data)).toEqual(before);
    vae.zeroGrad();
  });

  it("taming's adaptive weight on decoder.conv_out.weight equals two independent backward passes", () => {
    const vae = new VAE(vaePreset('VAE-T'), new Rng(1));
    const disc = createPatchGan(patchGanPreset('PatchGAN-T'), 2).eval(); // eval: the same D(x̂) in all three graphs
    setDiscriminatorTrainable(disc, false);
    const W = vae.decoder.conv_out.weight;
    const nllOf = (recon: Tensor): Tensor => mean(abs(sub(recon, x)));
    // independent: ‖∂nll/∂W‖ and ‖∂g/∂W‖ from ordinary backward() on fresh graphs
    const ref = (which: 'nll' | 'g'): number => {
      vae.zeroGrad();
      const tape = new Tape();
      const { recon } = withTape(tape, () => vae.forward(x));
      backward(withTape(tape, () => (which === 'nll' ? nllOf(recon) : generatorLoss(disc.forward(recon)))), { tape });
      const n = l2(W.grad!.data);
      vae.zeroGrad();
      return n;
    };
    const nllNorm = ref('nll'), gNorm = ref('g');
    for (const p of vae.parameters()) p.grad = null;
    const tape = new Tape();
    const { recon } = withTape(tape, () => vae.forward(x));
    const nll = withTape(tape, () => nllOf(recon));
    const term = withTape(tape, () => ganGeneratorTerm(disc, recon, { step: 0, discWeight: 0.1, adaptive: { nll, lastLayer: W, tape } }));
    expectClose('‖∇nll‖', [term.adaptive!.nllGradNorm], [nllNorm], 1e-9, 1e-5);
    expectClose('‖∇g‖', [term.adaptive!.gGradNorm], [gNorm], 1e-9, 1e-5);
    const want = Math.min(Math.max(nllNorm / (gNorm + 1e-4), 0), 1e4) * 0.1;
    expectClose('d_weight', [term.dWeight], [want], 1e-9, 1e-5);
    // nothing written to any .grad; the tape still holds the whole graph for the VAE's backward
    for (const p of vae.parameters()) expect(p.grad).toBeNull();
    backward(withTape(tape, () => add(nll, term.loss)), { tape });
    expect(W.grad).not.toBeNull();
    // a loss that does not depend on W is an error, not a silent 0
    const t2 = new Tape();
    const other = withTape(t2, () => mean(tensor([1, 2], [2]).requireGrad()));
    expect(() => adaptiveGanWeight(other, other, W, { tape: t2 })).toThrow(/not reached/);
  });

  it('discriminatorStep: D learns, the VAE gets nothing, D is frozen again; a leaked gradient is caught', () => {
    const vae = new VAE(vaePreset('VAE-T'), new Rng(1));
    const disc = createPatchGan(patchGanPreset('PatchGAN-T'), 2);
    const opt = createDiscriminatorOptimizer(disc, { lr: 1e-3 });
    const { recon } = vae.forward(x);
    const w0 = Array.from(disc.main.at(0).stateDict().get('weight')!.data);
    const losses: number[] = [];
    for (let s = 0; s < 5; s++) losses.push(discriminatorStep(disc, opt, x, recon, { step: s }).loss);
    expect(losses[4]).toBeLessThan(losses[0]);
    expect(Array.from(disc.main.at(0).stateDict().get('weight')!.data)).not.toEqual(w0);
    for (const p of vae.parameters()) expect(p.grad).toBeNull(); // invariant (h): x̂ detached
    for (const p of disc.parameters()) expect(p.requiresGrad).toBe(false);
    // before discStart the step runs with factor 0: loss 0, a fresh D's weights unchanged
    const fresh = createPatchGan(patchGanPreset('PatchGAN-T'), 2);
    const w1 = Array.from(fresh.main.at(0).stateDict().get('weight')!.data);
    const r = discriminatorStep(fresh, createDiscriminatorOptimizer(fresh), x, recon, { step: 0, discStart: 10 });
    expect(r.loss).toBe(0);
    expect(r.factor).toBe(0);
    expect(Array.from(fresh.main.at(0).stateDict().get('weight')!.data)).toEqual(w1);
    // a generator pass with D trainable would leak into D's gradients: the step refuses
    setDiscriminatorTrainable(disc, true);
    backward(mean(disc.forward(noGrad(() => vae.forward(x).recon))));
    expect(() => discriminatorStep(disc, opt, x, recon, { step: 0 })).toThrow(/already has a gradient/);
  });
});

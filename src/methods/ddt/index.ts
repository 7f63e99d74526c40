// DDT (Wang et al., "DDT: Decoupled Diffusion Transformer", arXiv 2504.05741; official code
// github.com/MCG-NJU/DDT: src/models/denoiser/decoupled_improved_dit.py, src/diffusion/
// stateful_flow_matching/{training_repa,sampling,sharing_sampling}.py, configs/
// repa_improved_ddt_xlen22de6_256.yaml): the transformer split into a condition encoder and a
// velocity decoder with their own patch embedders (model.ts), trained with the plain flow loss
// L = mean ‖v̂ − v*‖² (the `diff` term); sampled with DDT's Euler sampler — the CFG batch always
// doubled, [uncond; cond], one state for both halves, guidance in an open interval — and encoder
// sharing, uniform or the statistical DP schedule (sampler.ts, sharing.ts).
// Time convention: DDT's τ = 0 is noise (x_τ = τ·x + (1 − τ)·ε, the model predicts x − ε);
// diffactor's t = 1 − τ. The conversion lives in DDT.forward (τ = 1 − t, out = −prediction), so
// the engines, the generic samplers and the evaluator see a diffactor velocity model, and the DDT
// sampler runs in DDT time on forwardDDT (test/methods/ddt.parity.test.ts, ddt.property.test.ts).
// DDT's logit-normal time (t = sigmoid(n)) is symmetric: the same law in either convention
// (diffusion.time_sampling: logit_normal gives it).
// Our choices: the default split is ⌊2·depth/3⌋ encoder blocks (the paper's B/2 "8En4De", better
// than 4En8De in its ablation); no REPA term of its own (the official trainer adds one at encoder
// block 8: combine with `repa`, whose tap reads the encoder's hidden state); the generic samplers
// (heun, sde) run DDT on forward() with the encoder at every call — sharing needs sample.sampler euler.
import { z } from 'zod';
import { flowTrainingPair } from '../../diffusion/index.ts';
import { sitPreset } from '../../models/presets.ts';
import type { MethodDefinition, SpecView } from '../method.ts';
import { DDT, checkEncoderBlocks, createDDT } from './model.ts';
import type { DdtSampling } from './sampler.ts';

const positiveInt = z.number().int().positive();

export const DDTSection = z.strictObject({
  /** E, blocks in the condition encoder (the rest decode); null = ⌊2·depth/3⌋ (official B/2 8 of 12, L/2 20 of 24, XL/2 22 of 28). */
  encoder_blocks: positiveInt.nullable().default(null),
  /** Encoder sharing at sampling: `uniform` recomputes every share_period-th step, `dp` the DP's ⌊steps/share_period⌋ steps. */
  share_schedule: z.enum(['uniform', 'dp']).default('uniform'),
  /** r (official state_refresh_rate, 1 in the configs = no sharing). */
  share_period: positiveInt.default(1),
  /** The Euler grid's last step (official config last_step 0.04). */
  last_step: z.number().gt(0).max(1).default(0.04),
  /** Timestep shift s of the sampling grid (official timeshift 1.0; s > 1 spends steps near noise). */
  time_shift: z.number().positive().default(1),
  /** The DP's template run: images (official 8) and seed (official 0). */
  dp_template_images: positiveInt.default(8),
  dp_seed: z.number().int().min(0).default(0),
});
export type DDTSection = z.infer<typeof DDTSection>;

function specDepth(spec: SpecView): number | undefined {
  const m = spec.model as { preset?: string; depth?: number };
  if (m.depth !== undefined) return m.depth;
  try { return m.preset ? sitPreset(m.preset.replace(/^DiT-/, 'SiT-')).depth : undefined; } catch { return undefined; }
}

/** E for a model of `depth` blocks. */
export const encoderBlocksOf = (s: DDTSection, depth: number): number => s.encoder_blocks ?? Math.floor((2 * depth) / 3);

/** The sampler's settings from the section. */
export const samplingOf = (s: DDTSection): DdtSampling => ({
  schedule: s.share_schedule, period: s.share_period, lastStep: s.last_step, shift: s.time_shift, templateImages: s.dp_template_images, templateSeed: s.dp_seed,
});

function check(s: DDTSection, spec: SpecView): void {
  if (spec.model.learn_sigma) throw new Error('ddt predicts a velocity: model.learn_sigma must be false');
  if (spec.diffusion.path !== 'linear') throw new Error(`ddt trains on the linear path (x_τ = τ·x + (1 − τ)·ε): diffusion.path must be linear, got ${spec.diffusion.path}`);
  const depth = specDepth(spec);
  if (depth !== undefined) checkEncoderBlocks(encoderBlocksOf(s, depth), depth);
  const sample = spec.sample as { sampler: string; steps?: number };
  if (s.share_period > 1 && sample.sampler !== 'euler') {
    throw new Error(`ddt.share_period ${s.share_period} shares the encoder in DDT's Euler sampler: sample.sampler must be euler, got ${sample.sampler}`);
  }
  if (sample.steps !== undefined && s.share_period > sample.steps) throw new Error(`ddt.share_period ${s.share_period} exceeds sample.steps ${sample.steps}`);
}

function build(s: DDTSection, model: DDT): DDT {
  model.sampling = samplingOf(s);
  return model;
}

export const ddt: MethodDefinition<DDTSection> = {
  name: 'ddt',
  title: 'DDT',
  cite: 'Wang et al., DDT: Decoupled Diffusion Transformer, arXiv 2504.05741 — github.com/MCG-NJU/DDT (src/models/denoiser/decoupled_improved_dit.py, src/diffusion/stateful_flow_matching/sharing_sampling.py)',
  section: { key: 'ddt', schema: DDTSection },
  changes: ['backbone'],
  objective: 'velocity',
  family: 'SiT',
  check,
  blocks: (s): Record<string, number> => (s.encoder_blocks === null ? {} : { 'ddt.encoder_blocks': s.encoder_blocks }),
  backbone: {
    build: (s, c, seed) => build(s, createDDT(c.config, encoderBlocksOf(s, c.config.depth), seed)),
    fromWeights: (s, c, weights) => {
      if (!weights.has('s_embedder.proj.weight')) throw new Error('ddt: the weights have no s_embedder.proj.weight — not a DDT checkpoint');
      return build(s, createDDT(c.config, encoderBlocksOf(s, c.config.depth), 0));
    },
    // The flow step in diffactor's time; DDT.forward converts to DDT's at the boundary (model.ts).
    forward: (_s, model, b, path, dropout) => {
      if (!(model instanceof DDT)) throw new Error('ddt: expected the DDT backbone');
      const { xt, target } = flowTrainingPair(path, b.input, b.eps, b.t);
      const o = model.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps });
      return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
    },
  },
};

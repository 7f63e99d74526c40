// SVG stage 2 (Shi et al., "Latent Diffusion Model without Variational Autoencoder", arXiv
// 2510.15301; official code github.com/shiml20/SVG train_svg.py, rectified_flow/rectified_flow.py,
// models/models_SVG.py, config/example_svg_xl.yaml; methods-b §0 P2 and §6 "Diffusion"): rectified
// flow with the patch-1 DiT with q/k-norm (model.ts) in a frozen latent space — SVG's is a stage-1
// run of the method svg (latent.autoencoder; methods/svg/latent.ts), but the method is generic.
// SVG's time has t = 1 at the data; diffactor's t = 1 is noise. With t_svg = 1 − t:
//   training: t_svg ~ U(0, 1), t_svg ← τ_a(t_svg), a = train_shift 0.4 (biased toward noise), and
//             z_t = (1 − t_svg)·ε + t_svg·x, target x − ε. In diffactor's time that is t ~ U(0, 1),
//             t ← 1 − τ_a(1 − t) = τ_{1/a}(t), x_t = (1 − t)·x + t·ε, target ε − x (the engines' `diff`),
//             and the network is fed 1 − t (model.ts converts at the boundary).
//   sampling: Euler/Heun on τ_b(linspace(0, 1)), b = sample_shift 0.15, constant CFG (model.ts).
//   τ_s(t) = s·t / (1 + (s − 1)·t)  (diffusion/timeSampling.ts; 1 − τ_s(1 − t) = τ_{1/s}(t)).
// Not here: the network (model.ts), the stage-1 autoencoder (methods/svg).
import { z } from 'zod';
import { flowTrainingPair } from '../../diffusion/index.ts';
import { shiftTimes } from '../../diffusion/timeSampling.ts';
import type { MethodDefinition, SpecView } from '../method.ts';
import type { SiTConfig } from '../../models/config.ts';
import { SvgDiT, createSvgDiT } from './model.ts';

const shift = z.number().positive().max(1);

export const SvgDiTSection = z.strictObject({
  /** a of τ_a on SVG's training times (t = 1 data), a ≤ 1 biases them toward noise (example_svg_xl.yaml shift 0.4). */
  train_shift: shift.default(0.4),
  /** b of SVG's sampling grid τ_b(linspace(0, 1)) (sample_svg.py: 0.15). */
  sample_shift: shift.default(0.15),
});
export type SvgDiTSection = z.infer<typeof SvgDiTSection>;

/** diffactor's training times from drawn t ~ U(0, 1): 1 − τ_a(1 − t) = τ_{1/a}(t). */
export function svgTrainingTimes(t: ArrayLike<number>, trainShift: number): Float64Array {
  return shiftTimes(t, 1 / trainShift);
}

function build(s: SvgDiTSection, config: SiTConfig, seed: number): SvgDiT {
  const m = createSvgDiT(config, seed);
  m.trainShift = s.train_shift;
  m.sampleShift = s.sample_shift;
  return m;
}

function check(_s: SvgDiTSection, spec: SpecView): void {
  if (spec.model.learn_sigma) throw new Error('svg-dit predicts a velocity: model.learn_sigma must be false');
  if (spec.diffusion.path !== 'linear') throw new Error(`svg-dit trains rectified flow on the linear path: diffusion.path must be linear, got ${spec.diffusion.path}`);
  const ts = (spec.diffusion as { time_sampling?: string }).time_sampling;
  if (ts !== undefined && ts !== 'uniform') throw new Error(`svg-dit draws SVG's t ~ U(0, 1) before its shift: diffusion.time_sampling must be uniform, got ${ts}`);
  const m = spec.model as { patch_size?: number };
  if (m.patch_size !== undefined && m.patch_size !== 1) throw new Error(`svg-dit embeds each latent token by itself: model.patch_size must be 1, got ${m.patch_size}`);
}

function asSvgDiT(m: unknown): SvgDiT {
  if (!(m instanceof SvgDiT)) throw new Error('svg-dit: expected SVG\'s DiT backbone');
  return m;
}

export const svgDit: MethodDefinition<SvgDiTSection> = {
  name: 'svg-dit',
  title: 'SVG (DiT in the SVG latent)',
  cite: 'Shi et al., Latent Diffusion Model without Variational Autoencoder, arXiv 2510.15301 — github.com/shiml20/SVG (models/models_SVG.py, rectified_flow/rectified_flow.py, train_svg.py)',
  section: { key: 'svg_dit', schema: SvgDiTSection },
  changes: ['backbone'],
  objective: 'velocity',
  family: 'SiT',
  samplers: ['euler', 'heun'],
  check,
  backbone: {
    build: (s, c, seed) => build(s, c.config, seed),
    fromWeights: (s, c, weights) => {
      if (!weights.has('blocks.0.attn.q_norm.weight')) throw new Error('svg-dit: the weights have no blocks.0.attn.q_norm.weight — not a checkpoint of SVG\'s DiT (q/k-norm)');
      return build(s, c.config, 0);
    },
    // The fixed sin-cos table is copied, not averaged.
    emaCopied: (model) => asSvgDiT(model).namedBuffers(),
    // SVG's training step in diffactor's time: the drawn times shifted by τ_{1/a}, the flow pair there.
    forward: (_s, model, b, path, dropout) => {
      const m = asSvgDiT(model);
      const t = svgTrainingTimes(b.t, m.trainShift);
      const { xt, target } = flowTrainingPair(path, b.input, b.eps, t);
      const o = m.forward(xt, t, b.y, { rng: dropout, taps: b.taps });
      return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
    },
  },
};

// REG (Wu et al., "Representation Entanglement for Generation: Training Diffusion Transformers Is
// Much Easier Than You Think", NeurIPS 2025; github.com/Martinser/REG, models/sit.py, loss.py,
// train.py): the encoder's class token g, noised at the image's t with its own ε_g, enters the SiT
// as an extra token (models/reg.ts) and is denoised with the image:
//   L = L_diff + λ · L_proj([g ; P] vs h_φ(h_k) over 1 + T tokens) + β · ‖v̂_g − (ε_g − g)‖²
// It changes the backbone's input, so it combines with methods that do not (REPA, SRA, LayerSync).
// Sampling: REG's SDE sampler over both streams (sampler.ts).
import { z } from 'zod';
import { flowTrainingPair, interpolate } from '../../diffusion/index.ts';
import { RegSiT, createRegSiT } from '../../models/reg.ts';
import type { MethodDefinition } from '../method.ts';
import { ProjectorHeads, singleProjector } from '../projectorHeads.ts';
import { repaProjLoss } from '../repa/loss.ts';
import { regAlignTarget, regClsLoss, regClsPair } from './loss.ts';

const positiveInt = z.number().int().positive();

export const RegSection = z.strictObject({
  /** 1-based block the projector reads (REG train.sh `--encoder-depth` 8 for XL/2, 4 for B). */
  encoder_depth: positiveInt.default(4),
  /** λ (REG train.sh `--proj-coeff` 0.5). */
  proj_coeff: z.number().min(0).default(0.5),
  projector_dim: positiveInt.default(2048),
  /** β of the class-token velocity loss (REG train.sh `--cls` 0.03). */
  cls_coeff: z.number().min(0).default(0.03),
});
export type RegSection = z.infer<typeof RegSection>;

export const reg: MethodDefinition<RegSection> = {
  name: 'reg',
  title: 'REG',
  cite: 'Wu et al., REG, NeurIPS 2025 — github.com/Martinser/REG (models/sit.py, loss.py, samplers.py)',
  section: { key: 'reg', schema: RegSection },
  reads: ['encoder'],
  changes: ['backbone'],
  samplers: ['sde'],
  streams: ['cls-noise'],
  blocks: (s) => ({ 'reg.encoder_depth': s.encoder_depth }),
  heads: (s, c) => singleProjector(c, s.projector_dim, 'reg'),
  taps: (s) => [s.encoder_depth],
  // ε_g ~ N(0, I) of the class token's shape (B, d_enc), independent of the image noise.
  draw: (_s, v, rngs, c) => ({ epsG: rngs['cls-noise'].normal([v.x.shape[0], c.encoderDim!]) }),
  backbone: {
    build: (_s, c, seed) => {
      if (c.encoderDim === null) throw new Error('reg: the class token needs the encoder width');
      return createRegSiT(c.config, c.encoderDim, seed);
    },
    fromWeights: (_s, c, weights) => {
      const w = weights.get('cls_projectors2.weight');
      if (!w || w.ndim !== 2) throw new Error('reg: the weights lack cls_projectors2.weight (D, d_enc), the class-token embedding of a REG model');
      return createRegSiT(c.config, w.shape[1], 0);
    },
    readsFeatures: true,
    // The class token enters every forward, the teacher's too: noised at the query's times with the same ε_g.
    hidden: (_s, model, b, block, path) => {
      if (!(model instanceof RegSiT)) throw new Error('reg: expected the REG SiT');
      const cls = regClsPair(path, b.feats!.cls, b.draws.reg.epsG, b.t);
      return model.forward(interpolate(path, b.input, b.eps, b.t), b.t, b.y, { taps: [block], cls: cls.xt }).hidden.get(block)!;
    },
    prefixTokens: 1,
    forward: (s, model, b, path, dropout) => {
      if (!(model instanceof RegSiT)) throw new Error('reg: expected the REG SiT');
      if (!b.feats) throw new Error('reg: the forward needs the encoder\'s class token');
      const img = flowTrainingPair(path, b.input, b.eps, b.t);
      const cls = regClsPair(path, b.feats.cls, b.draws.reg.epsG, b.t);
      const o = model.forward(img.xt, b.t, b.y, { rng: dropout, taps: b.taps, cls: cls.xt });
      return { out: o.out, target: img.target, hidden: o.hidden, labels: o.labels, terms: { cls: { value: regClsLoss(o.cls, cls.target), weight: s.cls_coeff } } };
    },
  },
  alignTerms: [{
    name: 'proj',
    tap: (s) => s.encoder_depth,
    weight: (s) => s.proj_coeff,
    loss: (_s, heads, h, tg) => repaProjLoss([{ pred: (heads as ProjectorHeads).projector().forward(h), target: regAlignTarget(tg.feats!.cls, tg.feats!.patch) }]),
  }],
};

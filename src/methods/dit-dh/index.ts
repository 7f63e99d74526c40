// RAE stage 2 (Zheng et al., "Diffusion Transformers with Representation Autoencoders", arXiv
// 2510.11690 §4–5; official code github.com/bytetriper/RAE: src/stage2/models/DDT.py, src/train.py,
// src/stage2/transport/transport.py; methods-b §0 P2 and §5): the DiT^DH (model.ts) trained by flow
// matching in a frozen latent space, with the dimension-dependent timestep shift
//   s = √(m / m_base),  m = C·H·W of the model's input (the latent's dimension),
//   τ_s(t) = s·t / (1 + (s − 1)·t)
// applied to every training time after it is drawn (transport.py `sample`: logit-normal, then
// shifted) and to the sampler's grid t_i = τ_s(1 − i/N) (the model's own Euler/Heun: drawOwn). RAE's
// latent space is a stage-1 run checkpoint named by the spec's latent.autoencoder (methods/rae,
// latent.ts); the method itself is generic — the same DiT^DH in a VAE's space is the claim's control.
// Time: diffactor's t = 1 noise is RAE's; x_t = (1 − t)·x + t·ε, target ε − x (the engines' `diff` term).
// Optional AutoGuidance (Karras et al., arXiv 2406.02507; RAE's sampling configs *_AG.yaml): a weak
// DiT^DH from another run checkpoint; v = v_weak + w·(v − v_weak) (autoguidance.ts).
// Our choices at small scale: m_base defaults to 256 = 4×8×8, the shipped stand-in VAE's latent at
// 32 px (methods-b §5 "Small scale": the reference low-dimensional latent; RAE's 4096 is SD-VAE's
// 32×32×4 at 256 px); the head's width/depth/heads are section fields (RAE-XL: 2048, 2, 16); the
// logit-normal times are not truncated to [0, 1 − 1/1000] (ours never reach 0 or 1).
// Not here: the network (model.ts), the latent space (build/latentSpace.ts, methods/rae/latent.ts).
import { z } from 'zod';
import { flowTrainingPair } from '../../diffusion/index.ts';
import { resolutionShift, shiftTimes } from '../../diffusion/timeSampling.ts';
import type { BuildContext, MethodDefinition, SpecView } from '../method.ts';
import type { SiTConfig } from '../../models/config.ts';
import { DiTDH, createDiTDH } from './model.ts';
import { loadWeakModel } from './autoguidance.ts';

const positiveInt = z.number().int().positive();

export const DiTDHSection = z.strictObject({
  /** W, the head's width; must be ≥ the latent's channels (RAE-XL: 2048 for 768-channel tokens). */
  head_width: positiveInt.default(256),
  /** Blocks in the head (RAE: 2). */
  head_depth: positiveInt.default(2),
  /** Attention heads of the head (RAE: 16); head_width / head_heads must be divisible by 4 (RoPE). */
  head_heads: positiveInt.default(4),
  /**
   * m_base of the shift s = √(m / m_base) (RAE: 4096, SD-VAE's 32×32×4 latent at 256 px). Default
   * 256: the stand-in VAE's 4×8×8 latent at 32 px (methods-b §5 "Small scale").
   */
  m_base: positiveInt.default(256),
  /** AutoGuidance at sampling: a weak DiT^DH's run checkpoint (its EMA weights; relative to the spec's folder). null: off. */
  autoguidance: z.string().min(1).nullable().default(null),
  /** AutoGuidance's scale w (RAE: 1.42); 1 is the main model alone. */
  autoguidance_scale: z.number().min(1).default(1.42),
});
export type DiTDHSection = z.infer<typeof DiTDHSection>;

/** The shift s of a model config: √(C·H·W / m_base). */
export function shiftOf(config: SiTConfig, mBase: number): number {
  return resolutionShift(config.inChannels * config.inputSize * config.inputSize, mBase);
}

function build(s: DiTDHSection, config: SiTConfig, seed: number): DiTDH {
  const m = createDiTDH(config, { width: s.head_width, depth: s.head_depth, heads: s.head_heads }, seed);
  m.shift = shiftOf(config, s.m_base);
  if (s.autoguidance) m.weak = loadWeakModel(s.autoguidance, config);
  m.guidanceScale = s.autoguidance ? s.autoguidance_scale : 1;
  return m;
}

function check(s: DiTDHSection, spec: SpecView): void {
  if (spec.model.learn_sigma) throw new Error('dit-dh predicts a velocity: model.learn_sigma must be false');
  if (spec.diffusion.path !== 'linear') throw new Error(`dit-dh trains on RAE's linear path x_t = (1 − t)·x + t·ε: diffusion.path must be linear, got ${spec.diffusion.path}`);
  const m = spec.model as { patch_size?: number };
  if (m.patch_size !== undefined && m.patch_size !== 1) throw new Error(`dit-dh embeds each latent token by itself: model.patch_size must be 1, got ${m.patch_size}`);
  if ((s.head_width / s.head_heads) % 4 !== 0 || s.head_width % s.head_heads !== 0) throw new Error(`dit_dh.head_width ${s.head_width} / dit_dh.head_heads ${s.head_heads} must be a whole head dim divisible by 4 (2-D RoPE)`);
  const cfg = (spec.sample as { cfg?: number }).cfg ?? 1;
  if (s.autoguidance && cfg > 1) {
    throw new Error('dit_dh.autoguidance and sample.cfg > 1 are two guidances: give one (RAE samples with either)');
  }
}

function asDiTDH(m: unknown): DiTDH {
  if (!(m instanceof DiTDH)) throw new Error('dit-dh: expected the DiT^DH backbone');
  return m;
}

export const ditDh: MethodDefinition<DiTDHSection> = {
  name: 'dit-dh',
  title: 'RAE stage 2 (DiT^DH)',
  cite: 'Zheng et al., Diffusion Transformers with Representation Autoencoders, arXiv 2510.11690 — github.com/bytetriper/RAE (src/stage2/models/DDT.py, src/stage2/transport/transport.py, src/train.py)',
  section: { key: 'dit_dh', schema: DiTDHSection },
  changes: ['backbone'],
  objective: 'velocity',
  family: 'SiT',
  samplers: ['euler', 'heun'],
  check,
  files: (s) => ({ 'dit_dh.autoguidance': s.autoguidance }),
  backbone: {
    build: (s, c: BuildContext, seed) => build(s, c.config, seed),
    fromWeights: (s, c, weights) => {
      if (!weights.has('head.x_embedder.weight')) throw new Error('dit-dh: the weights have no head.x_embedder.weight — not a DiT^DH checkpoint');
      return build(s, c.config, 0);
    },
    // The fixed buffers (Fourier W, sin-cos positions) are copied, not averaged.
    emaCopied: (model) => asDiTDH(model).namedBuffers(),
    // RAE's training step: the drawn times shifted by τ_s, then the flow pair at the shifted times.
    forward: (_s, model, b, path, dropout) => {
      const m = asDiTDH(model);
      const t = shiftTimes(b.t, m.shift);
      const { xt, target } = flowTrainingPair(path, b.input, b.eps, t);
      const o = m.forward(xt, t, b.y, { rng: dropout, taps: b.taps });
      return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
    },
  },
};

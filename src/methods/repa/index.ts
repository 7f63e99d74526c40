// REPA (Yu et al., "Representation Alignment for Generation: Training Diffusion Transformers Is
// Easier Than You Think", ICLR 2025; github.com/sihyun-yu/REPA, loss.py and train.py):
//   L = L_diff + λ · L_proj,   L_proj = −mean_{n,tokens} cos(h_φ(h_k), y*)
// h_k the student's hidden state after block k (`encoder_depth`), h_φ the projector MLP, y* the
// frozen encoder's patch tokens of the clean image. Heads: `projectors.0` on the Projector actor.
import { z } from 'zod';
import type { MethodDefinition } from '../method.ts';
import { imageTokens } from '../flowForward.ts';
import { ProjectorHeads, singleProjector } from '../projectorHeads.ts';
import { repaProjLoss } from './loss.ts';

const positiveInt = z.number().int().positive();

export const RepaSection = z.strictObject({
  /** 1-based block whose output the projector reads (REPA train.py `--encoder-depth`: 8 for XL/2, 4 for B). */
  encoder_depth: positiveInt.default(4),
  /** λ (REPA train.py `--proj-coeff` 0.5). */
  proj_coeff: z.number().min(0).default(0.5),
  /** Hidden width of the projector MLP (REPA models/sit.py build_mlp, 2048). */
  projector_dim: positiveInt.default(2048),
});
export type RepaSection = z.infer<typeof RepaSection>;

export const repa: MethodDefinition<RepaSection> = {
  name: 'repa',
  title: 'REPA',
  cite: 'Yu et al., REPA, ICLR 2025 — github.com/sihyun-yu/REPA (loss.py, models/sit.py, train.py)',
  section: { key: 'repa', schema: RepaSection },
  reads: ['encoder'],
  blocks: (s) => ({ 'repa.encoder_depth': s.encoder_depth }),
  heads: (s, c) => singleProjector(c, s.projector_dim, 'repa'),
  taps: (s) => [s.encoder_depth],
  alignTerms: [{
    name: 'proj',
    tap: (s) => s.encoder_depth,
    weight: (s) => s.proj_coeff,
    loss: (_s, heads, h, tg) => repaProjLoss([{ pred: (heads as ProjectorHeads).projector().forward(imageTokens(h, tg.prefixTokens)), target: tg.feats!.patch }]),
  }],
};

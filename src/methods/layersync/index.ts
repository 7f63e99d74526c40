// LayerSync (Haghighi et al., "LayerSync: Self-aligning Intermediate Layers", ICLR 2026;
// github.com/vita-epfl/LayerSync, transport/transport.py L116-187, models.py): parameter-free
// alignment between two blocks of the same forward,
//   L = L_diff + λ · mean_{n,tokens} −cos(h_s, sg(h_t))
// h_s after block `student_block`, h_t after the deeper block `teacher_block` (detached), cosine
// along the feature axis per token; λ = `reg_weight` 0.2. No heads, no extra actor: the Student
// computes it from its own forward. The official code's time runs the other way (t = 1 is data,
// x_t = t·x + (1 − t)·ε, target x − ε); diffactor's is t = 0 data with target ε − x: the two meet
// at t_ours = 1 − t_LayerSync and v_ours = −u_LayerSync (fromLayerSyncTime below, tested).
import { z } from 'zod';
import type { Tensor } from '../../tensor/tensor.ts';
import { detach } from '../../autograd/tape.ts';
import { cosineSimilarity, mean, neg } from '../../autograd/ops/index.ts';
import type { MethodDefinition } from '../method.ts';
import { imageTokens } from '../flowForward.ts';

const positiveInt = z.number().int().positive();

export const LayerSyncSection = z.strictObject({
  /** 1-based block pulled toward the deeper one (`--encoder-depth`; README XL/2: 8 of 28). */
  student_block: positiveInt.default(8),
  /** The deeper block, detached (`--gt-encoder-depth`; README XL/2: 16 of 28). Must be ≥ student_block. */
  teacher_block: positiveInt.default(16),
  /** λ (`--reg-weight` 0.2). */
  reg_weight: z.number().min(0).default(0.2),
});
export type LayerSyncSection = z.infer<typeof LayerSyncSection>;

/** mean over (B, T) of −cos(h_s, sg(h_t)) along D: in [−1, 1], −1 when the two agree in direction. */
export function layerSyncLoss(hs: Tensor, ht: Tensor): Tensor {
  return neg(mean(cosineSimilarity(hs, detach(ht), -1, 1e-8))); // ()
}

/** A LayerSync time (t = 1 data) as diffactor's (t = 0 data). Its own inverse. */
export const fromLayerSyncTime = (t: number): number => 1 - t;

export const layerSync: MethodDefinition<LayerSyncSection> = {
  name: 'layersync',
  title: 'LayerSync',
  cite: 'Haghighi et al., LayerSync, ICLR 2026 — github.com/vita-epfl/LayerSync (transport/transport.py, models.py)',
  section: { key: 'layersync', schema: LayerSyncSection },
  blocks: (s) => ({ 'layersync.student_block': s.student_block, 'layersync.teacher_block': s.teacher_block }),
  check: (s, spec) => {
    if (s.teacher_block < s.student_block) {
      throw new Error(`spec '${spec.name}': layersync.teacher_block (${s.teacher_block}) must be at least layersync.student_block (${s.student_block}): the deeper block is the target`);
    }
  },
  taps: (s) => [s.student_block, s.teacher_block],
  studentTerms: (s, f, v) => ({
    sync: { value: layerSyncLoss(imageTokens(f.hidden.get(s.student_block)!, v.prefixTokens), imageTokens(f.hidden.get(s.teacher_block)!, v.prefixTokens)), weight: s.reg_weight },
  }),
};

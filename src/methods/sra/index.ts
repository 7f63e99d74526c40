// SRA (Jiang et al., "No Other Representation Component Is Needed: Diffusion Transformers Can
// Provide Representation Guidance by Themselves", 2025; github.com/vvvvvjdy/SRA, SiT-SRA/loss.py,
// models/sit.py, train.py):
//   L = L_diff + w(epoch) · L_align(head(h_Ls(x_t, t)), sg(h̄_LT(x_tT, t_T))),  t_T = clamp(t − u·t_max, 0, 1)
// the student's block L_s through its head `ap_head` against the EMA teacher's deeper block L_T at a
// less noisy time, same x, ε and post-dropout labels. The teacher is the run's EMA model: its lag
// behind the student is what SRA aligns to, so the EMA decay is part of the method (teacher_ema).
import { z } from 'zod';
import { Module } from '../../nn/module.ts';
import type { MethodDefinition } from '../method.ts';
import { SimpleHead, sraAlignLoss, sraAlignWeight, sraTeacherTimes } from './loss.ts';

const positiveInt = z.number().int().positive();

/**
 * SRA's teacher EMA (SiT-SRA train.py: decay 0.9999, no warm-up: time constant 1/(1 − d) = 10⁴
 * steps) and the run length of its headline results (400K steps).
 */
export const SRA_PAPER_EMA = 0.9999;
const SRA_PAPER_TAU = 10_000;
export const SRA_PAPER_STEPS = 400_000;

export const SraSection = z.strictObject({
  /** L_s and L_T: 1-based blocks of the student (through the head) and of the EMA teacher (SiT-XL: 8 and 20). */
  student_block: positiveInt.default(4),
  teacher_block: positiveInt.default(8),
  /** Largest teacher-time offset (SiT-SRA train.py `--max-t` 0.2). */
  t_max: z.number().min(0).max(1).default(0.2),
  loss: z.enum(['cos', 'sml1', 'l1', 'l2']).default('cos'),
  /** cos only: tokens = the official cosine over dim 1 (across tokens); features = per token. */
  cos_axis: z.enum(['tokens', 'features']).default('tokens'),
  sml1_beta: z.number().positive().default(0.05),
  /** Default: constant for cos, epoch-decay otherwise (official). */
  weight_schedule: z.enum(['constant', 'epoch-decay']).optional(),
  /** Default: 0.5 for cos, 0.2 otherwise (official). */
  weight: z.number().min(0).optional(),
  decay_start_epoch: z.number().min(0).default(149),
  decay_epochs: z.number().positive().default(1000),
  /** Steps counted as one epoch by the epoch-decay schedule; default: floor(dataset size / batch size). */
  steps_per_epoch: positiveInt.optional(),
  /**
   * The EMA teacher's decay. `scaled` (default): no warm-up, and a decay whose time constant
   * 1/(1 − d) is the same fraction of this run as the paper's 1/(1 − 0.9999) = 10⁴ steps is of its
   * 400K-step runs (1/40), so a 600-step run keeps the teacher 15 steps behind, as the paper's
   * keeps it 10K steps behind; train.ema_decay / ema_warmup are then not used. `literal`: the
   * spec's train.ema_decay and ema_warmup as written (0.9999 without warm-up is the paper's).
   */
  teacher_ema: z.enum(['scaled', 'literal']).default('scaled'),
}).transform((s) => ({
  ...s,
  weight_schedule: s.weight_schedule ?? (s.loss === 'cos' ? 'constant' as const : 'epoch-decay' as const),
  weight: s.weight ?? (s.loss === 'cos' ? 0.5 : 0.2),
}));
export type SraSection = z.infer<typeof SraSection>;

/** The decay whose lag is the paper's fraction of a run of `steps` steps: 1 − N_paper / (τ_paper·N) (= 1 − 40/N), at least 0. */
export function scaledTeacherDecay(steps: number): number {
  return Math.max(0, 1 - SRA_PAPER_STEPS / (SRA_PAPER_TAU * steps));
}

class SraHeads extends Module {
  readonly ap_head: SimpleHead;
  constructor(head: SimpleHead) {
    super();
    this.ap_head = this.child('ap_head', head);
  }
}

export const sra: MethodDefinition<SraSection> = {
  name: 'sra',
  title: 'SRA',
  cite: 'Jiang et al., SRA, 2025 — github.com/vvvvvjdy/SRA (SiT-SRA/loss.py, models/sit.py, train.py)',
  section: { key: 'sra', schema: SraSection },
  streams: ['teacher-offset'],
  blocks: (s) => ({ 'sra.student_block': s.student_block, 'sra.teacher_block': s.teacher_block }),
  heads: (_s, c) => new SraHeads(new SimpleHead(c.config.hiddenSize, c.config.hiddenSize, c.rng.child('ap_head'))),
  taps: (s) => [s.student_block],
  ema: (s, spec) => (s.teacher_ema === 'scaled' ? { decay: scaledTeacherDecay(spec.train.steps), warmup: false } : null),
  draw: (s, v, rngs) => ({
    tT: sraTeacherTimes(v.t, rngs['teacher-offset'].uniformArray(v.t.length), s.t_max),
    w: sraAlignWeight(Math.floor((v.step - 1) / (s.steps_per_epoch ?? v.stepsPerEpoch)), {
      kind: s.weight_schedule, weight: s.weight, startEpoch: s.decay_start_epoch, spanEpochs: s.decay_epochs,
    }),
  }),
  teacher: (s, v) => ({ block: s.teacher_block, t: v.draws.sra.tT }),
  alignTerms: [{
    name: 'align',
    tap: (s) => s.student_block,
    weight: (_s, v) => v.draws.sra.w,
    loss: (s, heads, h, tg) => sraAlignLoss((heads as SraHeads).ap_head.forward(h), tg.teacher!, { kind: s.loss, beta: s.sml1_beta, cosAxis: s.cos_axis }),
  }],
  logged: (_s, v) => ({ align_weight: v.draws.sra.w }),
};

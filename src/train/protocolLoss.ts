// The loss of one flow-matching training step for each protocol of the reference trainer, on a
// batch the trainer fetched and noised: sit-baseline (velocity loss), repa (§1: + λ·L_proj on the
// projected block-k tokens against the frozen encoder's patch tokens), sra (§2: + w·L_align of
// the student head at (L_s, t_s) against the EMA teacher's block L_T at t_T ≤ t_s, same x, ε and
// post-dropout labels, teacher under noGrad), reg (§3: the class token noised at the same t with
// its own ε_g, + λ·L_proj over 1+T tokens + β·class velocity loss). Named RNG streams: time,
// dropout (the trainer's), teacher-offset (SRA's u), cls-noise (REG's ε_g), posterior (REPA-E's
// ξ of z = μ + σ·ξ). REPA-E's step updates the VAE before the SiT, so it is not one loss: its
// order is Trainer.repaeStep's, its pieces methods/repa-e/pieces.ts. Not here: DDPM, the optimiser step,
// EMA (trainer.ts).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { noGrad } from '../autograd/tape.ts';
import { flowTrainingPair, interpolate, velocityLoss, type Interpolant } from '../diffusion/index.ts';
import { SiT } from '../models/sit.ts';
import { RegSiT } from '../models/reg.ts';
import {
  hiddenAfterBlock, regAlignTarget, regClsLoss, regClsPair, regTotalLoss, repaProjLoss, repaTotalLoss,
  sraAlignLoss, sraAlignWeight, sraTeacherTimes, sraTotalLoss, type FrozenEncoder,
} from '../methods/index.ts';
import type { RunSpec } from '../spec/schema.ts';
import { section, type Backbone, type MethodHeads } from './methodParts.ts';

export interface FlowBatch {
  /** (B, C, H, W) clean data, (B) labels, (B, C, H, W) noise, (B) times. */
  x: Tensor;
  y: Int32Array;
  eps: Tensor;
  t: Float64Array;
}

export interface FlowStepContext {
  spec: RunSpec;
  path: Interpolant;
  model: Backbone;
  emaModel: Backbone;
  heads: MethodHeads | null;
  encoder: FrozenEncoder | null;
  rngs: Record<string, Rng>;
  /** 0-based index of this step (steps completed before it). */
  stepIndex: number;
  stepsPerEpoch: number;
}

export interface StepLoss {
  loss: Tensor;
  terms: Record<string, number>;
}

/** The extra RNG streams a protocol draws from, beyond time / noise / dropout. */
export function protocolStreams(protocol: RunSpec['protocol']): string[] {
  if (protocol === 'sra') return ['teacher-offset'];
  if (protocol === 'reg') return ['cls-noise'];
  if (protocol === 'repa-e') return ['posterior'];
  return [];
}

function heads(c: FlowStepContext): MethodHeads {
  if (!c.heads) throw new Error(`protocol ${c.spec.protocol} needs its heads`);
  return c.heads;
}

function asSiT(m: Backbone, who: string): SiT {
  if (!(m instanceof SiT)) throw new Error(`${who} needs a SiT`);
  return m;
}

export function flowStepLoss(c: FlowStepContext, b: FlowBatch): StepLoss {
  const { x, y, eps, t } = b;
  const dropout = c.rngs.dropout;
  switch (c.spec.protocol) {
    case 'sit-baseline': {
      const { xt, target } = flowTrainingPair(c.path, x, eps, t);
      const { out } = asSiT(c.model, 'sit-baseline').forward(xt, t, y, { rng: dropout });
      return { loss: velocityLoss(out, target).loss, terms: {} };
    }
    case 'repa': {
      const s = section(c.spec, 'repa');
      const feats = c.encoder!.features(x); // (B, T, Dz) under noGrad
      const { xt, target } = flowTrainingPair(c.path, x, eps, t);
      const { out, hidden } = asSiT(c.model, 'repa').forward(xt, t, y, { rng: dropout, taps: [s.encoder_depth] });
      const diff = velocityLoss(out, target).loss;
      const proj = repaProjLoss([{ pred: heads(c).projector().forward(hidden.get(s.encoder_depth)!), target: feats.patch }]);
      return { loss: repaTotalLoss(diff, proj, s.proj_coeff), terms: { diff: diff.item(), proj: proj.item() } };
    }
    case 'sra': {
      const s = section(c.spec, 'sra');
      const tT = sraTeacherTimes(t, c.rngs['teacher-offset'].uniformArray(t.length), s.t_max);
      const { xt, target } = flowTrainingPair(c.path, x, eps, t);
      const student = asSiT(c.model, 'sra').forward(xt, t, y, { rng: dropout, taps: [s.student_block] });
      const u = heads(c).head().forward(student.hidden.get(s.student_block)!); // (B, T, D)
      const teacher = asSiT(c.emaModel, 'sra teacher');
      const hT = noGrad(() => hiddenAfterBlock(teacher, interpolate(c.path, x, eps, tT), tT, student.labels, s.teacher_block)); // (B, T, D)
      const diff = velocityLoss(student.out, target).loss;
      const align = sraAlignLoss(u, hT, { kind: s.loss, beta: s.sml1_beta, cosAxis: s.cos_axis });
      const w = sraAlignWeight(Math.floor(c.stepIndex / c.stepsPerEpoch), {
        kind: s.weight_schedule, weight: s.weight, startEpoch: s.decay_start_epoch, spanEpochs: s.decay_epochs,
      });
      return { loss: sraTotalLoss(diff, align, w), terms: { diff: diff.item(), align: align.item(), align_weight: w } };
    }
    case 'reg': {
      const s = section(c.spec, 'reg');
      const model = c.model;
      if (!(model instanceof RegSiT)) throw new Error('reg needs the REG model');
      const feats = c.encoder!.features(x); // patch (B, T, Dz), cls (B, Dz)
      const epsG = c.rngs['cls-noise'].normal(feats.cls.shape); // (B, Dz), independent of eps
      const img = flowTrainingPair(c.path, x, eps, t);
      const cls = regClsPair(c.path, feats.cls, epsG, t);
      const o = model.forward(img.xt, t, y, { rng: dropout, taps: [s.encoder_depth], cls: cls.xt });
      const diff = velocityLoss(o.out, img.target).loss;
      const proj = repaProjLoss([{ pred: heads(c).projector().forward(o.hidden.get(s.encoder_depth)!), target: regAlignTarget(feats.cls, feats.patch) }]);
      const clsLoss = regClsLoss(o.cls, cls.target);
      return {
        loss: regTotalLoss(diff, proj, clsLoss, s.proj_coeff, s.cls_coeff),
        terms: { diff: diff.item(), proj: proj.item(), cls: clsLoss.item() },
      };
    }
    case 'repa-e':
      throw new Error('repa-e updates the VAE before the SiT: its step is Trainer.repaeStep, not one loss');
    default:
      throw new Error(`protocol ${c.spec.protocol} is not a flow-matching protocol`);
  }
}

// DeepFlow (Shin et al., "Deeply Supervised Flow-Based Generative Models", ICCV 2025, arXiv
// 2503.14494; official code github.com/ByteDance-Seed/DeepFlow: models/deepflow.py,
// models/blocks.py, loss.py, samplers.py, script/base/train.sh): the SiT trunk cut into K branches,
// each predicting the velocity at its own slightly shifted time (deep supervision), with a VeRA
// block between branches (model.ts, vera.ts):
//   L = Σ_{k<K} w_k·L_ds,k (`ds_k`) + L_diff (branch K, weight 1, as the official 1.0) + λ_acc·L_acc (`acc`)
// with the velocity detached inside L_acc (loss.ts). Times: t_1 from the run's time sampler, the
// other branches' from the coordinator's stream `deepflow-gaps` (one sign per batch, U[0,1)·β per
// sample and cut). Time convention: the official one is diffactor's (t = 1 noise), the conversion
// is the identity. Sampling and evaluation run the model with every branch at the same t and use
// v_K only (the official deepflow_euler_maruyama_sampler's call), through diffactor's own samplers.
// Our choices: the default cut is the middle block (official B: depth 12, df_idxs [6]); the
// intermediate velocity target is velocityTarget at t_k (ε − x for the linear path, as the
// official code; the official code reuses t_1's target under the cosine path); no SSL projectors
// of its own (combine with `repa`, whose tap after a cut reads h', where the official projectors read).
import { z } from 'zod';
import { flowTrainingPair, velocityLoss, velocityTarget } from '../../diffusion/index.ts';
import { sitPreset } from '../../models/presets.ts';
import type { MethodDefinition, SpecView, WeightedTerm } from '../method.ts';
import { DeepFlowSiT, checkCuts, createDeepFlowSiT, type DeepFlowShape } from './model.ts';
import { accelerationLoss, branchTimes } from './loss.ts';

const positiveInt = z.number().int().positive();

export const DeepFlowSection = z.strictObject({
  /** df_idxs: 1-based blocks after which a branch ends; null = the middle block ⌊depth/2⌋ (official B: [6] of 12; XL: [8, 16] of 24). */
  branch_blocks: z.array(positiveInt).nullable().default(null),
  /** w_k of the intermediate branches (official scale_weight without its last 1.0: B [0.2], XL [0.2, 0.2]); null = 0.2 each. */
  branch_weights: z.array(z.number().min(0)).nullable().default(null),
  /** β, the time-gap upper bound (official tg_upper_bound 0.01). */
  time_gap: z.number().min(0).max(1).default(0.01),
  /** Weight of L_acc (official 1.0). */
  acc_weight: z.number().min(0).default(1),
  /** ACC_MLP hidden width Pm (official projector_dim 2048). */
  acc_hidden: positiveInt.default(2048),
  /** Clamp the time-gap modulation's scale to [−5, 5] (official legacy_scaling, default true). */
  legacy_scaling: z.boolean().default(true),
});
export type DeepFlowSection = z.infer<typeof DeepFlowSection>;

const STREAM = 'deepflow-gaps';

const cutsOf = (s: DeepFlowSection, depth: number): number[] => s.branch_blocks ?? [Math.floor(depth / 2)];
const cutCount = (s: DeepFlowSection): number => s.branch_blocks?.length ?? 1;
const shapeOf = (s: DeepFlowSection, depth: number): DeepFlowShape => ({ cuts: cutsOf(s, depth), accHidden: s.acc_hidden, legacyScaling: s.legacy_scaling });
const weightsOf = (s: DeepFlowSection): number[] => s.branch_weights ?? new Array<number>(cutCount(s)).fill(0.2);

function asDeepFlow(model: unknown): DeepFlowSiT {
  if (!(model instanceof DeepFlowSiT)) throw new Error('deepflow: expected the DeepFlow SiT backbone');
  return model;
}

function specDepth(spec: SpecView): number | undefined {
  const m = spec.model as { preset?: string; depth?: number };
  if (m.depth !== undefined) return m.depth;
  try { return m.preset ? sitPreset(m.preset.replace(/^DiT-/, 'SiT-')).depth : undefined; } catch { return undefined; }
}

function check(s: DeepFlowSection, spec: SpecView): void {
  if (s.branch_weights && s.branch_weights.length !== cutCount(s)) {
    throw new Error(`deepflow.branch_weights has ${s.branch_weights.length} weights but deepflow.branch_blocks makes ${cutCount(s)} intermediate branches (one weight each; the last branch is the velocity loss, weight 1)`);
  }
  if (spec.model.learn_sigma) throw new Error('deepflow trains a flow (velocity) model: model.learn_sigma must be false');
  const depth = specDepth(spec);
  if (depth !== undefined) checkCuts(cutsOf(s, depth), depth);
}

export const deepflow: MethodDefinition<DeepFlowSection> = {
  name: 'deepflow',
  title: 'DeepFlow',
  cite: 'Shin et al., DeepFlow, ICCV 2025 — arXiv 2503.14494, github.com/ByteDance-Seed/DeepFlow (models/deepflow.py, models/blocks.py, loss.py)',
  section: { key: 'deepflow', schema: DeepFlowSection },
  changes: ['backbone'],
  objective: 'velocity',
  family: 'SiT',
  streams: [STREAM],
  check,
  blocks: (s) => Object.fromEntries((s.branch_blocks ?? []).map((k, i) => [`deepflow.branch_blocks[${i}]`, k])),
  // One U(0,1) for the batch's sign (< 0.5: +, as the official random.random() < 0.5), then per cut B uniforms.
  draw: (s, v, rngs) => {
    const rng = rngs[STREAM];
    const sign = rng.uniformArray(1)[0] < 0.5 ? 1 : -1;
    const u = Array.from({ length: cutCount(s) }, () => rng.uniformArray(v.t.length));
    return { sign, times: branchTimes(v.t, sign, s.time_gap, u) };
  },
  backbone: {
    build: (s, c, seed) => createDeepFlowSiT(c.config, shapeOf(s, c.config.depth), seed),
    fromWeights: (s, c, weights) => {
      const vera = new Set([...weights.keys()].filter((k) => /^df_blocks\.\d+\./.test(k)).map((k) => k.split('.')[1])).size;
      if (vera !== cutCount(s)) throw new Error(`deepflow: the weights hold ${vera} VeRA blocks (df_blocks.N.*) but deepflow.branch_blocks makes ${cutCount(s)} cuts`);
      return createDeepFlowSiT(c.config, shapeOf(s, c.config.depth), 0);
    },
    forward: (s, model, b, path, dropout) => {
      const m = asDeepFlow(model);
      const times = b.draws.deepflow?.times as Float64Array[] | undefined;
      if (!times || times.length !== m.branches) throw new Error(`deepflow: the step's draws lack the ${m.branches} branch times (draws.deepflow.times)`);
      const { xt, target } = flowTrainingPair(path, b.input, b.eps, b.t); // x_{t_1}, v* (t_1 = times[0] = b.t)
      const o = m.forwardBranches(xt, times, b.y, { rng: dropout, taps: b.taps });
      const terms: Record<string, WeightedTerm> = {};
      weightsOf(s).forEach((w, k) => {
        terms[`ds_${k + 1}`] = { value: velocityLoss(o.velocities[k], velocityTarget(path, b.input, b.eps, times[k])).loss, weight: w };
      });
      if (m.branches > 1) terms.acc = { value: accelerationLoss(path, b.input, b.eps, times, o.velocities, o.accelerations), weight: s.acc_weight };
      return { out: o.velocities[m.branches - 1], target, hidden: o.hidden, labels: o.labels, terms };
    },
  },
  logged: (_s, v) => ({ gap_sign: v.draws.deepflow.sign }),
};

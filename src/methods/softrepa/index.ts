// SoftREPA (Lee et al., "Aligning Text to Image in Diffusion Models is Easier Than You Think",
// arXiv 2503.08250; official code github.com/softrepa/SoftREPA: `train.py`, `transformer.py`,
// `sampler.py`, `run_train.sh`): a frozen text-to-image model gains a few trainable soft text
// tokens, trained with a contrastive loss over the denoising errors of every image under every
// caption of the batch (loss.ts). At small scale (issue 12, item 4; methods-b.md §4) it runs in
// two stages of one method, each its own spec and run:
//   stage 'pretrain'  the caption-conditioned SiT (model.ts) trained by plain velocity matching on
//                     template captions of the class names (captions.ts), caption dropout to the
//                     null caption at the model's class dropout (specs/softrepa-pretrain.yaml);
//   stage 'soft'      that model loaded from `init` (a stage-1 checkpoint's EMA weights, or an
//                     exported weights file) and frozen; only `dc_tokens` trains, on
//                     L = CE(s·exp(−E/τ)) + dweight · mean_i E[i,i]   (specs/softrepa.yaml).
// Sampling and evaluation read the labels as captions: class c samples with the first template's
// caption of c, the null class is the null caption, and a stage-2 model uses its soft tokens in
// both branches of guidance, as the paper's sampler does.
// Time: SD3 draws one integer t ∈ {0..999} per batch with z = (1 − t/1000)·x + (t/1000)·ε, target
// ε − x; diffactor's time (t = 0 data) is the same with t/1000 continuous; the shared t and ε
// are the coordinator's first draws, t[0] (mapped into `t_range`) and ε[0] (loss.ts sharedNoising).
import { z } from 'zod';
import { readSafetensors } from '../../io/safetensors.ts';
import { indexSelect } from '../../autograd/index.ts';
import { flowTrainingPair } from '../../diffusion/index.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import type { SiTConfig } from '../../models/config.ts';
import { existsSync } from 'node:fs';
import type { MethodDefinition, StudentForward } from '../method.ts';
import { ATTRIBUTES, CaptionVocab, DEFAULT_CLASS_NAMES, TEMPLATES } from './captions.ts';
import { CaptionSiT, createCaptionSiT, type CaptionSiTOptions } from './model.ts';
import { SOFTREPA_SCALE, SOFTREPA_TEMPERATURE, pairErrors, pairIndices, sharedNoising, softRepaLoss } from './loss.ts';

const positiveInt = z.number().int().positive();

export const SoftRepaSection = z.strictObject({
  /** Which stage this run trains: the caption-conditioned SiT ('pretrain') or its soft tokens ('soft'). */
  stage: z.enum(['pretrain', 'soft']).default('soft'),
  /**
   * Stage 'soft': the stage-1 model to load and freeze — a training checkpoint (its EMA weights) or
   * a `diffactor export` file. null: a seed-initialised frozen model (tests only: nothing to align).
   */
  init: z.string().min(1).nullable().default(null),
  /** Blocks 1..soft_layers get soft tokens (SD3: 5 of 24 joint blocks; small scale: early blocks). */
  soft_layers: positiveInt.default(2),
  /** Soft tokens per block (transformer.py: 4). */
  soft_tokens: positiveInt.default(4),
  /** Width of the frozen text encoder's space (ours; T5's 4096 in SD3). */
  text_dim: positiveInt.default(32),
  /** Caption length in tokens, begin and pads included (ours: the longest template caption fits). */
  max_tokens: positiveInt.default(10),
  /** Class names the captions use, index = label; null: Fashion-MNIST's ten. */
  class_names: z.array(z.string().min(1)).min(1).nullable().default(null),
  /** Logit scale s (train.py: 4.0, a parameter left out of the optimiser). */
  scale: z.number().positive().default(SOFTREPA_SCALE),
  /** Temperature τ (train.py: 0.07, likewise fixed). */
  temperature: z.number().positive().default(SOFTREPA_TEMPERATURE),
  /** Weight of mean_i E[i,i] beside the contrastive loss (run_train.sh: 0 for SD3, 10 for SD1.5/SDXL). */
  dweight: z.number().min(0).default(0),
  /**
   * [lo, hi]: stage 2's shared time is lo + (hi − lo)·t[0], t[0] the coordinator's first draw
   * (train.py --min_t 0 --max_t 1000 over 1000 steps: the whole range, [0, 1]).
   */
  t_range: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0, 1]),
});
export type SoftRepaSection = z.infer<typeof SoftRepaSection>;

const STREAM = 'softrepa-captions';

function modelOptions(s: SoftRepaSection): CaptionSiTOptions {
  return {
    vocab: new CaptionVocab(s.class_names ?? DEFAULT_CLASS_NAMES, s.max_tokens),
    textDim: s.text_dim,
    soft: s.stage === 'soft' ? { layers: s.soft_layers, tokens: s.soft_tokens } : null,
  };
}

function asCaptionSiT(model: unknown): CaptionSiT {
  if (!(model instanceof CaptionSiT)) throw new Error('softrepa: expected the caption-conditioned SiT backbone');
  return model;
}

/** The model weights of a stage-1 file: a checkpoint's `ema.` tensors, or an export's unprefixed ones (build/checkpoint.ts formats). */
export function stageOneWeights(file: string): Map<string, Tensor> {
  if (!existsSync(file)) throw new Error(`softrepa.init: ${file} does not exist: train stage 1 first (npx diffactor train --spec specs/softrepa-pretrain.yaml), or name its checkpoint or export`);
  const { tensors, metadata } = readSafetensors(file);
  const format = metadata?.format;
  if (format === 'diffactor-checkpoint/1') return new Map([...tensors].filter(([k]) => k.startsWith('ema.')).map(([k, t]) => [k.slice(4), t]));
  if (format === 'diffactor-weights/1') return new Map([...tensors].filter(([k]) => !k.startsWith('vae.')));
  throw new Error(`softrepa.init: ${file} is not a diffactor checkpoint or weights file (format '${format}')`);
}

/** Stage 2's model: the stage-1 weights (all but dc_tokens) loaded, everything but dc_tokens frozen. */
function buildSoft(s: SoftRepaSection, config: SiTConfig, seed: number): CaptionSiT {
  const m = createCaptionSiT(config, modelOptions(s), seed);
  if (s.init) {
    const w = stageOneWeights(s.init);
    if (w.has('dc_tokens')) throw new Error(`softrepa.init: ${s.init} already holds soft tokens (dc_tokens); name a stage 'pretrain' model`);
    w.set('dc_tokens', m.dc_tokens!);
    try { m.loadStateDict(w); } catch (e) { throw new Error(`softrepa.init: ${s.init} does not fit this caption-conditioned SiT (same model and softrepa text fields as stage 1?): ${(e as Error).message}`); }
  }
  return m.freezeBase();
}

export const softRepa: MethodDefinition<SoftRepaSection> = {
  name: 'softrepa',
  title: 'SoftREPA',
  cite: 'Lee et al., Aligning Text to Image in Diffusion Models is Easier Than You Think — arXiv 2503.08250, github.com/softrepa/SoftREPA',
  section: { key: 'softrepa', schema: SoftRepaSection },
  changes: ['backbone', 'objective'],
  streams: [STREAM],
  check: (s, spec) => {
    if (s.stage === 'pretrain' && s.init) throw new Error("softrepa.init is read in stage 'soft' only (stage 'pretrain' trains the model it names)");
    if (spec.model.learn_sigma) throw new Error('softrepa trains a velocity model: model.learn_sigma must be false');
    if (!(s.t_range[0] < s.t_range[1])) throw new Error(`softrepa.t_range must be [lo, hi] with lo < hi, got [${s.t_range.join(', ')}]`);
    if (s.stage === 'soft' && spec.train.batch_size < 2) throw new Error(`softrepa contrasts B ≥ 2 image–caption pairs: train.batch_size is ${spec.train.batch_size}`);
    modelOptions(s); // the captions fit max_tokens
  },
  files: (s) => ({ 'softrepa.init': s.init }),
  // A template and an attribute per sample (stage 1 and 2 alike: the captions vary, the class stays).
  draw: (_s, v, rngs) => {
    const b = v.x.shape[0];
    return { template: Array.from(rngs[STREAM].randintArray(0, TEMPLATES.length, b)), attribute: Array.from(rngs[STREAM].randintArray(0, ATTRIBUTES.length, b)) };
  },
  diffWeight: (s) => (s.stage === 'soft' ? s.dweight : 1),
  backbone: {
    build: (s, c, seed) => (s.stage === 'soft' ? buildSoft(s, c.config, seed) : createCaptionSiT(c.config, modelOptions(s), seed)),
    fromWeights: (s, c, weights) => {
      if (weights.has('dc_tokens') !== (s.stage === 'soft')) {
        throw new Error(`softrepa: the weights ${weights.has('dc_tokens') ? 'hold' : 'lack'} soft tokens (dc_tokens) but softrepa.stage is '${s.stage}'`);
      }
      return createCaptionSiT(c.config, modelOptions(s), 0);
    },
    forward: (s, model, b, path, dropout): StudentForward => {
      const m = asCaptionSiT(model);
      const d = b.draws.softrepa as { template: number[]; attribute: number[] };
      const captions = m.vocab.batch(b.y, d.template, d.attribute); // (B·L)
      if (s.stage === 'pretrain') {
        const { xt, target } = flowTrainingPair(path, b.input, b.eps, b.t);
        const o = m.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps, captions });
        return { out: o.out, target, hidden: o.hidden, labels: o.labels, terms: {} };
      }
      // Stage 2: B² pairs (image i, caption j) sharing one t and one ε; no caption dropout.
      const B = b.y.length, L = m.vocab.maxTokens, { image, caption } = pairIndices(B);
      const [lo, hi] = s.t_range;
      const { xt, target, t } = sharedNoising(path, b.input, b.eps, [lo + (hi - lo) * b.t[0]]);
      const pairCaptions = new Int32Array(B * B * L);
      caption.forEach((j, k) => pairCaptions.set(captions.subarray(j * L, (j + 1) * L), k * L));
      const o = m.forward(indexSelect(xt, 0, image), new Float64Array(B * B).fill(t[0]), Array.from(caption, (j) => b.y[j]), { taps: b.taps, captions: pairCaptions });
      const diag = Int32Array.from({ length: B }, (_, i) => i * B + i);
      const e = pairErrors(o.out, target); // (B, B)
      const hidden = new Map([...o.hidden].map(([k, h]) => [k, indexSelect(h, 0, diag)]));
      return { out: indexSelect(o.out, 0, diag), target, hidden, labels: Int32Array.from(b.y), terms: { contrastive: { value: softRepaLoss(e, s.scale, s.temperature), weight: 1 } } };
    },
  },
};

// UniFlow (Yue et al., "UniFlow: A Unified Pixel Flow Tokenizer for Visual Understanding and
// Generation", ICLR'26, arXiv 2510.10575; methods-b §9), stage `tokenizer`: a student encoder E_U
// initialised as an exact copy of the run's frozen encoder E_T (the stand-in, spec section
// `encoder`) and a patch-wise pixel flow decoder, trained together. Per step, on clean images x:
//   H_U^{(l)}, tokens = E_U(x);  H_T^{(l)} = E_T(x) (no gradient)                        model.ts
//   L_dist = Σ_l w_l α_l,  α_l = 1 − mean cos(H_U, H_T),  w = softmax(ln(l/L) + β α) held   distill.ts
//   c = GTBs(P_up(MLP(merge2×2(tokens))) + pos)                                            decoder.ts
//   per patch: t ~ logit-normal(0, 1) (uniform with probability uniform_prob), ε = the step's noise,
//   x_t = (1 − t) x + t ε,  L_flow = mean ‖v_θ(x_t, t, c) − (ε − x)‖²   (the engines' `diff` term)
//   L = λ_d L_dist + λ_f L_flow,  λ_d = λ_f = 1 (the paper's best balance)
// The decoder's sizes come from the spec's `model:` (hidden_size = W, the width of the up projection,
// the GTBs and c; depth = the GTB count; num_heads; mlp_ratio) and this section (latent_channels,
// flow_width, flow_depth). The grid a run writes (and `diffactor sample` draws) is a
// RECONSTRUCTION grid: class c's row decodes the first ref_per_class training images of class c
// from the sampler's noise in sample.steps Euler steps (1: the paper's one-step x̂ = ε − v_θ(ε, 1, c)).
// Choices that are ours (the paper's training code is not public; methods-b marks these parts as
// reconstructed): w_l held constant (stop-gradient); α over patch tokens after each block, before the
// final norm, averaged over the batch too; the decoder details listed in decoder.ts; t per patch;
// the teacher is the stand-in encoder at its own resolution (no 448 px / patch 14 VFM).
// A tokenizer checkpoint is a latent space other specs can name (latent.autoencoder; latent.ts:
// normalised z ↔ the flow decode). Not built: the paper's understanding (MLLM) stage; evaluate with
// scripts/uniflow-eval.ts (linear probe of E_U vs E_T, reconstruction MSE/PSNR).
import { z } from 'zod';
import { Rng } from '../../tensor/rng.ts';
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { sub } from '../../autograd/ops/index.ts';
import { readSafetensors } from '../../io/safetensors.ts';
import { logitNormalTimes } from '../../diffusion/timeSampling.ts';
import { gridSize, type SiTConfig } from '../../models/config.ts';
import { inferDinov2Config, normalizeDinov2Keys } from '../../models/dinov2.ts';
import { createViT, parseViTConfig, vitPreset, type ViTConfig } from '../../models/vit.ts';
import { FrozenEncoder, type EncoderNormalization } from '../encoder.ts';
import type { BuildContext, MethodDefinition, SpecView, StudentForward, TrainingSet } from '../method.ts';
import { UniFlowModel } from './model.ts';
import { UNIFLOW_BETA, distillLoss } from './distill.ts';
import { noisePatches } from './decoder.ts';
import { uniflowLatentSpace } from './latent.ts';

const STREAM = 'uniflow-time';

export const UniFlowSection = z.strictObject({
  /** Which stage this run trains. Only the tokenizer (encoder + pixel decoder) is built. */
  stage: z.enum(['tokenizer']).default('tokenizer'),
  /** β of the adaptive layer weights w = softmax(ln(l/L) + β α) (UniFlow's ablation optimum 2; 0: fixed l/Σk). */
  beta: z.number().min(0).default(UNIFLOW_BETA),
  /** λ_d, the weight of L_dist (UniFlow: λ_d = λ_f). */
  dist_weight: z.number().min(0).default(1),
  /** λ_f, the weight of the flow loss (the engines' `diff` term). */
  flow_weight: z.number().min(0).default(1),
  /** Channels of the compact latent z on the (g/2)² grid (methods-b's small scale: 16; the paper: 64). */
  latent_channels: z.number().int().positive().default(16),
  /** Width W_f of the flow MLP; null: model.hidden_size. */
  flow_width: z.number().int().positive().nullable().default(null),
  /** adaLN ResBlocks of the flow MLP (small scale 4; the official-style config 12). */
  flow_depth: z.number().int().positive().default(4),
  /** Share of patches whose t is uniform instead of logit-normal(0, 1) (third-party code: 10 %). */
  uniform_prob: z.number().min(0).max(1).default(0.1),
  /** Training images per class whose reconstructions the grid shows. */
  ref_per_class: z.number().int().positive().default(8),
  /**
   * When another spec names this run's checkpoint as its latent.autoencoder (latent.ts): the first N
   * training images whose z give the per-element μ and var of the normalisation (as RAE's).
   */
  stat_images: z.number().int().min(2).default(1024),
  /** Euler steps of that space's decode (1: the paper's one-step x̂ = ε − v_θ(ε, 1, c)). */
  latent_decode_steps: z.number().int().positive().default(1),
});
export type UniFlowSection = z.infer<typeof UniFlowSection>;

type EncoderSection = { checkpoint: string | null; preset: string; patch_size?: number; embed_dim?: number; depth?: number; num_heads?: number; normalization: EncoderNormalization };

function encoderSection(spec: SpecView): EncoderSection {
  const e = spec.encoder as EncoderSection | undefined;
  if (!e) throw new Error('uniflow: the student is a copy of the frozen encoder: the spec needs an encoder section');
  return e;
}

/**
 * The encoder's ViT config on the run's token grid, from the spec alone (for the models that are
 * rebuilt without the training set: the EMA, sampling): the checkpoint's layout (as loadDinov2 reads
 * it, pos_embed resampled to the grid) or the preset with the section's overrides (as the run builds it).
 */
export function encoderConfig(spec: SpecView, config: SiTConfig): ViTConfig {
  const e = encoderSection(spec), grid = gridSize(config);
  if (e.checkpoint) {
    let file;
    try { file = readSafetensors(e.checkpoint); } catch (err) { throw new Error(`uniflow: encoder.checkpoint: ${(err as Error).message}`); }
    const c = inferDinov2Config(normalizeDinov2Keys(file.tensors), file.metadata, e.num_heads !== undefined ? { numHeads: e.num_heads } : {});
    return parseViTConfig({ ...c, imgSize: grid * c.patchSize });
  }
  const patch = e.patch_size ?? vitPreset(e.preset).patchSize;
  return vitPreset(e.preset, {
    imgSize: grid * patch, patchSize: patch, inChannels: config.inChannels,
    ...(e.embed_dim !== undefined && { embedDim: e.embed_dim }),
    ...(e.depth !== undefined && { depth: e.depth }),
    ...(e.num_heads !== undefined && { numHeads: e.num_heads }),
  });
}

function asUniFlow(m: unknown): UniFlowModel {
  if (!(m instanceof UniFlowModel)) throw new Error('uniflow: expected the tokenizer model');
  return m;
}

/** The first ref_per_class training images of every class, into ref_images (cycled when a class has fewer). */
function fitReferences(m: UniFlowModel, ts: TrainingSet): void {
  const { data } = ts, r = m.refPerClass, k = m.config.numClasses, per = data.channels * data.height * data.width;
  if (per * k * r !== m.ref_images.size) throw new Error(`uniflow: training images of ${data.channels}×${data.height}×${data.width} do not fit the model's ${m.config.inChannels}×${m.config.inputSize}² references`);
  const picked: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0, left = k * r; i < data.count && left > 0; i++) {
    const c = data.label(i);
    if (c < k && picked[c].length < r) { picked[c].push(i); left--; }
  }
  picked.forEach((ids, c) => {
    if (ids.length === 0) throw new Error(`uniflow: the training set has no image of class ${c} for the reconstruction grid`);
    for (let j = 0; j < r; j++) data.get(ids[j % ids.length], m.ref_images.data as Float32Array, (c * r + j) * per);
  });
}

function create(s: UniFlowSection, c: Pick<BuildContext, 'spec' | 'config'>, vit: ViTConfig, seed: number): UniFlowModel {
  const cf = c.config;
  return new UniFlowModel(cf, {
    vit, grid: gridSize(cf), normalization: encoderSection(c.spec).normalization, refPerClass: s.ref_per_class,
    decoder: { latentChannels: s.latent_channels, width: cf.hiddenSize, heads: cf.numHeads, gtbDepth: cf.depth, mlpRatio: cf.mlpRatio, flowWidth: s.flow_width ?? cf.hiddenSize, flowDepth: s.flow_depth },
  }, new Rng(seed).child('model'));
}

function build(s: UniFlowSection, c: BuildContext, seed: number): UniFlowModel {
  if (c.encoderDim === null) throw new Error('uniflow: the student is a copy of the frozen encoder: the spec needs an encoder section');
  if (!c.trainingSet) {
    const vit = encoderConfig(c.spec, c.config), m = create(s, c, vit, seed);
    // Meta execution (simulate): a shape-only teacher of the same layout, so the step counts the distillation.
    if (c.training) m.setTeacher(new FrozenEncoder(createViT(vit, seed), { normalization: encoderSection(c.spec).normalization, grid: gridSize(c.config) }));
    return m;
  }
  const ts = c.trainingSet();
  // The EMA and sampling models are built from the spec alone (encoderConfig): it must give the
  // teacher's layout exactly (the head count, for one, shows in no tensor shape).
  const fromSpec = encoderConfig(c.spec, c.config), own = ts.encoder.vit.config;
  const differ = (Object.keys(own) as (keyof ViTConfig)[]).filter((k) => own[k] !== fromSpec[k]);
  if (differ.length) throw new Error(`uniflow: the encoder section describes a ViT that differs from the run's encoder in ${differ.map((k) => `${k} (${String(fromSpec[k])} vs ${String(own[k])})`).join(', ')}`);
  const m = create(s, c, own, seed);
  m.setTeacher(ts.encoder); // E_U := E_T exactly; E_T kept frozen for the distillation
  fitReferences(m, ts);
  return m;
}

/** Per-patch times: logit-normal(0, 1), and U(0, 1) for a share `uniformProb` of the patches. */
export function patchTimes(rng: Rng, n: number, uniformProb: number): Float64Array {
  const ln = logitNormalTimes(rng.child('logit-normal'), n), u = rng.child('uniform').uniformArray(n), pick = rng.child('pick').uniformArray(n);
  return Float64Array.from(ln, (v, i) => (pick[i] < uniformProb ? u[i] : v));
}

export const uniflow: MethodDefinition<UniFlowSection> = {
  name: 'uniflow',
  title: 'UniFlow (tokenizer)',
  cite: 'Yue et al., UniFlow: A Unified Pixel Flow Tokenizer for Visual Understanding and Generation, ICLR 2026, arXiv 2510.10575 — no official training code; decoder layout from a third-party copy of the official modeling_uniflow.py (github.com/hhhhzp/RAE)',
  section: { key: 'uniflow', schema: UniFlowSection },
  reads: ['encoder'],
  changes: ['input', 'target', 'backbone', 'objective'],
  streams: [STREAM],
  check: (s, spec) => {
    if (spec.model.learn_sigma) throw new Error('uniflow: the decoder predicts a velocity of pixels: model.learn_sigma must be false');
    const evalEvery = (spec.train as { eval_every?: number }).eval_every ?? 0;
    if (evalEvery > 0) throw new Error(`uniflow: train.eval_every is ${evalEvery} but the evaluator's probe and CKNNA need a diffusion model's hidden states: set it to 0 (measure the tokenizer with scripts/uniflow-eval.ts)`);
    if (s.dist_weight === 0 && s.flow_weight === 0) throw new Error('uniflow: dist_weight and flow_weight are both 0: nothing would train');
  },
  // One seed per step for the per-patch times (drawn in the forward, which knows the patch grid).
  draw: (_s, v, rngs) => ({ timeSeed: rngs[STREAM].randintArray(0, 0x7fffffff, 1)[0] }),
  diffWeight: (s) => s.flow_weight,
  // A tokenizer checkpoint as another spec's latent space (latent.ts): normalised z ↔ the flow decode.
  autoencoder: (s, c) => {
    if (!(c.model instanceof UniFlowModel)) throw new Error(`latent.autoencoder ${c.file}: its uniflow run did not build the tokenizer model`);
    return uniflowLatentSpace(c.file, c.model, c.trainingSet().data, s.stat_images, s.latent_decode_steps);
  },
  backbone: {
    build: (s, c, seed) => build(s, c, seed),
    fromWeights: (s, c, weights) => {
      if (!weights.has('encoder.cls_token') || !weights.has('decoder.flow.final_linear.weight')) throw new Error('uniflow: the weights have no encoder.cls_token / decoder.flow.final_linear.weight — not a UniFlow tokenizer checkpoint');
      return create(s, c, encoderConfig(c.spec, c.config), 0);
    },
    // The reference images are copied, not averaged; the teacher is no tensor of the model.
    emaCopied: (model) => asUniFlow(model).namedBuffers(),
    forward: (s, model, b, _path, _dropout): StudentForward => {
      const m = asUniFlow(model);
      const d = b.draws.uniflow as { timeSeed: number };
      const x = b.input, eps = b.eps, g = m.grid;
      const enc = m.encode(x);
      const dist = distillLoss(enc.hidden, m.teacherHidden(x), s.beta);
      const t = patchTimes(new Rng(d.timeSeed), x.shape[0] * g * g, s.uniform_prob);
      const c = m.decoder.condition(m.decoder.latent(enc.tokens));
      const v = m.decoder.velocity(noisePatches(x, eps, t, m.patchSize), t, c); // (B, C, H, W)
      const terms: StudentForward['terms'] = { dist: { value: dist.loss, weight: s.dist_weight } };
      // α_l and w_l logged as constants (weight 0: no gradient)
      dist.alphas.forEach((a, l) => { terms[`alpha_${l + 1}`] = { value: tensor([a], []), weight: 0 }; });
      dist.weights.forEach((w, l) => { terms[`w_${l + 1}`] = { value: tensor([w], []), weight: 0 }; });
      return { out: v, target: sub(eps, x), hidden: new Map<number, Tensor>(), labels: Int32Array.from(b.y), terms };
    },
  },
};

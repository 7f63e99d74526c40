// The Evaluator actor: measures the EMA teacher while the student keeps training. It gets copies
// of the teacher's weights (and REPA-E's VAE) every `train.eval_every` steps and answers with the
// metrics of src/eval/evaluate.ts — FD, sFID, IS, precision/recall against the test split through
// the evaluation classifier, CKNNA and the linear probe of hidden states — plus the held-out
// denoising loss (eval/heldOutLoss.ts; not for REPA-E). After an evaluation, `grid` draws a small
// sample grid of the same weights, drawn as the evaluation draws (evalSampleSettings: the spec's
// sampler at eval.steps or eval.nfe, guidance eval.cfg, the evaluation's seed; one sample of each
// class per row, two rows: a fraction of the evaluation's own draws), which the run writes as
// evals/step-<N>.png (src/run/layout.ts) for `diffactor serve`'s slider.
// The fixed work (classifier, encoder, reference features) is done once, at init.
import type { SiT } from '../../models/sit.ts';
import type { RegSiT } from '../../models/reg.ts';
import { buildBackbone, buildVae, jointVae } from '../../build/parts.ts';
import { hasFlowForward } from '../../methods/partialForward.ts';
import { Evaluation, evalSampleSettings } from '../../eval/evaluate.ts';
import { heldOutLoss } from '../../eval/heldOutLoss.ts';
import { drawSamples } from '../../build/draw.ts';
import { RepaESiT, decodeLatentSamples } from '../../methods/repa-e/pieces.ts';
import { vaeFactor } from '../../models/vae.ts';
import { latentSpaceOf } from '../../build/latentSpace.ts';
import { toMap, type RoleInit, type TensorDict } from './common.ts';

/** Rows of an evaluation grid: each row holds one sample of every class. */
export const EVAL_GRID_ROWS = 2;
/** The evaluation grid's sampling seed: the evaluation's own (eval/evaluate.ts draws with seed + 7919). */
export const EVAL_GRID_SEED = (seed: number) => seed + 7919;

export function evaluatorRole(init: RoleInit) {
  const { spec, config } = init;
  const model = buildBackbone(spec, config, init.encoderDim, init.vaeConfig).eval();
  const vae = init.vaeConfig ? buildVae(spec, init.vaeConfig).eval() : null;
  const evaluation = Evaluation.prepare(spec, config, { data: init.data });
  // A latent loss moves with a jointly trained VAE: not comparable across steps (eval/heldOutLoss.ts).
  // A model with its own forward (EPG's VE x0 denoiser, DiGIT's GPT) has no velocity loss to hold out.
  const loss = jointVae(spec) || !hasFlowForward(model) ? null : heldOutLoss(spec, { data: init.data, encoder: evaluation.clsEncoder ?? undefined });

  let evaluated: number | null = null;
  return {
    evaluate(b: { ema: TensorDict; vae?: TensorDict; step: number }): Record<string, number> {
      evaluated = null;
      model.loadStateDict(toMap(b.ema));
      if (vae) {
        if (!b.vae) throw new Error('evaluate: a run with a joint VAE must send its VAE weights');
        vae.loadStateDict(toMap(b.vae));
      }
      const metrics = evaluation.run(model as SiT | RegSiT, { vae: vae ?? undefined });
      evaluated = b.step;
      return loss ? { ...metrics, val_loss: loss(model as SiT | RegSiT) } : metrics;
    },

    /** The sample grid of the weights the last `evaluate` measured (it must have been for `step`). */
    grid(b: { step: number }): { images: Float32Array; n: number; channels: number; side: number; cols: number } {
      if (evaluated !== b.step) throw new Error(`grid: step ${b.step} was not the last evaluation (${evaluated ?? 'none yet'}); send evaluate first`);
      const K = config.numClasses;
      const labels = Array.from({ length: K * EVAL_GRID_ROWS }, (_, i) => i % K);
      model.eval();
      let images = drawSamples(model as SiT | RegSiT, evalSampleSettings(spec), { seed: EVAL_GRID_SEED(spec.seed), labels });
      let channels = config.inChannels, side = config.inputSize;
      const space = latentSpaceOf(spec);
      if (space) {
        images = space.decode(images, labels.length, config.inputSize);
        channels = space.imageChannels;
        side = config.inputSize * space.factor;
      }
      if (model instanceof RepaESiT) {
        if (!vae) throw new Error('grid: a REPA-E model needs its VAE to decode the samples');
        images = decodeLatentSamples(vae, model.bn, images, labels.length, config.inputSize);
        channels = vae.config.outChannels;
        side = config.inputSize * vaeFactor(vae.config);
      }
      return { images, n: labels.length, channels, side, cols: K };
    },
  };
}

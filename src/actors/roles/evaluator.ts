// The Evaluator actor: measures the EMA teacher while the student keeps training. It gets copies
// of the teacher's weights (and REPA-E's VAE) every `train.eval_every` steps and answers with the
// metrics of src/eval/evaluate.ts — FD, sFID, IS, precision/recall against the test split through
// the evaluation classifier, CKNNA and the linear probe of hidden states — plus the held-out
// denoising loss (eval/heldOutLoss.ts; not for REPA-E).
// The fixed work (classifier, encoder, reference features) is done once, at init.
import type { SiT } from '../../models/sit.ts';
import type { RegSiT } from '../../models/reg.ts';
import { buildBackbone, buildVae, jointVae } from '../../build/parts.ts';
import { Evaluation } from '../../eval/evaluate.ts';
import { heldOutLoss } from '../../eval/heldOutLoss.ts';
import { toMap, type RoleInit, type TensorDict } from './common.ts';

export function evaluatorRole(init: RoleInit) {
  const { spec, config } = init;
  const model = buildBackbone(spec, config, init.encoderDim, init.vaeConfig).eval();
  const vae = init.vaeConfig ? buildVae(spec, init.vaeConfig).eval() : null;
  const evaluation = Evaluation.prepare(spec, config, { data: init.data });
  // A latent loss moves with a jointly trained VAE: not comparable across steps (eval/heldOutLoss.ts).
  const loss = jointVae(spec) ? null : heldOutLoss(spec, { data: init.data, encoder: evaluation.clsEncoder ?? undefined });

  return {
    evaluate(b: { ema: TensorDict; vae?: TensorDict; step: number }): Record<string, number> {
      model.loadStateDict(toMap(b.ema));
      if (vae) {
        if (!b.vae) throw new Error('evaluate: a run with a joint VAE must send its VAE weights');
        vae.loadStateDict(toMap(b.vae));
      }
      const metrics = evaluation.run(model as SiT | RegSiT, { vae: vae ?? undefined });
      return loss ? { ...metrics, val_loss: loss(model as SiT | RegSiT) } : metrics;
    },
  };
}

// The Teacher actor: the EMA copy of the student (DiT's update_ema), always in
// eval mode and never differentiated. `ema` folds in the parameters the student lent for this
// step (decay 'copy' = the exact start-of-training copy); `forward` gives a method (SRA) its target
// hidden state at a teacher time, under noGrad; `weights` sends copies for sampling (a piscina
// pool, src/actors/samplePool.ts) and evaluation.
// It receives no gradient message, by construction: it has no `backward`.
import { noGrad } from '../../autograd/tape.ts';
import { K } from '../../kernels/index.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { interpolantByName } from '../../diffusion/index.ts';
import type { EncoderFeatures } from '../../methods/encoder.ts';
import { buildBackbone, emaTensors, hiddenAt } from '../../build/parts.ts';
import { copyDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export function teacherRole(init: RoleInit) {
  const { spec, config } = init;
  const model = buildBackbone(spec, config, init.encoderDim, init.vaeConfig).eval();
  // A backbone's EMA may also average buffers (REPA-E's BN running stats) and copy counters.
  const { averaged, copied } = emaTensors(spec, model);
  const params = new Map(averaged);
  const path = interpolantByName(spec.diffusion.path);

  return {
    ema(b: { params: TensorDict; decay: number | 'copy' }) {
      for (const [name, t] of params) {
        const s = b.params[name];
        if (!s) throw new Error(`ema: the student sent no parameter '${name}'`);
        if (s.size !== t.size) throw new Error(`ema: '${name}' has ${s.size} elements from the student, ${t.size} here`);
        t.assertWritable(`Teacher.ema('${name}')`);
        if (b.decay === 'copy') t.data.set(s.data);
        else K.ema(t.data, s.data, t.size, b.decay);
      }
      for (const [name, t] of copied) {
        const s = b.params[name];
        if (!s) throw new Error(`ema: the student sent no '${name}'`);
        t.data.set(s.data);
      }
      return null;
    },

    /** A teacher query: the hidden state after `block` at times t (labels after the student's dropout). */
    forward(b: { x: Tensor; eps: Tensor; t: Float64Array; labels: Int32Array; block: number; feats?: EncoderFeatures; draws?: Record<string, Record<string, any>> }): { hidden: Tensor } {
      return noGrad(() => ({ hidden: hiddenAt(spec, model, { input: b.x, eps: b.eps, t: b.t, y: b.labels, feats: b.feats ?? null, draws: b.draws ?? {} }, b.block, path) }));
    },

    weights(): { ema: TensorDict } {
      return { ema: copyDict(model.stateDict()) };
    },

    load(b: { ema: TensorDict }) {
      model.loadStateDict(toMap(b.ema));
      return null;
    },
  };
}

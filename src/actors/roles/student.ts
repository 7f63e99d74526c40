// The Student actor: the trained backbone (the plain SiT/DiT or the one a method provides) and its
// optimiser. `forward` runs the model on a noised batch under this step's tape and computes the
// losses that need only its own outputs — the velocity loss, DiT's hybrid DDPM loss, a backbone's
// own terms and the methods' student terms (the step plan's ownTerms) — and returns the tapped
// hidden states for the other actors. `backward` seeds the tape with 1 on its own loss and with
// the gradients other actors sent for its hidden states (their weights already applied), so the
// parameter gradients equal the reference engine's single backward over the total loss. `step`
// applies the coordinator's global clip factor and AdamW, then lends its parameters (frozen until
// release) to the Teacher's EMA. It never names a method: the registry's hooks say what to do.
// Not here: alignment losses (projector.ts), the EMA (teacher.ts), the order of it all (protocols/).
import { backward, withTape } from '../../autograd/tape.ts';
import { scalar, Tensor as T, zeros, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { DdpmSchedule, epsLoss, hybridLoss, interpolantByName, qSample } from '../../diffusion/index.ts';
import { SiT } from '../../models/sit.ts';
import { plainFlowForward } from '../../methods/flowForward.ts';
import type { EncoderFeatures } from '../../methods/encoder.ts';
import { backboneHook, buildBackbone, emaTensors, hiddenAt } from '../../build/parts.ts';
import { ownTerms, stepPlan, weightedSum } from '../../build/stepPlan.ts';
import type { MessageContext } from '../core.ts';
import { RoleOptimizer, atTrainPrecision, copyDict, toDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export interface StudentForward {
  /** (B, C, H, W) what the student is noised from: clean data, or a joint VAE's latent z, detached. */
  x: Tensor;
  y: Int32Array; // (B)
  eps: Tensor; // (B, C, H, W)
  /** Flow: times in [0, 1]; DDPM: integer timesteps. */
  t: Float64Array | Int32Array;
  taps?: number[];
  /** The encoder's features and the methods' draws, for a backbone that reads them (REG). */
  feats?: EncoderFeatures;
  draws?: Record<string, Record<string, any>>;
}

export interface StudentForwardReply {
  /** The student's own loss terms (diff; DDPM mse/vb; a backbone's and the methods' student terms) and their weighted sum `own`. */
  terms: Record<string, number>;
  own: number;
  hidden: Record<string, Tensor>;
  /** Labels after class dropout (a teacher query uses them). */
  labels: Int32Array;
}

function mean1(t: Tensor): number {
  let s = 0;
  for (const v of t.data) s += v;
  return s / t.size;
}

export function studentRole(init: RoleInit) {
  const { spec, config } = init;
  const model = buildBackbone(spec, config, init.encoderDim, init.vaeConfig, { trained: true });
  const params = model.namedParameters();
  const opt = new RoleOptimizer(params, spec);
  let dropout = new Rng(spec.seed).child('label-dropout');
  const path = interpolantByName(spec.diffusion.path);
  const plan = stepPlan(spec);
  const hook = backboneHook(spec);
  /** What the teacher averages (parameters, and a backbone's buffers) and copies (counters). */
  const ema = emaTensors(spec, model);
  const emaSources = (): TensorDict => toDict([...ema.averaged, ...ema.copied]);
  const ddpm = spec.diffusion.objective === 'ddpm' ? DdpmSchedule.linear() : null;

  return atTrainPrecision(spec, {
    forward(b: StudentForward, ctx: MessageContext): StudentForwardReply {
      return withTape(ctx.tape(), () => {
        const terms: Record<string, number> = {};
        let own: Tensor;
        let hidden = new Map<number, Tensor>();
        let labels: Int32Array;
        if (ddpm) {
          if (!(model instanceof SiT)) throw new Error('DDPM training needs the plain SiT/DiT model');
          const xt = qSample(ddpm, b.x, b.eps, b.t);
          const o = model.forward(xt, b.t, b.y, { rng: dropout });
          labels = o.labels;
          if (config.learnSigma) {
            const h = hybridLoss(ddpm, o.out, b.x, xt, b.eps, b.t);
            own = h.loss;
            terms.mse = mean1(h.mse);
            terms.vb = mean1(h.vb);
          } else {
            own = epsLoss(o.out, b.eps).loss;
          }
        } else {
          const fwd = { input: b.x, eps: b.eps, t: b.t as Float64Array, y: b.y, taps: b.taps ?? [], feats: b.feats ?? null, draws: b.draws ?? {} };
          const f = hook ? hook.hook.forward(hook.m.s, model, fwd, path, dropout) : plainFlowForward(model, fwd, path, dropout);
          const parts = ownTerms(plan, f);
          for (const [k, w] of parts) terms[k] = w.value.item();
          own = weightedSum(parts.map(([, w]) => w));
          hidden = f.hidden;
          labels = f.labels;
        }
        ctx.scratch().set('own', own);
        ctx.scratch().set('hidden', hidden);
        return { terms, own: own.item(), hidden: Object.fromEntries([...hidden].map(([k, h]) => [String(k), h])), labels };
      });
    },

    /** grads: gradients for tapped hidden states by block (`{ '2': dL/dh }`), already weighted. */
    backward(b: { grads?: Record<string, Tensor> }, ctx: MessageContext): { sumSq: number } {
      const own = ctx.scratch().get('own') as Tensor | undefined;
      if (!own) throw new Error(`backward for step ${ctx.step} without its forward`);
      const hidden = ctx.scratch().get('hidden') as Map<number, Tensor>;
      const seeds: [Tensor, Tensor][] = [[own, scalar(1)]];
      for (const [k, g] of Object.entries(b.grads ?? {})) {
        const h = hidden.get(Number(k));
        if (!h) throw new Error(`backward: a gradient for hidden state ${k}, but the forward tapped ${[...hidden.keys()].join(', ') || 'none'}`);
        seeds.push([h, g]);
      }
      backward(seeds, { tape: ctx.tape() });
      ctx.scratch().delete('own');
      return { sumSq: opt.sumSquares() };
    },

    step(b: { coef: number; lrFactor: number }): { params: TensorDict } {
      opt.step(b.coef, b.lrFactor);
      return { params: emaSources() };
    },

    /**
     * A joint VAE's alignment pass, the Student's half: the backbone frozen and in eval mode (a BN
     * on its running statistics, unchanged), z a fresh leaf, blocks 1..depth on the labels as given.
     * The hidden state goes to the projector; alignBackward takes its gradient back to z.
     */
    alignForward(b: { z: Tensor; t: Float64Array; eps: Tensor; y: Int32Array; depth: number; feats?: EncoderFeatures; draws?: Record<string, Record<string, any>> }, ctx: MessageContext): { hidden: Tensor } {
      const leaf = new T(b.z.data, b.z.shape).freeze().requireGrad();
      leaf.grad = zeros(b.z.shape); // 0 + g: the gradient travels back in this step's arena
      model.eval();
      for (const [, p] of params) p.requireGrad(false);
      try {
        const h = withTape(ctx.tape(), () => hiddenAt(spec, model, { input: leaf, eps: b.eps, t: b.t, y: b.y, feats: b.feats ?? null, draws: b.draws ?? {} }, b.depth, path)); // (B, T, D)
        ctx.scratch().set('alignLeaf', leaf);
        ctx.scratch().set('alignHidden', h);
        return { hidden: h };
      } finally {
        for (const [, p] of params) p.requireGrad(true);
        model.train();
      }
    },

    alignBackward(b: { grad: Tensor }, ctx: MessageContext): { grad: Tensor } {
      const h = ctx.scratch().get('alignHidden') as Tensor | undefined, leaf = ctx.scratch().get('alignLeaf') as Tensor;
      if (!h) throw new Error(`alignBackward for step ${ctx.step} without its alignForward`);
      backward([[h, b.grad]], { tape: ctx.tape() });
      return { grad: leaf.grad! };
    },

    save() {
      return { model: copyDict(model.stateDict()), opt: opt.save(), rng: { dropout: dropout.state() } };
    },

    load(b: { model: TensorDict; opt?: { step: number; tensors: TensorDict }; rng?: { dropout: ReturnType<Rng['state']> } }) {
      model.loadStateDict(toMap(b.model));
      if (b.opt) opt.load(b.opt);
      if (b.rng) dropout = Rng.fromState(b.rng.dropout);
      return null;
    },

    /** Test hook of the supervision tests: a NaN in one parameter, as a diverging update would leave. */
    poison(b: { name: string }) {
      const p = params.find(([n]) => n === b.name)?.[1];
      if (!p) throw new Error(`poison: no parameter '${b.name}'`);
      p.data[0] = NaN;
      return null;
    },

    /** The live parameters, lent for this step (the teacher's initial copy). */
    params(): { params: TensorDict } {
      return { params: emaSources() };
    },
  });
}

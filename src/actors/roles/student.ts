// The Student actor: the trained SiT/DiT (or REG's SiT) and its optimiser. `forward` runs the
// model on a noised batch under this step's tape and computes the losses that need only its own
// outputs — the velocity loss (methods-a §0), DiT's hybrid DDPM loss, REG's class-token velocity
// loss (§3) — and returns the tapped hidden states for the other actors. `backward` seeds the
// tape with 1 on its own loss and with the gradients other actors sent for its hidden states
// (their loss weights already applied), so the parameter gradients equal the reference trainer's
// single backward over the total loss. `step` applies the coordinator's global clip factor and
// AdamW, then lends its parameters (frozen until release) to the Teacher's EMA.
// Not here: alignment losses (projector.ts), the EMA (teacher.ts), the order of it all (protocols/).
import { backward, withTape } from '../../autograd/tape.ts';
import { add, mul } from '../../autograd/ops/index.ts';
import { scalar, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { DdpmSchedule, epsLoss, flowTrainingPair, hybridLoss, interpolantByName, qSample, velocityLoss } from '../../diffusion/index.ts';
import { SiT } from '../../models/sit.ts';
import { RegSiT } from '../../models/reg.ts';
import { regClsLoss, regClsPair } from '../../methods/index.ts';
import { RepaESiT, repaeEmaTensors } from '../../methods/repa-e/pieces.ts';
import { hiddenAfterBlock } from '../../methods/partialForward.ts';
import { interpolate } from '../../diffusion/index.ts';
import { Tensor as T, zeros } from '../../tensor/tensor.ts';
import { buildBackbone } from '../../train/methodParts.ts';
import type { MessageContext } from '../core.ts';
import { RoleOptimizer, copyDict, toDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export interface StudentForward {
  /** (B, C, H, W) clean data; REPA-E: the VAE's latent z, detached (no gradient goes back). */
  x: Tensor;
  y: Int32Array; // (B)
  eps: Tensor; // (B, C, H, W)
  /** Flow: times in [0, 1]; DDPM: integer timesteps. */
  t: Float64Array | Int32Array;
  taps?: number[];
  /** REG: the encoder's class token (B, Dz) and its own noise ε_g. */
  cls?: Tensor;
  epsG?: Tensor;
}

export interface StudentForwardReply {
  /** The student's own loss terms (diff; DDPM mse/vb; REG cls) and their weighted sum `own`. */
  terms: Record<string, number>;
  own: number;
  hidden: Record<string, Tensor>;
  /** Labels after class dropout (SRA's teacher uses them). */
  labels: Int32Array;
}

function mean1(t: Tensor): number {
  let s = 0;
  for (const v of t.data) s += v;
  return s / t.size;
}

export function studentRole(init: RoleInit) {
  const { spec, config } = init;
  const model = buildBackbone(spec, config, init.encoderDim, init.vaeConfig);
  const params = model.namedParameters();
  const opt = new RoleOptimizer(params, spec);
  let dropout = new Rng(spec.seed).child('label-dropout');
  const path = interpolantByName(spec.diffusion.path);
  /** What the teacher averages: parameters, and for REPA-E the BN's running stats and its counter. */
  const emaSources = (): TensorDict => model instanceof RepaESiT
    ? toDict([...repaeEmaTensors(model), ['bn.num_batches_tracked', model.bn.num_batches_tracked!]])
    : toDict(params);
  const ddpm = spec.diffusion.objective === 'ddpm' ? DdpmSchedule.linear() : null;

  return {
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
        } else if (model instanceof RepaESiT) {
          // methods-b §2 step 4: train mode, BN on batch statistics (updates its running stats).
          model.train();
          const { xt, target } = flowTrainingPair(path, model.bn.forward(b.x), b.eps, b.t);
          const o = model.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps ?? [] });
          own = velocityLoss(o.out, target).loss;
          terms.diff = own.item();
          hidden = o.hidden;
          labels = o.labels;
        } else if (model instanceof RegSiT) {
          if (!b.cls || !b.epsG) throw new Error('forward: REG needs the class token `cls` and its noise `epsG`');
          const img = flowTrainingPair(path, b.x, b.eps, b.t);
          const cls = regClsPair(path, b.cls, b.epsG, b.t);
          const o = model.forward(img.xt, b.t, b.y, { rng: dropout, taps: b.taps ?? [], cls: cls.xt });
          const diff = velocityLoss(o.out, img.target).loss;
          const clsLoss = regClsLoss(o.cls, cls.target);
          own = add(diff, mul(clsLoss, spec.reg!.cls_coeff));
          terms.diff = diff.item();
          terms.cls = clsLoss.item();
          hidden = o.hidden;
          labels = o.labels;
        } else {
          const { xt, target } = flowTrainingPair(path, b.x, b.eps, b.t);
          const o = model.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps ?? [] });
          own = velocityLoss(o.out, target).loss;
          terms.diff = own.item();
          hidden = o.hidden;
          labels = o.labels;
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
     * REPA-E's VAE step, the Student's half (methods-b §2 step 2): SiT frozen and in eval mode (BN
     * on running statistics, unchanged), z a fresh leaf, blocks 1..depth on the labels as given.
     * The hidden state goes to the projector; alignBackward takes its gradient back to z.
     */
    alignForward(b: { z: Tensor; t: Float64Array; eps: Tensor; y: Int32Array; depth: number }, ctx: MessageContext): { hidden: Tensor } {
      if (!(model instanceof RepaESiT)) throw new Error('alignForward is REPA-E\'s (the SiT with the latent BN)');
      const leaf = new T(b.z.data, b.z.shape).freeze().requireGrad();
      leaf.grad = zeros(b.z.shape); // 0 + g: the gradient travels back in this step's arena
      model.eval();
      for (const [, p] of params) p.requireGrad(false);
      const h = withTape(ctx.tape(), () => hiddenAfterBlock(model, interpolate(path, model.bn.forward(leaf), b.eps, b.t), b.t, b.y, b.depth)); // (B, T, D)
      ctx.scratch().set('alignLeaf', leaf);
      ctx.scratch().set('alignHidden', h);
      return { hidden: h };
    },

    alignBackward(b: { grad: Tensor }, ctx: MessageContext): { grad: Tensor } {
      const h = ctx.scratch().get('alignHidden') as Tensor | undefined, leaf = ctx.scratch().get('alignLeaf') as Tensor;
      if (!h) throw new Error(`alignBackward for step ${ctx.step} without its alignForward`);
      try {
        backward([[h, b.grad]], { tape: ctx.tape() });
      } finally {
        for (const [, p] of params) p.requireGrad(true);
        model.train();
      }
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
  };
}

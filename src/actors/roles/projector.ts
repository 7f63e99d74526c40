// The Projector actor: the methods' trainable heads (one module per method, build/parts.ts) and
// their optimiser. `align` names a method and one of its align terms (or `vae`, a joint VAE's
// alignment term); it takes the student's hidden state and the targets (the encoder's features,
// the teacher's hidden state), computes the term as the method's module defines it, and
// backpropagates weight·loss through that method's head: the head's parameters get their
// gradients here, and the gradient for the hidden state goes back in the reply for the coordinator
// to forward to the student. The weight is applied here, so the student seeds its tape with exactly
// what the reference backward would. It never names a method: it asks the registry.
import { backward, withTape } from '../../autograd/tape.ts';
import { Tensor, scalar, zeros } from '../../tensor/tensor.ts';
import { methodByName } from '../../methods/registry.ts';
import type { AlignTerm } from '../../methods/method.ts';
import { buildHeads, methodsOf, prefixTokens } from '../../build/parts.ts';
import type { MessageContext } from '../core.ts';
import { RoleOptimizer, atTrainPrecision, copyDict, toMap, type RoleInit, type TensorDict } from './common.ts';

export interface AlignRequest {
  /** The method whose term this is, and the term: an index into its alignTerms, or 'vae'. */
  method: string;
  term: number | 'vae';
  hidden: Tensor; // (B, P + T, D) from the student
  /** The encoder's patch tokens (B, T, Dz) and class token (B, Dz), when the run reads the encoder. */
  patch?: Tensor;
  cls?: Tensor;
  /** The teacher's hidden state (B, T, D), when the method queried it. */
  teacher?: Tensor;
  weight: number;
  /** A joint VAE's pass: the heads are frozen (no parameter gradients), only ∂/∂hidden goes back. */
  frozen?: boolean;
}

export function projectorRole(init: RoleInit) {
  const { spec, config } = init;
  const heads = buildHeads(spec, config, init.encoderDim);
  if (!heads) throw new Error(`${spec.protocol} has no heads for a projector`);
  const params = heads.namedParameters('proj.');
  const opt = new RoleOptimizer(params, spec);
  const sections = new Map(methodsOf(spec).map((m) => [m.def.name, m.s]));
  const prefix = prefixTokens(spec);

  function termOf(b: AlignRequest): AlignTerm<any> {
    const def = methodByName(b.method);
    const t = b.term === 'vae' ? def.vae?.alignTerm : def.alignTerms?.[b.term];
    if (!t) throw new Error(`align: method '${b.method}' has no align term ${b.term}`);
    return t;
  }

  return atTrainPrecision(spec, {
    align(b: AlignRequest, ctx: MessageContext): { loss: number; grad: Tensor; sumSq: number } {
      if (!sections.has(b.method)) throw new Error(`align: method '${b.method}' is not one of this run's (${[...sections.keys()].join(', ')})`);
      const term = termOf(b), head = heads.of(b.method), s = sections.get(b.method);
      // A leaf over the student's (frozen, shared) hidden state; its gradient is written into a
      // buffer of this step's arena (0 + g, exact) so it travels back without a copy.
      const h = new Tensor(b.hidden.data, b.hidden.shape).freeze().requireGrad();
      h.grad = zeros(b.hidden.shape);
      const tape = ctx.tape();
      const target = { feats: b.patch ? { patch: b.patch, cls: b.cls! } : null, teacher: b.teacher ?? null, prefixTokens: prefix };
      const was = head.training;
      if (b.frozen) {
        for (const p of head.parameters()) p.requireGrad(false);
        head.eval();
      }
      try {
        const l = withTape(tape, () => term.loss(s, head, h, target));
        const value = l.item();
        backward([[l, scalar(b.weight)]], { tape });
        return { loss: value, grad: h.grad, sumSq: opt.sumSquares() };
      } finally {
        if (b.frozen) {
          for (const p of head.parameters()) p.requireGrad(true);
          head.train(was);
        }
      }
    },

    step(b: { coef: number; lrFactor: number }) {
      opt.step(b.coef, b.lrFactor);
      return null;
    },

    save() {
      return { proj: copyDict(heads.stateDict()), opt: opt.save() };
    },

    load(b: { proj: TensorDict; opt?: { step: number; tensors: TensorDict } }) {
      heads.loadStateDict(toMap(b.proj));
      if (b.opt) opt.load(b.opt);
      return null;
    },
  });
}

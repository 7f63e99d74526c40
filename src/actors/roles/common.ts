// What several roles share: the init body every actor gets, the optimiser a trainable role owns
// (AdamW with the spec's hyperparameters over its own parameters, clipped by the coordinator's
// global factor), and state dicts as plain objects (they cross threads) copied for `save`.
import { AdamW } from '../../optim/adamw.ts';
import { withLinearPrecision } from '../../autograd/ops/matmul.ts';
import { gradSumSquares, gradsOf, scaleGrads } from '../../optim/clip.ts';
import { clone, type Tensor } from '../../tensor/tensor.ts';
import { untracked } from '../../tensor/pool.ts';
import type { SiTConfig } from '../../models/config.ts';
import type { VAEConfig } from '../../models/vae.ts';
import type { RunSpec } from '../../spec/schema.ts';

export interface RoleInit {
  spec: RunSpec;
  config: SiTConfig;
  /** Width of the frozen encoder's features (REPA/REG), or null. */
  encoderDim: number | null;
  /** Dataset override (--data). */
  data?: string;
  /** REPA-E: the VAE's config (its latent stats initialise the SiT's BN). */
  vaeConfig?: VAEConfig;
}

export type TensorDict = Record<string, Tensor>;

export const toDict = (entries: Iterable<readonly [string, Tensor]>): TensorDict => Object.fromEntries(entries);
export const toMap = (d: TensorDict): Map<string, Tensor> => new Map(Object.entries(d));

/** Copies (outside the step's arena) of named tensors: what a `save` reply sends. */
export function copyDict(entries: Iterable<readonly [string, Tensor]>): TensorDict {
  return untracked(() => Object.fromEntries([...entries].map(([k, t]) => [k, clone(t)])));
}

/**
 * A trained role's behaviour at the spec's train.precision: with bf16 every method runs with this
 * thread's Linear products in bf16 (withLinearPrecision), so a role sharing the thread with others
 * (in-thread actors) changes only its own calls. fp32 returns the behaviour as it is. The methods
 * must be synchronous (they are: a reply is computed before the handler returns).
 */
export function atTrainPrecision<B extends object>(spec: RunSpec, behaviour: B): B {
  const p = spec.train.precision;
  if (p === 'fp32') return behaviour;
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(behaviour)) {
    out[name] = typeof v === 'function' ? (...args: unknown[]) => withLinearPrecision(p, () => (v as (...a: unknown[]) => unknown).apply(behaviour, args)) : v;
  }
  return out as B;
}

/** A trainable role's optimiser: the reference trainer's AdamW restricted to this role's parameters. */
export class RoleOptimizer {
  readonly opt: AdamW;

  constructor(readonly params: [string, Tensor][], spec: RunSpec) {
    const t = spec.train;
    this.opt = new AdamW(params, { lr: t.lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay });
  }

  /** This role's share of the global squared gradient norm. */
  sumSquares(): number { return gradSumSquares(gradsOf(this.params)); }

  /** Clip by the global factor, AdamW step at the schedule's factor, zero the gradients. */
  step(coef: number, lrFactor: number): void {
    scaleGrads(gradsOf(this.params), coef);
    this.opt.step(lrFactor);
    this.opt.zeroGrad();
  }

  save(): { step: number; tensors: TensorDict } {
    const s = this.opt.state();
    return { step: s.step, tensors: copyDict(s.tensors) };
  }

  load(s: { step: number; tensors: TensorDict }): void {
    this.opt.loadState({ step: s.step, tensors: toMap(s.tensors) });
  }
}

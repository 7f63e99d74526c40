// AdamW over named parameters with torch.optim.AdamW semantics: decoupled weight decay
// (p *= 1 - lr*wd before the Adam update), bias correction, eps outside the square root, PyTorch's
// defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2), a per-parameter step
// count, parameters without a gradient skipped. Parameter groups are predicates on the name (e.g.
// no weight decay for biases and norms). The update itself is K.adamw (native for float32).
// Not here: amsgrad, maximize, foreach/fused variants, LR schedules (see schedule.ts: the caller
// passes the schedule's factor to step()).
import { K } from '../kernels/index.ts';
import { empty, fromData, scalar, type Tensor } from '../tensor/tensor.ts';
import { untracked } from '../tensor/pool.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';

export type NamedParams = Iterable<readonly [string, Tensor]>;

export interface AdamWHyper {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

/** Overrides for the parameters whose name matches; the first matching group wins. */
export interface AdamWGroup extends Partial<AdamWHyper> {
  match: (name: string, p: Tensor) => boolean;
}

export interface AdamWOptions extends Partial<AdamWHyper> {
  groups?: AdamWGroup[];
}

/**
 * Optimiser state as named tensors, ready for a safetensors checkpoint: for every parameter that
 * has been stepped, `<name>.exp_avg`, `<name>.exp_avg_sq` and `<name>.step` (0-d), as in PyTorch's
 * state_dict but keyed by name. `step` counts calls to step(). exp_avg/exp_avg_sq share storage
 * with the live state: serialise them before the next step().
 */
export interface AdamWState {
  step: number;
  tensors: Map<string, Tensor>;
}

interface Slot {
  name: string;
  p: Tensor;
  hyper: AdamWHyper;
  m: Tensor | null;
  v: Tensor | null;
  step: number;
}

const SUFFIXES = ['exp_avg', 'exp_avg_sq', 'step'] as const;

export const ADAMW_DEFAULTS: AdamWHyper = Object.freeze({ lr: 1e-3, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: 1e-2 });

function checkHyper(h: AdamWHyper, where: string): AdamWHyper {
  const [b1, b2] = h.betas;
  // The same checks as torch.optim.AdamW's constructor.
  if (!(h.lr >= 0)) throw new Error(`AdamW ${where}: invalid lr ${h.lr}`);
  if (!(h.eps >= 0)) throw new Error(`AdamW ${where}: invalid eps ${h.eps}`);
  if (!(b1 >= 0 && b1 < 1)) throw new Error(`AdamW ${where}: invalid beta1 ${b1} (need 0 <= beta1 < 1)`);
  if (!(b2 >= 0 && b2 < 1)) throw new Error(`AdamW ${where}: invalid beta2 ${b2} (need 0 <= beta2 < 1)`);
  if (!(h.weightDecay >= 0)) throw new Error(`AdamW ${where}: invalid weightDecay ${h.weightDecay}`);
  return h;
}

const pickHyper = (o: Partial<AdamWHyper>): Partial<AdamWHyper> =>
  Object.fromEntries(Object.entries({ lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay }).filter(([, v]) => v !== undefined));

export class AdamW {
  readonly defaults: AdamWHyper;
  /** Calls to step() so far (restored by loadState). */
  steps = 0;
  private readonly slots: Slot[] = [];
  private readonly byName = new Map<string, Slot>();

  constructor(params: NamedParams, opts: AdamWOptions = {}) {
    this.defaults = checkHyper({ ...ADAMW_DEFAULTS, ...pickHyper(opts) }, 'defaults');
    const groups = (opts.groups ?? []).map((g, i) => ({ match: g.match, hyper: checkHyper({ ...this.defaults, ...pickHyper(g) }, `group ${i}`) }));
    const seen = new Set<Tensor>();
    for (const [name, p] of params) {
      if (this.byName.has(name)) throw new Error(`AdamW: parameter name '${name}' appears twice`);
      if (seen.has(p)) throw new Error(`AdamW: parameter '${name}' is the same tensor as an earlier parameter`);
      seen.add(p);
      const hyper = groups.find((g) => g.match(name, p))?.hyper ?? this.defaults;
      const slot: Slot = { name, p, hyper, m: null, v: null, step: 0 };
      this.slots.push(slot);
      this.byName.set(name, slot);
    }
  }

  /** The parameters in the order given. */
  get params(): [string, Tensor][] {
    return this.slots.map((s) => [s.name, s.p]);
  }

  /** The hyperparameters that apply to a parameter (after group overrides). */
  hyper(name: string): AdamWHyper {
    const s = this.byName.get(name);
    if (!s) throw new Error(`AdamW: no parameter '${name}'`);
    return s.hyper;
  }

  /** One update of every parameter that has a gradient; lrScale multiplies each group's lr (schedules). */
  step(lrScale = 1): void {
    if (!(lrScale >= 0)) throw new Error(`AdamW.step: invalid lrScale ${lrScale}`);
    this.steps++;
    for (const s of this.slots) {
      const g = s.p.grad;
      if (!g) continue;
      s.p.assertWritable(`AdamW.step('${s.name}')`);
      if (!sameShape(g.shape, s.p.shape)) throw new Error(`AdamW.step: gradient of '${s.name}' has shape ${fmtShape(g.shape)}, parameter ${fmtShape(s.p.shape)}`);
      // State outlives every tidy() scope of the training step.
      if (!s.m || !s.v) [s.m, s.v] = untracked(() => [empty(s.p.shape, s.p.dtype), empty(s.p.shape, s.p.dtype)]);
      s.step++;
      const { lr, betas, eps, weightDecay } = s.hyper;
      K.adamw(s.p.data, g.data, s.m.data, s.v.data, s.p.size, lr * lrScale, betas[0], betas[1], eps, weightDecay, s.step);
    }
  }

  /** Zero every parameter's gradient in place (keeping its storage). */
  zeroGrad(): void {
    for (const s of this.slots) s.p.grad?.data.fill(0);
  }

  state(): AdamWState {
    const tensors = new Map<string, Tensor>();
    for (const s of this.slots) {
      if (!s.m || !s.v) continue;
      tensors.set(`${s.name}.exp_avg`, fromData(s.m.data, s.m.shape));
      tensors.set(`${s.name}.exp_avg_sq`, fromData(s.v.data, s.v.shape));
      tensors.set(`${s.name}.step`, scalar(s.step));
    }
    return { step: this.steps, tensors };
  }

  /**
   * Restore a state() (e.g. read back from safetensors). Parameters with no entries start fresh;
   * an unknown name, a partial entry or a shape mismatch is an error and changes nothing.
   */
  loadState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW.loadState: invalid step ${state.step}`);
    const plan: { s: Slot; m: Tensor | null; v: Tensor | null; step: number }[] = [];
    let used = 0;
    for (const s of this.slots) {
      const [m, v, st] = SUFFIXES.map((k) => state.tensors.get(`${s.name}.${k}`));
      const present = [m, v, st].filter(Boolean).length;
      used += present;
      if (present === 0) { plan.push({ s, m: null, v: null, step: 0 }); continue; }
      if (!m || !v || !st) throw new Error(`AdamW.loadState: '${s.name}' needs ${SUFFIXES.map((k) => `${s.name}.${k}`).join(', ')}; some are missing`);
      for (const [k, t] of [['exp_avg', m], ['exp_avg_sq', v]] as const) {
        if (!sameShape(t.shape, s.p.shape)) throw new Error(`AdamW.loadState: '${s.name}.${k}' has shape ${fmtShape(t.shape)}, parameter ${fmtShape(s.p.shape)}`);
      }
      const step = st.size === 1 ? st.data[0] : NaN;
      if (!Number.isInteger(step) || step < 1) throw new Error(`AdamW.loadState: '${s.name}.step' must be one integer >= 1, got ${st.toString()}`);
      plan.push({ s, m, v, step });
    }
    if (used !== state.tensors.size) {
      const known = new Set(this.slots.flatMap((s) => SUFFIXES.map((k) => `${s.name}.${k}`)));
      const extra = [...state.tensors.keys()].filter((k) => !known.has(k));
      throw new Error(`AdamW.loadState: entries for unknown parameters: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
    }
    for (const { s, m, v, step } of plan) {
      if (!m || !v) { s.m = s.v = null; s.step = 0; continue; }
      if (!s.m || !s.v) [s.m, s.v] = untracked(() => [empty(s.p.shape, s.p.dtype), empty(s.p.shape, s.p.dtype)]);
      s.m.data.set(m.data);
      s.v.data.set(v.data);
      s.step = step;
    }
    this.steps = state.step;
  }
}

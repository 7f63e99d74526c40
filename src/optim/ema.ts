// Exponential moving average of a parameter set (the EMA teacher of DiT/SiT/REPA):
// target = decay * target + (1 - decay) * source per parameter, matched by name, through K.ema.
// `copyFrom()` is DiT's update_ema(ema, model, decay=0) at the start of training: an exact copy.
// Not here: EMA warm-up schedules (pass the decay to update()), buffers that are not parameters.
import { K } from '../kernels/index.ts';
import { clone, type Tensor } from '../tensor/tensor.ts';
import { untracked } from '../tensor/pool.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';
import type { NamedParams } from './adamw.ts';

function checkDecay(d: number): number {
  if (!(d >= 0 && d <= 1)) throw new Error(`Ema: decay must be in [0, 1], got ${d}`);
  return d;
}

export class Ema {
  readonly decay: number;
  /** The averaged tensors, by name (the teacher's parameters). */
  readonly target: Map<string, Tensor>;
  private readonly pairs: [string, Tensor, Tensor][] = [];

  /** Pair `target` with `source` by name; both sets must have the same names and shapes. */
  constructor(target: NamedParams, source: NamedParams, decay = 0.9999) {
    this.decay = checkDecay(decay);
    this.target = new Map(target);
    const src = new Map(source);
    for (const [name, t] of this.target) {
      const s = src.get(name);
      if (!s) throw new Error(`Ema: target '${name}' has no source parameter of that name`);
      if (!sameShape(t.shape, s.shape)) throw new Error(`Ema: '${name}' has shape ${fmtShape(t.shape)} in the target, ${fmtShape(s.shape)} in the source`);
      this.pairs.push([name, t, s]);
    }
    const extra = [...src.keys()].filter((n) => !this.target.has(n));
    if (extra.length) throw new Error(`Ema: source parameters with no target: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  }

  /** A fresh target: copies of the source (outside any tidy scope, no gradient), like DiT's deepcopy. */
  static of(source: NamedParams, decay = 0.9999): Ema {
    const list = [...source];
    const target = untracked(() => list.map(([n, p]) => [n, clone(p)] as const));
    return new Ema(target, list, decay);
  }

  /** target = decay * target + (1 - decay) * source, for every parameter. */
  update(decay = this.decay): void {
    checkDecay(decay);
    for (const [name, t, s] of this.pairs) {
      t.assertWritable(`Ema.update('${name}')`);
      K.ema(t.data, s.data, t.size, decay);
    }
  }

  /** target = source exactly (decay 0 without the arithmetic, so inf/NaN in the old target cannot leak). */
  copyFrom(): void {
    for (const [name, t, s] of this.pairs) {
      t.assertWritable(`Ema.copyFrom('${name}')`);
      t.data.set(s.data);
    }
  }
}

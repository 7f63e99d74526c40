// gradcheck: compares an op's backward with central finite differences on the float64 path.
// The output is contracted with a fixed random cotangent w (loss = sum(w * f(x))), so every output
// element's gradient is exercised, not just their sum.
import { Tensor, cast, tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { tidy } from '../tensor/tidy.ts';
import { backward, noGrad, Tape, withTape } from './tape.ts';
import { fmtShape } from '../tensor/shape.ts';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
  /** Inputs (by index) not to differentiate (e.g. integer indices, targets). */
  skip?: number[];
}

export interface GradcheckResult { ok: boolean; maxAbsErr: number; maxRelErr: number; message: string }

/**
 * f maps float64 tensors to one tensor. Inputs are cast to float64 copies; returns a result whose
 * message names the input, element and both values at the worst mismatch.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-6, rtol = opts.rtol ?? 1e-4;
  const skip = new Set(opts.skip ?? []);
  return tidy(() => {
    const xs = inputs.map((x, i) => {
      const c = cast(x, 'float64');
      if (!skip.has(i)) c.requiresGrad = true;
      return c;
    });
    const probe = noGrad(() => f(...xs));
    const w = tensor(new Rng(opts.seed ?? 7).normalArray(probe.size), probe.shape, 'float64');
    const lossOf = (): number => {
      const y = noGrad(() => f(...xs));
      let s = 0;
      for (let i = 0; i < y.size; i++) s += w.data[i] * y.data[i];
      return s;
    };
    // analytic
    const tape = new Tape();
    const y = withTape(tape, () => f(...xs));
    if (!y.requiresGrad) {
      return { ok: false, maxAbsErr: Infinity, maxRelErr: Infinity, message: 'output does not require grad: op recorded nothing' };
    }
    backward([[y, w]], { tape });
    let maxAbs = 0, maxRel = 0, worst = '';
    let ok = true;
    xs.forEach((x, i) => {
      if (skip.has(i)) return;
      const ga = x.grad ? x.grad.data : new Float64Array(x.size);
      for (let j = 0; j < x.size; j++) {
        const old = x.data[j];
        x.data[j] = old + eps;
        const lp = lossOf();
        x.data[j] = old - eps;
        const lm = lossOf();
        x.data[j] = old;
        const num = (lp - lm) / (2 * eps);
        const err = Math.abs(num - ga[j]);
        const rel = err / Math.max(Math.abs(num), Math.abs(ga[j]), 1e-12);
        if (err > maxAbs) maxAbs = err;
        if (err > atol && rel > maxRel) maxRel = rel;
        if (err > atol + rtol * Math.abs(num) && ok) {
          ok = false;
          worst = `input ${i} ${fmtShape(x.shape)} element ${j}: analytic ${ga[j]} vs numeric ${num} (abs err ${err.toExponential(2)})`;
        }
      }
    });
    return { ok, maxAbsErr: maxAbs, maxRelErr: maxRel, message: ok ? `ok (max abs err ${maxAbs.toExponential(2)})` : worst };
  });
}

export type { Tensor };

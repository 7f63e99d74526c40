// Views and reshapes: reshape/view share storage (row-major data never moves); their gradient is
// the incoming gradient reshaped back.
import { viewOf, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape, sizeOf, type Shape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';

/** Reshape; one dim may be -1 (inferred). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== neg));
    if (rest === 0 || x.size % rest !== 0) throw new Error(`reshape: cannot infer -1 in ${fmtShape(shape)} from size ${x.size}`);
    s[neg] = x.size / rest;
  }
  if (sizeOf(s) !== x.size) throw new Error(`reshape: ${fmtShape(x.shape)} (size ${x.size}) cannot become ${fmtShape(shape)}`);
  const out = viewOf(x, s);
  return record('reshape', [x], out, (g) => [viewOf(g, x.shape)]);
}

export const flatten = (x: Tensor, start = 0): Tensor => reshape(x, [...x.shape.slice(0, start), -1]);

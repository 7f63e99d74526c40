// Elementwise binary arithmetic with NumPy broadcasting: add, sub, mul, div, and scalar forms.
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { record } from '../tape.ts';
import { mapBinary, sumToShape } from './broadcast.ts';

const asTensor = (x: Tensor | number, like: Tensor): Tensor =>
  typeof x === 'number' ? tensor([x], [], like.dtype) : x;

export function add(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = mapBinary(a, bb, (x, y) => x + y);
  return record('add', [a, bb], out, (g) => [sumToShape(g, a.shape), sumToShape(g, bb.shape)]);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = mapBinary(a, bb, (x, y) => x - y);
  return record('sub', [a, bb], out, (g) => [
    sumToShape(g, a.shape),
    bb.requiresGrad ? sumToShape(mapBinary(g, g, (x) => -x), bb.shape) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = mapBinary(a, bb, (x, y) => x * y);
  return record('mul', [a, bb], out, (g) => [
    a.requiresGrad ? sumToShape(mapBinary(g, bb, (x, y) => x * y), a.shape) : null,
    bb.requiresGrad ? sumToShape(mapBinary(g, a, (x, y) => x * y), bb.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = mapBinary(a, bb, (x, y) => x / y);
  return record('div', [a, bb], out, (g) => [
    a.requiresGrad ? sumToShape(mapBinary(g, bb, (x, y) => x / y), a.shape) : null,
    // d(a/b)/db = -a/b^2 = -out/b
    bb.requiresGrad ? sumToShape(mapBinary(mapBinary(g, out, (x, y) => x * y), bb, (x, y) => -x / y), bb.shape) : null,
  ]);
}

export const neg = (a: Tensor): Tensor => mul(a, -1);

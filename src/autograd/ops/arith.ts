// Elementwise binary arithmetic with NumPy broadcasting: add, sub, mul, div, and scalar forms, all
// on binaryOp (K.binary); the backward sums broadcast dims away with sumToShape.
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { BinOp } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { binaryOp, sumToShape } from './broadcast.ts';

const asTensor = (x: Tensor | number, like: Tensor): Tensor =>
  typeof x === 'number' ? tensor([x], [], like.dtype) : x;

/** -x as a new tensor (IEEE negation is exact, so -(u op v) equals (-u) op v bit for bit). */
const negated = (x: Tensor): Tensor => binaryOp(BinOp.mul, x, tensor([-1], [], x.dtype));

export function add(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = binaryOp(BinOp.add, a, bb);
  return record('add', [a, bb], out, (g) => [sumToShape(g, a.shape), sumToShape(g, bb.shape)]);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = binaryOp(BinOp.sub, a, bb);
  return record('sub', [a, bb], out, (g) => [
    sumToShape(g, a.shape),
    bb.requiresGrad ? negated(sumToShape(g, bb.shape)) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = binaryOp(BinOp.mul, a, bb);
  return record('mul', [a, bb], out, (g) => [
    a.requiresGrad ? sumToShape(binaryOp(BinOp.mul, g, bb), a.shape) : null,
    bb.requiresGrad ? sumToShape(binaryOp(BinOp.mul, g, a), bb.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  const bb = asTensor(b, a);
  const out = binaryOp(BinOp.div, a, bb);
  return record('div', [a, bb], out, (g) => [
    a.requiresGrad ? sumToShape(binaryOp(BinOp.div, g, bb), a.shape) : null,
    // d(a/b)/db = -a/b^2 = -out/b
    bb.requiresGrad ? negated(sumToShape(binaryOp(BinOp.div, binaryOp(BinOp.mul, g, out), bb), bb.shape)) : null,
  ]);
}

export const neg = (a: Tensor): Tensor => mul(a, -1);

// Gradient accumulation, the only arithmetic the autograd engine does itself: a += b in place, or
// a fresh a + b, one K.binary pass each (native for float32).
import { uninit, type Tensor } from '../tensor/tensor.ts';
import { BinOp, K } from '../kernels/index.ts';

const flat = (n: number) => ({ shape: [1, 1, 1, n], unit: [0, 0, 0, 1] });

/** a += b (same size); returns a. */
export function addInto(a: Tensor, b: Tensor): Tensor {
  const { shape, unit } = flat(a.size);
  K.binary(BinOp.add, a.data, b.data, a.data, shape, unit, unit);
  return a;
}

/** A new tensor a + b (same shape) in one pass. */
export function addNew(a: Tensor, b: Tensor): Tensor {
  const out = uninit(a.shape, a.dtype);
  const { shape, unit } = flat(a.size);
  K.binary(BinOp.add, a.data, b.data, out.data, shape, unit, unit);
  return out;
}

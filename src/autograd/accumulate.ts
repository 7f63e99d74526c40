// In-place gradient accumulation (a += b), the one write the autograd engine does itself.
import type { Tensor } from '../tensor/tensor.ts';

export function addInto(a: Tensor, b: Tensor): Tensor {
  const x = a.data, y = b.data;
  for (let i = 0; i < x.length; i++) x[i] += y[i];
  return a;
}

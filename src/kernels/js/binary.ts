// TypeScript reference for `binary`: broadcast add/sub/mul/div over a 4-d index space with one
// element stride per operand and dim (0 = broadcast). The op is chosen once per row, so the inner
// loops carry no per-element callback. Not here: shape collapsing (autograd/ops/broadcast.ts).
import { BinOp, type BinOpCode, type FArray } from '../types.ts';

/** out[o + j] = a[ia + j*sa] op b[ib + j*sb] for j < len. */
function row(op: BinOpCode, a: FArray, ia: number, sa: number, b: FArray, ib: number, sb: number, out: FArray, o: number, len: number): void {
  switch (op) {
    case BinOp.add: for (let j = 0; j < len; j++) out[o + j] = a[ia + j * sa] + b[ib + j * sb]; return;
    case BinOp.sub: for (let j = 0; j < len; j++) out[o + j] = a[ia + j * sa] - b[ib + j * sb]; return;
    case BinOp.mul: for (let j = 0; j < len; j++) out[o + j] = a[ia + j * sa] * b[ib + j * sb]; return;
    case BinOp.div: for (let j = 0; j < len; j++) out[o + j] = a[ia + j * sa] / b[ib + j * sb]; return;
    default: throw new Error(`binary: unknown op code ${op as number}`);
  }
}

/** out (shape, contiguous) = a op b with strides sa, sb (4 entries each). */
export function binary(
  op: BinOpCode, a: FArray, b: FArray, out: FArray,
  shape: ArrayLike<number>, sa: ArrayLike<number>, sb: ArrayLike<number>,
): void {
  const [n0, n1, n2, n3] = [shape[0], shape[1], shape[2], shape[3]];
  let o = 0;
  for (let i0 = 0; i0 < n0; i0++) {
    for (let i1 = 0; i1 < n1; i1++) {
      for (let i2 = 0; i2 < n2; i2++) {
        const ia = i0 * sa[0] + i1 * sa[1] + i2 * sa[2], ib = i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
        row(op, a, ia, sa[3], b, ib, sb[3], out, o, n3);
        o += n3;
      }
    }
  }
}

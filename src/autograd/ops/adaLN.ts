// The fused adaLN-Zero ops of a DiT/SiT block, each one differentiable op on its fused kernel:
// gatedResidual(x, gate, y) = x + gate[:, None] * y, and layerNormModulate(x, shift, scale) =
// modulate(layerNorm(x), shift, scale) (no affine). Both equal their composites (tested against
// them) and skip the composites' (B, N, C) temporaries and broadcast passes.
// Not here: the plain modulate op (modulate.ts), layer norm with affine (norm.ts).
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { K } from '../../kernels/index.ts';
import { record } from '../tape.ts';

/** Checks x (B, N, C) and that every t in rows is (B, C) of x's dtype; returns [B, N, C]. */
function bnc(what: string, x: Tensor, rows: [string, Tensor][]): [number, number, number] {
  if (x.ndim !== 3) throw new Error(`${what}: x must be (B, N, C), got ${fmtShape(x.shape)}`);
  const [b, n, c] = x.shape;
  for (const [name, t] of rows) {
    if (t.ndim !== 2 || t.shape[0] !== b || t.shape[1] !== c) throw new Error(`${what}: ${name} must be (${b}, ${c}), got ${fmtShape(t.shape)}`);
    if (t.dtype !== x.dtype) throw new Error(`${what}: ${name} dtype ${t.dtype} does not match x ${x.dtype}`);
  }
  return [b, n, c];
}

/** x + gate[:, None, :] * y. x, y (B, N, C); gate (B, C) -> (B, N, C). */
export function gatedResidual(x: Tensor, gate: Tensor, y: Tensor): Tensor {
  const [b, n, c] = bnc('gatedResidual', x, [['gate', gate]]);
  if (y.ndim !== 3 || y.shape.some((d, i) => d !== x.shape[i]) || y.dtype !== x.dtype) {
    throw new Error(`gatedResidual: y ${fmtShape(y.shape)} ${y.dtype} must match x ${fmtShape(x.shape)} ${x.dtype}`);
  }
  const out = uninit(x.shape, x.dtype); // (B, N, C)
  K.gatedResidualForward(x.data, gate.data, y.data, out.data, b, n, c);
  return record('gatedResidual', [x, gate, y], out, (g) => {
    const dgate = uninit(gate.shape, gate.dtype), dy = uninit(y.shape, y.dtype);
    K.gatedResidualBackward(g.data, gate.data, y.data, dy.data, dgate.data, b, n, c);
    // dx is g itself: the tape never writes into a gradient it did not allocate.
    return [x.requiresGrad ? g : null, gate.requiresGrad ? dgate : null, y.requiresGrad ? dy : null];
  });
}

/**
 * LayerNorm over C without affine, then x̂ * (1 + scale[:, None]) + shift[:, None].
 * x (B, N, C); shift, scale (B, C) -> (B, N, C).
 */
export function layerNormModulate(x: Tensor, shift: Tensor, scale: Tensor, eps = 1e-6): Tensor {
  const [b, n, c] = bnc('layerNormModulate', x, [['shift', shift], ['scale', scale]]);
  const y = uninit(x.shape, x.dtype); // (B, N, C)
  const mean = uninit([b * n], x.dtype), rstd = uninit([b * n], x.dtype); // (B*N)
  K.layerNormModulateForward(x.data, shift.data, scale.data, y.data, mean.data, rstd.data, b, n, c, eps);
  return record('layerNormModulate', [x, shift, scale], y, (g) => {
    const dx = uninit(x.shape, x.dtype), dshift = uninit(shift.shape, x.dtype), dscale = uninit(scale.shape, x.dtype);
    K.layerNormModulateBackward(g.data, x.data, scale.data, mean.data, rstd.data, dx.data, dshift.data, dscale.data, b, n, c);
    return [x.requiresGrad ? dx : null, shift.requiresGrad ? dshift : null, scale.requiresGrad ? dscale : null];
  });
}

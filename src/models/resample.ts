// Resampling of a square position-embedding grid with PyTorch's F.interpolate semantics
// (align_corners=False), written as explicit weight matrices: one (out, in) matrix per axis for
// bilinear or bicubic, with or without antialias, from an output size or from a scale factor
// (DINOv2 passes scale_factor = (g + 0.1) / M, which shifts the sampling grid). A 2-D resample of
// a (M*M, D) table is then one matmul with the Kronecker product of the two axis matrices, so a
// trained pos_embed stays differentiable through it. Not here: image resizing (autograd/ops/pool.ts).

export type ResampleMode = 'bilinear' | 'bicubic';

export interface ResampleOptions {
  mode: ResampleMode;
  /** F.interpolate(antialias=True): a widened filter when downsampling (timm and DINOv2-reg use it). */
  antialias?: boolean;
  /** F.interpolate(scale_factor=s): source coordinates use 1/s instead of in/out. */
  scaleFactor?: number;
}

/** Keys' cubic convolution kernel with parameter a (PyTorch: -0.75 plain, -0.5 antialiased). */
function cubic(x: number, a: number): number {
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

const triangle = (x: number): number => Math.max(0, 1 - Math.abs(x));

/**
 * The (outSize, inSize) row-major matrix W with out = W in along one axis, as PyTorch's CPU
 * upsample kernels compute it (the plain kernels clamp taps at the border; the antialiased ones
 * drop out-of-range taps and renormalise).
 */
export function resampleMatrix(inSize: number, outSize: number, opts: ResampleOptions): Float64Array {
  if (!(Number.isInteger(inSize) && Number.isInteger(outSize) && inSize > 0 && outSize > 0)) {
    throw new Error(`resampleMatrix: sizes must be positive integers, got ${inSize} -> ${outSize}`);
  }
  const scale = opts.scaleFactor !== undefined && opts.scaleFactor > 0 ? 1 / opts.scaleFactor : inSize / outSize;
  const w = new Float64Array(outSize * inSize); // (out, in)
  const clampIdx = (i: number): number => Math.min(Math.max(i, 0), inSize - 1);
  for (let o = 0; o < outSize; o++) {
    const row = o * inSize;
    if (opts.antialias) {
      const interp = opts.mode === 'bicubic' ? 4 : 2;
      const filter = opts.mode === 'bicubic' ? (x: number) => cubic(x, -0.5) : triangle;
      const support = scale >= 1 ? (interp / 2) * scale : interp / 2;
      const invScale = scale >= 1 ? 1 / scale : 1;
      const center = scale * (o + 0.5);
      const lo = Math.max(Math.trunc(center - support + 0.5), 0);
      const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
      let total = 0;
      for (let j = lo; j < hi; j++) total += (w[row + j] = filter((j - center + 0.5) * invScale));
      if (total !== 0) for (let j = lo; j < hi; j++) w[row + j] /= total;
    } else if (opts.mode === 'bilinear') {
      const src = Math.max(scale * (o + 0.5) - 0.5, 0);
      const i0 = Math.min(Math.floor(src), inSize - 1);
      const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
      const t = Math.min(Math.max(src - i0, 0), 1);
      w[row + i0] += 1 - t;
      w[row + i1] += t;
    } else {
      const src = scale * (o + 0.5) - 0.5;
      const i = Math.floor(src), t = src - i;
      const c = [cubic(t + 1, -0.75), cubic(t, -0.75), cubic(1 - t, -0.75), cubic(2 - t, -0.75)];
      for (let k = 0; k < 4; k++) w[row + clampIdx(i - 1 + k)] += c[k];
    }
  }
  return w;
}

/**
 * The ((outH*outW), (inH*inW)) matrix kron(Wy, Wx): row (oy, ox), column (iy, ix) holds
 * Wy[oy, iy] * Wx[ox, ix]. Multiplying a row-major (inH*inW, D) grid by it resamples the grid.
 */
export function resampleGridMatrix(
  inH: number, inW: number, outH: number, outW: number,
  opts: ResampleOptions & { scaleFactorW?: number },
): Float64Array {
  const wy = resampleMatrix(inH, outH, opts);
  const wx = resampleMatrix(inW, outW, { ...opts, scaleFactor: opts.scaleFactorW ?? opts.scaleFactor });
  const nIn = inH * inW;
  const out = new Float64Array(outH * outW * nIn);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const row = (oy * outW + ox) * nIn;
      for (let iy = 0; iy < inH; iy++) {
        const a = wy[oy * inH + iy];
        if (a === 0) continue;
        for (let ix = 0; ix < inW; ix++) out[row + iy * inW + ix] = a * wx[ox * inW + ix];
      }
    }
  }
  return out;
}

/** Resample a row-major (inH*inW, D) grid of vectors to (outH*outW, D) (float64 accumulation). */
export function resampleGrid(
  grid: ArrayLike<number>, dim: number, inH: number, inW: number, outH: number, outW: number,
  opts: ResampleOptions & { scaleFactorW?: number },
): Float64Array {
  if (grid.length !== inH * inW * dim) throw new Error(`resampleGrid: ${grid.length} values are not ${inH}x${inW}x${dim}`);
  const m = resampleGridMatrix(inH, inW, outH, outW, opts);
  const nIn = inH * inW, out = new Float64Array(outH * outW * dim);
  for (let o = 0; o < outH * outW; o++) {
    for (let i = 0; i < nIn; i++) {
      const a = m[o * nIn + i];
      if (a === 0) continue;
      for (let d = 0; d < dim; d++) out[o * dim + d] += a * grid[i * dim + d];
    }
  }
  return out;
}

// 2-d convolution and transposed convolution (PyTorch semantics and weight layouts) as
// im2col/col2im plus K.gemm, so the hot path is the blocked native GEMM in float32. Supports
// stride, zero padding, groups and (for the transpose) output padding. Not here: dilation, padding
// modes other than zeros, 1-d/3-d convolutions.
import { empty, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { K, type FArray } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';

/** A size given once for both spatial dims or as [h, w]. */
export type Pair = number | readonly [number, number];
const pair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

export interface Conv2dOptions { stride?: Pair; padding?: Pair; groups?: number }
export interface ConvTranspose2dOptions extends Conv2dOptions { outputPadding?: Pair }

/** Geometry of one convolution: an (H, W) image, kernel, stride and padding giving (OH, OW). */
interface Geom { h: number; w: number; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; oh: number; ow: number }

/**
 * img (C, H, W) at offset io -> col (C*kh*kw, OH*OW) at offset co; padding reads as zero.
 * Row (c, i, j) of col holds the image values under kernel tap (i, j) for every output position.
 */
function im2col(img: FArray, io: number, c: number, g: Geom, col: FArray, co: number): void {
  const l = g.oh * g.ow;
  if (isMetaArray(col)) { metaCount('elementwise', 0, 2 * c * g.kh * g.kw * l); return; } // shape-only (kernels/meta.ts)
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++) {
        let r = co + ((ch * g.kh + i) * g.kw + j) * l;
        for (let y = 0; y < g.oh; y++) {
          const iy = y * g.sh - g.ph + i;
          const rowOk = iy >= 0 && iy < g.h;
          const src = io + (ch * g.h + iy) * g.w;
          for (let x = 0; x < g.ow; x++, r++) {
            const ix = x * g.sw - g.pw + j;
            col[r] = rowOk && ix >= 0 && ix < g.w ? img[src + ix] : 0;
          }
        }
      }
    }
  }
}

/** The adjoint of im2col: img (C, H, W) at io += scatter of col (C*kh*kw, OH*OW) at co. */
function col2im(col: FArray, co: number, c: number, g: Geom, img: FArray, io: number): void {
  const l = g.oh * g.ow;
  if (isMetaArray(img)) { metaCount('elementwise', c * g.kh * g.kw * l, 3 * c * g.kh * g.kw * l); return; }
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++) {
        let r = co + ((ch * g.kh + i) * g.kw + j) * l;
        for (let y = 0; y < g.oh; y++) {
          const iy = y * g.sh - g.ph + i;
          if (iy < 0 || iy >= g.h) { r += g.ow; continue; }
          const dst = io + (ch * g.h + iy) * g.w;
          for (let x = 0; x < g.ow; x++, r++) {
            const ix = x * g.sw - g.pw + j;
            if (ix >= 0 && ix < g.w) img[dst + ix] += col[r];
          }
        }
      }
    }
  }
}

/** out (N, C, L) += bias[c]. */
function addBias(out: FArray, bias: FArray, n: number, c: number, l: number): void {
  if (isMetaArray(out)) { metaCount('elementwise', n * c * l, 2 * n * c * l); return; }
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const o = (i * c + ch) * l, b = bias[ch];
      for (let t = 0; t < l; t++) out[o + t] += b;
    }
  }
}

/** dbias[c] = sum over N and L of g (N, C, L). */
function biasGrad(g: Tensor, c: number, l: number, like: Tensor): Tensor {
  const n = g.shape[0];
  const db = empty([c], like.dtype);
  if (isMetaArray(g.data)) { metaCount('reduce', n * c * l, n * c * l); return db; }
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const o = (i * c + ch) * l;
      for (let t = 0; t < l; t++) s += g.data[o + t];
    }
    db.data[ch] = s;
  }
  return db;
}

function checkInputs(what: string, x: Tensor, weight: Tensor, bias: Tensor | null, groups: number): void {
  if (x.ndim !== 4 || weight.ndim !== 4) throw new Error(`${what}: x must be (N, C, H, W) and weight 4-d, got ${fmtShape(x.shape)} and ${fmtShape(weight.shape)}`);
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${what}: groups must be a positive integer, got ${groups}`);
  for (const t of [weight, bias]) if (t && t.dtype !== x.dtype) throw new Error(`${what}: dtype ${t.dtype} does not match input ${x.dtype}`);
}

/**
 * F.conv2d(x, weight, bias, stride, padding, groups=groups). x: (N, C, H, W);
 * weight: (O, C/groups, kh, kw); bias: (O) or null. Returns (N, O, OH, OW) with
 * OH = floor((H + 2*ph - kh) / sh) + 1.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const groups = opts.groups ?? 1;
  checkInputs('conv2d', x, weight, bias, groups);
  const [n, c, h, w] = x.shape;
  const [o, cg, kh, kw] = weight.shape;
  const [sh, sw] = pair(opts.stride ?? 1), [ph, pw] = pair(opts.padding ?? 0);
  if (c !== cg * groups || o % groups !== 0) throw new Error(`conv2d: weight ${fmtShape(weight.shape)} does not fit ${c} input channels in ${groups} groups`);
  if (bias && (bias.ndim !== 1 || bias.size !== o)) throw new Error(`conv2d: bias must be [${o}], got ${fmtShape(bias.shape)}`);
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh < 1 || ow < 1) throw new Error(`conv2d: kernel ${kh}x${kw} does not fit input ${h}x${w} with padding ${ph}x${pw}`);
  const g: Geom = { h, w, kh, kw, sh, sw, ph, pw, oh, ow };
  const og = o / groups, l = oh * ow, ckk = c * kh * kw, cgkk = cg * kh * kw;
  const col = empty([n, ckk, l], x.dtype); // (N, C*kh*kw, OH*OW)
  for (let i = 0; i < n; i++) im2col(x.data, i * c * h * w, c, g, col.data, i * ckk * l);
  const out = empty([n, o, oh, ow], x.dtype);
  for (let gi = 0; gi < groups; gi++) {
    // out[:, group] (Og, L) = W_g (Og, Cg*kh*kw) @ col[:, group] (Cg*kh*kw, L), batched over N
    K.gemm({
      transA: false, transB: false, m: og, n: l, k: cgkk,
      a: weight.data.subarray(gi * og * cgkk), lda: cgkk,
      b: col.data.subarray(gi * cgkk * l), ldb: l,
      c: out.data.subarray(gi * og * l), ldc: l,
      batch: n, strideA: 0, strideB: ckk * l, strideC: o * l,
    });
  }
  if (bias) addBias(out.data, bias.data, n, o, l);
  return record('conv2d', [x, weight, bias], out, (gOut) => {
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (x.requiresGrad) {
      const dcol = empty([n, ckk, l], x.dtype);
      for (let gi = 0; gi < groups; gi++) {
        // dcol[:, group] (Cg*kh*kw, L) = W_g^T @ dOut[:, group] (Og, L)
        K.gemm({
          transA: true, transB: false, m: cgkk, n: l, k: og,
          a: weight.data.subarray(gi * og * cgkk), lda: cgkk,
          b: gOut.data.subarray(gi * og * l), ldb: l,
          c: dcol.data.subarray(gi * cgkk * l), ldc: l,
          batch: n, strideA: 0, strideB: o * l, strideC: ckk * l,
        });
      }
      dx = empty(x.shape, x.dtype);
      for (let i = 0; i < n; i++) col2im(dcol.data, i * ckk * l, c, g, dx.data, i * c * h * w);
    }
    if (weight.requiresGrad) {
      // dW_g (Og, Cg*kh*kw) = sum_i dOut[i, group] (Og, L) @ col[i, group]^T (L, Cg*kh*kw)
      dw = weightGrad(gOut, o, og, col, ckk, cgkk, l, n, groups, weight);
    }
    return [dx, dw, bias?.requiresGrad ? biasGrad(gOut, o, l, x) : null];
  });
}

/**
 * F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups): the adjoint of
 * conv2d. x: (N, C_in, H, W); weight: (C_in, C_out/groups, kh, kw) (PyTorch layout); bias: (C_out)
 * or null. Returns (N, C_out, OH, OW) with OH = (H - 1)*sh - 2*ph + kh + output_padding_h.
 */
export function convTranspose2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: ConvTranspose2dOptions = {}): Tensor {
  const groups = opts.groups ?? 1;
  checkInputs('convTranspose2d', x, weight, bias, groups);
  const [n, cin, h, w] = x.shape;
  const [wcin, cog, kh, kw] = weight.shape;
  const [sh, sw] = pair(opts.stride ?? 1), [ph, pw] = pair(opts.padding ?? 0), [oph, opw] = pair(opts.outputPadding ?? 0);
  if (wcin !== cin || cin % groups !== 0) throw new Error(`convTranspose2d: weight ${fmtShape(weight.shape)} does not fit ${cin} input channels in ${groups} groups`);
  if (oph >= sh || opw >= sw) throw new Error(`convTranspose2d: output padding ${oph}x${opw} must be smaller than stride ${sh}x${sw}`);
  const cout = cog * groups, cig = cin / groups;
  if (bias && (bias.ndim !== 1 || bias.size !== cout)) throw new Error(`convTranspose2d: bias must be [${cout}], got ${fmtShape(bias.shape)}`);
  const oh = (h - 1) * sh - 2 * ph + kh + oph, ow = (w - 1) * sw - 2 * pw + kw + opw;
  if (oh < 1 || ow < 1) throw new Error(`convTranspose2d: output ${oh}x${ow} is empty`);
  // The conv whose adjoint this is: it maps the (OH, OW) output image to the (H, W) input grid.
  const g: Geom = { h: oh, w: ow, kh, kw, sh, sw, ph, pw, oh: h, ow: w };
  const l = h * w, cokk = cout * kh * kw, cogkk = cog * kh * kw, outImg = cout * oh * ow;
  const col = empty([n, cokk, l], x.dtype); // (N, C_out*kh*kw, H*W)
  for (let gi = 0; gi < groups; gi++) {
    // col[:, group] (Cog*kh*kw, L) = W_g^T (Cog*kh*kw, Cig) @ x[:, group] (Cig, L), batched over N
    K.gemm({
      transA: true, transB: false, m: cogkk, n: l, k: cig,
      a: weight.data.subarray(gi * cig * cogkk), lda: cogkk,
      b: x.data.subarray(gi * cig * l), ldb: l,
      c: col.data.subarray(gi * cogkk * l), ldc: l,
      batch: n, strideA: 0, strideB: cin * l, strideC: cokk * l,
    });
  }
  const out = empty([n, cout, oh, ow], x.dtype); // zero-filled: col2im accumulates
  for (let i = 0; i < n; i++) col2im(col.data, i * cokk * l, cout, g, out.data, i * outImg);
  if (bias) addBias(out.data, bias.data, n, cout, oh * ow);
  return record('convTranspose2d', [x, weight, bias], out, (gOut) => {
    const dcol = empty([n, cokk, l], x.dtype); // im2col of dOut on the (H, W) grid
    for (let i = 0; i < n; i++) im2col(gOut.data, i * outImg, cout, g, dcol.data, i * cokk * l);
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty(x.shape, x.dtype);
      for (let gi = 0; gi < groups; gi++) {
        // dx[:, group] (Cig, L) = W_g (Cig, Cog*kh*kw) @ dcol[:, group] (Cog*kh*kw, L)
        K.gemm({
          transA: false, transB: false, m: cig, n: l, k: cogkk,
          a: weight.data.subarray(gi * cig * cogkk), lda: cogkk,
          b: dcol.data.subarray(gi * cogkk * l), ldb: l,
          c: dx.data.subarray(gi * cig * l), ldc: l,
          batch: n, strideA: 0, strideB: cokk * l, strideC: cin * l,
        });
      }
    }
    if (weight.requiresGrad) {
      // dW_g (Cig, Cog*kh*kw) = sum_i x[i, group] (Cig, L) @ dcol[i, group]^T (L, Cog*kh*kw)
      dw = weightGrad(x, cin, cig, dcol, cokk, cogkk, l, n, groups, weight);
    }
    return [dx, dw, bias?.requiresGrad ? biasGrad(gOut, cout, oh * ow, x) : null];
  });
}

/**
 * The weight gradient both convolutions share: per group g, dW_g = sum over samples i of
 * A[i, g] (m, L) @ B[i, g]^T (L, cols), where sample i of A has aRows rows (m per group) and of
 * B has bRows rows (cols per group). Accumulated with beta = 1 after the first sample.
 */
function weightGrad(
  a: Tensor, aRows: number, m: number, b: Tensor, bRows: number, cols: number,
  l: number, n: number, groups: number, weight: Tensor,
): Tensor {
  const dw = empty(weight.shape, weight.dtype);
  for (let gi = 0; gi < groups; gi++) {
    for (let i = 0; i < n; i++) {
      K.gemm({
        transA: false, transB: true, m, n: cols, k: l,
        a: a.data.subarray((i * aRows + gi * m) * l), lda: l,
        b: b.data.subarray((i * bRows + gi * cols) * l), ldb: l,
        c: dw.data.subarray(gi * m * cols), ldc: cols,
        beta: i === 0 ? 0 : 1,
      });
    }
  }
  return dw;
}

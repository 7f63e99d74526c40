// Rotary position embedding (Su et al., RoFormer, arXiv 2104.09864) in its 2-D axial form as DDT
// uses it (MCG-NJU/DDT src/models/denoiser/decoupled_improved_dit.py: precompute_freqs_cis_2d,
// apply_rotary_emb). rotary(x, angles) rotates each channel pair (2m, 2m+1) of x (B, N, H, d) by
// the angle θ[n, m] of its token: (a, b) ↦ (a cos θ − b sin θ, a sin θ + b cos θ) — multiplication
// by e^{iθ} of the complex number a + ib (torch.view_as_complex reads pairs this way). Its
// backward is the inverse rotation of the gradient. rope2dAngles gives DDT's table: head dim d,
// φ_k = θ_base^(−4k/d) (k < d/4), token (row r, col c) at px = c·scale/(W−1), py = r·scale/(H−1)
// (torch.linspace(0, scale, ·)); pair 2k turns by px·φ_k, pair 2k+1 by py·φ_k.
// Not here: where attention applies it (nn/ropeAttention.ts).
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';

/** linspace(0, scale, n) as torch computes it (n = 1: [0]). */
function linspace(scale: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = n === 1 ? 0 : (scale * i) / (n - 1);
  return out;
}

/** DDT's 2-D angle table (H·W, d/2), tokens row-major; d must be a multiple of 4. */
export function rope2dAngles(height: number, width: number, headDim: number, theta = 10000, scale = 16): Float64Array {
  for (const [n, v] of [['height', height], ['width', width], ['headDim', headDim]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`rope2dAngles: ${n} must be a positive integer, got ${v}`);
  }
  if (headDim % 4 !== 0) throw new Error(`rope2dAngles: the head dim ${headDim} must be a multiple of 4 (two axes, pairs of channels)`);
  const q = headDim / 4, half = headDim / 2;
  const freqs = Float64Array.from({ length: q }, (_, k) => 1 / theta ** ((4 * k) / headDim));
  const xs = linspace(scale, width), ys = linspace(scale, height);
  const out = new Float64Array(height * width * half);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const o = (r * width + c) * half;
      for (let k = 0; k < q; k++) {
        out[o + 2 * k] = xs[c] * freqs[k];
        out[o + 2 * k + 1] = ys[r] * freqs[k];
      }
    }
  }
  return out;
}

/** x (B, N, H, d) rotated pairwise by angles (N, d/2) (a constant: no gradient) -> (B, N, H, d). */
export function rotary(x: Tensor, angles: Float64Array): Tensor {
  if (x.ndim !== 4 || x.shape[3] % 2 !== 0) throw new Error(`rotary: x must be (B, N, H, d) with d even, got ${fmtShape(x.shape)}`);
  const [b, n, h, d] = x.shape;
  const half = d / 2;
  if (angles.length !== n * half) throw new Error(`rotary: angles must be (N ${n}, d/2 ${half}) = ${n * half} values, got ${angles.length}`);
  if (isMetaArray(x.data)) { // shape-only (kernels/meta.ts): count, do not walk
    metaCount('elementwise', 3 * x.size, 2 * x.size);
    return record('rotary', [x], uninit(x.shape, x.dtype), () => { metaCount('elementwise', 3 * x.size, 2 * x.size); return [uninit(x.shape, x.dtype)]; });
  }
  const cos = angles.map(Math.cos), sin = angles.map(Math.sin);
  const turn = (src: ArrayLike<number>, dst: { [i: number]: number }, sign: 1 | -1): void => {
    for (let bi = 0; bi < b; bi++) {
      for (let t = 0; t < n; t++) {
        const a0 = t * half;
        for (let hh = 0; hh < h; hh++) {
          const o = ((bi * n + t) * h + hh) * d;
          for (let m = 0; m < half; m++) {
            const c = cos[a0 + m], s = sign * sin[a0 + m];
            const p = src[o + 2 * m], q = src[o + 2 * m + 1];
            dst[o + 2 * m] = p * c - q * s;
            dst[o + 2 * m + 1] = p * s + q * c;
          }
        }
      }
    }
  };
  const out = uninit(x.shape, x.dtype);
  turn(x.data, out.data, 1);
  return record('rotary', [x], out, (g) => {
    const dx = uninit(x.shape, x.dtype);
    turn(g.data, dx.data, -1);
    return [dx];
  });
}

/**
 * The q/k-norm + RoPE step of DDT's attention on a packed projection, one op: qkv (B, N, 3·H·d)
 * read as (B, N, 3, H, d) (timm's layout, what qkvAttention reads); in the q and k parts each head's
 * row is RMS-normalised with its weight (qNorm, kNorm (d); null: no norm) and then rotated by the
 * token's angles (N, d/2) (null: no rotation); the v part is copied. Returns the packed (B, N, 3·H·d)
 * for qkvAttention — no slices, permutes or (B, H, N, d) copies. Equal to rmsNorm then rotary on
 * the q and k slices (tested).
 */
export function qkNormRope(qkv: Tensor, heads: number, qNorm: Tensor | null, kNorm: Tensor | null, eps: number, angles: Float64Array | null): Tensor {
  if (qkv.ndim !== 3 || !Number.isInteger(heads) || heads < 1 || qkv.shape[2] % (3 * heads) !== 0) {
    throw new Error(`qkNormRope: expected qkv (B, N, 3·H·d) with H = ${heads}, got ${fmtShape(qkv.shape)}`);
  }
  const [b, n, c3] = qkv.shape;
  const d = c3 / (3 * heads), half = d / 2, hd = heads * d;
  if ((qNorm === null) !== (kNorm === null)) throw new Error('qkNormRope: give both q and k norm weights or neither');
  for (const w of [qNorm, kNorm]) if (w && (w.ndim !== 1 || w.size !== d || w.dtype !== qkv.dtype)) throw new Error(`qkNormRope: norm weights must be (${d}) ${qkv.dtype}, got ${fmtShape(w.shape)} ${w.dtype}`);
  if (angles && (d % 2 !== 0 || angles.length !== n * half)) throw new Error(`qkNormRope: angles must be (N ${n}, d/2 ${half}) = ${n * half} values for an even d, got ${angles.length}`);
  if (isMetaArray(qkv.data)) { // shape-only (kernels/meta.ts): count, do not walk
    metaCount('elementwise', 7 * qkv.size, 2 * qkv.size);
    return record('qkNormRope', [qkv, qNorm, kNorm], uninit(qkv.shape, qkv.dtype), () => {
      metaCount('elementwise', 11 * qkv.size, 3 * qkv.size);
      return [qkv.requiresGrad ? uninit(qkv.shape, qkv.dtype) : null, qNorm?.requiresGrad ? uninit([d], qkv.dtype) : null, kNorm?.requiresGrad ? uninit([d], qkv.dtype) : null];
    });
  }
  const cos = angles?.map(Math.cos), sin = angles?.map(Math.sin);
  const xs = qkv.data, rows = b * n * 2 * heads;
  const rstd = new Float64Array(rows);
  const out = uninit(qkv.shape, qkv.dtype);
  const ys = out.data;
  const u = new Float64Array(d);
  const rowAt = (r: number): { o: number; tok: number; w: Tensor | null } => {
    const tokIdx = Math.floor(r / (2 * heads)), rem = r % (2 * heads), part = rem < heads ? 0 : 1, h = rem % heads;
    return { o: tokIdx * c3 + part * hd + h * d, tok: tokIdx % n, w: part === 0 ? qNorm : kNorm };
  };
  for (let r = 0; r < rows; r++) {
    const { o, tok, w } = rowAt(r);
    let s = 1;
    if (w) {
      let ss = 0;
      for (let j = 0; j < d; j++) ss += xs[o + j] * xs[o + j];
      s = 1 / Math.sqrt(ss / d + eps);
    }
    rstd[r] = s;
    const wd = w?.data;
    for (let j = 0; j < d; j++) u[j] = w ? xs[o + j] * s * wd![j] : xs[o + j];
    if (cos && sin) {
      const a0 = tok * half;
      for (let m = 0; m < half; m++) {
        const c = cos[a0 + m], sn = sin[a0 + m], p = u[2 * m], q = u[2 * m + 1];
        ys[o + 2 * m] = p * c - q * sn;
        ys[o + 2 * m + 1] = p * sn + q * c;
      }
    } else {
      for (let j = 0; j < d; j++) ys[o + j] = u[j];
    }
  }
  for (let t = 0; t < b * n; t++) { const o = t * c3 + 2 * hd; for (let j = 0; j < hd; j++) ys[o + j] = xs[o + j]; } // v
  return record('qkNormRope', [qkv, qNorm, kNorm], out, (g) => {
    const gs = g.data;
    const dx = uninit(qkv.shape, qkv.dtype), ds = dx.data;
    const dq = qNorm?.requiresGrad ? new Float64Array(d) : null, dk = kNorm?.requiresGrad ? new Float64Array(d) : null;
    const gu = new Float64Array(d);
    for (let r = 0; r < rows; r++) {
      const { o, tok, w } = rowAt(r);
      if (cos && sin) {
        const a0 = tok * half;
        for (let m = 0; m < half; m++) {
          const c = cos[a0 + m], sn = sin[a0 + m], p = gs[o + 2 * m], q = gs[o + 2 * m + 1];
          gu[2 * m] = p * c + q * sn;
          gu[2 * m + 1] = -p * sn + q * c;
        }
      } else {
        for (let j = 0; j < d; j++) gu[j] = gs[o + j];
      }
      if (!w) { for (let j = 0; j < d; j++) ds[o + j] = gu[j]; continue; }
      const s = rstd[r], wd = w.data, acc = w === qNorm ? dq : dk;
      let dot = 0;
      for (let j = 0; j < d; j++) {
        const xh = xs[o + j] * s;
        dot += gu[j] * wd[j] * xh;
        if (acc) acc[j] += gu[j] * xh;
      }
      const mdot = dot / d;
      for (let j = 0; j < d; j++) ds[o + j] = s * (gu[j] * wd[j] - xs[o + j] * s * mdot);
    }
    for (let t = 0; t < b * n; t++) { const o = t * c3 + 2 * hd; for (let j = 0; j < hd; j++) ds[o + j] = gs[o + j]; }
    const wrap = (a: Float64Array | null): Tensor | null => { if (!a) return null; const tt = uninit([d], qkv.dtype); tt.data.set(a); return tt; };
    return [qkv.requiresGrad ? dx : null, wrap(dq), wrap(dk)];
  });
}

// The kernel contract: every hot loop of diffactor, as flat-array functions.
// Two implementations answer to it: `js/` (the TypeScript reference, float32 or float64) and the
// native addon (float32 only, SIMD). `index.ts` picks one per call. This file holds types and
// the exact semantics; it holds no math.
//
// Conventions: all arrays are contiguous row-major; "rows x cols" means rows outer. Outputs are
// overwritten (never accumulated into) unless a parameter says otherwise. Shapes are in the
// `// (B, H, N, D)` comments.

export type FArray = Float32Array | Float64Array;

/** Epilogue activation applied by gemm after bias. Numbers match the native enum. */
export const Act = { none: 0, relu: 1, gelu: 2, geluTanh: 3, silu: 4 } as const;
export type ActCode = (typeof Act)[keyof typeof Act];

/** Binary elementwise operations of `binary`. Numbers match the native enum. */
export const BinOp = { add: 0, sub: 1, mul: 2, div: 3 } as const;
export type BinOpCode = (typeof BinOp)[keyof typeof BinOp];

export interface GemmArgs {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  /** op(A) is (m, k); A is stored (m, k) with lda >= k, or (k, m) with lda >= m when transA. */
  a: FArray;
  lda: number;
  /** op(B) is (k, n); B is stored (k, n) with ldb >= n, or (n, k) with ldb >= k when transB. */
  b: FArray;
  ldb: number;
  /** C is (m, n) with ldc >= n. */
  c: FArray;
  ldc: number;
  alpha?: number; // default 1
  beta?: number; // default 0: C is overwritten; beta=1 accumulates
  /** Strided batches: matrix i of A starts at i*strideA (likewise B, C). Default batch 1. */
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** Optional bias of length n added to every row after alpha*AB + beta*C. */
  bias?: FArray | null;
  /** Optional activation applied last. */
  act?: ActCode;
  /**
   * 'bf16': A and B are rounded to bfloat16 (nearest even, denormals to zero) as they are read,
   * products and sums stay fp32, C fp32 (src/kernels/js/bf16.ts; native gemmBf16). Default 'fp32'.
   */
  precision?: 'fp32' | 'bf16';
  /**
   * Optional output of length m (batch 1 only), overwritten: rowSumsA[i] = Σ_p op(A)[i][p] of the
   * unrounded A, accumulated in double in p order — reduceSum's numbers. A Linear's dW = dy^T x
   * takes its bias gradient (the sum of dy over rows) here, while the kernel reads dy anyway.
   */
  rowSumsA?: FArray | null;
}

export interface Kernels {
  readonly name: 'js' | 'native';

  /** C[i] = act(alpha * op(A[i]) @ op(B[i]) + beta * C[i] + bias) for i < batch. */
  gemm(g: GemmArgs): void;

  /**
   * Fused scaled-dot-product attention, forward. q, k, v, out: (B*H, N, D) contiguous; keys and
   * queries share N. lse: (B*H, N) receives log-sum-exp of the scaled logits per query row, for
   * the backward. out = softmax(q k^T * scale) v. causal (default false): query i attends to keys
   * j <= i only (logits with j > i are -inf: probability 0), as torch's is_causal=True.
   */
  attentionForward(
    q: FArray, k: FArray, v: FArray, out: FArray, lse: FArray,
    bh: number, n: number, d: number, scale: number, causal?: boolean,
  ): void;

  /**
   * Attention backward from the saved lse (recomputes probabilities, FlashAttention style).
   * dq, dk, dv: (B*H, N, D), overwritten. causal must be the forward's.
   */
  attentionBackward(
    q: FArray, k: FArray, v: FArray, out: FArray, lse: FArray, dout: FArray,
    dq: FArray, dk: FArray, dv: FArray,
    bh: number, n: number, d: number, scale: number, causal?: boolean,
  ): void;

  /**
   * Layer norm over the last dim. x, y: (rows, cols); weight, bias: (cols) or null;
   * mean, rstd: (rows) saved for backward. rstd = 1/sqrt(var + eps), var biased.
   */
  layerNormForward(
    x: FArray, weight: FArray | null, bias: FArray | null,
    y: FArray, mean: FArray, rstd: FArray, rows: number, cols: number, eps: number,
  ): void;

  /** dx overwritten; dweight/dbias (cols) overwritten when given (summed over rows). */
  layerNormBackward(
    dy: FArray, x: FArray, weight: FArray | null, mean: FArray, rstd: FArray,
    dx: FArray, dweight: FArray | null, dbias: FArray | null, rows: number, cols: number,
  ): void;

  /** Row softmax: x, y (rows, cols). */
  softmaxForward(x: FArray, y: FArray, rows: number, cols: number): void;
  /** dx = y * (dy - sum(dy * y)) per row. */
  softmaxBackward(y: FArray, dy: FArray, dx: FArray, rows: number, cols: number): void;

  /** Elementwise activations over len elements. kind: Act.gelu (erf), Act.geluTanh, Act.silu, Act.relu. */
  actForward(kind: ActCode, x: FArray, y: FArray, len: number): void;
  /** dx = dy * act'(x). */
  actBackward(kind: ActCode, x: FArray, dy: FArray, dx: FArray, len: number): void;

  /**
   * adaLN modulation (DiT): y = x * (1 + scale) + shift, x,y: (B, N, C), shift, scale: (B, C).
   */
  modulateForward(x: FArray, shift: FArray, scale: FArray, y: FArray, b: number, n: number, c: number): void;
  /** dx (B,N,C), dshift and dscale (B,C) overwritten. */
  modulateBackward(
    dy: FArray, x: FArray, scale: FArray, dx: FArray, dshift: FArray, dscale: FArray,
    b: number, n: number, c: number,
  ): void;

  /** x viewed as (outer, len, inner): out (outer, inner) = sum over the middle axis. */
  reduceSum(x: FArray, out: FArray, outer: number, len: number, inner: number): void;
  /** Sum of squares of x[0..len), accumulated in double precision. */
  sumSquares(x: FArray, len: number): number;

  /**
   * AdamW in place (decoupled weight decay, PyTorch semantics):
   * p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). step counts from 1.
   */
  adamw(
    p: FArray, g: FArray, m: FArray, v: FArray, len: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number,
  ): void;

  /** EMA in place: target = decay * target + (1 - decay) * source. */
  ema(target: FArray, source: FArray, len: number, decay: number): void;

  /**
   * Broadcast elementwise arithmetic over a 4-d index space: for every (i0, i1, i2, i3) < shape,
   * out[((i0 s1 + i1) s2 + i2) s3 + i3] = a[sum ik sa[k]] op b[sum ik sb[k]]. shape, sa, sb have
   * 4 entries; a stride of 0 repeats that operand along the dim (broadcast). out is contiguous and
   * may be a itself (in place) when sa is out's own contiguous strides.
   */
  binary(
    op: BinOpCode, a: FArray, b: FArray, out: FArray,
    shape: ArrayLike<number>, sa: ArrayLike<number>, sb: ArrayLike<number>,
  ): void;

  /**
   * adaLN-Zero gated residual: out = x + gate[:, None, :] * y; x, y, out (B, N, C), gate (B, C).
   * out may be x.
   */
  gatedResidualForward(x: FArray, gate: FArray, y: FArray, out: FArray, b: number, n: number, c: number): void;
  /** From dout (B, N, C): dy = dout * gate (B, N, C), dgate = sum over N of dout * y (B, C). (dx is dout.) */
  gatedResidualBackward(
    dout: FArray, gate: FArray, y: FArray, dy: FArray, dgate: FArray, b: number, n: number, c: number,
  ): void;

  /**
   * Layer norm without affine followed by adaLN modulation:
   * y = (x - mean) * rstd * (1 + scale[:, None, :]) + shift[:, None, :]. x, y (B, N, C);
   * shift, scale (B, C); mean, rstd (B*N) saved for the backward; var biased.
   */
  layerNormModulateForward(
    x: FArray, shift: FArray, scale: FArray, y: FArray, mean: FArray, rstd: FArray,
    b: number, n: number, c: number, eps: number,
  ): void;
  /** dx (B, N, C), dshift = sum_N dy, dscale = sum_N dy * xhat (B, C); all overwritten. */
  layerNormModulateBackward(
    dy: FArray, x: FArray, scale: FArray, mean: FArray, rstd: FArray,
    dx: FArray, dshift: FArray, dscale: FArray, b: number, n: number, c: number,
  ): void;

  /**
   * Multi-head attention on timm's packed projection: qkv (B, N, 3, H, D) (q, k, v of head h at
   * columns [s*H*D + h*D, +D) of each token row, s = 0, 1, 2) -> out (B, N, H, D) (heads merged);
   * lse (B, H, N) as in attentionForward. Equals permute/slice + attentionForward + permute.
   * precision 'bf16' (train.precision bf16; default 'fp32'): every product (QK^T, PV) reads its
   * operands rounded to bf16 (round to nearest even) and sums in fp32; softmax statistics fp32.
   */
  qkvAttentionForward(
    qkv: FArray, out: FArray, lse: FArray, b: number, n: number, h: number, d: number, scale: number,
    precision?: 'fp32' | 'bf16',
  ): void;
  /**
   * dqkv (B, N, 3, H, D) overwritten from dout (B, N, H, D), the saved out and lse. precision
   * 'bf16': the products dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q (and the recomputed
   * QK^T) on bf16-rounded operands with fp32 sums; P, dS, delta fp32. Use the forward's precision.
   */
  qkvAttentionBackward(
    qkv: FArray, out: FArray, lse: FArray, dout: FArray, dqkv: FArray,
    b: number, n: number, h: number, d: number, scale: number, precision?: 'fp32' | 'bf16',
  ): void;
}

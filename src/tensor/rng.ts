// Counter-based RNG: Philox4x32-10 (Salmon et al., SC'11). Output depends only on
// (seed, stream, counter), so a stream gives the same numbers in any thread or process, and a
// stream's state is three numbers that go into a checkpoint. Each draw consumes whole 4-word
// blocks (leftover words are dropped) so that state stays a block counter.
import { empty, type DType, type Tensor } from './tensor.ts';
import type { Shape } from './shape.ts';
import { isMetaArray } from '../kernels/meta.ts';

const M0 = 0xd2511f53, M1 = 0xcd9e8d57, W0 = 0x9e3779b9, W1 = 0xbb67ae85;

/** hi and lo 32-bit halves of a*b for uint32 a, b, exact (16-bit limbs keep products < 2^53). */
function mulhilo(a: number, b: number, out: Uint32Array, i: number): void {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const t = al * bl;
  const m1 = ah * bl + (t >>> 16);
  const m2 = al * bh + (m1 & 0xffff);
  out[i] = ah * bh + Math.floor(m1 / 65536) + Math.floor(m2 / 65536);
  out[i + 1] = Math.imul(a, b);
}

const tmp = new Uint32Array(4);

/** One Philox4x32-10 block: ctr (4 words) and key (2 words) -> out (4 words). */
export function philox4x32(ctr: ArrayLike<number>, key: ArrayLike<number>, out: Uint32Array): void {
  let c0 = ctr[0] >>> 0, c1 = ctr[1] >>> 0, c2 = ctr[2] >>> 0, c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    mulhilo(M0, c0, tmp, 0); // tmp[0]=hi0, tmp[1]=lo0
    mulhilo(M1, c2, tmp, 2); // tmp[2]=hi1, tmp[3]=lo1
    const n0 = (tmp[2] ^ c1 ^ k0) >>> 0, n1 = tmp[3], n2 = (tmp[0] ^ c3 ^ k1) >>> 0, n3 = tmp[1];
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

export interface RngState { seed: number; stream: number; counter: number }

/** 32-bit mix (murmur3 finaliser) for deriving child streams. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export class Rng {
  readonly seed: number;
  readonly stream: number;
  /** Index of the next 4-word block (< 2^53). */
  counter: number;
  private readonly block = new Uint32Array(4);
  private readonly ctr = new Uint32Array(4);
  private readonly key: Uint32Array;

  constructor(seed: number, stream = 0, counter = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`Rng: seed must be a non-negative safe integer, got ${seed}`);
    this.seed = seed;
    this.stream = stream >>> 0;
    this.counter = counter;
    this.key = new Uint32Array([seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0]);
  }

  static fromState(s: RngState): Rng { return new Rng(s.seed, s.stream, s.counter); }
  state(): RngState { return { seed: this.seed, stream: this.stream, counter: this.counter }; }

  /** An independent stream named by `id` (e.g. an actor or a purpose): same seed, new stream. */
  child(id: number | string): Rng {
    let h = mix32(this.stream ^ 0x9e3779b9);
    if (typeof id === 'number') h = mix32(h ^ (id >>> 0));
    else for (let i = 0; i < id.length; i++) h = mix32(h ^ id.charCodeAt(i));
    return new Rng(this.seed, h);
  }

  /** Fill `out` with raw uint32 words. */
  uint32(out: Uint32Array): Uint32Array {
    const n = out.length;
    for (let i = 0; i < n; i += 4) {
      const c = this.counter++;
      this.ctr[0] = c >>> 0;
      this.ctr[1] = Math.floor(c / 2 ** 32) >>> 0;
      this.ctr[2] = this.stream;
      this.ctr[3] = 0x6466; // 'df': separates diffactor streams from plain Philox counters
      philox4x32(this.ctr, this.key, this.block);
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = this.block[j];
    }
    return out;
  }

  /** Uniform in the open interval (0, 1), exactly representable in float32 (24-bit grid). */
  uniformArray(n: number, lo = 0, hi = 1): Float64Array {
    const w = this.uint32(new Uint32Array(n));
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * (((w[i] >>> 8) + 0.5) / 16777216);
    return out;
  }

  /** Standard normals by Box–Muller on pairs of uniforms. */
  normalArray(n: number, mean = 0, std = 1): Float64Array {
    const u = this.uniformArray(n + (n & 1));
    const out = new Float64Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(u[i]));
      const th = 2 * Math.PI * u[i + 1];
      out[i] = mean + std * r * Math.cos(th);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(th);
    }
    return out;
  }

  /** Integers in [lo, hi). */
  randintArray(lo: number, hi: number, n: number): Int32Array {
    if (!(hi > lo)) throw new Error(`randint: need hi > lo, got [${lo}, ${hi})`);
    const w = this.uint32(new Uint32Array(n));
    const out = new Int32Array(n);
    const range = hi - lo;
    for (let i = 0; i < n; i++) out[i] = lo + Math.floor((w[i] / 4294967296) * range);
    return out;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    const w = this.uint32(new Uint32Array(Math.max(n - 1, 0)));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor((w[n - 1 - i] / 4294967296) * (i + 1));
      const t = p[i]; p[i] = p[j]; p[j] = t;
    }
    return p;
  }

  uniform(shape: Shape, lo = 0, hi = 1, dtype: DType = 'float32'): Tensor {
    const t = empty(shape, dtype);
    if (!isMetaArray(t.data)) t.data.set(this.uniformArray(t.size, lo, hi));
    return t;
  }

  normal(shape: Shape, mean = 0, std = 1, dtype: DType = 'float32'): Tensor {
    const t = empty(shape, dtype);
    if (!isMetaArray(t.data)) t.data.set(this.normalArray(t.size, mean, std));
    return t;
  }

  randint(lo: number, hi: number, shape: Shape, dtype: DType = 'float32'): Tensor {
    const t = empty(shape, dtype);
    if (!isMetaArray(t.data)) t.data.set(this.randintArray(lo, hi, t.size));
    return t;
  }
}

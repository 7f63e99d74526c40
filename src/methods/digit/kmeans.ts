// DiGIT's discrete tokenizer: k-means over a frozen encoder's patch features, fitted once, then
// `assign` turns feature rows into cluster ids (the "discriminative tokens"). k-means++ seeding
// (Arthur & Vassilvitskii 2007) and Lloyd iterations, all distances in float64; an empty cluster
// keeps its previous centroid, as scipy.cluster.vq.kmeans2 does (the fixture test compares with
// it). DiGIT (Zhu et al., NeurIPS 2024, arXiv 2410.12490) fits faiss k-means (20 iterations, raw
// features) in DAMO-NLP-SG/DiGIT preprocess/cluster_kmeans.py and assigns by the expanded distance
// ‖f‖² − 2 f·c + ‖c‖² (methods-b §8). Saved as one safetensors tensor `centroids` (K, D).
// Not here: the encoder and which block's features are used (the DiGIT method module), GPU or
// GEMM speed (plain float64 loops: fit on a subsample of tokens).
import type { Rng } from '../../tensor/rng.ts';
import { fromData, uninit, type Tensor } from '../../tensor/tensor.ts';
import { K as kernels } from '../../kernels/index.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.ts';

/** Rows of a (N, D) feature matrix, row-major. */
export type Rows = ArrayLike<number>;

function checkRows(what: string, x: Rows, n: number, d: number): void {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(d) || d < 1) {
    throw new Error(`${what}: n must be an integer >= 0 and d an integer >= 1, got n=${n}, d=${d}`);
  }
  if (x.length !== n * d) throw new Error(`${what}: features have ${x.length} values, expected n*d = ${n}*${d} = ${n * d}`);
}

/** ‖a_i − b_j‖² in float64 by the direct sum (the brute-force definition). */
function sqDist(a: Rows, i: number, b: Rows, j: number, d: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) {
    const t = a[i * d + c] - b[j * d + c];
    s += t * t;
  }
  return s;
}

/**
 * k-means++ seeding: the first centre uniformly at random, each next one drawn with probability
 * proportional to the squared distance to the nearest centre chosen so far. Returns the chosen
 * row indices (distinct). When every remaining point coincides with a centre (all weights 0) the
 * next index is drawn uniformly from the rows not chosen yet, so indices stay distinct.
 */
export function kmeansPlusPlus(x: Rows, n: number, d: number, k: number, rng: Rng): Int32Array {
  checkRows('kmeansPlusPlus', x, n, d);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`kmeansPlusPlus: k must be an integer in [1, n=${n}], got ${k}`);
  const u = rng.uniformArray(k); // one draw per centre
  const chosen = new Int32Array(k);
  const taken = new Uint8Array(n);
  const best = new Float64Array(n).fill(Infinity); // (N) squared distance to the nearest centre
  for (let c = 0; c < k; c++) {
    let idx = -1;
    let total = 0;
    if (c > 0) for (let i = 0; i < n; i++) total += best[i];
    if (c === 0 || !(total > 0)) {
      // uniform over the rows not taken
      let r = Math.min(Math.floor(u[c] * (n - c)), n - c - 1);
      for (let i = 0; i < n; i++) if (!taken[i] && r-- === 0) { idx = i; break; }
    } else {
      let t = u[c] * total;
      for (let i = 0; i < n; i++) {
        if (best[i] <= 0) continue;
        idx = i; // the last row with positive weight absorbs rounding at the top end
        t -= best[i];
        if (t < 0) break;
      }
    }
    chosen[c] = idx;
    taken[idx] = 1;
    for (let i = 0; i < n; i++) {
      const s = sqDist(x, i, x, idx, d);
      if (s < best[i]) best[i] = s;
    }
  }
  return chosen;
}

/**
 * Nearest centroid of each row by the expanded distance ‖f‖² − 2 f·c + ‖c‖² (float64), ties to the
 * lowest id. Returns the ids and the inertia Σ_i ‖x_i − c_{id_i}‖² (direct sum, float64).
 */
export function assignRows(x: Rows, n: number, d: number, centroids: Rows, k: number): { labels: Int32Array; inertia: number } {
  checkRows('assign', x, n, d);
  if (centroids.length !== k * d) throw new Error(`assign: centroids have ${centroids.length} values, expected k*d = ${k}*${d}`);
  const cn = new Float64Array(k); // (K) ‖c_j‖²
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += centroids[j * d + c] * centroids[j * d + c];
    cn[j] = s;
  }
  const labels = new Int32Array(n);
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    let bestJ = 0, bestV = Infinity;
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += x[i * d + c] * centroids[j * d + c];
      const v = cn[j] - 2 * dot; // ‖f‖² is the same for every j
      if (v < bestV) { bestV = v; bestJ = j; }
    }
    labels[i] = bestJ;
    inertia += sqDist(x, i, centroids, bestJ, d);
  }
  return { labels, inertia };
}

export interface LloydResult {
  /** (K, D) float64 centroids after the last update. */
  centroids: Float64Array;
  /** (N) nearest-centroid ids of the final centroids. */
  labels: Int32Array;
  /** Inertia before each update and after the last one: iters + 1 values. */
  inertia: number[];
  /** How many (iteration, cluster) pairs found the cluster empty (it kept its centroid). */
  emptyClusters: number;
}

/**
 * `iters` Lloyd iterations from `init` (K, D): assign every row to its nearest centroid, move each
 * centroid to the mean of its rows (a cluster with no rows keeps its centroid, as scipy's kmeans2).
 * Like kmeans2 with minit='matrix': exactly `iters` updates, no early stop, then a final assign.
 */
export function lloyd(x: Rows, n: number, d: number, init: Rows, k: number, iters: number): LloydResult {
  checkRows('lloyd', x, n, d);
  if (!Number.isInteger(iters) || iters < 0) throw new Error(`lloyd: iters must be an integer >= 0, got ${iters}`);
  const cent = Float64Array.from(init);
  const sums = new Float64Array(k * d), counts = new Float64Array(k);
  const inertia: number[] = [];
  let emptyClusters = 0;
  for (let it = 0; it < iters; it++) {
    const { labels, inertia: e } = assignRows(x, n, d, cent, k);
    inertia.push(e);
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const j = labels[i];
      counts[j]++;
      for (let c = 0; c < d; c++) sums[j * d + c] += x[i * d + c];
    }
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) { emptyClusters++; continue; }
      for (let c = 0; c < d; c++) cent[j * d + c] = sums[j * d + c] / counts[j];
    }
  }
  const last = assignRows(x, n, d, cent, k);
  inertia.push(last.inertia);
  return { centroids: cent, labels: last.labels, inertia, emptyClusters };
}

export interface KMeansOptions {
  /** Number of clusters (the token vocabulary), 1 <= k <= number of rows. */
  k: number;
  /** Lloyd iterations (DiGIT: 20). */
  iters: number;
}

/** A fitted k-means tokenizer: centroids (K, D) float32, ids in [0, K). */
export class KMeansTokenizer {
  readonly k: number;
  readonly dim: number;

  constructor(readonly centroids: Float32Array, k: number, dim: number) {
    if (!Number.isInteger(k) || k < 1 || !Number.isInteger(dim) || dim < 1 || centroids.length !== k * dim) {
      throw new Error(`KMeansTokenizer: centroids must hold k*dim values with k, dim >= 1, got ${centroids.length} for k=${k}, dim=${dim}`);
    }
    this.k = k;
    this.dim = dim;
  }

  /** Fits once on rows x (N, D): k-means++ from `rng`, then `opts.iters` Lloyd iterations. */
  static fit(x: Rows, n: number, d: number, opts: KMeansOptions, rng: Rng): { tokenizer: KMeansTokenizer; fit: LloydResult; init: Int32Array } {
    checkRows('KMeansTokenizer.fit', x, n, d);
    if (!Number.isInteger(opts.k) || opts.k < 1 || opts.k > n) throw new Error(`KMeansTokenizer.fit: k must be an integer in [1, ${n}] (the number of feature rows), got ${opts.k}`);
    if (!Number.isInteger(opts.iters) || opts.iters < 0) throw new Error(`KMeansTokenizer.fit: iters must be an integer >= 0, got ${opts.iters}`);
    const init = kmeansPlusPlus(x, n, d, opts.k, rng);
    const start = new Float64Array(opts.k * d);
    for (let j = 0; j < opts.k; j++) for (let c = 0; c < d; c++) start[j * d + c] = x[init[j] * d + c];
    const fit = lloyd(x, n, d, start, opts.k, opts.iters);
    return { tokenizer: new KMeansTokenizer(Float32Array.from(fit.centroids), opts.k, d), fit, init };
  }

  /** Token ids of feature rows: a (..., D) tensor or a flat array of N*D values -> (N) ids. */
  assign(features: Tensor | Rows): Int32Array {
    const data = 'data' in features && 'shape' in features ? (features as Tensor).data : (features as Rows);
    if (data.length % this.dim !== 0) throw new Error(`KMeansTokenizer.assign: ${data.length} values are not rows of dim ${this.dim}`);
    if (isMetaArray(data)) return this.assignShapeOnly(data.length / this.dim, data);
    return assignRows(data, data.length / this.dim, this.dim, this.centroids, this.k).labels;
  }

  /**
   * Shape-only rows (kernels/meta.ts, `diffactor simulate`): the loop above would walk N·K·D
   * undefined values (51 G for a batch of 32 at DiGIT-B's 256 × 8192 × 768). Counted instead as the
   * official assignment runs it (DiGIT model.py prepare_semantic: one matmul of the rows with the
   * centroids, then an argmin over K): a gemm (N, D)·(D, K) through the kernel dispatch and an
   * N·K reduce; every id is 0 (no data to assign).
   */
  private assignShapeOnly(n: number, rows: Float32Array): Int32Array {
    const dots = uninit([n, this.k]).data;
    kernels.gemm({ transA: false, transB: true, m: n, n: this.k, k: this.dim, a: rows, lda: this.dim, b: this.centroids, ldb: this.dim, c: dots, ldc: this.k });
    metaCount('reduce', n * this.k, n * this.k);
    return new Int32Array(n);
  }

  /** The tensors a run stores: `centroids` (K, D). */
  toTensors(): Record<string, Tensor> {
    return { centroids: fromData(Float32Array.from(this.centroids), [this.k, this.dim]) };
  }

  static fromTensors(tensors: Map<string, Tensor> | Record<string, Tensor>, what = 'tokenizer'): KMeansTokenizer {
    const t = tensors instanceof Map ? tensors.get('centroids') : tensors.centroids;
    if (!t) throw new Error(`${what}: no tensor 'centroids' (expected (K, D) k-means centroids)`);
    if (t.ndim !== 2) throw new Error(`${what}: 'centroids' must be (K, D), got shape [${t.shape.join(', ')}]`);
    return new KMeansTokenizer(Float32Array.from(t.data), t.shape[0], t.shape[1]);
  }

  save(file: string): void {
    writeSafetensors(file, this.toTensors(), { kind: 'kmeans-tokenizer', k: String(this.k), dim: String(this.dim) });
  }

  static load(file: string): KMeansTokenizer {
    return KMeansTokenizer.fromTensors(readSafetensors(file).tensors, file);
  }
}

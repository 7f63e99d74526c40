// ReDi's feature statistics and PCA (Kouzelis et al., "Boosting Generative Image Modeling via
// Joint Image-Feature Synthesis", NeurIPS 2025, arXiv 2504.16064; what calc_pca.py of
// github.com/zelaki/ReDi computes, re-derived here): on the frozen encoder's patch tokens of the
// training set, in float64,
//   μ, σ   per channel over all tokens (σ the population std, floored at 1e-6)
//   f̃ = (f − μ)/σ,  pca_mean = mean of f̃,  C = cov(f̃) (divided by n)
//   components = eigenvectors of C by decreasing eigenvalue (full rank, no whitening), each
//                signed so that its entry of largest magnitude is positive (sklearn's svd_flip)
// and the projection of a token onto the top r: z = (f̃ − pca_mean)·P_rᵀ.
// The eigendecomposition is cyclic Jacobi (d_enc ≤ a few hundred here). Not here: running the
// encoder (index.ts), the model that holds the result as buffers (model.ts).

export interface FeaturePca {
  /** Encoder width d and rows fitted on. */
  dim: number;
  rows: number;
  /** (d) per-channel mean and std of the raw tokens. */
  featMean: Float64Array;
  featStd: Float64Array;
  /** (d) mean of the standardised tokens (sklearn's PCA.mean_). */
  pcaMean: Float64Array;
  /** (d, d) row k = component k (unit length), by decreasing variance. */
  components: Float64Array;
  /** (d) variance along each component, non-increasing. */
  variances: Float64Array;
}

/** The smallest std a channel is divided by (a constant channel would divide by 0). */
export const REDI_STD_FLOOR = 1e-6;

/**
 * Eigenvalues and unit eigenvectors (rows of `vectors`) of the symmetric n×n matrix a, by cyclic
 * Jacobi rotations in float64, in decreasing order of eigenvalue.
 */
export function jacobiEigen(a: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== n * n) throw new Error(`jacobiEigen: ${a.length} values for a ${n}×${n} matrix`);
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n); // columns = eigenvectors during the sweeps
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += m[i] * m[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) { // columns p, q of M·J
          const mkp = m[k * n + p], mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) { // rows p, q of Jᵀ·M
          const mpk = m[p * n + k], mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j] - m[i * n + i]);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((col, k) => {
    values[k] = m[col * n + col];
    for (let i = 0; i < n; i++) vectors[k * n + i] = v[i * n + col];
  });
  return { values, vectors };
}

/** Fits μ, σ and the PCA on `rows` tokens of width `dim` (row-major, any float array). */
export function fitFeaturePca(tokens: ArrayLike<number>, rows: number, dim: number): FeaturePca {
  if (!Number.isInteger(rows) || rows < 2) throw new Error(`ReDi PCA: need at least 2 tokens, got ${rows}`);
  if (tokens.length !== rows * dim) throw new Error(`ReDi PCA: ${tokens.length} values are not ${rows} tokens × ${dim}`);
  const featMean = new Float64Array(dim), featStd = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) featMean[j] += tokens[r * dim + j];
  for (let j = 0; j < dim; j++) featMean[j] /= rows;
  for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) { const d = tokens[r * dim + j] - featMean[j]; featStd[j] += d * d; }
  for (let j = 0; j < dim; j++) featStd[j] = Math.max(Math.sqrt(featStd[j] / rows), REDI_STD_FLOOR);
  const std = new Float64Array(rows * dim); // f̃
  const pcaMean = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) {
      const v = (tokens[r * dim + j] - featMean[j]) / featStd[j];
      std[r * dim + j] = v;
      pcaMean[j] += v;
    }
  }
  for (let j = 0; j < dim; j++) pcaMean[j] /= rows;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) row[j] = std[r * dim + j] - pcaMean[j];
    for (let i = 0; i < dim; i++) {
      const ri = row[i];
      for (let j = i; j < dim; j++) cov[i * dim + j] += ri * row[j];
    }
  }
  for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) { cov[i * dim + j] /= rows; cov[j * dim + i] = cov[i * dim + j]; }
  const { values, vectors } = jacobiEigen(cov, dim);
  for (let k = 0; k < dim; k++) {
    let big = 0;
    for (let i = 0; i < dim; i++) if (Math.abs(vectors[k * dim + i]) > Math.abs(vectors[k * dim + big])) big = i;
    if (vectors[k * dim + big] < 0) for (let i = 0; i < dim; i++) vectors[k * dim + i] = -vectors[k * dim + i];
    values[k] = Math.max(values[k], 0);
  }
  return { dim, rows, featMean, featStd, pcaMean, components: vectors, variances: values };
}

/** z = ((f − μ)/σ − pca_mean)·P_rᵀ for `rows` tokens f (row-major), in float64: (rows, r). */
export function projectTokens(p: Pick<FeaturePca, 'dim' | 'featMean' | 'featStd' | 'pcaMean' | 'components'>, tokens: ArrayLike<number>, rows: number, rank: number): Float64Array {
  const d = p.dim;
  if (tokens.length !== rows * d) throw new Error(`ReDi PCA: ${tokens.length} values are not ${rows} tokens × ${d}`);
  if (!Number.isInteger(rank) || rank < 1 || rank > d) throw new Error(`ReDi PCA: rank ${rank} is not in 1..${d}`);
  const out = new Float64Array(rows * rank);
  const c = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) c[j] = (tokens[r * d + j] - p.featMean[j]) / p.featStd[j] - p.pcaMean[j];
    for (let k = 0; k < rank; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += c[j] * p.components[k * d + j];
      out[r * rank + k] = s;
    }
  }
  return out;
}

/** f̃ back from its full-rank projection: z·P + pca_mean (rows, d). */
export function backProject(p: Pick<FeaturePca, 'dim' | 'pcaMean' | 'components'>, z: ArrayLike<number>, rows: number, rank: number): Float64Array {
  const d = p.dim, out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) {
      let s = p.pcaMean[j];
      for (let k = 0; k < rank; k++) s += z[r * rank + k] * p.components[k * d + j];
      out[r * d + j] = s;
    }
  }
  return out;
}

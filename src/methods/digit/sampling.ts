// DiGIT's token sampling: temperature, top-k and nucleus (top-p) filtering of one position's
// logits, then one draw by the inverse CDF of a uniform u (DAMO-NLP-SG/DiGIT samples stage 1 with
// top-k 200 (base) / 400 (large) at temperature 1.0 and stage 2 with top-p 0.8; Holtzman et al.
// arXiv 1904.09751 for the nucleus). Order as fairseq's and HF's samplers: logits / T, then top-k,
// then top-p on the renormalised top-k distribution.
//   T = 0        argmax (ties: the lowest id), no randomness
//   top-k        exactly min(k, K) candidates survive: the k largest logits, ties broken by the
//                lower id (sorted by (−logit, id))
//   top-p        the smallest prefix of the candidates sorted by probability (same tie order)
//                whose mass reaches p (≥ p − 1e-12); p = 1 keeps every candidate
// The uniforms come from the sampler's standard-normal noise as u = Φ(z), so each image's tokens
// depend on its own noise row only (build/draw.ts hands rows of one draw to the sample pool).
// Not here: the model loop (model.ts drawOwn).

export interface TokenSampling {
  /** T ≥ 0; 0 = greedy. */
  temperature: number;
  /** Keep the k most likely codes; null = all. */
  topK: number | null;
  /** Keep the smallest most-likely set of mass ≥ p, p in (0, 1]. */
  topP: number;
}

export function checkTokenSampling(o: TokenSampling, where = 'digit'): void {
  if (!(Number.isFinite(o.temperature) && o.temperature >= 0)) throw new Error(`${where}.temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (o.topK !== null && !(Number.isInteger(o.topK) && o.topK >= 1)) throw new Error(`${where}.top_k must be a positive integer or null, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`${where}.top_p must be in (0, 1], got ${o.topP}`);
}

/** Ids sorted by descending logit, ties by ascending id. */
function order(logits: ArrayLike<number>): number[] {
  return Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => (logits[b] - logits[a]) || (a - b));
}

/**
 * The sampling distribution over K codes after temperature, top-k and top-p: probabilities in
 * float64 summing to 1, zero for every filtered code.
 */
export function filteredProbs(logits: ArrayLike<number>, o: TokenSampling): Float64Array {
  checkTokenSampling(o);
  const k = logits.length;
  if (k < 1) throw new Error('filteredProbs: no logits');
  const p = new Float64Array(k);
  const ids = order(logits);
  if (o.temperature === 0) { p[ids[0]] = 1; return p; }
  const keep = ids.slice(0, o.topK === null ? k : Math.min(o.topK, k));
  const top = logits[keep[0]] / o.temperature;
  let z = 0;
  for (const i of keep) { p[i] = Math.exp(logits[i] / o.temperature - top); z += p[i]; }
  for (const i of keep) p[i] /= z;
  if (o.topP < 1) {
    let mass = 0, n = 0;
    while (n < keep.length && mass < o.topP - 1e-12) mass += p[keep[n++]];
    for (let j = n; j < keep.length; j++) p[keep[j]] = 0;
    for (let j = 0; j < n; j++) p[keep[j]] /= mass;
  }
  return p;
}

/** The id whose CDF interval holds u ∈ [0, 1) (zero-probability ids are never drawn). */
export function drawFrom(p: ArrayLike<number>, u: number): number {
  let c = 0, last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] <= 0) continue;
    last = i;
    c += p[i];
    if (u < c) return i;
  }
  if (last < 0) throw new Error('drawFrom: no id has positive probability');
  return last; // rounding at the top end
}

/** Φ(z), the standard normal CDF (erfc by the Numerical Recipes Chebyshev fit, |rel err| < 1.2e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2, t = 1 / (1 + 0.5 * x);
  const erfc = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return z >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

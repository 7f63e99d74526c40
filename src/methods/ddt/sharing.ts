// DDT's encoder-sharing schedules (Wang et al., arXiv 2504.05741 §"Encoder sharing"; official
// MCG-NJU/DDT src/diffusion/stateful_flow_matching/sharing_sampling.py and tools/dp.py): which
// sampling steps recompute the encoder's state z; the other steps reuse the last one.
//   uniform: recompute at step i iff i mod r = 0 (state_refresh_rate r).
//   statistical DP with budget K = ⌊N / r⌋ recomputations: from template states S_0..S_{N−1}
//     e(i, j) = 1 − mean over tokens of cos(S_i, S_j)          (reuseErrors)
//     E(i, j) = Σ_{k=j..i} e(k, j), j ≤ i                      (cumulativeErrors: compute at j, reuse to i)
//     C(1, i) = E(i−1, 0);  C(k, i) = min_{j∈[k−1, i−1]} C(k−1, j) + E(i−1, j),  P(k, i) its first argmin
//     R = backtrack from i = N: j_K = P(K, N), j_{k−1} = P(k−1, j_k), …  (R[0] = 0 forced)
// The cost of a schedule R = {r_0 = 0 < r_1 < … < r_{K−1}} is Σ_m E(r_{m+1} − 1, r_m) with r_K = N
// (scheduleCost); the DP minimises it over every schedule of K steps that starts at 0.
// Not here: the template run that produces the states (sampler.ts).

/** Steps 0..N−1 recomputed by the uniform schedule of period r. */
export function uniformSchedule(steps: number, period: number): number[] {
  checkSteps(steps, period);
  return Array.from({ length: steps }, (_, i) => i).filter((i) => i % period === 0);
}

/** K = ⌊N / r⌋: the DP's budget of recomputations (the official int(num_steps / state_refresh_rate)). */
export function dpBudget(steps: number, period: number): number {
  checkSteps(steps, period);
  return Math.floor(steps / period);
}

function checkSteps(steps: number, period: number): void {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`encoder sharing: sample.steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(period) || period < 1 || period > steps) throw new Error(`ddt.share_period must be an integer in 1..sample.steps (${steps}), got ${period}`);
}

/**
 * e (N × N, row-major): e[i][j] = 1 − mean over the M tokens of cos(S_i[m], S_j[m]); states N
 * arrays of M·D values (token m at m·D). Cosines in float64 with the norms of each token.
 */
export function reuseErrors(states: readonly ArrayLike<number>[], tokens: number, dim: number): Float64Array[] {
  const n = states.length;
  for (const s of states) if (s.length !== tokens * dim) throw new Error(`reuseErrors: a state of ${s.length} values is not ${tokens} tokens × ${dim}`);
  const unit = states.map((s) => {
    const u = new Float64Array(tokens * dim);
    for (let m = 0; m < tokens; m++) {
      let ss = 0;
      for (let k = 0; k < dim; k++) ss += s[m * dim + k] ** 2;
      const r = 1 / Math.max(Math.sqrt(ss), 1e-12); // F.normalize's eps
      for (let k = 0; k < dim; k++) u[m * dim + k] = s[m * dim + k] * r;
    }
    return u;
  });
  const e = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let c = 0;
      const a = unit[i], b = unit[j];
      for (let q = 0; q < a.length; q++) c += a[q] * b[q];
      e[i][j] = e[j][i] = 1 - c / tokens;
    }
  }
  return e;
}

/** E[i][j] = Σ_{k=j..i} e[k][j] for j ≤ i (the upper triangle is left as e). */
export function cumulativeErrors(e: readonly Float64Array[]): Float64Array[] {
  const E = e.map((r) => Float64Array.from(r));
  for (let i = 1; i < E.length; i++) for (let j = 0; j < i; j++) E[i][j] = E[i - 1][j] + e[i][j];
  return E;
}

/** Σ over the schedule's segments of E(end − 1, start): the error of computing at each start and reusing until the next. */
export function scheduleCost(E: readonly Float64Array[], schedule: readonly number[]): number {
  const n = E.length;
  checkSchedule(schedule, n);
  let c = 0;
  schedule.forEach((j, m) => { const end = m + 1 < schedule.length ? schedule[m + 1] : n; c += E[end - 1][j]; });
  return c;
}

/** Throws unless the schedule starts at 0 and is strictly increasing within 0..N−1. */
export function checkSchedule(schedule: readonly number[], steps: number): void {
  if (schedule.length === 0 || schedule[0] !== 0) throw new Error(`encoder sharing: a schedule must start at step 0, got [${schedule.join(', ')}]`);
  schedule.forEach((j, m) => {
    if (!Number.isInteger(j) || j >= steps || (m > 0 && j <= schedule[m - 1])) throw new Error(`encoder sharing: schedule [${schedule.join(', ')}] is not strictly increasing in 0..${steps - 1}`);
  });
}

/** The DP's recompute steps (K of them, the first 0) and their cost, from the cumulative errors E (N × N). */
export function dpSchedule(E: readonly Float64Array[], budget: number): { schedule: number[]; cost: number } {
  const n = E.length;
  if (!Number.isInteger(budget) || budget < 1 || budget > n) throw new Error(`dpSchedule: the budget must be in 1..${n} steps, got ${budget}`);
  const C = Array.from({ length: budget + 1 }, () => new Float64Array(n + 1).fill(Infinity));
  const P = Array.from({ length: budget + 1 }, () => new Int32Array(n + 1).fill(-1));
  for (let i = 1; i <= n; i++) { C[1][i] = E[i - 1][0]; P[1][i] = 0; }
  for (let k = 2; k <= budget; k++) {
    for (let i = k; i <= n; i++) {
      let best = Infinity, arg = -1;
      for (let j = k - 1; j < i; j++) {
        const v = C[k - 1][j] + E[i - 1][j];
        if (v < best) { best = v; arg = j; }
      }
      C[k][i] = best;
      P[k][i] = arg;
    }
  }
  const steps = [n];
  for (let k = budget; k >= 1; k--) steps.push(P[k][steps[steps.length - 1]]);
  steps.reverse(); // [0, j_2, …, j_K, N]
  const schedule = steps.slice(0, -1);
  return { schedule, cost: C[budget][n] };
}

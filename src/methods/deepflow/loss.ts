// DeepFlow's branch times and losses (Shin et al., ICCV 2025, arXiv 2503.14494; official loss.py of
// github.com/ByteDance-Seed/DeepFlow, SILoss.__call__). Time convention: the official code's
// "linear" path has t = 0 data, t = 1 noise, x_t = (1 − t)·x + t·ε, target ε − x — diffactor's
// own, so the boundary conversion is the identity (test/methods/deepflow.property.test.ts checks
// x_t and the target against that formula).
//   times   t_1 from the run's sampler; one sign s ∈ {+1, −1} per BATCH (the official Python
//           random.random() < 0.5 means +); t_{k+1} = clip(t_k + s·β·u_k, 0, 1), u_k ~ U[0, 1) per sample
//   L_ds    Σ_k w_k · mean_b mean (v_k − v*_k)²   (the engine adds k = K as `diff`, weight 1)
//   L_acc   Σ_{k<K} mean_b mean (x_{t_k} + sg(v_k)·(−t_k) + ½·a_k·t_k² − x)²
// Not here: the model (model.ts), which RNG stream draws (index.ts).
import { Tensor, tensor } from '../../tensor/tensor.ts';
import { add, detach, mul } from '../../autograd/index.ts';
import { interpolate, velocityLoss, type Interpolant } from '../../diffusion/index.ts';

/**
 * The K branch times from t_1 (B), the batch's sign (+1 or −1), β and u (K − 1 arrays of B
 * uniforms in [0, 1)). Each t_{k+1} is clipped to [0, 1] (the official clamp: max 1 going up,
 * min 0 going down).
 */
export function branchTimes(t1: ArrayLike<number>, sign: number, beta: number, u: readonly ArrayLike<number>[]): Float64Array[] {
  if (sign !== 1 && sign !== -1) throw new Error(`branchTimes: sign must be +1 or -1, got ${sign}`);
  const times = [Float64Array.from(t1)];
  for (const uk of u) {
    const prev = times[times.length - 1];
    if (uk.length !== prev.length) throw new Error(`branchTimes: ${prev.length} times but ${uk.length} gap draws`);
    times.push(Float64Array.from(prev, (t, i) => Math.min(1, Math.max(0, t + sign * beta * uk[i]))));
  }
  return times;
}

/** (B) numbers -> (B, 1, 1, 1) in x's dtype, to scale per sample. */
function perSample(x: Tensor, v: ArrayLike<number>, f: (t: number) => number): Tensor {
  return tensor(Array.from(v, f), [v.length, ...x.shape.slice(1).map(() => 1)], x.dtype);
}

/**
 * L_acc for one cut: the second-order step from t_k to 0 with the velocity DETACHED,
 * x̂_0 = x_{t_k} − t_k·sg(v_k) + ½·t_k²·a_k, regressed to x; mean_b mean over (C, H, W).
 * x, eps, v, a (B, C, H, W); t (B) the branch's time.
 */
export function accelerationTerm(path: Interpolant, x: Tensor, eps: Tensor, t: ArrayLike<number>, v: Tensor, a: Tensor): Tensor {
  const xt = interpolate(path, x, eps, t); // (B, C, H, W)
  const x0 = add(add(xt, mul(detach(v), perSample(x, t, (s) => -s))), mul(a, perSample(x, t, (s) => 0.5 * s * s)));
  return velocityLoss(x0, x).loss;
}

/** Σ_{k<K} of accelerationTerm over the cuts (times[k], velocities[k], accelerations[k]). */
export function accelerationLoss(path: Interpolant, x: Tensor, eps: Tensor, times: readonly ArrayLike<number>[], velocities: readonly Tensor[], accelerations: readonly Tensor[]): Tensor {
  if (accelerations.length === 0) throw new Error('accelerationLoss: no cut, no acceleration (K = 1)');
  let total: Tensor | null = null;
  accelerations.forEach((a, k) => {
    const term = accelerationTerm(path, x, eps, times[k], velocities[k], a);
    total = total ? add(total, term) : term;
  });
  return total!;
}

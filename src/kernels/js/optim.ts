// TypeScript reference optimiser updates: AdamW (PyTorch torch.optim.AdamW semantics, decoupled
// weight decay, bias correction, eps outside the sqrt) and the EMA used for the teacher model.
// In place over flat parameter arrays; no parameter groups, no amsgrad.
import type { FArray } from '../types.ts';

/** One AdamW step over p, g, m, v (len); step counts from 1. */
export function adamw(
  p: FArray, g: FArray, m: FArray, v: FArray, len: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number,
): void {
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  for (let i = 0; i < len; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + (1 - beta1) * gi;
    const vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const pi = p[i] * (1 - lr * weightDecay);
    p[i] = pi - lr * (mi / bc1) / (Math.sqrt(vi / bc2) + eps);
  }
}

/** target = decay * target + (1 - decay) * source over len elements. */
export function ema(target: FArray, source: FArray, len: number, decay: number): void {
  for (let i = 0; i < len; i++) target[i] = decay * target[i] + (1 - decay) * source[i];
}

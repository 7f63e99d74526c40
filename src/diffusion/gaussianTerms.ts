// Scalar float64 pieces of the DDPM variational bound (improved-DDPM's diffusion_utils) with their
// derivatives with respect to the model's log-variance, for the fused VLB op in ddpmLoss.ts:
// KL between diagonal Gaussians, the tanh approximation of the normal CDF, and the discretized
// Gaussian log-likelihood of 8-bit data in [−1, 1]. Not here: tensors, schedules.

/** KL(N(m1, e^lv1) ‖ N(m2, e^lv2)) per element, in nats. */
export function normalKl(m1: number, lv1: number, m2: number, lv2: number): number {
  const d = m1 - m2;
  return 0.5 * (-1 + lv2 - lv1 + Math.exp(lv1 - lv2) + d * d * Math.exp(-lv2));
}

/** ∂ normalKl / ∂ lv2. */
export function normalKlDlv2(m1: number, lv1: number, m2: number, lv2: number): number {
  const d = m1 - m2;
  return 0.5 * (1 - Math.exp(lv1 - lv2) - d * d * Math.exp(-lv2));
}

const K = Math.sqrt(2 / Math.PI), C3 = 0.044715;

/** 0.5·(1 + tanh(√(2/π)·(z + 0.044715 z³))): the CDF approximation improved-DDPM uses. */
export function approxNormalCdf(z: number): number {
  return 0.5 * (1 + Math.tanh(K * (z + C3 * z * z * z)));
}

export function approxNormalCdfDz(z: number): number {
  const th = Math.tanh(K * (z + C3 * z * z * z));
  return 0.5 * (1 - th * th) * K * (1 + 3 * C3 * z * z);
}

const BIN = 1 / 255, FLOOR = 1e-12;

/**
 * log P(x) of the bin [x − 1/255, x + 1/255] under N(mean, e^{2·logScale}), with the outer bins
 * open-ended (x < −0.999: (−∞, x + 1/255]; x > 0.999: [x − 1/255, ∞)); probabilities floored at
 * 1e-12. Returns [value, ∂value/∂logScale] (the floor has zero gradient, as torch's clamp).
 */
export function discretizedGaussianLogLik(x: number, mean: number, logScale: number): [number, number] {
  const inv = Math.exp(-logScale), c = x - mean;
  const p = inv * (c + BIN), q = inv * (c - BIN); // ∂p/∂logScale = −p, likewise q
  if (x < -0.999) {
    const cp = approxNormalCdf(p);
    return cp > FLOOR ? [Math.log(cp), (-approxNormalCdfDz(p) * p) / cp] : [Math.log(FLOOR), 0];
  }
  if (x > 0.999) {
    const tail = 1 - approxNormalCdf(q);
    return tail > FLOOR ? [Math.log(tail), (approxNormalCdfDz(q) * q) / tail] : [Math.log(FLOOR), 0];
  }
  const delta = approxNormalCdf(p) - approxNormalCdf(q);
  return delta > FLOOR
    ? [Math.log(delta), (-approxNormalCdfDz(p) * p + approxNormalCdfDz(q) * q) / delta]
    : [Math.log(FLOOR), 0];
}

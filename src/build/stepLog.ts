// What one training step reports (a metrics.jsonl line before timing), and the error that stops a
// run when a loss or a gradient norm is not finite. Shared by both engines.
export interface StepLog {
  step: number;
  loss: number;
  /**
   * Loss terms beyond the total (DiT hybrid: mse, vb; REPA: diff, proj; SRA: diff, align,
   * align_weight; REG: diff, proj, cls; REPA-E: diff, proj, vae_l1, vae_kl, vae_align, vae_grad_norm).
   */
  terms: Record<string, number>;
  lr: number;
  grad_norm: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly value: number, readonly where: string) {
    super(`${Number.isNaN(value) && where.startsWith('parameter') ? 'training diverged' : `loss became ${value}`} at step ${step} (${where}); the run stopped and no checkpoint was written over`);
  }
}


// Whether a spec can fit this machine, decided before anything is allocated: a spec asking for a
// 100 000-block model or a batch of 60 000 used to pass validation and grow past the machine's
// memory until something killed it. The estimate counts the trained model's parameters exactly
// (sitParamCount) times the copies a run keeps (weights, EMA, gradients, AdamW's two moments), and
// the activations the tape keeps for one step: per block and sample about (10 + 2·mlp_ratio)·T·D
// floats (norms, q/k/v, attention and MLP outputs, residuals), doubled for the backward's
// transients — an upper estimate, not a measurement. Not here: heads and the encoder (small next
// to the backbone), the evaluator's sampling.
import fs from 'node:fs';
import os from 'node:os';
import { numTokens, sitParamCount, type SiTConfig } from '../models/config.ts';
import { meta } from '../kernels/meta.ts';
import type { RunSpec } from '../spec/schema.ts';

export interface MemoryEstimate {
  params: number;
  /** Bytes of weights, EMA, gradients and AdamW moments. */
  stateBytes: number;
  /** Bytes of one training step's activations. */
  activationBytes: number;
  totalBytes: number;
}

/** Copies of every parameter a run holds: the weights, the EMA teacher, the gradients, AdamW's m and v. */
const COPIES = 5;

export function estimateMemory(spec: RunSpec, config: SiTConfig): MemoryEstimate {
  const params = sitParamCount(config);
  const stateBytes = 4 * COPIES * params;
  const perBlock = (10 + 2 * config.mlpRatio) * numTokens(config) * config.hiddenSize;
  const activationBytes = 4 * 2 * perBlock * config.depth * spec.train.batch_size;
  return { params, stateBytes, activationBytes, totalBytes: stateBytes + activationBytes };
}

/** The memory this process may use: the cgroup's limit when one is set, else the machine's. */
export function availableMemory(): number {
  for (const f of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number(fs.readFileSync(f, 'utf8').trim());
      if (Number.isFinite(v) && v > 0 && v < os.totalmem()) return v;
    } catch { /* not there: no cgroup limit */ }
  }
  return os.totalmem();
}

const GB = (b: number) => `${(b / 2 ** 30).toFixed(1)} GB`;

/**
 * Throw, naming the estimate and the machine's memory, when the spec needs more than 90 % of it.
 * DIFFACTOR_IGNORE_MEMORY=1 (`train --ignore-memory`) skips the check.
 */
export function checkFitsMemory(spec: RunSpec, config: SiTConfig, available = availableMemory()): MemoryEstimate {
  const e = estimateMemory(spec, config);
  // Shape-only execution (kernels/meta.ts, `diffactor simulate`) allocates no storage.
  if (meta.on || process.env.DIFFACTOR_IGNORE_MEMORY === '1' || e.totalBytes <= 0.9 * available) return e;
  throw new Error(
    `spec '${spec.name}' needs about ${GB(e.totalBytes)} (${(e.params / 1e6).toFixed(1)} M parameters × ${COPIES} copies = ${GB(e.stateBytes)}; `
    + `activations of a batch of ${spec.train.batch_size} through ${config.depth} blocks of ${numTokens(config)} tokens × ${config.hiddenSize} = ${GB(e.activationBytes)}) `
    + `but this machine has ${GB(available)}: lower model.depth, model.hidden_size or train.batch_size, or pass --ignore-memory if the estimate is wrong`,
  );
}

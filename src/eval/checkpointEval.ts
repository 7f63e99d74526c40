// The Evaluator's metrics for one checkpoint (EMA weights unless raw): FD, sFID, IS, precision/recall,
// class accuracy and confidence, CKNNA, linear probe. `diffactor eval --checkpoint C [--samples N]
// [--sample-steps S (overrides eval.nfe)] [--set k=v] [--raw] [--json]` (src/cli/eval.ts) and the
// study's final evaluation (src/study/compare.ts) call it.
import { loadCheckpointWith, pickWeights } from '../build/checkpoint.ts';
import { backboneForWeights, ownDrawLabel, vaeForCheckpoint } from '../build/parts.ts';
import { Evaluation, checkEvalCount, evalSampleSettings, type Metrics } from './evaluate.ts';
import { modelCallsPerSample } from '../build/draw.ts';
import type { SiT } from '../models/sit.ts';
import type { RegSiT } from '../models/reg.ts';

/** Below about this many samples FD is noticeably biased (it falls as the sample count grows). */
const FD_UNBIASED_SAMPLES = 1000;

export interface EvalCliOptions {
  checkpoint: string; samples?: number; sampleSteps?: number; raw?: boolean; json?: boolean; data?: string;
  /** Print nothing (a caller that records the metrics itself). */
  quiet?: boolean;
  /** `path=value` overrides of the checkpoint's spec for this measurement (--set redi.rg_scale=1.5). */
  set?: string[];
}

export function evaluateCheckpoint(o: EvalCliOptions): Metrics {
  const c = loadCheckpointWith(o.checkpoint, o.set);
  if (o.samples !== undefined) checkEvalCount(o.samples, c.spec.eval.k, '--samples');
  const spec = { ...c.spec, eval: { ...c.spec.eval, ...(o.samples && { samples: o.samples }), ...(o.sampleSteps && { steps: o.sampleSteps, nfe: undefined }) } };
  const draw = evalSampleSettings(spec);
  const weights = pickWeights(c, o.checkpoint, o.raw ? 'raw' : undefined, 'ema', '--raw');
  const model = backboneForWeights(c.spec, c.config, weights);
  model.loadStateDict(weights);
  const vae = vaeForCheckpoint(c, o.checkpoint) ?? undefined;
  const t0 = performance.now();
  const ev = Evaluation.prepare(spec, c.config, { data: o.data });
  // FD's covariance estimate from few samples inflates it; such numbers compare only at equal counts.
  if (spec.eval.samples < FD_UNBIASED_SAMPLES && !o.quiet) console.error(`eval: warning: FD from ${spec.eval.samples} samples (< ~${FD_UNBIASED_SAMPLES}) is biased upwards; compare it only with FDs from as many samples`);
  const m = ev.run(model as SiT | RegSiT, { vae, onProgress: (what) => { if (!o.json && !o.quiet) console.error(`eval: ${what}…`); } });
  if (o.quiet) return m;
  // A method that owns its sampling (DiGIT) reads neither sampler nor steps: say how it drew instead.
  const own = ownDrawLabel(spec);
  const drawn = own ? { sample_steps: null, nfe: null, sampler: null, draw: own } : { sample_steps: draw.steps, nfe: modelCallsPerSample(draw.sampler, draw.steps), sampler: draw.sampler };
  if (o.json) console.log(JSON.stringify({ checkpoint: o.checkpoint, ...(o.set?.length && { set: o.set }), step: c.state.step, samples: spec.eval.samples, ...drawn, ...m }));
  else {
    console.error(`eval of ${o.checkpoint} (step ${c.state.step}, ${(c.exported ?? (o.raw ? 'raw' : 'ema')) === 'raw' ? 'raw' : 'EMA'} weights, ${spec.eval.samples} samples, ${own ?? `${draw.sampler} ${draw.steps} steps (${modelCallsPerSample(draw.sampler, draw.steps)} NFE)`}, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(14)} ${v.toFixed(4)}`);
  }
  return m;
}

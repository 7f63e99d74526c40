// `diffactor export --checkpoint F --out G [--raw]`: the weights of a training checkpoint without
// its optimiser state, heads and RNG streams (build/checkpoint.ts WEIGHTS_FORMAT): the EMA weights
// unless --raw, plus a jointly trained VAE (REPA-E's latents need it to decode). sample, eval and
// predict read the result like a checkpoint; `train --resume` refuses it.
import { statSync } from 'node:fs';
import { exportWeights, loadCheckpoint } from '../build/checkpoint.ts';
import { formatBytes } from './inspect.ts';

export function exportCli(o: { checkpoint: string; out: string; raw?: boolean }): void {
  if (o.out === o.checkpoint) throw new Error(`--out ${o.out}: that is the checkpoint being exported; name another file`);
  const c = loadCheckpoint(o.checkpoint);
  const which = o.raw ? 'raw' : 'ema';
  const t = exportWeights(c, which, o.out, o.checkpoint);
  const params = [...t.values()].reduce((a, x) => a + x.size, 0);
  console.error(`wrote ${o.out}: ${which === 'ema' ? 'EMA' : 'raw'} weights of ${o.checkpoint} (step ${c.state.step}), ${t.size} tensors, ${params.toLocaleString('en-US')} values, ` +
    `${formatBytes(statSync(o.out).size)} (the checkpoint: ${formatBytes(statSync(o.checkpoint).size)})`);
}

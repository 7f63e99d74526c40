// `diffactor predict`: evaluate a checkpoint's model (eval mode, no label dropout) on tensors from
// a safetensors file — x (B,C,H,W), t (B), y (B, class indices as float32) — and write `out`.
// For debugging and interop with the PyTorch reference.
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { loadCheckpoint } from '../build/checkpoint.ts';
import { createSiT } from '../models/sit.ts';
import { noGrad } from '../autograd/index.ts';
import { cast } from '../tensor/tensor.ts';

export function predict(o: { checkpoint: string; inputs: string; out: string; ema?: boolean }): void {
  const c = loadCheckpoint(o.checkpoint);
  const model = createSiT(c.config, 0).eval();
  model.loadStateDict(o.ema ? c.ema : c.model);
  const { tensors } = readSafetensors(o.inputs);
  for (const k of ['x', 't', 'y']) if (!tensors.has(k)) throw new Error(`${o.inputs}: missing tensor '${k}' (need x (B,C,H,W), t (B), y (B))`);
  const f32 = (k: string) => cast(tensors.get(k)!, 'float32');
  const y = f32('y');
  for (const v of y.data) if (!Number.isInteger(v)) throw new Error(`${o.inputs}: y must hold integer class indices, found ${v}`);
  const out = noGrad(() => model.forward(f32('x'), f32('t'), y).out);
  writeSafetensors(o.out, new Map([['out', out]]), { source: o.checkpoint, weights: o.ema ? 'ema' : 'model' });
  console.error(`wrote ${o.out}: out ${JSON.stringify(out.shape)}`);
}

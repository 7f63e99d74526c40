// `diffactor predict`: evaluate a checkpoint's model (eval mode, no label dropout) on tensors from
// a safetensors file — x (B,C,H,W), t (B), y (B, class indices as float32) — and write `out`.
// For debugging and interop with the PyTorch reference. The model is the one the checkpoint's
// methods sample with (parts.samplingModel): REPA-E's SiT without its latent BN, so x is a
// BN-normalised latent; REG's SiT, which also reads its noisy class token `cls` and writes one.
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { loadCheckpoint, pickWeights } from '../build/checkpoint.ts';
import { jointVae, samplingModel } from '../build/parts.ts';
import { RegSiT } from '../models/reg.ts';
import { noGrad } from '../autograd/index.ts';
import { cast, type Tensor } from '../tensor/tensor.ts';

const shapeOf = (t: Tensor) => `(${t.shape.join(',')})`;

export function predict(o: { checkpoint: string; inputs: string; out: string; ema?: boolean }): void {
  const c = loadCheckpoint(o.checkpoint);
  const model = samplingModel(c.spec, c.config, pickWeights(c, o.checkpoint, o.ema ? 'ema' : undefined, 'raw', '--ema')).eval();
  const reg = model instanceof RegSiT;
  const { tensors } = readSafetensors(o.inputs);
  const names = reg ? ['x', 't', 'y', 'cls'] : ['x', 't', 'y'];
  for (const k of names) if (!tensors.has(k)) throw new Error(`${o.inputs}: missing tensor '${k}' (${o.checkpoint} needs ${names.join(', ')}; see \`diffactor predict --help\`)`);
  const f32 = (k: string) => cast(tensors.get(k)!, 'float32');
  const x = f32('x'), y = f32('y'), t = f32('t'), { inChannels: C, inputSize: S } = c.config;
  // One line on a mismatch instead of a tensor-shape error from deep in the forward.
  if (x.ndim !== 4 || x.shape[1] !== C || x.shape[2] !== S || x.shape[3] !== S) {
    const what = jointVae(c.spec) ? `BN-normalised ${c.spec.protocol} latents` : 'images';
    throw new Error(`${o.inputs}: x is ${shapeOf(x)} but this model reads (B,${C},${S},${S}) ${what}`);
  }
  const B = x.shape[0];
  if (t.size !== B || y.size !== B) throw new Error(`${o.inputs}: t ${shapeOf(t)} and y ${shapeOf(y)} must hold one value per image of x (B = ${B})`);
  for (const v of y.data) if (!Number.isInteger(v)) throw new Error(`${o.inputs}: y must hold integer class indices, found ${v}`);
  const outs = noGrad(() => {
    if (!reg) return new Map([['out', model.forward(x, t, y).out]]);
    const cls = f32('cls');
    if (cls.ndim !== 2 || cls.shape[0] !== B || cls.shape[1] !== model.clsDim) throw new Error(`${o.inputs}: cls is ${shapeOf(cls)} but this REG model reads (${B},${model.clsDim})`);
    const r = model.forward(x, t, y, { cls });
    return new Map([['out', r.out], ['cls', r.cls]]);
  });
  writeSafetensors(o.out, outs, { source: o.checkpoint, weights: (c.exported ?? (o.ema ? 'ema' : 'raw')) === 'ema' ? 'ema' : 'model' });
  console.error(`wrote ${o.out}: ${[...outs].map(([k, v]) => `${k} ${JSON.stringify(v.shape)}`).join(', ')}`);
}

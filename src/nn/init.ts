// Parameter initialisers with PyTorch's semantics (torch.nn.init), drawing from a diffactor Rng so
// that a model's initial weights are a function of one seed. They write a tensor's storage in
// place and return it. Not here: which layer gets which initialiser (that is each model's choice).
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { isMetaArray } from '../kernels/meta.ts';

/**
 * torch.nn.init._calculate_fan_in_and_fan_out: a (out, in, *kernel) weight has
 * fan_in = in * prod(kernel), fan_out = out * prod(kernel).
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fans: need a weight with at least 2 dims, got [${shape.join(', ')}]`);
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i];
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export function uniform(t: Tensor, rng: Rng, lo: number, hi: number): Tensor {
  t.assertWritable('init.uniform');
  if (isMetaArray(t.data)) return t; // shape-only: nothing to draw into
  t.data.set(rng.uniformArray(t.size, lo, hi));
  return t;
}

export function normal(t: Tensor, rng: Rng, std = 1, mean = 0): Tensor {
  t.assertWritable('init.normal');
  if (isMetaArray(t.data)) return t;
  t.data.set(rng.normalArray(t.size, mean, std));
  return t;
}

export function constant(t: Tensor, value: number): Tensor {
  t.assertWritable('init.constant');
  t.data.fill(value);
  return t;
}

export const zeros = (t: Tensor): Tensor => constant(t, 0);
export const ones = (t: Tensor): Tensor => constant(t, 1);

/**
 * Xavier/Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)). `shape` overrides the
 * shape the fans are read from (DiT initialises its patch conv as if it were (D, C*p*p)).
 */
export function xavierUniform(t: Tensor, rng: Rng, gain = 1, shape: readonly number[] = t.shape): Tensor {
  const { fanIn, fanOut } = fans(shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(t, rng, -a, a);
}

/**
 * What nn.Linear / nn.Conv2d do in reset_parameters: kaiming_uniform(a=sqrt(5)) on the weight,
 * which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
 */
export function torchDefault(weight: Tensor, bias: Tensor | null, rng: Rng): void {
  const { fanIn } = fans(weight.shape);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  uniform(weight, rng, -bound, bound);
  if (bias) uniform(bias, rng, -bound, bound);
}

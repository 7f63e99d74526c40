// nn.LeakyReLU as an op: y = x for x > 0, slope·x otherwise; dx = g for x > 0, slope·g otherwise
// (torch's rule: the gradient at exactly 0 is slope). The PatchGAN discriminator (models/patchGan.ts)
// uses slope 0.2. A plain loop (no fused kernel): the discriminator is small. Not exported from
// ops/index.ts; import it from this file.
import { uninit, type Tensor } from '../../tensor/tensor.ts';
import { record } from '../tape.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';

export function leakyRelu(x: Tensor, slope = 0.01): Tensor {
  if (!Number.isFinite(slope)) throw new Error(`leakyRelu: slope must be finite, got ${slope}`);
  const out = uninit(x.shape, x.dtype);
  const xs = x.data, ys = out.data;
  if (isMetaArray(xs)) { // shape-only (kernels/meta.ts): count, do not walk
    metaCount('elementwise', x.size, 2 * x.size);
    return record('leakyRelu', [x], out, () => { metaCount('elementwise', x.size, 3 * x.size); return [uninit(x.shape, x.dtype)]; });
  }
  for (let i = 0; i < xs.length; i++) { const v = xs[i]; ys[i] = v > 0 ? v : slope * v; }
  return record('leakyRelu', [x], out, (g) => {
    const dx = uninit(x.shape, x.dtype);
    const gs = g.data, ds = dx.data;
    for (let i = 0; i < gs.length; i++) ds[i] = xs[i] > 0 ? gs[i] : slope * gs[i];
    return [dx];
  });
}

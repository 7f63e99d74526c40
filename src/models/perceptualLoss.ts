// The perceptual term of REPA-E's VAE loss (perceptual_weight 1.0 in configs/l1_lpips_kl_gan.yaml),
// an LPIPS-like distance on a frozen feature net trained here (perceptualNet.ts,
// standins/perceptual.ts), since LPIPS' VGG-16 and its learned weights cannot be downloaded.
// LPIPS (richzhang/PerceptualSimilarity; the copy REPA-E uses is loss/lpips.py) computes, for each
// tapped layer s of both images' features f̂ = f / (‖f‖_channels + 1e-10):
//   d_s = spatial mean of Σ_c w_{s,c} · (f̂_x − f̂_y)²_c,     d = Σ_s d_s   (one value per image)
// with w_{s,c} ≥ 0 learned from human similarity judgements (BAPPS), which this project does not
// have: here every w_{s,c} = 1 (LPIPS' "baseline", lin layers not trained), so each stage
// contributes the mean over positions of the squared distance between unit feature vectors, in
// [0, 4]. REPA-E's loss is the batch mean of d (`self.perceptual_loss(inputs, reconstructions).mean()`).
// Inputs are images in [−1, 1] as src/data gives them and as the net was trained; no LPIPS
// scaling layer (that one standardises for ImageNet VGG). Note: REPA-E feeds [−1, 1] images to a
// loss that assumes [0, 1] and maps them to 2x − 1 again before LPIPS (loss/lpips.py, forward); we
// do not copy that range mismatch. The net is frozen: gradients reach the images, never its weights.
// Not here: the feature net (perceptualNet.ts), its training and loading (standins/perceptual.ts).
import type { Tensor } from '../tensor/tensor.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';
import { add, mean, mul, sub, sum } from '../autograd/ops/index.ts';
import { unitNormalize } from '../autograd/ops/unitNormalize.ts';
import type { PerceptualNet } from './perceptualNet.ts';

/** LPIPS' eps in normalize_tensor, added to the channel norm. */
export const LPIPS_EPS = 1e-10;

/**
 * The distance between two lists of feature maps (B, C_s, H_s, W_s), one value per image (B):
 * Σ_s mean_{h,w} Σ_c (f̂_x − f̂_y)², f̂ unit-normalised over channels. `stageWeights` scales each
 * stage's term (default 1 each).
 */
export function lpipsFromFeatures(fx: readonly Tensor[], fy: readonly Tensor[], stageWeights?: readonly number[]): Tensor {
  if (fx.length !== fy.length || fx.length === 0) throw new Error(`lpipsFromFeatures: ${fx.length} vs ${fy.length} feature maps`);
  if (stageWeights && stageWeights.length !== fx.length) throw new Error(`lpipsFromFeatures: ${stageWeights.length} stage weights for ${fx.length} stages`);
  let d: Tensor | null = null;
  fx.forEach((a, s) => {
    const b = fy[s];
    if (a.ndim !== 4 || !sameShape(a.shape, b.shape)) throw new Error(`lpipsFromFeatures: stage ${s} maps ${fmtShape(a.shape)} and ${fmtShape(b.shape)} must be the same (B, C, H, W)`);
    const diff = sub(unitNormalize(a, LPIPS_EPS), unitNormalize(b, LPIPS_EPS)); // (B, C, H, W)
    let term = mean(sum(mul(diff, diff), 1), [1, 2]); // (B)
    if (stageWeights && stageWeights[s] !== 1) term = mul(term, stageWeights[s]);
    d = d ? add(d, term) : term;
  });
  return d!;
}

/** The per-image distance (B) between x and y (B, C, H, W) in [−1, 1] under the frozen net. */
export function perceptualDistance(net: PerceptualNet, x: Tensor, y: Tensor): Tensor {
  if (!sameShape(x.shape, y.shape)) throw new Error(`perceptualDistance: images ${fmtShape(x.shape)} and ${fmtShape(y.shape)} differ`);
  if (net.training) throw new Error('perceptualDistance: the feature net must be in eval mode (load it with loadPerceptualNet)');
  return lpipsFromFeatures(net.featureMaps(x), net.featureMaps(y));
}

/** REPA-E's perceptual term before its weight: the batch mean of perceptualDistance, a scalar. */
export function perceptualLoss(net: PerceptualNet, x: Tensor, y: Tensor): Tensor {
  return mean(perceptualDistance(net, x, y));
}

// The feature network of the perceptual (LPIPS-like) loss: a small VGG-style plain conv net, the
// stand-in for LPIPS' ImageNet VGG-16, which cannot be downloaded here. Laid out like torchvision's
// VGG so the names read the same: `features` is one nn.Sequential of stages, each `convsPerStage` ×
// [conv 3×3 pad 1 → ReLU], stages separated by a 2×2 pooling; then a global average pool and a
// linear `classifier` (used only to train it). The LPIPS taps are the last ReLU of every stage
// (VGG-16's relu1_2, relu2_2, …): widths (16, 32, 64) on 32×32 images give (16, 32, 32),
// (32, 16, 16), (64, 8, 8). Differences from VGG: 2×2 *average* pooling (this project has no
// max-pool op), three narrow stages, one linear layer instead of three.
// It is not the evaluation classifier (models/classifier.ts, a BatchNorm ResNet): different
// architecture, no BatchNorm (its features do not depend on the batch), its own seed and file
// (docs/models/perceptual.md). Init as torchvision's VGG: convs kaiming-normal (fan_out, relu),
// biases 0, the linear N(0, 0.01). Not here: the distance (perceptualLoss.ts), training and
// loading the shipped weights (standins/perceptual.ts).
import type { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { avgPool2d, mean } from '../autograd/index.ts';
import { Module } from '../nn/module.ts';
import { Conv2d } from '../nn/conv2d.ts';
import { Linear } from '../nn/linear.ts';
import { Activation } from '../nn/activation.ts';
import { Sequential, type Layer } from '../nn/sequential.ts';
import { constant, fans, normal } from '../nn/init.ts';

export const perceptualNetConfigSchema = z.object({
  inChannels: z.number().int().positive(),
  numClasses: z.number().int().positive(),
  /** Channels per stage; every stage after the first starts after a 2×2 pool. */
  widths: z.array(z.number().int().positive()).min(1),
  /** 3×3 convs (each followed by a ReLU) per stage. */
  convsPerStage: z.number().int().positive(),
}).strict();

export type PerceptualNetConfig = z.infer<typeof perceptualNetConfigSchema>;

export function parsePerceptualNetConfig(v: unknown): PerceptualNetConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = perceptualNetConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid perceptual net config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** 'VGG-T': tests; 'VGG-P': the shipped stand-in (16/32/64, two convs per stage, 72 k parameters). */
export const PERCEPTUAL_NET_PRESETS: Record<string, PerceptualNetConfig> = {
  'VGG-T': parsePerceptualNetConfig({ inChannels: 3, numClasses: 10, widths: [4, 8], convsPerStage: 1 }),
  'VGG-P': parsePerceptualNetConfig({ inChannels: 3, numClasses: 10, widths: [16, 32, 64], convsPerStage: 2 }),
};

export function perceptualNetPreset(name: string, overrides: Partial<PerceptualNetConfig> = {}): PerceptualNetConfig {
  const base = PERCEPTUAL_NET_PRESETS[name];
  if (!base) throw new Error(`unknown perceptual net preset '${name}'; known: ${Object.keys(PERCEPTUAL_NET_PRESETS).join(', ')}`);
  return parsePerceptualNetConfig({ ...base, ...overrides });
}

/** 2×2 stride-2 average pooling as a parameter-free layer (keeps the Sequential's indices). */
class AvgPool2x2 extends Module {
  forward(x: Tensor): Tensor { return avgPool2d(x, 2, 2); }
}

export interface PerceptualNetOutput {
  /** (B, K): only for training the net. */
  logits: Tensor;
  /** Each stage's last ReLU output (B, C_s, H_s, W_s): the LPIPS taps. */
  features: Tensor[];
}

export class PerceptualNet extends Module {
  readonly config: PerceptualNetConfig;
  readonly features: Sequential;
  readonly classifier: Linear;
  /** Indices in `features` of the tapped ReLUs, one per stage. */
  readonly taps: readonly number[];

  constructor(config: PerceptualNetConfig, rng: Rng) {
    super();
    const c = (this.config = parsePerceptualNetConfig(config));
    const layers: Layer[] = [], taps: number[] = [];
    let inCh = c.inChannels;
    c.widths.forEach((w, s) => {
      if (s > 0) layers.push(new AvgPool2x2());
      for (let j = 0; j < c.convsPerStage; j++) {
        layers.push(new Conv2d(inCh, w, 3, rng.child(`features.${layers.length}`), { padding: 1 }), new Activation('relu'));
        inCh = w;
      }
      taps.push(layers.length - 1);
    });
    this.taps = taps;
    this.features = this.child('features', new Sequential(layers));
    this.classifier = this.child('classifier', new Linear(inCh, c.numClasses, rng.child('classifier')));
    // torchvision VGG._initialize_weights (the linear's std: 0.01).
    const init = rng.child('init');
    this.features.layers.forEach((m, i) => {
      if (!(m instanceof Conv2d)) return;
      normal(m.weight, init.child(i), Math.sqrt(2 / fans(m.weight.shape).fanOut));
      constant(m.bias!, 0);
    });
    normal(this.classifier.weight, init.child('classifier'), 0.01);
    constant(this.classifier.bias!, 0);
  }

  private check(x: Tensor): void {
    if (x.ndim !== 4 || x.shape[1] !== this.config.inChannels) throw new Error(`PerceptualNet: expected (B, ${this.config.inChannels}, H, W), got ${fmtShape(x.shape)}`);
  }

  /** The tapped feature maps only (what the perceptual distance reads). */
  featureMaps(x: Tensor): Tensor[] {
    this.check(x);
    const out: Tensor[] = [];
    const last = this.taps[this.taps.length - 1];
    for (let i = 0; i <= last; i++) {
      x = this.features.layers[i].forward(x);
      if (this.taps.includes(i)) out.push(x);
    }
    return out;
  }

  /** x (B, C, H, W) in [-1, 1] -> logits and the tapped maps. */
  forward(x: Tensor): PerceptualNetOutput {
    const features = this.featureMaps(x);
    return { logits: this.classifier.forward(mean(features[features.length - 1], [2, 3])), features };
  }
}

export function createPerceptualNet(config: PerceptualNetConfig, seed: number): PerceptualNet {
  return new PerceptualNet(config, new Rng(seed).child('perceptual'));
}

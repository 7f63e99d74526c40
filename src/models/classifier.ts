// The evaluation classifier: a small ResNet (BasicBlocks with BatchNorm) named as torchvision's
// resnet (conv1, bn1, layerK.J.{conv1, bn1, conv2, bn2, downsample.{0,1}}, fc), with a CIFAR-style
// 3x3 stem and no max-pool for 28/32-pixel images. It is a different architecture from the ViT
// encoder on purpose: evaluation features must come from a network no training loss touches.
// forward returns logits, the pooled features (B, F) for FD / IS / precision-recall, and the
// stage outputs; featureMap (the second-to-last stage) serves sFID-style spatial statistics.
// Not here: training scripts, the metrics (eval/).
import type { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { add, mean, relu } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Conv2d } from '../nn/conv2d.ts';
import { Linear } from '../nn/linear.ts';
import { BatchNorm2d } from '../nn/batchNorm.ts';
import { Sequential } from '../nn/sequential.ts';
import { fans, normal } from '../nn/init.ts';

export const classifierConfigSchema = z.object({
  inChannels: z.number().int().positive(),
  numClasses: z.number().int().positive(),
  /** Channels per stage; every stage after the first starts with a stride-2 block. */
  widths: z.array(z.number().int().positive()).min(1),
  /** BasicBlocks per stage. */
  blocks: z.array(z.number().int().positive()).min(1),
}).strict().superRefine((c, ctx) => {
  if (c.widths.length !== c.blocks.length) ctx.addIssue({ code: 'custom', message: `widths (${c.widths.length}) and blocks (${c.blocks.length}) must have one entry per stage` });
});

export type ClassifierConfig = z.infer<typeof classifierConfigSchema>;

export function parseClassifierConfig(v: unknown): ClassifierConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = classifierConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid classifier config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** 'ResNet-T': tests; 'ResNet-P': this project's evaluator (ResNet-14-like, 128-d features). */
export const CLASSIFIER_PRESETS: Record<string, ClassifierConfig> = {
  'ResNet-T': parseClassifierConfig({ inChannels: 3, numClasses: 10, widths: [8, 16], blocks: [1, 1] }),
  'ResNet-P': parseClassifierConfig({ inChannels: 3, numClasses: 10, widths: [32, 64, 128], blocks: [2, 2, 2] }),
};

export function classifierPreset(name: string, overrides: Partial<ClassifierConfig> = {}): ClassifierConfig {
  const base = CLASSIFIER_PRESETS[name];
  if (!base) throw new Error(`unknown classifier preset '${name}'; known: ${Object.keys(CLASSIFIER_PRESETS).join(', ')}`);
  return parseClassifierConfig({ ...base, ...overrides });
}

const conv3 = (i: number, o: number, stride: number, rng: Rng): Conv2d => new Conv2d(i, o, 3, rng, { stride, padding: 1, bias: false });

/** torchvision BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). */
export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  /** 1x1 stride-s conv + BN when the shape changes. */
  readonly downsample: Sequential | null;

  constructor(inCh: number, outCh: number, stride: number, rng: Rng) {
    super();
    this.conv1 = this.child('conv1', conv3(inCh, outCh, stride, rng.child('conv1')));
    this.bn1 = this.child('bn1', new BatchNorm2d(outCh));
    this.conv2 = this.child('conv2', conv3(outCh, outCh, 1, rng.child('conv2')));
    this.bn2 = this.child('bn2', new BatchNorm2d(outCh));
    this.downsample = stride !== 1 || inCh !== outCh
      ? this.child('downsample', new Sequential([new Conv2d(inCh, outCh, 1, rng.child('downsample.0'), { stride, bias: false }), new BatchNorm2d(outCh)]))
      : null;
  }

  /** (B, Cin, H, W) -> (B, Cout, H/s, W/s). */
  forward(x: Tensor): Tensor {
    const h = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    return relu(add(h, this.downsample ? this.downsample.forward(x) : x));
  }
}

/** One stage: blocks in sequence (torchvision's layerK is an nn.Sequential). */
class Stage extends ModuleList<BasicBlock> {
  forward(x: Tensor): Tensor {
    for (const b of this.items) x = b.forward(x);
    return x;
  }
}

export interface ClassifierOutput {
  /** (B, K). */
  logits: Tensor;
  /** Global-average-pooled last stage (B, F), F = last width: the FD / IS / PR feature. */
  features: Tensor;
  /** The second-to-last stage's output (B, C, h, w) (the last one's with a single stage). */
  featureMap: Tensor;
  /** Every stage's output, in order. */
  stages: Tensor[];
}

export class Classifier extends Module {
  readonly config: ClassifierConfig;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly stages: Stage[];
  readonly fc: Linear;

  /** torchvision's init: convs kaiming-normal (fan_out, relu), BN (1, 0), fc PyTorch default. */
  constructor(config: ClassifierConfig, rng: Rng) {
    super();
    const c = (this.config = parseClassifierConfig(config));
    this.conv1 = this.child('conv1', conv3(c.inChannels, c.widths[0], 1, rng.child('conv1')));
    this.bn1 = this.child('bn1', new BatchNorm2d(c.widths[0]));
    this.stages = c.widths.map((w, s) => this.child(`layer${s + 1}`, new Stage(Array.from({ length: c.blocks[s] }, (_, j) => {
      const inCh = j === 0 ? (s === 0 ? c.widths[0] : c.widths[s - 1]) : w;
      return new BasicBlock(inCh, w, j === 0 && s > 0 ? 2 : 1, rng.child(`layer${s + 1}.${j}`));
    }))));
    this.fc = this.child('fc', new Linear(c.widths[c.widths.length - 1], c.numClasses, rng.child('fc')));
    const init = rng.child('init');
    for (const [name, m] of this.namedModules()) {
      if (m instanceof Conv2d) normal(m.weight, init.child(name), Math.sqrt(2 / fans(m.weight.shape).fanOut));
    }
  }

  /** x (B, C, H, W) -> logits, pooled features and stage maps. */
  forward(x: Tensor): ClassifierOutput {
    if (x.ndim !== 4 || x.shape[1] !== this.config.inChannels) throw new Error(`Classifier: expected (B, ${this.config.inChannels}, H, W), got ${fmtShape(x.shape)}`);
    let h = relu(this.bn1.forward(this.conv1.forward(x))); // (B, w0, H, W)
    const stages: Tensor[] = [];
    for (const s of this.stages) stages.push(h = s.forward(h));
    const features = mean(h, [2, 3]); // (B, F)
    return { logits: this.fc.forward(features), features, featureMap: stages[Math.max(stages.length - 2, 0)], stages };
  }
}

export function createClassifier(config: ClassifierConfig, seed: number): Classifier {
  return new Classifier(config, new Rng(seed).child('classifier'));
}

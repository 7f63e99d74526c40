// The conv models against PyTorch forwards written from diffusers' and torchvision's structure
// (test/fixtures/convnets/*.safetensors, make_convnets_fixture.py): the weights load strictly
// under diffusers / torchvision names, and the VAE posterior, sample and reconstruction, the
// U-Net output and mid tap, and the ResNet's train-mode logits, running-stat update and eval
// logits agree with torch (float32 here vs a float64 reference).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { fromData, type Tensor } from '../../src/tensor/tensor.ts';
import { noGrad } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { VAE, vaePreset } from '../../src/models/vae.ts';
import { UNet, unetPreset } from '../../src/models/unet.ts';
import { Classifier, classifierPreset } from '../../src/models/classifier.ts';
import { expectClose } from '../kernels/expectClose.ts';

const load = (name: string) => readSafetensors(join(import.meta.dirname, `../fixtures/convnets/${name}.safetensors`));
const weightsOf = (t: Map<string, Tensor>): Map<string, Tensor> => new Map([...t].filter(([k]) => !k.startsWith('in.') && !k.startsWith('out.')));
const check = (what: string, got: Tensor, want: Tensor): void => {
  expect(got.shape, what).toEqual(want.shape);
  expectClose(what, got.data, want.data, 1e-4, 1e-4);
};

describe('parity with PyTorch', () => {
  it('VAE (diffusers AutoencoderKL layout): posterior, sample, reconstruction', () => {
    const fx = load('vae_tiny');
    const m = new VAE(vaePreset('VAE-T'), new Rng(0));
    m.loadStateDict(weightsOf(fx.tensors), true);
    const t = (k: string): Tensor => fx.tensors.get(k)!;
    const p = noGrad(() => m.encode(t('in.x')));
    check('mean', p.mean, t('out.mean'));
    check('logvar', p.logvar, t('out.logvar'));
    // the sample with torch's noise: z = mean + exp(logvar / 2) * eps
    const z = Array.from(p.mean.data, (mu, i) => mu + Math.exp(0.5 * p.logvar.data[i]) * t('in.eps').data[i]);
    expectClose('z', z, t('out.z').data, 1e-4, 1e-4);
    check('recon', noGrad(() => m.decode(fromData(Float32Array.from(t('out.z').data), t('out.z').shape))), t('out.recon'));
  });

  it('U-Net (diffusers UNet2DModel layout): output and mid-block tap', () => {
    const fx = load('unet_tiny');
    const m = new UNet(unetPreset('UNet-T', { timeScale: 1 }), new Rng(0)).eval();
    m.loadStateDict(weightsOf(fx.tensors), true);
    const t = (k: string): Tensor => fx.tensors.get(k)!;
    const out = noGrad(() => m.forward(t('in.x'), t('in.t').data, t('in.y').data));
    expect(Array.from(out.labels)).toEqual([3, 10]);
    check('mid', out.mid, t('out.mid'));
    check('sample', out.out, t('out.sample'));
  });

  it('ResNet (torchvision names): train-mode logits, running statistics, eval logits', () => {
    const fx = load('resnet_tiny');
    const m = new Classifier(classifierPreset('ResNet-T'), new Rng(0));
    m.loadStateDict(weightsOf(fx.tensors), true);
    const t = (k: string): Tensor => fx.tensors.get(k)!;
    check('train logits', noGrad(() => m.train().forward(t('in.x')).logits), t('out.train_logits'));
    for (const [name, buf] of m.namedBuffers()) {
      if (name.endsWith('num_batches_tracked')) { expect(buf.item(), name).toBe(1); continue; }
      const want = fx.tensors.get(`out.running.${name}`);
      expect(want, name).toBeDefined();
      expectClose(name, buf.data, want!.data, 1e-5, 1e-5);
    }
    check('eval logits', noGrad(() => m.eval().forward(t('in.x')).logits), t('out.eval_logits'));
  });
});

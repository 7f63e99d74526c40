// The DINOv2-layout ViT: shapes, seed determinism, gradients to every parameter, pos_embed
// interpolation, parity with a plain-torch DINOv2 forward (test/fixtures/vit/dinov2_tiny.safetensors,
// make_vit_fixture.py), and loadDinov2 on files this test writes in the official, chunked and
// Hugging Face layouts (the key list below is DINOv2's, written out independently of the model).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { add, backward, mean, mul } from '../../src/autograd/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { createViT, vitGrid, vitPreset, type ViTOutput } from '../../src/models/vit.ts';
import { loadDinov2, saveDinov2 } from '../../src/models/dinov2.ts';
import { resampleGrid } from '../../src/models/resample.ts';
import { expectClose } from '../kernels/expectClose.ts';

const dir = mkdtempSync(join(tmpdir(), 'diffactor-vit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiny = vitPreset('ViT-T/4', { numRegisterTokens: 2, depth: 2, embedDim: 32, numHeads: 2 });
const image = (b: number, h: number, w: number, seed: number): Tensor => new Rng(seed).normal([b, 3, h, w]);

/** DINOv2's state_dict keys (dinov2/models/vision_transformer.py, layers/block.py, block_chunks=0, init_values set). */
function dinov2Keys(depth: number, registers: boolean): string[] {
  const top = ['cls_token', 'pos_embed', ...(registers ? ['register_tokens'] : []), 'mask_token', 'patch_embed.proj.weight', 'patch_embed.proj.bias', 'norm.weight', 'norm.bias'];
  const per = ['norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.qkv.bias', 'attn.proj.weight', 'attn.proj.bias', 'ls1.gamma',
    'norm2.weight', 'norm2.bias', 'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias', 'ls2.gamma'];
  return [...top, ...Array.from({ length: depth }, (_, i) => per.map((k) => `blocks.${i}.${k}`)).flat()];
}

const same = (what: string, a: Tensor, b: Tensor): void => {
  expect(a.shape).toEqual(b.shape);
  expectClose(what, a.data, b.data, 0, 0);
};
const sameOut = (a: ViTOutput, b: ViTOutput): void => {
  same('cls', a.clsToken, b.clsToken);
  same('patch', a.patchTokens, b.patchTokens);
  same('prenorm', a.prenorm, b.prenorm);
};

describe('ViT shapes and determinism', () => {
  it('32x32 with patch 4 gives 8x8 tokens; registers sit between cls and patches', () => {
    const m = createViT(tiny, 1);
    const out = m.forward(image(2, 32, 32, 2), { taps: [1, 2] });
    expect(vitGrid(tiny)).toBe(8);
    expect(out.clsToken.shape).toEqual([2, 32]);
    expect(out.regTokens!.shape).toEqual([2, 2, 32]);
    expect(out.patchTokens.shape).toEqual([2, 64, 32]);
    expect(out.prenorm.shape).toEqual([2, 67, 32]);
    expect([...out.hidden.keys()]).toEqual([1, 2]);
    same('last tap is prenorm', out.hidden.get(2)!, out.prenorm);
    expect(() => m.forward(image(1, 32, 32, 3), { taps: [3] })).toThrow(/tap 3/);
    const plain = createViT(vitPreset('ViT-T/4'), 1).forward(image(1, 32, 32, 2));
    expect(plain.regTokens).toBeNull();
    expect(plain.patchTokens.shape).toEqual([1, 64, 64]);
  });

  it('the same seed gives the same weights and outputs; another seed does not', () => {
    const a = createViT(tiny, 5), b = createViT(tiny, 5), c = createViT(tiny, 6);
    for (const [k, t] of a.stateDict()) expectClose(k, t.data, b.stateDict().get(k)!.data, 0, 0);
    sameOut(a.forward(image(2, 32, 32, 9)), b.forward(image(2, 32, 32, 9)));
    expect(c.pos_embed.data[0]).not.toBe(a.pos_embed.data[0]);
  });

  it('initialises like DINOv2: tiny cls/register tokens, zero mask token, unit LayerScale, pos_embed std 0.02', () => {
    const m = createViT(vitPreset('ViT-P/4'), 3);
    expect(Math.max(...m.cls_token.toArray().map(Math.abs))).toBeLessThan(1e-5);
    expect(m.mask_token.toArray().every((v) => v === 0)).toBe(true);
    expect(m.blocks.items[0].ls1!.gamma.toArray().every((v) => v === 1)).toBe(true);
    const p = m.pos_embed.toArray();
    const sd = Math.sqrt(p.reduce((s, v) => s + v * v, 0) / p.length);
    expect(sd).toBeGreaterThan(0.018);
    expect(sd).toBeLessThan(0.022);
  });

  it('state_dict keys are exactly DINOv2\'s', () => {
    expect([...createViT(tiny, 0).stateDict().keys()].sort()).toEqual(dinov2Keys(2, true).sort());
    expect([...createViT(vitPreset('ViT-T/4', { layerScaleInit: null }), 0).stateDict().keys()].some((k) => k.includes('.ls1'))).toBe(false);
  });
});

describe('ViT gradients', () => {
  it('one backward reaches every parameter (mask_token only when masks are given)', () => {
    const m = createViT(tiny, 2);
    const masks = Array.from({ length: 2 * 64 }, (_, i) => i % 5 === 0);
    const out = m.forward(image(2, 32, 32, 4), { masks });
    const loss = add(add(mean(mul(out.patchTokens, out.patchTokens)), mean(out.clsToken)), mean(mul(out.regTokens!, out.regTokens!)));
    backward(loss);
    for (const [name, p] of m.namedParameters()) {
      expect(p.grad, name).not.toBeNull();
      expect(p.grad!.toArray().some((v) => v !== 0), `${name} has an all-zero gradient`).toBe(true);
    }
    m.zeroGrad();
    backward(mean(m.forward(image(2, 32, 32, 4)).patchTokens));
    expect(m.mask_token.grad!.toArray().every((v) => v === 0)).toBe(true);
  });

  it('masks replace exactly the flagged patch tokens by mask_token before the position embedding', () => {
    const m = createViT(tiny, 2);
    m.mask_token.data.set(new Rng(1).normalArray(32));
    const x = image(1, 32, 32, 4);
    const masks = Array.from({ length: 64 }, (_, i) => i === 10);
    const t = m.prepareTokens(x, masks), t0 = m.prepareTokens(x); // (1, 67, 32)
    const row = (u: Tensor, i: number): number[] => Array.from(u.data.subarray(i * 32, (i + 1) * 32));
    const pos = (i: number): number[] => Array.from(m.pos_embed.data.subarray(i * 32, (i + 1) * 32));
    expectClose('masked token', row(t, 3 + 10), m.mask_token.toArray().map((v, k) => v + pos(1 + 10)[k]), 1e-6, 1e-6);
    expectClose('unmasked token', row(t, 3 + 11), row(t0, 3 + 11), 0, 0);
  });
});

describe('pos_embed interpolation', () => {
  it('the native grid uses pos_embed itself; a same-size resample is the identity', () => {
    const m = createViT(vitPreset('ViT-T/4', { interpolateOffset: 0 }), 1);
    expect(m.posEmbedFor(8, 8)).toBe(m.pos_embed);
    const grid = m.pos_embed.data.subarray(64); // skip the cls row
    expectClose('identity', resampleGrid(grid, 64, 8, 8, 8, 8, { mode: 'bicubic' }), grid, 1e-7, 0);
  });

  it('other input sizes get a resampled grid (40x24 -> 10x6 tokens), differentiable into pos_embed', () => {
    const m = createViT(tiny, 1);
    const out = m.forward(image(1, 40, 24, 1));
    expect(out.patchTokens.shape).toEqual([1, 60, 32]);
    backward(mean(out.patchTokens));
    expect(m.pos_embed.grad!.toArray().some((v) => v !== 0)).toBe(true);
  });
});

describe('parity with a PyTorch DINOv2 forward (fixture)', () => {
  const fx = readSafetensors(join(import.meta.dirname, '../fixtures/vit/dinov2_tiny.safetensors'));
  const cfg = JSON.parse(fx.metadata.config) as { numHeads: number };
  const weights = join(dir, 'fixture-weights.safetensors');
  writeSafetensors(weights, new Map([...fx.tensors].filter(([k]) => !k.startsWith('in.') && !k.startsWith('out.'))));
  const m = loadDinov2(weights, { numHeads: cfg.numHeads, interpolate: { interpolateOffset: 0.1, interpolateAntialias: false } });

  it('infers the config from the shapes', () => {
    expect(m.config).toMatchObject({ embedDim: 32, depth: 2, numHeads: 2, patchSize: 4, imgSize: 16, numRegisterTokens: 2, mlpRatio: 4 });
  });

  for (const name of ['native', 'other'] as const) {
    it(`${name} input${name === 'native' ? ' with masks' : ' (6x5 grid, bicubic pos_embed with the 0.1 offset)'}`, () => {
      const masks = name === 'native' ? fx.tensors.get('in.masks')!.data : undefined;
      const out = m.forward(fx.tensors.get(`in.${name}`)!, { masks });
      const want = (k: string): Tensor => fx.tensors.get(`out.${name}.${k}`)!;
      for (const [k, got] of [['cls', out.clsToken], ['reg', out.regTokens!], ['patch', out.patchTokens], ['prenorm', out.prenorm]] as const) {
        expect(got.shape, k).toEqual(want(k).shape);
        expectClose(`${name}.${k}`, got.data, want(k).data, 2e-4, 2e-4);
      }
    });
  }
});

describe('loadDinov2 on files in the DINOv2 layouts', () => {
  const src = createViT(tiny, 11);
  // Make every tensor distinctive so a mis-assigned key cannot go unnoticed.
  for (const [, t] of src.stateDict()) t.data.set(new Rng(t.size).normalArray(t.size, 0, 0.3));
  const sd = src.stateDict();
  const x = image(2, 32, 32, 12);
  const ref = src.eval().forward(x);

  it('official keys: strict load, outputs identical', () => {
    const file = join(dir, 'official.safetensors');
    writeSafetensors(file, new Map(dinov2Keys(2, true).map((k) => [k, sd.get(k)!])));
    const m = loadDinov2(file, { numHeads: 2 });
    expect(m.config.numRegisterTokens).toBe(2);
    expect(m.config.interpolateAntialias).toBe(true); // the hub's register models
    sameOut(m.forward(x), ref);
  });

  it('saveDinov2 round-trips with the head count in the metadata', () => {
    const file = join(dir, 'saved.safetensors');
    saveDinov2(src, file);
    sameOut(loadDinov2(file).forward(x), ref);
  });

  it('chunked training layout (blocks.<chunk>.<i>.*) and a key prefix', () => {
    const file = join(dir, 'chunked.safetensors');
    writeSafetensors(file, new Map(dinov2Keys(2, true).map((k) => [`teacher.backbone.${k.replace(/^blocks\.(\d+)\./, (_, i) => `blocks.${Number(i)}.${i}.`)}`, sd.get(k)!])));
    sameOut(loadDinov2(file, { numHeads: 2, prefix: 'teacher.backbone.' }).forward(x), ref);
  });

  it('Hugging Face Dinov2Model names (q/k/v split)', () => {
    const hf = new Map<string, Tensor>([
      ['embeddings.cls_token', sd.get('cls_token')!], ['embeddings.mask_token', sd.get('mask_token')!],
      ['embeddings.position_embeddings', sd.get('pos_embed')!], ['embeddings.register_tokens', sd.get('register_tokens')!],
      ['embeddings.patch_embeddings.projection.weight', sd.get('patch_embed.proj.weight')!],
      ['embeddings.patch_embeddings.projection.bias', sd.get('patch_embed.proj.bias')!],
      ['layernorm.weight', sd.get('norm.weight')!], ['layernorm.bias', sd.get('norm.bias')!],
    ]);
    for (let i = 0; i < 2; i++) {
      const b = `blocks.${i}.`, l = `encoder.layer.${i}.`;
      for (const [from, to] of [['norm1', 'norm1'], ['norm2', 'norm2'], ['mlp.fc1', 'mlp.fc1'], ['mlp.fc2', 'mlp.fc2'], ['attn.proj', 'attention.output.dense']]) {
        for (const p of ['weight', 'bias']) hf.set(`${l}${to}.${p}`, sd.get(`${b}${from}.${p}`)!);
      }
      hf.set(`${l}layer_scale1.lambda1`, sd.get(`${b}ls1.gamma`)!);
      hf.set(`${l}layer_scale2.lambda1`, sd.get(`${b}ls2.gamma`)!);
      for (const p of ['weight', 'bias']) {
        const qkv = sd.get(`${b}attn.qkv.${p}`)!, n = qkv.size / 3;
        ['query', 'key', 'value'].forEach((name, j) => {
          hf.set(`${l}attention.attention.${name}.${p}`, tensor(qkv.data.subarray(j * n, (j + 1) * n), [32, ...qkv.shape.slice(1)]));
        });
      }
    }
    const file = join(dir, 'hf.safetensors');
    writeSafetensors(file, hf);
    sameOut(loadDinov2(file, { numHeads: 2 }).forward(x), ref);
  });

  it('a missing key fails the strict load and names the key', () => {
    const file = join(dir, 'missing.safetensors');
    writeSafetensors(file, new Map(dinov2Keys(2, true).filter((k) => k !== 'blocks.1.ls2.gamma').map((k) => [k, sd.get(k)!])));
    expect(() => loadDinov2(file, { numHeads: 2 })).toThrow(/missing keys: blocks\.1\.ls2\.gamma/);
  });

  it('resampleTo resizes pos_embed at load with timm\'s bicubic antialias (REPA: 37x37 -> 16x16)', () => {
    const file = join(dir, 'resample.safetensors');
    saveDinov2(src, file);
    const m = loadDinov2(file, { resampleTo: 4 });
    expect(m.config.imgSize).toBe(16);
    expect(m.pos_embed.shape).toEqual([1, 17, 32]);
    const want = resampleGrid(src.pos_embed.data.subarray(32), 32, 8, 8, 4, 4, { mode: 'bicubic', antialias: true });
    expectClose('resampled pos_embed', m.pos_embed.data.subarray(32), want, 1e-6, 1e-6);
    expectClose('cls position', m.pos_embed.data.subarray(0, 32), src.pos_embed.data.subarray(0, 32), 0, 0);
    expect(m.forward(image(1, 16, 16, 1)).patchTokens.shape).toEqual([1, 16, 32]);
  });
});

// The PatchGAN discriminator's structure: taming's state_dict names, output sizes and receptive
// fields on 32×32 images (kernel 4, padding 1), taming's weights_init statistics drawn from the
// Rng (reproducible by seed), and the presets.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { Tape, withTape, noGrad, slice, sum } from '../../src/autograd/index.ts';
import { grad } from '../../src/autograd/grad.ts';
import { NLayerDiscriminator, createPatchGan, parsePatchGanConfig, patchGanOutputSide, patchGanPreset, patchGanReceptiveField } from '../../src/models/patchGan.ts';

const stats = (a: ArrayLike<number>): { mean: number; std: number } => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i];
  m /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(v / a.length) };
};

describe('NLayerDiscriminator', () => {
  it("has taming's state_dict names (n_layers 3)", () => {
    const d = createPatchGan(parsePatchGanConfig({ inChannels: 3, ndf: 4, nLayers: 3 }), 0);
    expect([...d.stateDict().keys()]).toEqual([
      'main.0.weight', 'main.0.bias',
      'main.2.weight', 'main.3.weight', 'main.3.bias',
      'main.5.weight', 'main.6.weight', 'main.6.bias',
      'main.8.weight', 'main.9.weight', 'main.9.bias',
      'main.11.weight', 'main.11.bias',
      'main.3.running_mean', 'main.3.running_var', 'main.3.num_batches_tracked',
      'main.6.running_mean', 'main.6.running_var', 'main.6.num_batches_tracked',
      'main.9.running_mean', 'main.9.running_var', 'main.9.num_batches_tracked',
    ]);
    // widths ndf·min(2^n, 8): 4, 8, 16, then 32 for the stride-1 conv, then 1
    expect(d.stateDict().get('main.8.weight')!.shape).toEqual([32, 16, 4, 4]);
    expect(d.stateDict().get('main.11.weight')!.shape).toEqual([1, 32, 4, 4]);
  });

  it('maps 32×32 to 14², 6², 2² logits for 1, 2, 3 layers', () => {
    const x = new Rng(0).normal([2, 3, 32, 32]);
    for (const [n, side] of [[1, 14], [2, 6], [3, 2]] as const) {
      const cfg = parsePatchGanConfig({ inChannels: 3, ndf: 4, nLayers: n });
      expect(patchGanOutputSide(cfg, 32)).toBe(side);
      expect(noGrad(() => createPatchGan(cfg, 0).forward(x)).shape).toEqual([2, 1, side, side]);
    }
    expect(() => patchGanOutputSide({ nLayers: 4 }, 32)).toThrow(/no output/);
    expect([1, 2, 3].map((n) => patchGanReceptiveField({ nLayers: n }))).toEqual([16, 34, 70]);
  });

  it('one logit sees a 16×16 patch (1 layer): its input gradient is zero outside it', () => {
    const d = createPatchGan(parsePatchGanConfig({ inChannels: 1, ndf: 4, nLayers: 1 }), 3).eval();
    const x = new Rng(1).normal([1, 1, 32, 32]).requireGrad();
    const tape = new Tape();
    const logit = withTape(tape, () => sum(slice(slice(d.forward(x), 2, 7, 8), 3, 7, 8))); // logit (7, 7)
    const [g] = grad(logit, [x], { tape });
    const rows: number[] = [], cols: number[] = [];
    for (let i = 0; i < 32; i++) for (let j = 0; j < 32; j++) if (g!.data[i * 32 + j] !== 0) { rows.push(i); cols.push(j); }
    // receptive field 16 (patchGanReceptiveField), well inside the image for output (7, 7)
    expect(Math.max(...rows) - Math.min(...rows) + 1).toBe(16);
    expect(Math.max(...cols) - Math.min(...cols) + 1).toBe(16);
  });

  it("initialises as taming's weights_init: conv N(0, 0.02), BN weight N(1, 0.02), bias 0; same seed, same weights", () => {
    const cfg = patchGanPreset('PatchGAN-S');
    const d = createPatchGan(cfg, 7);
    const sd = d.stateDict();
    for (const k of ['main.2.weight', 'main.5.weight']) {
      const s = stats(sd.get(k)!.data);
      expect(Math.abs(s.mean), k).toBeLessThan(0.002);
      expect(s.std, k).toBeGreaterThan(0.019);
      expect(s.std, k).toBeLessThan(0.021);
    }
    for (const k of ['main.3', 'main.6']) {
      const w = stats(sd.get(`${k}.weight`)!.data);
      expect(Math.abs(w.mean - 1), k).toBeLessThan(0.01);
      expect(w.std, k).toBeGreaterThan(0.01);
      expect(w.std, k).toBeLessThan(0.03);
      expect(sd.get(`${k}.bias`)!.data.every((v) => v === 0)).toBe(true);
    }
    // first conv bias keeps PyTorch's default U(±1/√fan_in), fan_in = 3·16
    const b0 = sd.get('main.0.bias')!.data;
    expect(b0.every((v) => Math.abs(v) <= 1 / Math.sqrt(48))).toBe(true);
    expect(b0.some((v) => v !== 0)).toBe(true);
    const again = createPatchGan(cfg, 7).stateDict();
    for (const [k, v] of sd) expect(Array.from(again.get(k)!.data), k).toEqual(Array.from(v.data));
    expect(Array.from(createPatchGan(cfg, 8).stateDict().get('main.2.weight')!.data)).not.toEqual(Array.from(sd.get('main.2.weight')!.data));
  });

  it('presets: T and S for 32 px, the official ndf 64 / 3 layers; wrong channel count is an error', () => {
    const n = (name: string): number => new NLayerDiscriminator(patchGanPreset(name), new Rng(0)).numParameters();
    expect(n('PatchGAN-T')).toBe(3 * 8 * 16 + 8 + 8 * 16 * 16 + 32 + 16 * 32 * 16 + 64 + 32 * 16 + 1);
    expect(n('PatchGAN-official')).toBe(2_765_633); // torch: NLayerDiscriminator(3, 64, 3)
    expect(n('PatchGAN-S')).toBe(167_841); // torch: NLayerDiscriminator(3, 32, 2)
    expect(() => createPatchGan(patchGanPreset('PatchGAN-T'), 0).forward(new Rng(0).normal([1, 1, 32, 32]))).toThrow(/expected \(B, 3, H, W\)/);
  });
});

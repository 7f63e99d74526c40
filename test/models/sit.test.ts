// SiT/DiT properties that need no PyTorch: adaLN-Zero (output exactly 0 at init, blocks are the
// identity, only the final Linear gets gradient), the 2-D sin-cos table against
// its closed form (column first), the timestep features against theirs, label dropout and CFG
// force-drop, taps, official parameter names, presets and config validation.
import { describe, expect, it } from 'vitest';
import { add, backward, mseLoss } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { SiT, createSiT } from '../../src/models/sit.ts';
import { parseSiTConfig, sitConfigToJSON, sitParamCount, type SiTConfig } from '../../src/models/config.ts';
import { presetNames, sitPreset } from '../../src/models/presets.ts';
import { TimestepEmbedder, sincosPosEmbed2d, timestepFrequencies } from '../../src/models/embeddings.ts';
import { expectClose } from '../kernels/expectClose.ts';

const tiny = (over: Partial<SiTConfig> = {}): SiTConfig => sitPreset('SiT-T/2', { hiddenSize: 16, numHeads: 2, depth: 3, numClasses: 5, ...over });

describe('adaLN-Zero at init', () => {
  it.each(['SiT-T/2', 'DiT-T/1', 'SiT-T/4'])('%s outputs exactly 0, blocks are the identity, only the final Linear gets gradient', (name) => {
    const cfg = sitPreset(name, { hiddenSize: 16, numHeads: 2 });
    const model = createSiT(cfg, 3); // training mode: label dropout draws from opts.rng
    const rng = new Rng(4);
    const x = rng.normal([2, cfg.inChannels, cfg.inputSize, cfg.inputSize]).requireGrad();
    const { out, hidden } = model.forward(x, [0.3, 0.7], [1, 2], { taps: [1, cfg.depth], rng: rng.child('labels') });
    expect(out.shape).toEqual([2, cfg.learnSigma ? 2 * cfg.inChannels : cfg.inChannels, cfg.inputSize, cfg.inputSize]);
    expect(out.toArray().every((v) => v === 0)).toBe(true);
    // zero gates: every block returns its input, so each tap equals patch embedding + pos_embed
    const embedded = add(model.x_embedder.forward(x), model.pos_embed);
    for (const h of hidden.values()) expect(h.toArray()).toEqual(embedded.toArray());

    backward(mseLoss(out, rng.normal(out.shape)));
    for (const [k, p] of model.namedParameters()) {
      const nonzero = p.grad !== null && p.grad.toArray().some((v) => v !== 0);
      // the zero final Linear blocks every path back into the network on the first step
      const expected = k.startsWith('final_layer.linear.');
      expect(nonzero, `${k}: gradient nonzero = ${nonzero}`).toBe(expected);
    }
  });
});

describe('embeddings: closed forms', () => {
  it('pos_embed: token (i, j) = [sin/cos of column j | sin/cos of row i], omega_k = 10000^(-4k/D)', () => {
    const cfg = tiny({ inputSize: 6, hiddenSize: 24 }); // 3x3 grid
    const model = createSiT(cfg, 0);
    const d = 24, q = d / 4, g = 3;
    expect(model.pos_embed.shape).toEqual([1, g * g, d]);
    const ref: number[] = [];
    for (let i = 0; i < g; i++) {
      for (let j = 0; j < g; j++) {
        for (const pos of [j, i]) {
          for (let k = 0; k < q; k++) ref.push(Math.sin(pos * Math.pow(10000, -k / q)));
          for (let k = 0; k < q; k++) ref.push(Math.cos(pos * Math.pow(10000, -k / q)));
        }
      }
    }
    expectClose('pos_embed', model.pos_embed.data, ref, 1e-7, 1e-6);
    // the quirk, spelled out: token 1 is (row 0, col 1): its first half moves, its second does not
    const tok = (n: number): number[] => model.pos_embed.toArray().slice(n * d, (n + 1) * d);
    expect(tok(1)[0]).toBeCloseTo(Math.sin(1), 6);
    expect(tok(1)[d / 2]).toBe(0);
    expect(tok(g)[0]).toBe(0); // token 3 is (row 1, col 0)
    expect(tok(g)[d / 2]).toBeCloseTo(Math.sin(1), 6);
    expect(() => sincosPosEmbed2d(10, 2)).toThrow(/multiple of 4/);
  });

  it('timestep features: [cos(t w_k) | sin(t w_k)], w_k = 10000^(-k/half), odd dims padded with 0', () => {
    const t = [0, 0.37, 1, 999];
    for (const dim of [256, 7]) {
      const half = Math.floor(dim / 2);
      const ref: number[] = [];
      for (const tv of t) {
        const row = new Array<number>(dim).fill(0);
        for (let k = 0; k < half; k++) {
          row[k] = Math.cos(tv * Math.pow(10000, -k / half));
          row[half + k] = Math.sin(tv * Math.pow(10000, -k / half));
        }
        ref.push(...row);
      }
      expectClose(`timestep features dim ${dim}`, timestepFrequencies(t, dim), ref, 1e-6, 1e-6);
    }
  });

  it('timeScale multiplies t before the features (DiT steps from [0, 1] time)', () => {
    const a = new TimestepEmbedder(8, new Rng(1), 256, 1000);
    const b = new TimestepEmbedder(8, new Rng(1), 256, 1);
    expect(a.forward([0.25, 0.5]).toArray()).toEqual(b.forward([250, 500]).toArray());
    expect(a.mlp.at(0).namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
  });
});

describe('labels', () => {
  it('training mode drops labels to the null class with p, reproducibly from the rng; eval never drops', () => {
    const model = createSiT(tiny({ numClasses: 5, classDropoutProb: 0.3 }), 0);
    const y = Array.from({ length: 2000 }, (_, i) => i % 5);
    const le = model.y_embedder;
    const d1 = le.dropLabels(y, { training: true, rng: new Rng(9) });
    const d2 = le.dropLabels(y, { training: true, rng: new Rng(9) });
    expect([...d1]).toEqual([...d2]);
    const dropped = d1.filter((v) => v === 5).length;
    expect(dropped / y.length).toBeGreaterThan(0.26);
    expect(dropped / y.length).toBeLessThan(0.34);
    d1.forEach((v, i) => { if (v !== 5) expect(v).toBe(y[i]); });
    expect([...le.dropLabels(y, { training: false, rng: new Rng(9) })]).toEqual(y);
    expect(() => le.dropLabels([1], { training: true })).toThrow(/needs an rng/);
  });

  it('forceDrop replaces the random drop, and a dropped label embeds as the null row', () => {
    const model = createSiT(tiny(), 0).train();
    const cfg = model.config;
    const x = new Rng(1).normal([3, cfg.inChannels, cfg.inputSize, cfg.inputSize]);
    const { labels } = model.forward(x, [0.1, 0.2, 0.3], [0, 1, 2], { forceDrop: [0, 1, 0] });
    expect([...labels]).toEqual([0, cfg.numClasses, 2]);
    const table = model.y_embedder.embedding_table.weight.toArray();
    const d = cfg.hiddenSize;
    expect(model.y_embedder.forward(labels).toArray().slice(d, 2 * d)).toEqual(table.slice(cfg.numClasses * d, (cfg.numClasses + 1) * d));
    expect(() => model.forward(x, [0.1, 0.2, 0.3], [0, 1, 2])).toThrow(/needs an rng/);
  });

  it('no dropout means no null row, and dropping is an error', () => {
    const model = createSiT(tiny({ classDropoutProb: 0 }), 0);
    expect(model.y_embedder.embedding_table.weight.shape).toEqual([5, 16]);
    expect(() => model.y_embedder.dropLabels([1, 2], { training: false, forceDrop: [1, 0] })).toThrow(/no null class/);
    expect(() => model.y_embedder.dropLabels([1.5], { training: false })).toThrow(/not in \[0, 5\]/);
  });
});

describe('structure', () => {
  it('parameter names are the official state_dict keys; pos_embed is a state_dict entry, not trained', () => {
    const model = createSiT(tiny({ depth: 2 }), 0);
    const lin = (p: string): string[] => [`${p}.weight`, `${p}.bias`];
    const block = (i: number): string[] => ['attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2', 'adaLN_modulation.1'].flatMap((m) => lin(`blocks.${i}.${m}`));
    const expected = [
      ...lin('x_embedder.proj'), ...lin('t_embedder.mlp.0'), ...lin('t_embedder.mlp.2'), 'y_embedder.embedding_table.weight',
      ...block(0), ...block(1), ...lin('final_layer.linear'), ...lin('final_layer.adaLN_modulation.1'),
    ];
    expect(model.namedParameters().map(([k]) => k).sort()).toEqual(expected.sort());
    expect([...model.stateDict().keys()].sort()).toEqual([...expected, 'pos_embed'].sort());
    expect(model.pos_embed.requiresGrad).toBe(false);
  });

  it('taps return the requested block outputs only; bad taps and shapes are refused', () => {
    const model = createSiT(tiny(), 0).eval();
    const cfg = model.config;
    const x = new Rng(1).normal([1, cfg.inChannels, cfg.inputSize, cfg.inputSize]);
    const { hidden } = model.forward(x, [0.5], [1], { taps: [2] });
    expect([...hidden.keys()]).toEqual([2]);
    const asTensors = model.forward(x, tensor([0.5]), tensor([1]), { taps: [2] });
    expect(asTensors.hidden.get(2)!.toArray()).toEqual(hidden.get(2)!.toArray());
    expect(hidden.get(2)!.shape).toEqual([1, 16, 16]);
    expect(() => model.forward(x, [0.5], [1], { taps: [0] })).toThrow(/tap 0/);
    expect(() => model.forward(x, [0.5], [1], { taps: [4] })).toThrow(/tap 4/);
    expect(() => model.forward(x, [0.5, 0.1], [1], {})).toThrow(/batch 1/);
    expect(() => model.forward(new Rng(1).normal([1, 3, 8, 8]), [0.5], [1])).toThrow(/expected x/);
  });

  it('init is a function of the seed; xavier/normal/zero where the official code puts them', () => {
    const cfg = tiny();
    const a = createSiT(cfg, 11), b = createSiT(cfg, 11), c = createSiT(cfg, 12);
    const flat = (m: SiT): number[] => m.parameters().flatMap((p) => p.toArray());
    expect(flat(a)).toEqual(flat(b));
    expect(flat(a)).not.toEqual(flat(c));
    const qkv = a.blocks.items[0].attn.qkv;
    const bound = Math.sqrt(6 / (16 + 48));
    expect(Math.max(...qkv.weight.toArray().map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...qkv.weight.toArray().map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(qkv.bias!.toArray().every((v) => v === 0)).toBe(true);
    const patchBound = Math.sqrt(6 / (16 + cfg.inChannels * 4)); // fans of the (D, C*p*p) view
    expect(Math.max(...a.x_embedder.proj.weight.toArray().map(Math.abs))).toBeLessThanOrEqual(patchBound);
    expect(Math.max(...a.x_embedder.proj.weight.toArray().map(Math.abs))).toBeGreaterThan(0.8 * patchBound);
    const t0 = a.t_embedder.mlp.at(0).namedParameters()[0][1].toArray();
    const sd = Math.sqrt(t0.reduce((s, v) => s + v * v, 0) / t0.length);
    expect(sd).toBeGreaterThan(0.018);
    expect(sd).toBeLessThan(0.022);
  });

  it('runs the P1 preset (4x8x8 latents, patch 1) end to end', () => {
    const cfg = sitPreset('SiT-P1');
    const model = createSiT(cfg, 0).eval();
    expect(model.numParameters()).toBe(sitParamCount(cfg));
    const { out, hidden } = model.forward(new Rng(1).normal([1, 4, 8, 8]), [0.5], [3], { taps: [4] });
    expect(out.shape).toEqual([1, 4, 8, 8]);
    expect(hidden.get(4)!.shape).toEqual([1, 64, 192]);
  });
});

describe('config and presets', () => {
  it('presets follow the DiT/SiT table; counts match DiT-XL/2 (675,129,632 with pos_embed)', () => {
    const xl = sitPreset('DiT-XL/2');
    expect([xl.depth, xl.hiddenSize, xl.numHeads, xl.patchSize, xl.inputSize, xl.inChannels, xl.numClasses, xl.learnSigma]).toEqual([28, 1152, 16, 2, 32, 4, 1000, true]);
    expect(sitParamCount(xl) + 256 * 1152).toBe(675_129_632);
    expect(sitPreset('SiT-XL/2').learnSigma).toBe(false);
    expect([sitPreset('SiT-B/4').hiddenSize, sitPreset('SiT-L/8').depth, sitPreset('SiT-S/2').numHeads]).toEqual([768, 24, 6]);
    const p2 = sitPreset('SiT-P2');
    expect([p2.inChannels, p2.inputSize, p2.patchSize, p2.hiddenSize, p2.depth, p2.numHeads]).toEqual([1, 32, 2, 384, 12, 6]);
    const p1 = sitPreset('DiT-P1');
    expect([p1.inChannels, p1.inputSize, p1.patchSize, p1.hiddenSize, p1.depth, p1.numHeads, p1.learnSigma]).toEqual([4, 8, 1, 192, 6, 3, true]);
    expect(presetNames()).toContain('SiT-T/1');
    expect(() => sitPreset('SiT-Q/2')).toThrow(/unknown model preset 'SiT-Q\/2'; known: SiT-T\/1/);
    expect(() => sitPreset('SiT-XL/3')).toThrow(/unknown model preset/);
  });

  it('serialises to JSON and back; invalid configs list every problem', () => {
    const cfg = sitPreset('DiT-B/4', { numClasses: 10 });
    const json = sitConfigToJSON(cfg);
    expect(parseSiTConfig(json)).toEqual(cfg);
    expect(Object.keys(JSON.parse(json))).toEqual(['family', 'inputSize', 'inChannels', 'patchSize', 'hiddenSize', 'depth', 'numHeads', 'mlpRatio', 'numClasses', 'classDropoutProb', 'learnSigma', 'timeScale']);
    expect(() => parseSiTConfig({ ...cfg, hiddenSize: 30, inputSize: 9 })).toThrow(/inputSize 9 is not a multiple of patchSize 4.*hiddenSize 30 is not divisible by numHeads 12.*multiple of 4/);
    expect(() => parseSiTConfig({ ...cfg, extra: 1 })).toThrow(/invalid SiT config/);
    expect(() => parseSiTConfig({ ...cfg, depth: 0 })).toThrow(/depth/);
  });

  it('sitParamCount agrees with the built model', () => {
    for (const cfg of [tiny(), tiny({ classDropoutProb: 0, learnSigma: true, patchSize: 4, mlpRatio: 2 })]) {
      expect(createSiT(cfg, 0).numParameters()).toBe(sitParamCount(cfg));
    }
  });
});

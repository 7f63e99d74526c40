// RAE stage 2's invariants (methods-b §0 P2 and §5 (c)–(f)) as property tests: the shift τ_s's
// identities and τ_s(½) = s/(1+s), s = √(m/m_base) (RAE's own numbers: √48); the training step
// noises and conditions at the SHIFTED times; the sampler evaluates the model on the shifted grid
// τ_s(1 − i/N); AutoGuidance with w = 1 is the main model; the head's width rule; the head's
// per-token modulation (s_tok at token i moves only token i's modulation, attention still mixes);
// errors that name the field.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { shiftTime, resolutionShift } from '../../src/diffusion/timeSampling.ts';
import { odeGrid } from '../../src/diffusion/odeSampler.ts';
import { linear as linearPath, flowTrainingPair } from '../../src/diffusion/index.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { DiTDH, DiTDHHeadNet, createDiTDH } from '../../src/methods/dit-dh/model.ts';
import { ditDh, shiftOf, DiTDHSection } from '../../src/methods/dit-dh/index.ts';
import { autoGuided, loadWeakModel } from '../../src/methods/dit-dh/autoguidance.ts';
import { parseSpec, resolvePaths } from '../../src/spec/load.ts';
import { checkSpecConsistency } from '../../src/build/setup.ts';

const config = parseSiTConfig({ family: 'SiT', inputSize: 4, inChannels: 6, patchSize: 1, hiddenSize: 16, depth: 2, numHeads: 2, mlpRatio: 2, numClasses: 10, classDropoutProb: 0.1, learnSigma: false, timeScale: 1 });
const head = { width: 24, depth: 1, heads: 2 };

/** A model whose zero-initialised layers are perturbed, so every path carries signal. */
function model(seed = 1): DiTDH {
  const m = createDiTDH(config, head, seed);
  const r = new Rng(seed + 100);
  for (const [n, t] of m.namedParameters()) { const v = r.child(n).normalArray(t.size, 0, 0.1); t.data.forEach((q, i) => { t.data[i] = q + v[i]; }); }
  return m.eval();
}

const s01 = fc.double({ min: 0, max: 1, noNaN: true });
const shifts = fc.double({ min: 0.05, max: 20, noNaN: true });

describe('P2: the timestep shift', () => {
  it('τ_1 = id, τ_s fixes 0 and 1, is increasing, τ_{1/s} inverts it, 1 − τ_s(1 − t) = τ_{1/s}(t), τ_s(½) = s/(1+s)', () => {
    fc.assert(fc.property(s01, s01, shifts, (t, u, s) => {
      expect(shiftTime(t, 1)).toBeCloseTo(t, 14);
      expect(shiftTime(0, s)).toBe(0);
      expect(shiftTime(1, s)).toBeCloseTo(1, 14);
      // Increasing up to rounding: t and u one ulp apart near 1 can round the other way (CI: 1 − 8e-16, 1 − 7e-16).
      if (t < u) expect(shiftTime(t, s) - shiftTime(u, s)).toBeLessThanOrEqual(2 ** -50);
      expect(shiftTime(shiftTime(t, s), 1 / s)).toBeCloseTo(t, 10);
      expect(1 - shiftTime(1 - t, s)).toBeCloseTo(shiftTime(t, 1 / s), 10);
      expect(shiftTime(0.5, s)).toBeCloseTo(s / (1 + s), 12);
    }), { numRuns: 300 });
  });

  it('s = √(m / m_base): RAE\'s 16·16·768 over 4096 is √48; ours from the model config', () => {
    expect(resolutionShift(16 * 16 * 768, 4096)).toBeCloseTo(Math.sqrt(48), 12);
    expect(shiftOf(config, 96)).toBeCloseTo(1, 14); // 6·4·4 = 96
    fc.assert(fc.property(fc.integer({ min: 1, max: 4096 }), (mb) => { expect(shiftOf(config, mb)).toBeCloseTo(Math.sqrt(96 / mb), 12); }));
  });
});

describe('the shift in training and sampling', () => {
  it('the training step noises and conditions at τ_s(t): the hook equals the model at the shifted times', () => {
    const s = DiTDHSection.parse({ head_width: 24, head_depth: 1, head_heads: 2, m_base: 24 }); // s = 2
    const m = ditDh.backbone!.build(s, { spec: {} as never, config, encoderDim: null, rng: new Rng(0) }, 3) as DiTDH;
    m.eval();
    expect(m.shift).toBeCloseTo(2, 14);
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
      const r = new Rng(seed);
      const x = r.normal([2, 6, 4, 4]), eps = r.normal([2, 6, 4, 4]), t = r.uniformArray(2), y = Int32Array.from([1, 4]);
      noGrad(() => {
        const f = ditDh.backbone!.forward(s, m, { input: x, eps, t, y, taps: [], feats: null, draws: {} }, linearPath, new Rng(1));
        const ts = t.map((v) => shiftTime(v, 2));
        const { xt, target } = flowTrainingPair(linearPath, x, eps, ts);
        expect(Array.from(f.target.data)).toEqual(Array.from(target.data));
        expect(Array.from(f.out.data)).toEqual(Array.from(m.forward(xt, ts, y).out.data));
      });
    }), { numRuns: 5 });
  });

  it('drawOwn evaluates the model on the shifted grid τ_s(1 − i/N) (Euler: N calls; Heun: 2N − 1)', () => {
    const m = model();
    m.shift = 3;
    const seen: number[] = [];
    const fwd = m.forward.bind(m);
    m.forward = ((x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>, o?: object) => { seen.push(t[0]); return fwd(x, t, y, o); }) as typeof m.forward;
    const noise = new Rng(2).normal([2, 6, 4, 4]), y = tensor([3, 5], [2]);
    const settings = { sampler: 'euler', steps: 5, cfg: 1, guidance_low: 0, guidance_high: 1 };
    m.drawOwn(noise, y, settings);
    const grid = odeGrid(5, 3);
    expect(seen).toEqual(Array.from(grid.slice(0, 5), Math.fround)); // the times reach the model as float32
    for (let i = 0; i < 5; i++) expect(seen[i]).toBeCloseTo(shiftTime(1 - i / 5, 3), 6);
    seen.length = 0;
    m.drawOwn(noise, y, { ...settings, sampler: 'heun' });
    expect(seen).toHaveLength(9);
    expect(m.ownsSampler('sde')).toBe(false);
  });
});

describe('(d) AutoGuidance', () => {
  it('w = 1 returns the main model\'s output; otherwise v_weak + w·(v − v_weak) inside the interval, v outside', () => {
    const main = model(1), weak = model(2);
    const f = (mm: DiTDH) => (x: Tensor, t: Tensor, y: Tensor) => mm.forward(x, t.data, y.data).out;
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 1, max: 4, noNaN: true }), s01, (seed, w, tt) => {
      const r = new Rng(seed);
      const x = r.normal([2, 6, 4, 4]), t = tensor([tt, tt], [2]), y = tensor([1, 2], [2]);
      noGrad(() => {
        const v = f(main)(x, t, y).data, vw = f(weak)(x, t, y).data;
        expect(Array.from(autoGuided(f(main), f(weak), 1)(x, t, y).data)).toEqual(Array.from(v));
        const g = autoGuided(f(main), f(weak), w)(x, t, y).data;
        for (let i = 0; i < v.length; i += 17) expect(g[i]).toBeCloseTo(vw[i] + w * (v[i] - vw[i]), 4);
        const out = autoGuided(f(main), f(weak), w, [tt + 0.01, 1.5])(x, t, y).data;
        expect(Array.from(out)).toEqual(Array.from(v));
      });
    }), { numRuns: 8 });
  });

  it('drawOwn with a weak model at w = 1 draws what the main model alone draws', () => {
    const m = model(1), noise = new Rng(4).normal([2, 6, 4, 4]), y = tensor([0, 9], [2]);
    const settings = { sampler: 'euler', steps: 3, cfg: 1, guidance_low: 0, guidance_high: 1 };
    const alone = Array.from(m.drawOwn(noise, y, settings).data);
    m.weak = model(2);
    m.guidanceScale = 1;
    expect(Array.from(m.drawOwn(noise, y, settings).data)).toEqual(alone);
    m.guidanceScale = 1.42;
    expect(Array.from(m.drawOwn(noise, y, settings).data)).not.toEqual(alone);
  });
});

describe('(e) (f) the head', () => {
  it('(e) a head narrower than the token dimension is refused at construction, naming dit_dh.head_width', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), (w) => {
      expect(() => new DiTDHHeadNet(6, 16, { width: w * 1, depth: 1, heads: 1 }, 2, 4, new Rng(0))).toThrow(/dit_dh\.head_width \d+ is below the token dimension 6/);
    }), { numRuns: 5 });
    expect(() => createDiTDH(config, { width: 4, depth: 1, heads: 1 }, 0)).toThrow(/dit_dh\.head_width 4 is below the token dimension 6/);
  });

  it('(f) s_tok at token i changes only token i\'s modulation; the output of other tokens still moves (attention)', () => {
    const m = model(5), h = m.head;
    fc.assert(fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 1e6 }), (i, seed) => {
      const r = new Rng(seed);
      const tok = r.normal([1, 16, 6]), stok = r.normal([1, 16, 16]);
      const stok2 = tensor(Float32Array.from(stok.data), [1, 16, 16]);
      for (let c = 0; c < 16; c++) stok2.data[i * 16 + c] += 1;
      noGrad(() => {
        const mod = (s: Tensor) => h.blocks.items[0].adaLN_modulation.forward(h.s_projector.forward(s)).data; // (1, 16, 6W)
        const a = mod(stok), b = mod(stok2), per = 6 * 24;
        for (let n = 0; n < 16; n++) {
          const same = Array.from(a.subarray(n * per, (n + 1) * per)).every((v, k) => v === b[n * per + k]);
          expect(same, `token ${n}`).toBe(n !== i);
        }
        const o1 = h.forward(tok, stok).data, o2 = h.forward(tok, stok2).data;
        let moved = false;
        for (let n = 0; n < 16; n++) if (n !== i) for (let c = 0; c < 6; c++) if (o1[n * 6 + c] !== o2[n * 6 + c]) moved = true;
        expect(moved).toBe(true);
      });
    }), { numRuns: 6 });
  });
});

describe('spec errors name the field', () => {
  const base = { name: 'd', methods: ['dit-dh'], model: { preset: 'SiT-S/1' } };
  it('patch size, path, head dims, guidance twice, a missing weak checkpoint', () => {
    expect(() => checkSpecConsistency(parseSpec({ ...base, model: { preset: 'SiT-S/2', patch_size: 2 } }))).toThrow(/model\.patch_size must be 1, got 2/);
    expect(() => checkSpecConsistency(parseSpec({ ...base, diffusion: { path: 'cosine' } }))).toThrow(/diffusion\.path must be linear, got cosine/);
    expect(() => checkSpecConsistency(parseSpec({ ...base, dit_dh: { head_width: 30, head_heads: 3 } }))).toThrow(/dit_dh\.head_width 30 \/ dit_dh\.head_heads 3 must be a whole head dim divisible by 4/);
    expect(() => checkSpecConsistency(parseSpec({ ...base, dit_dh: { autoguidance: '/x.safetensors' }, sample: { cfg: 2 } }))).toThrow(/dit_dh\.autoguidance and sample\.cfg > 1/);
    // A relative weak checkpoint resolves against the spec's folder, as every file a spec names.
    expect(resolvePaths(parseSpec({ ...base, dit_dh: { autoguidance: 'weak/checkpoint.safetensors' } }), '/specs/here').dit_dh).toMatchObject({ autoguidance: '/specs/here/weak/checkpoint.safetensors', autoguidance_scale: 1.42 });
    expect(() => loadWeakModel('/nonexistent/weak.safetensors', config)).toThrow(/dit_dh\.autoguidance \/nonexistent\/weak\.safetensors: not found/);
  });
});

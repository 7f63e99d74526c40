// Model evaluations per sample, counted on a real model: every sampler's forward calls during a
// draw must equal modelCallsPerSample, and stepsForNfe must buy the most steps within a budget.
// Also the evaluation settings: eval.nfe overrides eval.steps.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { drawSamples, modelCallsPerSample, stepsForNfe, type SampleSettings } from '../../src/build/draw.ts';
import { createSiT, SiT } from '../../src/models/sit.ts';
import { createRegSiT, RegSiT } from '../../src/models/reg.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { evalSampleSettings } from '../../src/eval/evaluate.ts';
import { tinySpec } from '../actors/specs.ts';

const sit = sitPreset('SiT-T/2', { hiddenSize: 32, numHeads: 2 });
const dit = sitPreset('DiT-T/2', { hiddenSize: 32, numHeads: 2 });
const SAMPLERS = ['euler', 'heun', 'sde', 'ddpm', 'ddim'] as const;

function settings(sampler: SampleSettings['sampler'], steps: number, cfg = 1): SampleSettings {
  return { sampler, steps, cfg, guidance_low: 0, guidance_high: 1, per_class: 1 };
}

/** Forward calls of one draw of `n` images (one model batch). */
function countCalls(model: SiT | RegSiT, s: SampleSettings, n: number): number {
  let calls = 0;
  const m = model as unknown as { forward: (...a: unknown[]) => unknown };
  const forward = m.forward.bind(model);
  m.forward = (...a) => { calls++; return forward(...a); };
  drawSamples(model, s, { seed: 3, labels: Array.from({ length: n }, (_, i) => i % 10) });
  return calls;
}

describe('modelCallsPerSample', () => {
  for (const sampler of SAMPLERS) {
    it(`${sampler}: equals the forward calls of a draw, with and without guidance`, () => {
      for (const steps of sampler === 'ddpm' || sampler === 'ddim' ? [2, 5, 10] : [1, 2, 5]) { // DDPM needs two timesteps; DDIM a stride dividing 1000
        for (const cfg of [1, 2]) {
          const model = sampler === 'ddpm' || sampler === 'ddim' ? createSiT(dit, 0) : createSiT(sit, 0);
          expect(countCalls(model, settings(sampler, steps, cfg), 3), `${sampler} ${steps} steps cfg ${cfg}`).toBe(modelCallsPerSample(sampler, steps));
        }
      }
    });
  }

  it("REG's SDE sampler: one call per step", () => {
    for (const steps of [1, 3, 4]) expect(countCalls(createRegSiT(sit, 8, 0), settings('sde', steps), 2)).toBe(modelCallsPerSample('sde', steps));
  });
});

describe('stepsForNfe', () => {
  it('buys the most steps whose evaluations stay within the budget', () => {
    fc.assert(fc.property(fc.constantFrom(...SAMPLERS), fc.integer({ min: 1, max: 500 }), (sampler, nfe) => {
      const steps = stepsForNfe(sampler, nfe);
      expect(steps).toBeGreaterThanOrEqual(1);
      // Heun's single step already costs 1; otherwise the budget is respected and one more step would exceed it.
      expect(modelCallsPerSample(sampler, steps)).toBeLessThanOrEqual(nfe);
      expect(modelCallsPerSample(sampler, steps + 1)).toBeGreaterThan(nfe);
    }));
    expect(stepsForNfe('heun', 40)).toBe(20); // 39 evaluations, the study's Heun at 20 steps
    expect(stepsForNfe('sde', 40)).toBe(40);
    expect(() => stepsForNfe('euler', 0)).toThrow(/nfe must be a positive integer, got 0/);
  });

  it('eval.nfe overrides eval.steps in the evaluation draws', () => {
    const heun = tinySpec('sit-baseline', { sample: { sampler: 'heun', steps: 9, per_class: 1 }, eval: { steps: 7, cfg: 1.5 } });
    expect(evalSampleSettings(heun)).toMatchObject({ sampler: 'heun', steps: 7, cfg: 1.5 });
    expect(evalSampleSettings({ ...heun, eval: { ...heun.eval, nfe: 40 } })).toMatchObject({ sampler: 'heun', steps: 20, cfg: 1.5 });
    const reg = tinySpec('reg', { eval: { nfe: 40 } });
    expect(evalSampleSettings(reg)).toMatchObject({ sampler: 'sde', steps: 40 });
  });
});

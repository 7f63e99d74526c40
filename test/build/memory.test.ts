// A spec that cannot fit the machine is refused before anything is allocated (a 100 000-block
// model used to pass validation and grow until killed), naming the estimate and the memory; the
// estimate's parameter count is the built model's; DIFFACTOR_IGNORE_MEMORY=1 lets a run through.
import { afterEach, describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/load.ts';
import { modelConfigFor } from '../../src/build/setup.ts';
import { checkFitsMemory, estimateMemory } from '../../src/build/memory.ts';
import { createSiT } from '../../src/models/sit.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { Trainer } from '../../src/run/reference.ts';

const data = { channels: 1, height: 32, numClasses: 10 };
const spec = (model: Record<string, unknown>, batch = 64) =>
  parseSpec({ name: 'big', data: { dataset: 'builtin', size: 32, builtin_count: 64 }, model: { preset: 'SiT-S/4', ...model }, train: { batch_size: batch } });

describe('memory estimate', () => {
  afterEach(() => { delete process.env.DIFFACTOR_IGNORE_MEMORY; });

  it('counts the built model\'s parameters exactly and grows with the batch', () => {
    const s = spec({ depth: 3, hidden_size: 64, num_heads: 2 });
    const c = modelConfigFor(s, data);
    const e = estimateMemory(s, c);
    expect(e.params).toBe(createSiT(c, 0).numParameters());
    expect(e.stateBytes).toBe(4 * 5 * e.params);
    expect(estimateMemory(spec({ depth: 3, hidden_size: 64, num_heads: 2 }, 128), c).activationBytes).toBe(2 * e.activationBytes);
  });

  it.each([
    ['depth 100000', { depth: 100_000 }, 64],
    ['hidden 1e6', { hidden_size: 1_000_000, num_heads: 1 }, 64],
    ['batch 60000', {}, 60_000],
  ])('refuses %s before allocating, naming the estimate and the machine', (_name, model, batch) => {
    const s = spec(model, batch);
    const c = modelConfigFor(s, data);
    expect(() => checkFitsMemory(s, c, 24 * 2 ** 30)).toThrow(/spec 'big' needs about [\d.]+ GB .* but this machine has 24\.0 GB: lower model\.depth, model\.hidden_size or train\.batch_size, or pass --ignore-memory/);
  });

  it('the trainer refuses at once (no allocation), and the override lets a fitting estimate through', () => {
    const s = spec({ depth: 100_000 });
    expect(() => new Trainer(s, openTrainData(s))).toThrow(/needs about/); // building 100 000 blocks would run out of memory first
    const small = spec({ depth: 2, hidden_size: 32, num_heads: 2 });
    expect(checkFitsMemory(small, modelConfigFor(small, data), 1e12).params).toBeGreaterThan(0);
    process.env.DIFFACTOR_IGNORE_MEMORY = '1';
    expect(() => checkFitsMemory(s, modelConfigFor(s, data), 1)).not.toThrow();
  });
});

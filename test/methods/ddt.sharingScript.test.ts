// scripts/ddt-sharing.ts (DDT's encoder-sharing claim: FD against encoder evaluations per image) on
// a tiny DDT run: one point per schedule and period (period 1 once), the encoder counts of each
// schedule, FD as `diffactor eval` measures that configuration, the JSON and SVG written; a
// checkpoint of another method is refused, naming what it is.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { runActors } from '../../src/run/actorRun.ts';
import { evaluateCheckpoint } from '../../src/cli/eval.ts';
import { combineSharing, ddtSharing } from '../../scripts/ddt-sharing.ts';
import { tinySpec } from '../actors/specs.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tmpDir } from '../run/methodRun.ts';

describe('scripts/ddt-sharing.ts', () => {
  it('FD per schedule and period, encoder evaluations ⌈N/r⌉ (uniform) and ⌊N/r⌋ (DP), files written', async () => {
    const dir = tmpDir('ddt', 'sharing');
    const files = writeTestStandins(dir);
    const eval_ = { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2 };
    const spec = tinySpec('ddt', { eval: eval_ });
    await runActors({ spec: { ...spec, train: { ...spec.train, steps: 2, checkpoint_every: 2 } }, out: path.join(dir, 'run'), quiet: true, samples: false });
    const checkpoint = path.join(dir, 'run', 'checkpoint.safetensors'), out = path.join(dir, 'plot', 'sharing');
    const points = ddtSharing({ checkpoint, steps: 5, periods: [2, 1, 4], samples: 20, out, quiet: true });
    expect(points.map((p) => `${p.schedule} ${p.period} ${p.encoderEvals}`)).toEqual(['uniform 1 5', 'uniform 2 3', 'dp 2 2', 'uniform 4 2', 'dp 4 1']);
    for (const p of points) expect(Number.isFinite(p.metrics.fd) && p.decoderEvals === 5, `${p.schedule} ${p.period}`).toBe(true);
    const direct = evaluateCheckpoint({ checkpoint, samples: 20, sampleSteps: 5, json: true, set: ['sample.sampler=euler', 'sample.steps=5', 'ddt.share_schedule=uniform', 'ddt.share_period=4'] });
    expect(points[3].metrics.fd).toBe(direct.fd);
    // Reusing a stale state changes the samples: the shared draws are not the full one's.
    expect(points[4].metrics.fd).not.toBe(points[0].metrics.fd);
    const json = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
    expect(json).toMatchObject({ steps: 5, samples: 20, step: 2 });
    expect(json.points).toHaveLength(5);
    expect(readFileSync(`${out}.svg`, 'utf8')).toMatch(/statistical DP schedule/);
    expect(() => ddtSharing({ checkpoint, steps: 5, periods: [6], samples: 20, out, quiet: true })).toThrow(/--periods: 6 is not an integer in 1\.\.--steps \(5\)/);
    const other = tinySpec('sit-baseline');
    await runActors({ spec: { ...other, train: { ...other.train, steps: 1, checkpoint_every: 1 } }, out: path.join(dir, 'sit'), quiet: true, samples: false });
    expect(() => ddtSharing({ checkpoint: path.join(dir, 'sit', 'checkpoint.safetensors'), steps: 5, periods: [1], samples: 20, out, quiet: true })).toThrow(/not a DDT checkpoint/);
    expect(existsSync(`${out}.svg`)).toBe(true);
  }, 240_000);

  it('--combine: per schedule, FD\'s mean over seeds with its range; unlike measurements refused', () => {
    const dir = tmpDir('ddt', 'combine');
    mkdirSync(dir, { recursive: true });
    const pt = (schedule: string, period: number, encoderEvals: number, fd: number) => ({ schedule, period, encoderEvals, decoderEvals: 8, seconds: 1, metrics: { fd } });
    const file = (name: string, fds: number[], samples = 64) => {
      const f = path.join(dir, `${name}.json`);
      writeFileSync(f, JSON.stringify({ checkpoint: name, step: 100, steps: 8, samples, points: [pt('uniform', 1, 8, fds[0]), pt('uniform', 2, 4, fds[1]), pt('dp', 2, 4, fds[2]), pt('uniform', 4, 2, fds[3]), pt('dp', 4, 2, fds[4])] }));
      return f;
    };
    const a = file('a', [3, 4, 3.5, 6, 5]), b = file('b', [5, 6, 4.5, 8, 9]);
    const [uniform, dp] = combineSharing([a, b], path.join(dir, 'both'));
    expect(uniform).toMatchObject({ x: [2, 4, 8], y: [7, 5, 4], lo: [6, 4, 3], hi: [8, 6, 5], markers: true });
    expect(dp).toMatchObject({ x: [2, 4, 8], y: [7, 4, 4], lo: [5, 3.5, 3], hi: [9, 4.5, 5] });
    expect(readFileSync(path.join(dir, 'both.svg'), 'utf8')).toMatch(/mean and range over 2 seeds/);
    expect(() => combineSharing([a, file('c', [1, 2, 3, 4, 5], 256)], path.join(dir, 'x'))).toThrow(/only like measurements combine/);
  });
});

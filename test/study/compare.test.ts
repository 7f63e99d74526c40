// The study end to end at toy size: two methods × two seeds on tiny specs, evaluated beside
// training with seed-weight stand-ins the test writes, the budget stopping a run early, finished
// runs reused, and docs/results.md written with the table, plots, grids and the orderings (by
// `diffactor compare` under <out>/docs unless --docs says otherwise, with the machine it ran on).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { CLAIM_FILE, FINISHED_FILE, compare, finalEvalFile, parseBudget } from '../../src/study/compare.ts';
import { evaluateCheckpoint } from '../../src/eval/checkpointEval.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { parseFinalCfg, parseSeeds } from '../../src/cli/compare.ts';
import { progressMarkdown } from '../../src/study/progress.ts';
import { writeReport, commonEvalStep, describeMachine, ordering, NOTES_MARKER } from '../../src/study/report.ts';
import type { RunRecord, Study } from '../../src/study/compare.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

/** The tiny sit-baseline and repa specs written into dir, each named as its method; their paths. */
function writeTinySpecs(dir: string): string[] {
  return ['sit-baseline', 'repa'].map((p) => {
    const f = path.join(dir, `${p}.yaml`);
    writeFileSync(f, stringify({ ...tinySpec(p), name: p }));
    return f;
  });
}

describe('compare', () => {
  it('parses budgets', () => {
    expect(parseBudget('30m')).toBe(1800);
    expect(parseBudget('90s')).toBe(90);
    expect(parseBudget('1.5h')).toBe(5400);
    expect(() => parseBudget('soon')).toThrow(/--budget 'soon'/);
  });

  it('--seeds N,name:M: a default count and counts for named specs; a name that is no spec is refused before training', async () => {
    expect(parseSeeds('2')).toEqual({ seeds: 2, seedsFor: {} });
    expect(parseSeeds('2,repa:3, sra:4')).toEqual({ seeds: 2, seedsFor: { repa: 3, sra: 4 } });
    expect(parseSeeds('repa:3')).toEqual({ seeds: 2, seedsFor: { repa: 3 } });
    expect(() => parseSeeds('2,3')).toThrow(/--seeds '2,3': two default values \(2 and 3\)/);
    expect(() => parseSeeds('2,repa=3')).toThrow(/expected N or N,name:M.*got 'repa=3'/);
    expect(() => parseSeeds('2.5')).toThrow(/--seeds '2.5'.*got '2.5'/);
    expect(parseFinalCfg('2,digit:1, digit-raw:1.5')).toEqual({ cfg: 2, cfgFor: { digit: 1, 'digit-raw': 1.5 } });
    expect(parseFinalCfg('digit:1')).toEqual({ cfg: 1, cfgFor: { digit: 1 } });
    expect(() => parseFinalCfg('2,3')).toThrow(/--final-cfg '2,3': two default values \(2 and 3\)/);
    const dir = mkdtempSync(path.join(tmpdir(), 'seeds-'));
    const f = path.join(dir, 'a.yaml');
    writeFileSync(f, stringify({ ...tinySpec('sit-baseline'), name: 'a' }));
    const o = { specs: [f, f], budgetSeconds: 60, seeds: 2, steps: 1, evalEvery: 0, out: path.join(dir, 'runs'), quiet: true };
    // --status: plans and reports, trains nothing.
    const status = await compare({ ...o, specs: [f, path.join(dir, 'b.yaml')], seedsFor: { a: 3 }, status: true }).catch((e) => e);
    expect(String(status)).toMatch(/spec file .*b\.yaml not found/);
    writeFileSync(path.join(dir, 'b.yaml'), stringify({ ...tinySpec('sit-baseline'), name: 'b' }));
    const planned = await compare({ ...o, specs: [f, path.join(dir, 'b.yaml')], seedsFor: { a: 3 }, status: true, progress: { file: path.join(dir, 'progress.md'), command: 'cmd' } });
    expect(planned.runs).toEqual([]);
    expect(planned.plan).toEqual(['a-seed5', 'a-seed6', 'a-seed7', 'b-seed5', 'b-seed6'].map((name) => ({ name, done: false, resumeAt: null }))); // the tiny spec's seed is 5
    expect(readFileSync(path.join(dir, 'progress.md'), 'utf8')).toMatch(/^0 of 5 runs finished/m);
    expect(existsSync(path.join(dir, 'runs', 'a-seed5'))).toBe(false);
    await expect(compare({ ...o, seedsFor: { repa: 3 } })).rejects.toThrow(/--seeds repa:3: no spec named 'repa' \(the specs are a, a\)/);
    await expect(compare({ ...o, seedsFor: { a: 1 } })).rejects.toThrow(/--seeds a:1: needs at least 2/);
    expect(existsSync(path.join(dir, 'runs', 'a-seed5'))).toBe(false);
  });

  it('trains, evaluates and writes results.md', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-'));
    const { classifier, encoder } = writeTestStandins(dir);
    const evalSection = { samples: 20, steps: 2, reference: 30, probe_train: 30, probe_test: 20, classifier, encoder, sfid_channels: 2 };
    const files = ['sit-baseline', 'repa'].map((p) => {
      // Different samplers, so that equal-cost evaluation (evalNfe) gives them different step counts.
      const s = tinySpec(p, { eval: evalSection, ...(p === 'repa' && { sample: { sampler: 'heun', steps: 2, per_class: 1 } }) });
      const f = path.join(dir, `${p}.yaml`);
      writeFileSync(f, stringify({ ...s, name: p }));
      return f;
    });
    const out = path.join(dir, 'runs');
    const study = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true });
    expect(parse(readFileSync(path.join(out, 'repa-seed5', 'spec.yaml'), 'utf8')).eval.nfe).toBe(3);
    expect(study.runs.map((r) => `${r.method}/${r.seed}/${r.steps}`)).toEqual(['sit-baseline/5/6', 'sit-baseline/6/6', 'repa/5/6', 'repa/6/6']);
    expect(commonEvalStep(study.runs)).toBe(6);
    // A second call reuses the finished runs (same records, no training).
    const again = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true });
    expect(again.runs.map((r) => r.evals)).toEqual(study.runs.map((r) => r.evals));
    // The final evaluation: each run's last checkpoint once more (more samples, its own guidance),
    // stored in the run's directory and read, not remeasured, by the next call.
    const withFinal = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 30, cfg: 2 } });
    const first = withFinal.runs[0];
    expect(first.final).toMatchObject({ samples: 30, cfg: 2, step: 6 });
    const direct = evaluateCheckpoint({ checkpoint: path.join(first.dir, 'checkpoint.safetensors'), samples: 30, quiet: true, set: ['eval.cfg=2'] });
    expect(first.final!.metrics).toEqual({ ...direct });
    expect(first.final!.metrics.fd).not.toBe(first.evals.at(-1)!.metrics.fd); // 30 guided samples, not the 20 unguided ones
    const stamp = statSync(finalEvalFile(first.dir, { samples: 30, cfg: 2 })).mtimeMs;
    const finalAgain = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 30, cfg: 2 } });
    expect(finalAgain.runs.map((r) => r.final)).toEqual(withFinal.runs.map((r) => r.final));
    expect(statSync(finalEvalFile(first.dir, { samples: 30, cfg: 2 })).mtimeMs).toBe(stamp);
    // --archive: each finished run's records (no checkpoints) kept in a folder meant for git; on a
    // machine without the runs (a fresh clone) they are restored and reported without training.
    const archive = path.join(dir, 'archive');
    await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, archive, quiet: true, final: { samples: 30, cfg: 2 } });
    const kept = readdirSync(path.join(archive, 'repa-seed5'));
    expect(kept).toEqual(expect.arrayContaining(['metrics.jsonl', 'inputs.json', 'spec.yaml', FINISHED_FILE, 'final-eval-30-cfg2.json']));
    expect(kept.filter((f) => f.endsWith('.safetensors') || f === 'checkpoints' || f === '.lock')).toEqual([]);
    const elsewhere = path.join(dir, 'fresh-clone-runs');
    const progressFile = path.join(dir, 'docs-progress', 'progress.md');
    const restored = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out: elsewhere, archive, quiet: true, final: { samples: 30, cfg: 2 }, progress: { file: progressFile, command: 'npx diffactor compare --study s.yaml' } });
    // The progress page lists every run as finished with its final evaluation, read from the archive.
    const page = readFileSync(progressFile, 'utf8');
    expect(page).toMatch(/^4 of 4 runs finished; written by `npx diffactor compare --study s\.yaml`/m);
    expect(page).toContain(`| repa-seed5 | finished | 6 | ${(restored.runs[2].wallSeconds / 60).toFixed(1)} | ${restored.runs[2].final!.metrics.fd.toFixed(2)} | ${restored.runs[2].final!.metrics.class_acc.toFixed(3)} | 30, 2 |`);
    expect(restored.runs.map((r) => r.evals)).toEqual(study.runs.map((r) => r.evals));
    expect(restored.runs.map((r) => r.final)).toEqual(withFinal.runs.map((r) => r.final));
    expect(existsSync(path.join(elsewhere, 'repa-seed5', 'checkpoint.safetensors'))).toBe(false); // not retrained
    const finalMd = readFileSync(writeReport(withFinal, { docs: path.join(dir, 'docs-final'), command: 'test' }), 'utf8');
    expect(finalMd).toMatch(/## Final evaluation: 30 samples, cfg 2, each run's last checkpoint/);
    expect(finalMd).toMatch(/\| repa \| 6 \| 2 \| \d+\.\d\d/);
    expect(finalMd).toMatch(/REPA better than the baseline at equal steps: \*\*(holds|inconclusive|does not hold)[^\n]*final FD \(30 samples, cfg 2\)/);
    await expect(compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 0, cfg: 2 } })).rejects.toThrow(/--final-samples 0: expected a positive integer/);
    // A guidance scale per spec (a method that samples unguided beside guided ones): each run measured
    // at its own, the report says which, and a claim across scales names both.
    const mixed = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 30, cfg: 2, cfgFor: { 'sit-baseline': 1 } } });
    expect(mixed.runs.map((r) => `${r.method}:${r.final!.cfg}`)).toEqual(['sit-baseline:1', 'sit-baseline:1', 'repa:2', 'repa:2']);
    expect(mixed.runs[2].final).toEqual(withFinal.runs[2].final); // repa's cfg-2 evaluation read back, not remeasured
    expect(existsSync(finalEvalFile(first.dir, { samples: 30, cfg: 1 }))).toBe(true);
    const mixedMd = readFileSync(writeReport(mixed, { docs: path.join(dir, 'docs-mixed'), command: 'test' }), 'utf8');
    expect(mixedMd).toMatch(/## Final evaluation: 30 samples, cfg per method \(column cfg\)/);
    expect(mixedMd).toMatch(/\| sit-baseline \| 6 \| 1 \| \d+\.\d\d/);
    expect(mixedMd).toMatch(/\| repa \| 6 \| 2 \| \d+\.\d\d/);
    expect(mixedMd).toMatch(/final FD \(30 samples, cfg 2 for repa, 1 for sit-baseline\)/);
    await expect(compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 30, cfg: 2, cfgFor: { digit: 1 } } }))
      .rejects.toThrow(/--final-cfg digit:1: no spec named 'digit' \(the specs are sit-baseline, repa\)/);
    await expect(compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 30, cfg: 2, cfgFor: { repa: 0.5 } } }))
      .rejects.toThrow(/--final-cfg repa:0.5: expected a guidance scale ≥ 1/);
    // ... and so does a study kept without its checkpoints (their records suffice).
    for (const r of study.runs) {
      expect(existsSync(path.join(r.dir, FINISHED_FILE))).toBe(true);
      for (const f of readdirSync(r.dir)) if (f.endsWith('.safetensors') || f === 'checkpoints') rmSync(path.join(r.dir, f), { recursive: true });
    }
    const records = await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true });
    expect(records.runs.map((r) => r.evals)).toEqual(study.runs.map((r) => r.evals));
    // A measured final evaluation survives its checkpoint; a new setting needs the checkpoint back.
    expect((await compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 30, cfg: 2 } })).runs.map((r) => r.final)).toEqual(withFinal.runs.map((r) => r.final));
    await expect(compare({ specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true, final: { samples: 40, cfg: 2 } }))
      .rejects.toThrow(/the final evaluation \(40 samples, cfg 2\) of .*sit-baseline-seed5 needs its checkpoint .*checkpoint\.safetensors, which is gone/);
    // The command writes the report beside the runs by default, never into the working directory's docs/.
    const bin = path.resolve(import.meta.dirname, '../../bin/diffactor.js');
    const cli = spawnSync(process.execPath, [bin, 'compare', '--specs', files.join(','), '--budget', '1h', '--seeds', '2', '--steps', '6', '--eval-every', '3', '--eval-nfe', '3', '--out', 'runs'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stderr).toMatch(/wrote runs\/docs\/results\.md/);
    expect(existsSync(path.join(out, 'docs', 'results.md'))).toBe(true);
    expect(existsSync(path.join(dir, 'docs'))).toBe(false);
    // Other inputs (here: a retrained evaluation encoder, same file name) stop it before any training.
    appendFileSync(encoder, Buffer.from([0]));
    await expect(compare({ specs: files, budgetSeconds: 3600, seeds: 3, steps: 6, evalEvery: 3, evalNfe: 3, out, quiet: true }))
      .rejects.toThrow(/sit-baseline-seed5 holds a finished run made from other inputs \(the eval\.encoder file changed since the run\)/);
    expect(existsSync(path.join(out, 'sit-baseline-seed7'))).toBe(false);
    const docs = path.join(dir, 'docs');
    const file = writeReport(study, { docs, command: 'npx diffactor compare (test)' });
    const md = readFileSync(file, 'utf8');
    expect(md).toMatch(/## Metrics at step 6/);
    // The draws column: each sampler at the most steps within 3 model evaluations per image.
    expect(md).toMatch(/\| sit-baseline \| sit-baseline \| euler 3 \(3 NFE\) \| 6 \|/);
    expect(md).toMatch(/\| repa \| repa \| heun 2 \(3 NFE\) \| 6 \|/);
    expect(md).toMatch(/within 3 model evaluations per image \(equal cost/);
    // Class accuracy is a column, with the classifier's score on real test images as its ceiling.
    expect(md).toMatch(/\| recall \| class_acc \| cknna \|/);
    expect(md).toMatch(/on the real test images with their labels it scores (0|1)\.\d{3} \(the ceiling\)/);
    for (const r of study.runs) for (const e of r.evals) expect(e.metrics.class_acc, `${r.method}/${r.seed} step ${e.step}`).toBeGreaterThanOrEqual(0);
    expect(md).toMatch(/REPA better than the baseline at equal steps: \*\*(holds|inconclusive|does not hold)/);
    expect(md).toContain(`(${describeMachine()}).`);
    expect(md).not.toMatch(/two shared CPU cores/);
    expect(md).toMatch(/REG better than REPA: not measured/);
    // A claim naming neither of the study's specs is listed by its pair only, on one line.
    expect(md).toMatch(/- Not measured here \(neither spec in this study\): .*digit vs digit-raw/);
    expect(md).not.toMatch(/DiGIT: k-means tokens/);
    for (const f of ['fd-vs-steps.svg', 'fd-vs-wall.svg', 'loss.svg', 'repa.png', 'sit-baseline.png']) expect(existsSync(path.join(docs, 'img', 'results', f)), f).toBe(true);
  }, 180_000);

  it('orderings: decided only when every seed of one method beats every seed of the other, with ≥ 2 seeds each', () => {
    const run = (method: string, seed: number, fd: number): RunRecord => ({
      method, protocol: method, seed, dir: '/nonexistent', steps: 10, wallSeconds: 60, losses: [{ step: 10, loss: 1 }],
      evals: [{ step: 10, wall_s: 60, metrics: { fd } }],
    });
    const methods = (a: number[], b: number[]) => new Map([['a', a.map((f, i) => run('a', i, f))], ['b', b.map((f, i) => run('b', i, f))]]);
    expect(ordering(methods([1, 2], [3, 4]), 10, 'a', 'b', 'A beats B')).toBe('- A beats B: **holds** — FD at step 10: a 1.50 ± 0.50 vs b 3.50 ± 0.50.');
    expect(ordering(methods([1, 3.5], [3, 4]), 10, 'a', 'b', 'A beats B')).toMatch(/\*\*inconclusive\*\* \(the seed ranges overlap\)/);
    expect(ordering(methods([3.5, 5], [1, 4]), 10, 'a', 'b', 'A beats B')).toMatch(/\*\*inconclusive\*\* \(the seed ranges overlap\)/);
    expect(ordering(methods([5, 6], [3, 4]), 10, 'a', 'b', 'A beats B')).toMatch(/\*\*does not hold\*\*/);
    // One seed each: an FD gap of 0.21 is seed noise, not a verdict either way.
    expect(ordering(methods([5.21], [5]), 10, 'a', 'b', 'A beats B')).toBe('- A beats B: **inconclusive** (needs ≥ 2 seeds of each; has 1 and 1) — FD at step 10: a 5.21 vs b 5.00.');
    expect(ordering(methods([1], [5, 6]), 10, 'a', 'b', 'A beats B')).toMatch(/\*\*inconclusive\*\* \(needs ≥ 2 seeds of each; has 1 and 2\)/);
    expect(ordering(methods([1], [2]), 10, 'a', 'c', 'A beats C')).toMatch(/not measured \(needs specs named a and c\)/);
  });

  it('rewriting results.md keeps the notes below the marker and tabulates every seed', () => {
    const docs = mkdtempSync(path.join(tmpdir(), 'study-notes-'));
    const run = (method: string, seed: number, fd: number): RunRecord => ({
      method, protocol: method, seed, dir: '/nonexistent', steps: 4, wallSeconds: 30, losses: [{ step: 2, loss: 2 }, { step: 4, loss: 1 }],
      evals: [2, 4].map((step) => ({ step, wall_s: step * 7, metrics: { fd: fd / step } })),
    });
    const study: Study = { options: { specs: [], budgetSeconds: 60, seeds: 2, steps: 4, evalEvery: 2, out: '' }, specs: [], runs: [run('x', 0, 8), run('x', 1, 12), run('y', 0, 40), run('y', 1, 44)] };
    const file = writeReport(study, { docs, command: 'test' });
    expect(readFileSync(file, 'utf8')).toMatch(/\| x \| 5\.00 ± 1\.00 \| 2\.50 ± 0\.50 \|/); // FD by step: mean ± half-range
    expect(readFileSync(file, 'utf8')).toMatch(/\| y \| 1 \| 4 \| 0\.5 \| 11\.00 \|/);
    writeFileSync(file, `${readFileSync(file, 'utf8')}\nWritten by hand.\n`);
    writeReport(study, { docs, command: 'test again' });
    const md = readFileSync(file, 'utf8');
    expect(md).toMatch(/Made by `test again`/);
    expect(md.split(NOTES_MARKER)).toHaveLength(2);
    expect(md.endsWith('\nWritten by hand.\n')).toBe(true);
  });

  it('--baseline names the spec whose FD the steps-to-quality table targets; default the first spec without sit-baseline; an unknown name refused', async () => {
    const run = (method: string, seed: number, fd: number): RunRecord => ({
      method, protocol: method, seed, dir: '/nonexistent', steps: 4, wallSeconds: 30, losses: [{ step: 4, loss: 1 }],
      evals: [2, 4].map((step) => ({ step, wall_s: step * 7, metrics: { fd: fd / step } })),
    });
    const runs = [run('svg', 0, 80), run('svg', 1, 88), run('sit-latent', 0, 40), run('sit-latent', 1, 44)];
    const options = { specs: [], budgetSeconds: 60, seeds: 2, steps: 4, evalEvery: 2, out: '' };
    const report = (baseline?: string) => readFileSync(writeReport({ options: { ...options, baseline }, specs: [], runs }, { docs: mkdtempSync(path.join(tmpdir(), 'study-base-')), command: 'test' }), 'utf8');
    // svg's mean FD at step 4: (20 + 22) / 2; sit-latent's: (10 + 11) / 2.
    expect(report()).toMatch(/Target: svg's mean FD at step 4, 21\.00/);
    expect(report('sit-latent')).toMatch(/Target: sit-latent's mean FD at step 4, 10\.50/);
    const dir = mkdtempSync(path.join(tmpdir(), 'baseline-'));
    const f = path.join(dir, 'a.yaml');
    writeFileSync(f, stringify({ ...tinySpec('sit-baseline'), name: 'a' }));
    await expect(compare({ specs: [f, f], budgetSeconds: 60, seeds: 2, steps: 1, evalEvery: 0, out: path.join(dir, 'runs'), quiet: true, baseline: 'sit-latent' }))
      .rejects.toThrow("compare: --baseline sit-latent: no spec named 'sit-latent' (the specs are a, a)");
    expect(existsSync(path.join(dir, 'runs'))).toBe(false);
  });

  it('a study without sit-baseline decides the "better than the baseline" claims against its declared baseline, and says so', () => {
    const run = (method: string, seed: number, fd: number): RunRecord => ({
      method, protocol: method, seed, dir: '/nonexistent', steps: 4, wallSeconds: 30, losses: [{ step: 4, loss: 1 }],
      evals: [4].map((step) => ({ step, wall_s: 28, metrics: { fd } })),
    });
    const runs = [run('repa', 0, 8), run('repa', 1, 9), run('sit-latent', 0, 10), run('sit-latent', 1, 11), run('epg', 0, 30), run('epg', 1, 31)];
    const options = { specs: [], budgetSeconds: 60, seeds: 2, steps: 4, evalEvery: 4, out: '' };
    const report = (baseline?: string) => readFileSync(writeReport({ options: { ...options, baseline }, specs: [], runs }, { docs: mkdtempSync(path.join(tmpdir(), 'study-claims-')), command: 'test' }), 'utf8');
    expect(report('sit-latent')).toMatch(/REPA better than the baseline at equal steps \(the baseline: sit-latent, this study's\): \*\*holds\*\* — FD at step 4: repa 8\.50 ± 0\.50 vs sit-latent 10\.50 ± 0\.50/);
    // A claim that names sit-latent itself is unchanged; without a declared baseline nothing is substituted.
    expect(report('sit-latent')).toMatch(/EPG \(pixel space[^\n]*: \*\*does not hold\*\* — FD at step 4: epg 30\.50 ± 0\.50 vs sit-latent 10\.50/);
    expect(report()).toMatch(/REPA better than the baseline at equal steps: not measured \(needs specs named repa and sit-baseline\)/);
  });

  it('the progress page: a run stopped midway continues from its step, one not started is to train', () => {
    const md = progressMarkdown([{ name: 'a-seed0', done: true, resumeAt: null }, { name: 'a-seed1', done: false, resumeAt: 300 }, { name: 'b-seed0', done: false, resumeAt: null }],
      new Map([['a-seed0', { method: 'a', protocol: 'a', seed: 0, dir: '', steps: 1500, wallSeconds: 1230, losses: [], evals: [] }]]), 'cmd');
    expect(md).toMatch(/^1 of 3 runs finished/m);
    expect(md).toContain('| a-seed0 | finished | 1500 | 20.5 | – | – | – |');
    expect(md).toContain('| a-seed1 | stopped at step 300: continues from there | – | – | – | – | – |');
    expect(md).toContain('| b-seed0 | to train | – | – | – | – | – |');
  });

  it('stages: a stage-1 run the specs read is trained first when missing, never twice, and listed on the progress page', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-stage-'));
    // EPG: stage 1 pre-trains the encoder, stage 2 (spec b) starts from its checkpoint (epg.init); spec a reads nothing of it.
    const f = path.join(dir, 'a.yaml'), g = path.join(dir, 'b.yaml'), stageSpec = path.join(dir, 'stage1.yaml'), stageOut = path.join(dir, 'runs', 'stage1');
    const ck = path.join(stageOut, 'checkpoint.safetensors');
    const pre = tinySpec('epg', { epg: { stage: 'pretrain', curriculum: [2, 8], curriculum_steps: 3, projector_dim: 16, projector_out: 8, ref_per_class: 1 } });
    writeFileSync(stageSpec, stringify({ ...pre, name: 'stage1', train: { ...pre.train, steps: 3, checkpoint_every: 3 } }));
    writeFileSync(f, stringify({ ...tinySpec('sit-baseline'), name: 'a' }));
    writeFileSync(g, stringify({ ...tinySpec('epg', { epg: { stage: 'diffusion', decoder_depth: 2, finetune_points: 64, init: ck } }), name: 'b' }));
    const progressFile = path.join(dir, 'progress.md');
    const o = { specs: [f, g], budgetSeconds: 60, seeds: 2, steps: 1, evalEvery: 0, out: path.join(dir, 'runs', 'study'), quiet: true, stages: [{ spec: stageSpec, out: stageOut }], progress: { file: progressFile, command: 'cmd' } };
    await compare({ ...o, status: true });
    expect(existsSync(ck)).toBe(false); // --status trains nothing
    expect(readFileSync(progressFile, 'utf8')).toContain('| stage1 | stage, to train (3 steps) | – |');
    // Trained lazily: spec a's runs come first and do not read it, so it is trained only before b's.
    const order: string[] = [];
    await compare({ ...o, onStep: () => { const d = String(existsSync(ck)); if (order.at(-1) !== d) order.push(d); } });
    expect(order).toEqual(['false', 'true']);
    expect(loadCheckpoint(ck).state.step).toBe(3);
    const b0 = JSON.parse(readFileSync(path.join(o.out, 'b-seed5', 'inputs.json'), 'utf8'));
    expect(b0.files['epg.init']).toMatch(/^[0-9a-f]{64}$/); // hashed once trained, not 'missing'
    const page = readFileSync(progressFile, 'utf8');
    expect(page).toContain('| stage1 | stage, finished (3 steps) | 3 |');
    expect(page).toMatch(/^4 of 4 runs finished/m); // stages are not counted among the study's runs
    const stamp = statSync(ck).mtimeMs;
    await compare(o);
    expect(statSync(ck).mtimeMs).toBe(stamp); // never twice
    await expect(compare({ ...o, stages: [{ spec: path.join(dir, 'nope.yaml'), out: stageOut }] })).rejects.toThrow(/stage spec file .*nope\.yaml not found/);
    await expect(compare({ ...o, stages: [{ spec: stageSpec, out: path.join(dir, 'runs', 'elsewhere') }] })).rejects.toThrow(/stage .*stage1\.yaml: no spec of the study reads a file in its out .*elsewhere/);
  });

  it('the budget stops a run early', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-budget-'));
    const f = path.join(dir, 'sit.yaml');
    writeFileSync(f, stringify({ ...tinySpec('sit-baseline'), name: 'sit' }));
    const g = path.join(dir, 'sit2.yaml');
    writeFileSync(g, stringify({ ...tinySpec('sit-baseline'), name: 'sit2' }));
    const study = await compare({ specs: [f, g], budgetSeconds: 0.05, seeds: 2, steps: 500, evalEvery: 1000, out: path.join(dir, 'runs'), quiet: true });
    for (const r of study.runs) expect(r.steps).toBeLessThan(500);
  }, 60_000);

  it('a study stopped mid-run continues from the run\'s checkpoint and ends as an unstopped one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-resume-'));
    const files = ['sit-baseline', 'repa'].map((p) => {
      const f = path.join(dir, `${p}.yaml`);
      writeFileSync(f, stringify({ ...tinySpec(p, { train: { ...tinySpec(p).train, checkpoint_every: 2 } }), name: p }));
      return f;
    });
    const opts = { specs: files, budgetSeconds: 3600, seeds: 2, steps: 6, evalEvery: 1000, quiet: true };
    const whole = await compare({ ...opts, out: path.join(dir, 'whole') });
    const out = path.join(dir, 'stopped');
    const ctl = new AbortController();
    // Stop the third run (repa, first seed) after its fifth step (it writes a checkpoint there).
    let runsSeen = 0;
    await expect(compare({ ...opts, out, signal: ctl.signal, onStep: (l) => { if (l.step === 1) runsSeen++; if (runsSeen === 3 && l.step === 5) ctl.abort(); } }))
      .rejects.toThrow(/interrupted after step 5/);
    expect(existsSync(path.join(out, 'repa-seed5', FINISHED_FILE))).toBe(false);
    expect(existsSync(path.join(out, 'repa-seed6'))).toBe(false);
    const seen: number[] = [];
    const resumed = await compare({ ...opts, out, onStep: (l) => seen.push(l.step) });
    // Only the stopped run's remaining step and the untouched last run trained.
    expect(seen).toEqual([6, 1, 2, 3, 4, 5, 6]);
    expect(resumed.runs.map((r) => r.losses)).toEqual(whole.runs.map((r) => r.losses));
  }, 180_000);

  it('two compare processes (lanes) on one study: each run trained once, by one of them; a dead lane\'s claim taken over; both report every run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-lanes-'));
    const files = writeTinySpecs(dir);
    const out = path.join(dir, 'runs'), progressFile = path.join(dir, 'progress.md');
    const opts = { specs: files, budgetSeconds: 3600, seeds: 2, steps: 4, evalEvery: 1000, out, quiet: true, progress: { file: progressFile, command: 'cmd' }, lanePollMs: 200 };
    // A claim left by a process that is gone (same host): taken over, not waited for.
    mkdirSync(path.join(out, 'repa-seed6'), { recursive: true });
    writeFileSync(path.join(out, 'repa-seed6', CLAIM_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), started: 'then', command: 'gone' }));
    const trainedBy: Record<string, string[]> = {};
    const lane = (name: string) => compare({ ...opts, onStep: (l) => { if (l.step === 1) (trainedBy[name] ??= []).push(String(l.step)); } });
    const [a, b] = await Promise.all([lane('a'), lane('b')]);
    // Four runs, each trained by exactly one lane, and both lanes trained.
    expect((trainedBy.a?.length ?? 0) + (trainedBy.b?.length ?? 0)).toBe(4);
    expect(trainedBy.a?.length ?? 0).toBeGreaterThan(0);
    expect(trainedBy.b?.length ?? 0).toBeGreaterThan(0);
    for (const r of a.runs) {
      const lines = readFileSync(path.join(r.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.step !== undefined && l.loss !== undefined);
      expect(lines.map((l) => l.step), r.dir).toEqual([1, 2, 3, 4]); // one run's steps, not two interleaved
      expect(existsSync(path.join(r.dir, CLAIM_FILE)), `${r.dir} claim released`).toBe(false);
    }
    // Both lanes return every run, in plan order, with the same records.
    expect(a.runs.map((r) => `${r.method}-seed${r.seed}`)).toEqual(['sit-baseline-seed5', 'sit-baseline-seed6', 'repa-seed5', 'repa-seed6']);
    expect(b.runs.map((r) => r.losses)).toEqual(a.runs.map((r) => r.losses));
    expect(readFileSync(progressFile, 'utf8')).toMatch(/^4 of 4 runs finished/m);
    // The same runs trained by one lane alone give the same numbers.
    const alone = await compare({ ...opts, out: path.join(dir, 'alone'), progress: undefined });
    expect(alone.runs.map((r) => r.losses)).toEqual(a.runs.map((r) => r.losses));
  }, 240_000);

  it('--only: trains just the named specs\' runs, returns them alone (partial), and the whole study later reuses them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-only-'));
    const files = writeTinySpecs(dir);
    const out = path.join(dir, 'runs');
    const opts = { specs: files, budgetSeconds: 3600, seeds: 2, steps: 3, evalEvery: 1000, out, quiet: true };
    await expect(compare({ ...opts, only: ['rpea'] })).rejects.toThrow("compare: --only rpea: no spec named 'rpea' (the specs are sit-baseline, repa)");
    const trained: string[] = [];
    const part = await compare({ ...opts, only: ['repa'], onStep: (l) => { if (l.step === 1) trained.push('run'); } });
    expect(part.partial).toBe(true);
    expect(part.runs.map((r) => `${r.method}-seed${r.seed}`)).toEqual(['repa-seed5', 'repa-seed6']); // the whole study's seeds
    expect(trained.length).toBe(2);
    expect(readdirSync(out).sort()).toEqual(['repa-seed5', 'repa-seed6']);
    const seen: string[] = [];
    const whole = await compare({ ...opts, onStep: (l) => { if (l.step === 1) seen.push('run'); } });
    expect(whole.partial).toBeUndefined();
    expect(seen.length).toBe(2); // sit-baseline's two; repa's reused
    expect(whole.runs.slice(2).map((r) => r.losses)).toEqual(part.runs.map((r) => r.losses));
  }, 180_000);

  it('the progress page names a run another compare process is training', () => {
    const md = progressMarkdown([{ name: 'a-seed0', done: false, resumeAt: 500, busy: 4242 }, { name: 'a-seed1', done: false, resumeAt: null, busy: 4243 }], new Map(), 'cmd');
    expect(md).toContain('| a-seed0 | training (step 500 at its last checkpoint) in another compare process, pid 4242 |');
    expect(md).toContain('| a-seed1 | training in another compare process, pid 4243 |');
  });

  it('--set: one override for every spec, name: for one spec, recorded in each run\'s spec.yaml; an unknown name refused before training', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'study-set-'));
    const files = writeTinySpecs(dir);
    const out = path.join(dir, 'runs');
    await expect(compare({ specs: files, budgetSeconds: 60, seeds: 2, steps: 1, evalEvery: 1000, out, quiet: true, sets: ['reap:repa.projector_dim=8'] }))
      .rejects.toThrow("compare: --set reap:repa.projector_dim=8: no spec named 'reap' (the specs are sit-baseline, repa)");
    await expect(compare({ specs: files, budgetSeconds: 60, seeds: 2, steps: 1, evalEvery: 1000, out, quiet: true, sets: ['repa.projector_dim=8'] }))
      .rejects.toThrow(/sit-baseline.*repa/s); // a method's section on a spec without the method
    expect(existsSync(out)).toBe(false);
    await compare({ specs: files, budgetSeconds: 60, seeds: 2, steps: 1, evalEvery: 1000, out, quiet: true, sets: ['train.lr=0.0005', 'repa:repa.projector_dim=8'] });
    const spec = (run: string) => parse(readFileSync(path.join(out, run, 'spec.yaml'), 'utf8'));
    expect([spec('sit-baseline-seed5').train.lr, spec('repa-seed6').train.lr]).toEqual([0.0005, 0.0005]);
    expect(spec('repa-seed5').repa.projector_dim).toBe(8);
    expect(spec('sit-baseline-seed6').repa).toBeUndefined();
  }, 120_000);

  it('refuses fewer than two seeds before anything runs', async () => {
    await expect(compare({ specs: ['nonexistent-a.yaml', 'nonexistent-b.yaml'], budgetSeconds: 60, seeds: 1, evalEvery: 10, out: path.join(tmpdir(), 'never'), quiet: true }))
      .rejects.toThrow('compare: --seeds 1: needs at least 2 (a claim is decided only when every seed of one method beats every seed of the other)');
  });

  it('reads the machine it reports', () => {
    expect(describeMachine([{ model: 'Acme CPU @ 2.0GHz' }, { model: 'Acme CPU @ 2.0GHz' }], 8 * 2 ** 30)).toBe('2 CPU cores (Acme CPU @ 2.0GHz), 8.0 GiB memory, no GPU');
    expect(describeMachine([], 2 ** 30)).toBe('an unknown number of CPU cores, 1.0 GiB memory, no GPU');
    expect(describeMachine()).toContain(`${os.cpus().length} CPU core`);
  });
});

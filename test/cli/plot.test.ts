// `diffactor plot DIR` (issue 19): DIR/metrics.jsonl as one SVG, a panel per field; the training
// curves raw (faint) under a debiased EMA (--smooth), evaluations as points. The SVG is checked as
// XML (every tag closed in order) and its line paths against the data: one vertex per logged step,
// heights in the order of the values. A directory without metrics.jsonl, an empty file, a bad line
// and an unknown --fields are refused naming what is wrong.
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { metricsRows, plotCli, smoothEma } from '../../src/cli/plot.ts';
import { runTraining } from '../../src/run/run.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'plot-cli-'));

/** Every tag closed in the order opened (a well-formed XML document with one root). */
function checkWellFormed(svg: string): void {
  const stack: string[] = [];
  let roots = 0;
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self) { if (!stack.length) roots++; continue; }
    if (close) expect(stack.pop(), `</${name}>`).toBe(name);
    else { if (!stack.length) roots++; stack.push(name); }
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

/** The line paths of one series: for each, the y of every vertex (d="M x,y L x,y ..."). */
function linePaths(svg: string, series: string, first: { step: number; value: number }): number[][] {
  const out: number[][] = [];
  for (const m of svg.matchAll(/<path aria-label="step: ([^;]+); value: ([^;]+); series: ([^"]+)" role="graphics-symbol" aria-roledescription="line mark" d="([^"]+)"/g)) {
    if (m[3] !== series || Number(m[1]) !== first.step || Math.abs(Number(m[2]) - first.value) > 1e-6 * Math.abs(first.value)) continue;
    out.push(m[4].slice(1).split('L').map((p) => Number(p.split(',')[1])));
  }
  return out;
}

/** Heights in the order of the values: a higher value is drawn higher (smaller y). */
function expectDrawnInOrder(ys: number[], values: number[]): void {
  expect(ys).toHaveLength(values.length);
  for (let i = 0; i < values.length; i++) {
    for (let j = 0; j < values.length; j++) {
      if (values[i] > values[j] + 1e-9) expect(ys[i], `vertex ${i} above ${j}`).toBeLessThan(ys[j]);
    }
  }
}

function quietly<T>(f: () => Promise<T>): Promise<T> {
  const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
  return f().finally(() => spy.mockRestore());
}

describe('smoothEma', () => {
  it('is the debiased EMA: s_k = a·s_{k-1} + (1−a)·x_k over 1 − a^k; the first value is x_0; a = 0 is the identity', () => {
    const xs = [4, 2, 8, 1];
    const a = 0.5;
    let s = 0;
    const want = xs.map((x, k) => { s = a * s + (1 - a) * x; return s / (1 - a ** (k + 1)); });
    smoothEma(xs, a).forEach((v, k) => expect(v).toBeCloseTo(want[k], 12));
    expect(smoothEma(xs, 0)).toEqual(xs);
    expect(() => smoothEma(xs, 1)).toThrow(/^--smooth: expected a weight in \[0, 1\), got 1$/);
    expect(() => smoothEma(xs, -0.1)).toThrow(/--smooth/);
  });

  it('keeps a constant curve constant and every value within the range seen so far', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.double({ min: 0, max: 0.99, noNaN: true }), (xs, a) => {
      const s = smoothEma(xs, a);
      let lo = Infinity, hi = -Infinity;
      s.forEach((v, k) => {
        lo = Math.min(lo, xs[k]); hi = Math.max(hi, xs[k]);
        const tol = 1e-9 * Math.max(1, Math.abs(lo), Math.abs(hi));
        expect(v).toBeGreaterThanOrEqual(lo - tol);
        expect(v).toBeLessThanOrEqual(hi + tol);
      });
      const c = smoothEma(xs.map(() => xs[0]), a);
      for (const v of c) expect(v).toBeCloseTo(xs[0], 6);
    }));
  });
});

describe('diffactor plot', () => {
  const losses = [2.0, 1.6, 1.7, 1.2, 1.25, 0.9, 1.0, 0.7];
  const fds = [[4, 30.5], [8, 21.25]] as const;
  const jsonl = [
    ...losses.map((loss, k) => JSON.stringify({ step: k + 1, loss, diff: loss, lr: 1e-3, grad_norm: 0.5, wall_s: k, it_s: 1 })),
    ...fds.map(([step, fd]) => JSON.stringify({ step, eval: true, wall_s: step, fd })),
  ].join('\n') + '\n';

  it('writes a well-formed SVG whose loss line has a vertex per step, drawn in the order of the losses; smoothed on top', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'metrics.jsonl'), jsonl);
    const out = await quietly(() => plotCli(dir, { smooth: 0.6 }));
    expect(out).toBe(path.join(dir, 'metrics.svg'));
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    checkWellFormed(svg);
    for (const panel of ['loss', 'diff', 'lr', 'grad_norm', 'fd']) expect(svg).toContain(`>${panel}</text>`);
    // raw: the logged losses; smoothed: their EMA (both in the loss and the diff panel, same data).
    const raw = linePaths(svg, 'raw', { step: 1, value: losses[0] });
    expect(raw).toHaveLength(2);
    for (const ys of raw) expectDrawnInOrder(ys, losses);
    const sm = smoothEma(losses, 0.6);
    const smoothed = linePaths(svg, 'EMA-smoothed (0.6)', { step: 1, value: sm[0] });
    expect(smoothed).toHaveLength(2);
    for (const ys of smoothed) expectDrawnInOrder(ys, sm);
    // The evaluations: one line through their points, not smoothed.
    const ev = linePaths(svg, 'evaluation', { step: 4, value: 30.5 });
    expect(ev).toHaveLength(1);
    expectDrawnInOrder(ev[0], fds.map(([, v]) => v));
  });

  it('--smooth 0 draws the curves as logged (no faint raw line); --fields picks panels; --out names the file', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'metrics.jsonl'), jsonl);
    const out = path.join(dir, 'only-loss.svg');
    await quietly(() => plotCli(path.join(dir, 'metrics.jsonl'), { smooth: 0, fields: 'loss,fd', out }));
    const svg = readFileSync(out, 'utf8');
    checkWellFormed(svg);
    expect(linePaths(svg, 'raw', { step: 1, value: losses[0] })).toEqual([]);
    const plain = linePaths(svg, 'training', { step: 1, value: losses[0] });
    expect(plain).toHaveLength(1);
    expectDrawnInOrder(plain[0], losses);
    expect(svg).not.toContain('>grad_norm</text>');
    const { panels } = metricsRows(jsonl, 'm', 0, ['loss', 'fd']);
    expect(panels).toEqual(['loss', 'fd']);
  });

  it('plots a real run directory', async () => {
    const out = path.join(tmp(), 'run');
    const base = tinySpec('sit-baseline');
    const r = runTraining({ spec: tinySpec('sit-baseline', { train: { ...base.train, steps: 6, log_every: 1 } }), out, quiet: true, samples: false });
    const svg = readFileSync(await quietly(() => plotCli(out, {})), 'utf8');
    checkWellFormed(svg);
    const ls = r.logs.map((l) => Math.fround(l.loss));
    const raw = linePaths(svg, 'raw', { step: 1, value: ls[0] });
    expect(raw.length).toBeGreaterThan(0);
    expectDrawnInOrder(raw[0], ls);
  }, 60_000);

  it('refuses a directory without metrics.jsonl, an empty one, a bad line and unknown --fields, saying what is wrong', async () => {
    const dir = tmp();
    await expect(plotCli(dir, {})).rejects.toThrow(new RegExp(`^plot: ${path.join(dir, 'metrics.jsonl')} not found \\(pass a run directory holding metrics\\.jsonl, or the file\\)$`));
    const m = path.join(dir, 'metrics.jsonl');
    writeFileSync(m, '');
    await expect(plotCli(dir, {})).rejects.toThrow(/has no metrics lines yet/);
    writeFileSync(m, `${JSON.stringify({ step: 1, loss: 1 })}\n{"step":2,"lo\n${JSON.stringify({ step: 3, loss: 1 })}\n`);
    await expect(plotCli(dir, {})).rejects.toThrow(/metrics\.jsonl: line 2 is not JSON/);
    writeFileSync(m, jsonl);
    await expect(plotCli(dir, { fields: 'loss,accuracy' })).rejects.toThrow(/^--fields: accuracy not in \S+metrics\.jsonl \(it has loss, diff, lr, grad_norm, fd\)$/);
    const sub = path.join(dir, 'empty-run');
    mkdirSync(sub);
    await expect(plotCli(sub, {})).rejects.toThrow(/empty-run\/metrics\.jsonl not found/);
  });
});

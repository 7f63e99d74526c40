// `diffactor plot DIR [--smooth A] [--fields a,b] [--out FILE]`: a run's curves from
// DIR/metrics.jsonl as one SVG, a panel per field sharing the step axis: the training loss and its
// terms (raw, faint, under an EMA-smoothed line) and every evaluation metric the run logged (points
// joined, not smoothed: there are few). Drawn with vega-lite, rendered headless by vega (no canvas).
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../io/atomic.ts';

/** Fields of a step line that are not curves to smooth (they are the clock, the rate or the axis). */
const NOT_CURVES = new Set(['step', 'wall_s', 'it_s', 'eval']);

export interface Row { panel: string; step: number; value: number; series: string }

/**
 * EMA smoothing as TensorBoard draws it, debiased: s_k = a·s_{k-1} + (1 − a)·x_k from s_0 = 0,
 * shown as s_k / (1 − a^k), so the first points are not pulled towards 0. a = 0 returns x.
 */
export function smoothEma(xs: readonly number[], a: number): number[] {
  if (!(a >= 0 && a < 1)) throw new Error(`--smooth: expected a weight in [0, 1), got ${a}`);
  let s = 0, w = 0;
  return xs.map((x) => {
    s = a * s + (1 - a) * x;
    w = a * w + (1 - a);
    return s / w;
  });
}

/** metrics.jsonl as rows for the chart: training fields raw and smoothed, evaluation metrics as logged. */
export function metricsRows(text: string, file: string, smooth: number, fields?: readonly string[]): { rows: Row[]; panels: string[] } {
  const train = new Map<string, { step: number; value: number }[]>();
  const evals = new Map<string, { step: number; value: number }[]>();
  const seen = new Set<string>(); // every curve in the file, for the error naming what --fields could be
  text.split('\n').forEach((l, i) => {
    if (!l.trim()) return;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(l) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${file}: line ${i + 1} is not JSON (${(e as Error).message})`);
    }
    if (typeof r.step !== 'number') return;
    const into = r.eval === true ? evals : train;
    for (const [k, v] of Object.entries(r)) {
      if (NOT_CURVES.has(k) || typeof v !== 'number' || !Number.isFinite(v)) continue;
      const name = r.eval === true && train.has(k) ? `${k} (eval)` : k;
      seen.add(name);
      if (fields && !fields.includes(k)) continue;
      (into.get(name) ?? into.set(name, []).get(name)!).push({ step: r.step, value: v });
    }
  });
  if (fields) {
    const missing = fields.filter((f) => !seen.has(f));
    if (missing.length) throw new Error(`--fields: ${missing.join(', ')} not in ${file} (it has ${[...seen].join(', ') || 'no curves'})`);
  }
  const rows: Row[] = [];
  const label = smooth > 0 ? `EMA-smoothed (${smooth})` : 'training';
  for (const [panel, pts] of train) {
    if (smooth > 0) for (const p of pts) rows.push({ panel, step: p.step, value: p.value, series: 'raw' });
    smoothEma(pts.map((p) => p.value), smooth).forEach((v, k) => rows.push({ panel, step: pts[k].step, value: v, series: label }));
  }
  for (const [panel, pts] of evals) for (const p of pts) rows.push({ panel, step: p.step, value: p.value, series: 'evaluation' });
  // loss first, then its terms, the learning rate and gradient norm, then the evaluations.
  const order = (k: string) => (k === 'loss' ? 0 : k === 'lr' || k === 'grad_norm' ? 2 : evals.has(k) ? 3 : 1);
  const panels = [...train.keys(), ...evals.keys()].sort((a, b) => order(a) - order(b));
  return { rows, panels };
}

/** The vega-lite chart: a row per panel, each with its own y scale, step on x. */
export function chartSpec(rows: Row[], panels: string[], title: string): TopLevelSpec {
  const x = { field: 'step', type: 'quantitative' as const, title: 'step' };
  const y = { field: 'value', type: 'quantitative' as const, title: null, scale: { zero: false } };
  const color = { field: 'series', type: 'nominal' as const, title: null, scale: { domain: ['raw', ...new Set(rows.map((r) => r.series).filter((s) => s !== 'raw'))] } };
  const only = (s: string) => [{ filter: s }];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: rows },
    facet: { row: { field: 'panel', type: 'nominal', title: null, sort: panels, header: { labelAngle: 0, labelAlign: 'left', labelFontWeight: 'bold' } } },
    spec: {
      width: 560,
      height: 140,
      layer: [
        { transform: only("datum.series === 'raw'"), mark: { type: 'line', opacity: 0.25, strokeWidth: 1 }, encoding: { x, y, color } },
        { transform: only("datum.series !== 'raw' && datum.series !== 'evaluation'"), mark: { type: 'line', strokeWidth: 1.5 }, encoding: { x, y, color } },
        { transform: only("datum.series === 'evaluation'"), mark: { type: 'line', point: true }, encoding: { x, y, color } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
    config: { font: 'sans-serif', legend: { orient: 'top' } },
  };
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function plotCli(dir: string, o: { smooth?: number; out?: string; fields?: string }): Promise<string> {
  const file = existsSync(dir) && statSync(dir).isDirectory() ? path.join(dir, 'metrics.jsonl') : dir;
  if (!existsSync(file)) throw new Error(`plot: ${file} not found (pass a run directory holding metrics.jsonl, or the file)`);
  const smooth = o.smooth ?? 0.9;
  const fields = o.fields ? o.fields.split(',').map((f) => f.trim()).filter(Boolean) : undefined;
  const { rows, panels } = metricsRows(readFileSync(file, 'utf8'), file, smooth, fields);
  if (!rows.length) throw new Error(`plot: ${file} has no metrics lines yet`);
  const out = o.out ?? path.join(path.dirname(file), 'metrics.svg');
  const steps = rows.map((r) => r.step);
  const svg = await renderSvg(chartSpec(rows, panels, `${path.basename(path.dirname(path.resolve(file)))}: steps ${Math.min(...steps)}–${Math.max(...steps)}`));
  writeFileAtomic(out, svg);
  console.error(`wrote ${out}: ${panels.join(', ')}${smooth > 0 ? ` (training curves EMA-smoothed with ${smooth}, raw faint behind)` : ''}`);
  return out;
}

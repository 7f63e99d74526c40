// Plot the loss curve of one or more runs (metrics.jsonl) as SVG, smoothed with an EMA.
//   npx tsx scripts/plot-metrics.ts OUT.svg runs/a [runs/b ...]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeLinePlot, type Series } from '../src/io/svgPlot.ts';

const [out, ...runs] = process.argv.slice(2);
if (!out || runs.length === 0) throw new Error('usage: plot-metrics.ts OUT.svg RUN_DIR [RUN_DIR ...]');
const series: Series[] = runs.map((dir) => {
  const rows = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
  let s = rows[0].loss;
  return { name: path.basename(dir), x: rows.map((r) => r.step), y: rows.map((r) => (s = 0.9 * s + 0.1 * r.loss)) };
});
writeLinePlot(out, series, { title: 'training loss (EMA-smoothed)', xLabel: 'step', yLabel: 'loss', logY: true });

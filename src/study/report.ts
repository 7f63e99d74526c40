// results.md for a study: per method (mean ± half-range over seeds) the metrics at the last
// evaluation step every run reached, the steps and wall time used, SVG plots (FD versus steps and
// versus wall time, training loss), each method's sample grid, and the papers' orderings checked
// against the measured FD — decided only when the seed ranges do not overlap; with a final evaluation
// (compare --final-samples), its table, and the claims decided on its FD instead. Text a
// person wrote below the NOTES marker of an existing results.md is kept when the report is rewritten.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { writeLinePlot, type Series } from '../io/svgPlot.ts';
import type { RunRecord, Study } from './compare.ts';
import type { RunSpec } from '../spec/schema.ts';
import { evalSampleSettings } from '../eval/evaluate.ts';
import { modelCallsPerSample } from '../build/draw.ts';
import { ownDrawLabel } from '../build/parts.ts';
import { CLAIMS, DEFAULT_METHOD } from '../methods/registry.ts';
import { speedupMarkdown, stepsToQuality } from './speedup.ts';

/** How a method's evaluation draws were made: sampler, steps and model evaluations per image. */
export function evalDrawLabel(spec: RunSpec, evalNfe?: number): string {
  const own = ownDrawLabel(spec);
  if (own) return own;
  const d = evalSampleSettings(evalNfe ? { ...spec, eval: { ...spec.eval, nfe: evalNfe } } : spec);
  return `${d.sampler} ${d.steps} (${modelCallsPerSample(d.sampler, d.steps)} NFE)`;
}

const METRICS = ['fd', 'sfid', 'is', 'precision', 'recall', 'class_acc', 'cknna', 'probe'] as const;
const LOWER_BETTER = new Set(['fd', 'sfid']);
export const NOTES_MARKER = '<!-- notes: everything below this line is kept when `diffactor compare` rewrites this file -->';

interface Spread { mean: number; lo: number; hi: number; n: number }

function spread(v: number[]): Spread {
  const ok = v.filter(Number.isFinite);
  if (!ok.length) return { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  return { mean: ok.reduce((a, b) => a + b, 0) / ok.length, lo: Math.min(...ok), hi: Math.max(...ok), n: ok.length };
}

const fmt = (s: Spread, digits = 3) => (s.n === 0 ? '–' : s.n === 1 || s.hi === s.lo ? s.mean.toFixed(digits) : `${s.mean.toFixed(digits)} ± ${((s.hi - s.lo) / 2).toFixed(digits)}`);

/** The evaluation steps that every run of the study reached, ascending. */
export function commonEvalSteps(runs: RunRecord[]): number[] {
  const sets = runs.map((r) => new Set(r.evals.map((e) => e.step)));
  return [...(sets[0] ?? [])].filter((s) => sets.every((x) => x.has(s))).sort((a, b) => a - b);
}

/** The last evaluation step that every run of the study reached. */
export const commonEvalStep = (runs: RunRecord[]): number | null => commonEvalSteps(runs).at(-1) ?? null;

function byMethod(runs: RunRecord[]): Map<string, RunRecord[]> {
  const m = new Map<string, RunRecord[]>();
  for (const r of runs) m.set(r.method, [...(m.get(r.method) ?? []), r]);
  return m;
}

/** The metric of each of a method's runs at `step`. */
const at = (rs: RunRecord[], step: number, k: string) => rs.map((r) => r.evals.find((e) => e.step === step)?.metrics[k] ?? NaN);

/** Seeds each method needs before its FD range can decide a claim either way. */
export const MIN_SEEDS = 2;

/**
 * "A better than B on FD at step s": holds when A's worst seed beats B's best, does not hold when
 * B's worst beats A's best, each with ≥ MIN_SEEDS seeds; anything else is inconclusive (a gap
 * between single seeds, or between overlapping ranges, is within seed noise).
 */
export function ordering(methods: Map<string, RunRecord[]>, step: number, a: string, b: string, claim: string, useFinal = false): string {
  const ra = methods.get(a), rb = methods.get(b);
  if (!ra || !rb) return `- ${claim}: not measured (needs specs named ${a} and ${b}).`;
  const fdOf = (rs: RunRecord[]) => (useFinal ? rs.map((r) => r.final?.metrics.fd ?? NaN) : at(rs, step, 'fd'));
  const fa = spread(fdOf(ra)), fb = spread(fdOf(rb));
  const verdict = Math.min(fa.n, fb.n) < MIN_SEEDS ? `**inconclusive** (needs ≥ ${MIN_SEEDS} seeds of each; has ${fa.n} and ${fb.n})`
    : fa.hi < fb.lo ? '**holds**'
    : fb.hi < fa.lo ? '**does not hold**'
    : '**inconclusive** (the seed ranges overlap)';
  const fa0 = useFinal ? ra[0].final : undefined, fb0 = useFinal ? rb[0].final : undefined;
  const where = fa0 && fb0 ? `final FD (${fa0.samples} samples, ${fa0.cfg === fb0.cfg ? `cfg ${fa0.cfg}` : `cfg ${fa0.cfg} for ${a}, ${fb0.cfg} for ${b}`})` : `FD at step ${step}`;
  return `- ${claim}: ${verdict} — ${where}: ${a} ${fmt(fa, 2)} vs ${b} ${fmt(fb, 2)}.`;
}

/** The machine a report was made on, read from it (the study runs on the CPU only: no GPU is used). */
export function describeMachine(cpus: Pick<os.CpuInfo, 'model'>[] = os.cpus(), memBytes = os.totalmem()): string {
  const models = [...new Set(cpus.map((c) => c.model.trim()).filter(Boolean))];
  const cores = cpus.length ? `${cpus.length} CPU core${cpus.length === 1 ? '' : 's'}${models.length ? ` (${models.join(', ')})` : ''}` : 'an unknown number of CPU cores';
  return `${cores}, ${(memBytes / 2 ** 30).toFixed(1)} GiB memory, no GPU`;
}

export function writeReport(study: Study, o: { docs: string; command: string; machine?: string }): string {
  const imgDir = path.join(o.docs, 'img', 'results');
  mkdirSync(imgDir, { recursive: true });
  const methods = byMethod(study.runs);
  const step = commonEvalStep(study.runs);
  const ev = study.specs[0]?.eval;
  const lines: string[] = [];
  lines.push('# Results: the reproduction study', '');
  lines.push(`Made by \`${o.command}\` on ${new Date().toISOString().slice(0, 10)} (${o.machine ?? describeMachine()}).`);
  const extra = Object.entries(study.options.seedsFor ?? {});
  const seeds = `${study.options.seeds} seed${study.options.seeds === 1 ? '' : 's'}${extra.length ? ` (${extra.map(([m, n]) => `${m} ${n}`).join(', ')})` : ''}`;
  lines.push(`Every run: ${study.options.steps} steps or ${(study.options.budgetSeconds / 60).toFixed(1)} min of training wall time, whichever came first; ${seeds} per method; the Evaluator measured the EMA teacher every ${study.options.evalEvery} steps beside training (FD, sFID, IS, precision/recall through the evaluation classifier; CKNNA and linear probe of the hidden state against the stand-in encoder — src/eval, docs/models/).`);
  const nfe = study.options.evalNfe ?? ev?.nfe;
  const cost = nfe ? `each method's sampler at the most steps within ${nfe} model evaluations per image (equal cost; column "draws")` : `${ev?.steps} sampler steps (column "draws": the model evaluations per image differ between samplers)`;
  if (ev) lines.push(`Each evaluation: ${study.options.evalSamples ?? ev.samples} generated images (${cost}, cfg ${ev.cfg}) against ${ev.reference} real test images; CKNNA (k = ${ev.k}) and the probe (${ev.probe_train} train / ${ev.probe_test} test images) at t = ${ev.t}.`);
  lines.push('');
  lines.push(`## Metrics at step ${step ?? '–'} (mean ± half-range over seeds)`, '');
  lines.push(`| method | protocol | draws | steps reached | train min | ${METRICS.join(' | ')} |`);
  lines.push(`| --- | --- | --- | --- | --- | ${METRICS.map(() => '---').join(' | ')} |`);
  const specOf = new Map(study.specs.map((sp) => [sp.name, sp]));
  for (const [m, rs] of methods) {
    const sp = specOf.get(m);
    const draws = sp ? evalDrawLabel(sp, study.options.evalNfe) : '–';
    const cells = METRICS.map((k) => (step === null ? '–' : fmt(spread(at(rs, step, k)), k === 'fd' || k === 'sfid' ? 2 : 3)));
    lines.push(`| ${m} | ${rs[0].protocol} | ${draws} | ${fmt(spread(rs.map((r) => r.steps)), 0)} | ${fmt(spread(rs.map((r) => r.wallSeconds / 60)), 1)} | ${cells.join(' | ')} |`);
  }
  lines.push('', `Lower is better for ${[...LOWER_BETTER].join(' and ')}; higher for the rest.`);
  const ceiling = study.runs.flatMap((r) => r.evals.map((e) => e.metrics.class_acc_real)).find(Number.isFinite);
  if (ceiling !== undefined) lines.push(`class_acc: the evaluation classifier's top-1 agreement with the class each sample was drawn for; on the real test images with their labels it scores ${ceiling.toFixed(3)} (the ceiling).`);
  lines.push('');
  // The final evaluation (compare --final-samples): more samples, its own guidance; the claims read it.
  const final = study.runs.length > 0 && study.runs.every((r) => r.final) ? study.runs[0].final! : null;
  if (final) {
    // One guidance scale for all, or per method (compare --final-cfg 2,digit:1): then a column says which.
    const cfgs = new Set(study.runs.map((r) => r.final!.cfg));
    const scale = cfgs.size === 1 ? `cfg ${final.cfg}` : 'cfg per method (column cfg)';
    lines.push(`## Final evaluation: ${final.samples} samples, ${scale}, each run's last checkpoint (mean ± half-range over seeds)`, '');
    lines.push(`The same metrics from ${final.samples} generated images per run (the draws above, at ${cfgs.size === 1 ? `guidance scale ${final.cfg}` : 'each method\'s guidance scale'}); the claims below are decided on this FD.`, '');
    lines.push(`| method | step | cfg | ${METRICS.join(' | ')} |`, `| --- | --- | --- | ${METRICS.map(() => '---').join(' | ')} |`);
    for (const [m, rs] of methods) lines.push(`| ${m} | ${fmt(spread(rs.map((r) => r.final!.step)), 0)} | ${[...new Set(rs.map((r) => r.final!.cfg))].join(', ')} | ${METRICS.map((k) => fmt(spread(rs.map((r) => r.final!.metrics[k] ?? NaN)), k === 'fd' || k === 'sfid' ? 2 : 3)).join(' | ')} |`);
    lines.push('', `| method | seed | ${METRICS.join(' | ')} |`, `| --- | --- | ${METRICS.map(() => '---').join(' | ')} |`);
    for (const r of study.runs) lines.push(`| ${r.method} | ${r.seed} | ${METRICS.map((k) => (Number.isFinite(r.final!.metrics[k]) ? r.final!.metrics[k].toFixed(k === 'fd' || k === 'sfid' ? 2 : 3) : '–')).join(' | ')} |`);
    lines.push('');
  }
  // FD at every evaluation step all runs reached, then every seed on its own.
  const steps = commonEvalSteps(study.runs);
  if (steps.length) {
    lines.push('### FD at each evaluation step', '', `| method | ${steps.map((s) => `step ${s}`).join(' | ')} |`, `| --- | ${steps.map(() => '---').join(' | ')} |`);
    for (const [m, rs] of methods) lines.push(`| ${m} | ${steps.map((s) => fmt(spread(at(rs, s, 'fd')), 2)).join(' | ')} |`);
    lines.push('');
  }
  // The papers' speed-ups at this scale: against the spec named by --baseline, else the SiT baseline
  // when the study has it, else its first spec.
  const baseline = study.options.baseline ?? (methods.has(DEFAULT_METHOD) ? DEFAULT_METHOD : [...methods.keys()][0]);
  const speed = step === null || baseline === undefined ? null : stepsToQuality(methods, baseline, step);
  if (speed) lines.push(...speedupMarkdown(speed, study.options.evalEvery));
  if (step !== null) {
    lines.push(`### Every seed at step ${step}`, '', `| method | seed | steps reached | train min | ${METRICS.join(' | ')} |`, `| --- | --- | --- | --- | ${METRICS.map(() => '---').join(' | ')} |`);
    for (const r of study.runs) {
      const e = r.evals.find((x) => x.step === step);
      lines.push(`| ${r.method} | ${r.seed} | ${r.steps} | ${(r.wallSeconds / 60).toFixed(1)} | ${METRICS.map((k) => (e && Number.isFinite(e.metrics[k]) ? e.metrics[k].toFixed(k === 'fd' || k === 'sfid' ? 2 : 3) : '–')).join(' | ')} |`);
    }
    lines.push('');
  }
  // Plots: mean over seeds per method.
  const meanCurve = (rs: RunRecord[], x: (e: RunRecord['evals'][number]) => number, k: string) => {
    const steps = [...new Set(rs.flatMap((r) => r.evals.map((e) => e.step)))].sort((a, b) => a - b);
    const pts = steps.map((s) => {
      const es = rs.map((r) => r.evals.find((e) => e.step === s)).filter((e): e is NonNullable<typeof e> => !!e);
      const v = es.map((e) => e.metrics[k]);
      return { x: es.reduce((a, e) => a + x(e), 0) / es.length, y: v.reduce((a, b) => a + b, 0) / v.length, lo: Math.min(...v), hi: Math.max(...v) };
    }).filter((p) => Number.isFinite(p.y));
    return { x: pts.map((p) => p.x), y: pts.map((p) => p.y), lo: pts.map((p) => p.lo), hi: pts.map((p) => p.hi) };
  };
  const fdSteps: Series[] = [...methods].map(([m, rs]) => ({ name: m, ...meanCurve(rs, (e) => e.step, 'fd') }));
  const fdWall: Series[] = [...methods].map(([m, rs]) => ({ name: m, ...meanCurve(rs, (e) => e.wall_s / 60, 'fd') }));
  const loss: Series[] = [...methods].map(([m, rs]) => {
    const r = rs[0];
    const w = Math.max(1, Math.floor(r.losses.length / 50));
    const xs: number[] = [], ys: number[] = [];
    for (let i = 0; i + w <= r.losses.length; i += w) {
      xs.push(r.losses[i + w - 1].step);
      ys.push(r.losses.slice(i, i + w).reduce((a, l) => a + l.loss, 0) / w);
    }
    return { name: m, x: xs, y: ys };
  });
  writeLinePlot(path.join(imgDir, 'fd-vs-steps.svg'), fdSteps, { title: 'FD vs steps (mean over seeds; band: seed range)', xLabel: 'step', yLabel: 'FD' });
  writeLinePlot(path.join(imgDir, 'fd-vs-wall.svg'), fdWall, { title: 'FD vs training wall time (mean; band: seed range)', xLabel: 'minutes', yLabel: 'FD' });
  writeLinePlot(path.join(imgDir, 'loss.svg'), loss, { title: 'training loss (first seed, smoothed)', xLabel: 'step', yLabel: 'loss', logY: true });
  lines.push('## Plots', '', '![FD versus steps](img/results/fd-vs-steps.svg)', '', '![FD versus wall time](img/results/fd-vs-wall.svg)', '', '![training loss](img/results/loss.svg)', '');
  lines.push('## Samples (EMA teacher, first seed, one row per class)', '');
  for (const [m, rs] of methods) {
    const src = path.join(rs[0].dir, 'samples.png');
    if (!existsSync(src)) continue;
    copyFileSync(src, path.join(imgDir, `${m}.png`));
    lines.push(`**${m}**`, '', `![${m} samples](img/results/${m}.png)`, '');
  }
  lines.push('## The papers\' orderings at this scale', '');
  if (step === null) lines.push('No evaluation step was reached by every run; nothing can be compared.');
  else {
    // A claim naming none of this study's specs is listed by its pair only: a claim study of two
    // specs would otherwise bury its one verdict under every other paper's "not measured".
    // "Better than the baseline" claims name sit-baseline; a study that declares another baseline
    // (--baseline sit-latent: the same SiT in the VAE's latent space, as every method of that study)
    // and has no sit-baseline decides them against its own, and says so.
    const claims = CLAIMS.map((c) => (c.than === DEFAULT_METHOD && !methods.has(DEFAULT_METHOD) && study.options.baseline && methods.has(study.options.baseline)
      ? { ...c, than: study.options.baseline, claim: `${c.claim} (the baseline: ${study.options.baseline}, this study's)` } : c));
    const elsewhere = claims.filter((c) => !methods.has(c.better) && !methods.has(c.than));
    for (const c of claims) if (!elsewhere.includes(c)) lines.push(ordering(methods, step, c.better, c.than, c.claim, !!final));
    if (elsewhere.length) lines.push(`- Not measured here (neither spec in this study): ${elsewhere.map((c) => `${c.better} vs ${c.than}`).join('; ')}.`);
  }
  lines.push('', `Claims are checked on FD only; "holds" needs every seed of the first method to beat every seed of the second, "does not hold" the reverse, each with ≥ ${MIN_SEEDS} seeds; anything else is "inconclusive".`, '');
  const file = path.join(o.docs, 'results.md');
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = old.includes(NOTES_MARKER) ? old.slice(old.indexOf(NOTES_MARKER) + NOTES_MARKER.length) : '\n';
  lines.push(NOTES_MARKER);
  writeFileAtomic(file, `${lines.join('\n')}${kept}`);
  return file;
}

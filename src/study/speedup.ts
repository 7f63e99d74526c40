// Steps-to-quality (issue 15): the papers' headline claims are speed-ups ("REPA reaches the
// baseline's FID in 17.5× fewer steps"), so a study reports, per method and seed, the first step and
// the training wall time at which its FD reaches the baseline's final FD (mean over the baseline's
// seeds), interpolated linearly between evaluations, and the speed-up that implies. A seed that never
// gets there within the run makes the method's factor a bound ("< 1×" is a result, not a gap).
import type { RunRecord } from './compare.ts';

export interface Crossing {
  step: number;
  wall_s: number;
  /** The first evaluation already met the target: the crossing is at or before this step. */
  atFirst: boolean;
}

type Eval = RunRecord['evals'][number];

/**
 * Where an FD curve first reaches `target` (FD ≤ target), interpolating step and wall time linearly
 * between the evaluation above the target and the one at or below it; null when no evaluation gets
 * there. Evaluations without a finite FD are skipped.
 */
export function firstCrossing(evals: readonly Eval[], target: number): Crossing | null {
  const pts = evals.filter((e) => Number.isFinite(e.metrics.fd)).slice().sort((a, b) => a.step - b.step);
  for (let i = 0; i < pts.length; i++) {
    const b = pts[i], fb = b.metrics.fd;
    if (fb > target) continue;
    if (i === 0) return { step: b.step, wall_s: b.wall_s, atFirst: true };
    const a = pts[i - 1], fa = a.metrics.fd;
    // fa > target ≥ fb, so the fraction lies in (0, 1].
    const f = (fa - target) / (fa - fb);
    return { step: a.step + f * (b.step - a.step), wall_s: a.wall_s + f * (b.wall_s - a.wall_s), atFirst: false };
  }
  return null;
}

export interface MethodSpeedup {
  method: string;
  seeds: number;
  /** One entry per seed: where it reached the target, or null. */
  crossings: (Crossing | null)[];
}

export interface SpeedupTable {
  baseline: string;
  /** The baseline's FD at its last common evaluation step (mean over its seeds): the target. */
  target: number;
  /** That step and the baseline's mean wall time to it: the numerators of the speed-ups. */
  step: number;
  wall_s: number;
  rows: MethodSpeedup[];
}

/**
 * The steps-to-quality table of a study: target = the baseline's mean FD at `step` (the last
 * evaluation every run reached), and each method's crossings of it. Null when the baseline is not in
 * the study or has no FD at that step.
 */
export function stepsToQuality(methods: Map<string, RunRecord[]>, baseline: string, step: number): SpeedupTable | null {
  const base = methods.get(baseline);
  if (!base) return null;
  const finals = base.map((r) => r.evals.find((e) => e.step === step)).filter((e): e is Eval => !!e && Number.isFinite(e.metrics.fd));
  if (!finals.length) return null;
  const target = finals.reduce((s, e) => s + e.metrics.fd, 0) / finals.length;
  const wall = finals.reduce((s, e) => s + e.wall_s, 0) / finals.length;
  const rows = [...methods].map(([method, rs]) => ({
    method,
    seeds: rs.length,
    crossings: rs.map((r) => firstCrossing(r.evals.filter((e) => e.step <= step), target)),
  }));
  return { baseline, target, step, wall_s: wall, rows };
}

const range = (v: number[], digits: number) => {
  const lo = Math.min(...v), hi = Math.max(...v), mean = v.reduce((a, b) => a + b, 0) / v.length;
  return v.length === 1 || lo === hi ? mean.toFixed(digits) : `${mean.toFixed(digits)} (${lo.toFixed(digits)}–${hi.toFixed(digits)})`;
};

/** The speed-up cell: the mean factor over seeds (their range), a bound when a seed fell short. */
function factorCell(num: number, dens: (number | null)[], firsts: boolean[]): string {
  const got = dens.filter((d): d is number => d !== null && d > 0);
  if (!got.length) return '< 1× (never reached)';
  const f = got.map((d) => num / d);
  const missing = dens.length - got.length;
  const core = range(f, 2);
  // A seed that never got there would cross after the last step: its own factor is below 1×.
  if (missing) return `${core}× for ${got.length} seed${got.length === 1 ? '' : 's'}; < 1× for ${missing} (never reached)`;
  return firsts.some(Boolean) ? `≥ ${core}×` : `${core}×`;
}

/** The table as markdown lines for results.md. */
export function speedupMarkdown(t: SpeedupTable, evalEvery: number): string[] {
  const lines = [
    `### Steps to the baseline's final FD`,
    '',
    `Target: ${t.baseline}'s mean FD at step ${t.step}, ${t.target.toFixed(2)} (reached there in ${(t.wall_s / 60).toFixed(1)} min of wall time on average). ` +
      `Each seed's first step with FD ≤ the target, interpolated linearly between evaluations (every ${evalEvery} steps); wall time likewise; ` +
      `speed-up = ${t.step} / that step (and the baseline's wall time / that time), mean over seeds (range). ` +
      `"≥" marks a seed already at the target at its first evaluation (the crossing is earlier than measured); a seed that never gets there within ${t.step} steps has a factor below 1×. ` +
      'Wall-time factors compare like with like only when the runs had the machine alike (column "train min" above).',
    '',
    '| method | seeds reaching | step (range) | wall min (range) | speed-up in steps | speed-up in wall time |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of t.rows) {
    const got = r.crossings.filter((c): c is Crossing => c !== null);
    const firsts = r.crossings.map((c) => !!c?.atFirst);
    const steps = got.length ? range(got.map((c) => c.step), 0) : '–';
    const walls = got.length ? range(got.map((c) => c.wall_s / 60), 1) : '–';
    lines.push(`| ${r.method} | ${got.length} of ${r.seeds} | ${steps} | ${walls} | ${factorCell(t.step, r.crossings.map((c) => c?.step ?? null), firsts)} | ${factorCell(t.wall_s, r.crossings.map((c) => c?.wall_s ?? null), firsts)} |`);
  }
  lines.push('');
  return lines;
}

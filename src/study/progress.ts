// A study's progress page: every planned run with where it stands, rewritten when the study is
// planned and after each run finishes. A study that spans sessions is committed part-done; this
// page (beside the archived runs) is its record until the report is written at the end.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { RunRecord } from './compare.ts';

export interface PlannedRun {
  name: string;
  done: boolean;
  resumeAt: number | null;
  /** A stage the study's specs read (CompareOptions.stages): its spec's length and its checkpoint's step. */
  stage?: { steps: number; at: number | null };
  /** The pid of another compare process (a second lane) training it now. */
  busy?: number;
}

const num = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** The progress page's markdown: one row per planned run, in training order. */
export function progressMarkdown(plan: PlannedRun[], finished: Map<string, RunRecord>, command: string): string {
  const runs = plan.filter((p) => !p.stage);
  const done = runs.filter((p) => finished.has(p.name)).length;
  const lines = [
    '# Study progress',
    '',
    `${done} of ${runs.length} runs finished; written by \`${command}\` at ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, which also continues the study.`,
    '',
    '| run | status | steps | train min | final FD | final class accuracy | final samples, cfg |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of plan) {
    if (p.stage) {
      const { steps, at } = p.stage;
      const status = at !== null && at >= steps ? `stage, finished (${steps} steps)` : at !== null ? `stage, stopped at step ${at} of ${steps}: continues from there` : `stage, to train (${steps} steps)`;
      lines.push(`| ${p.name} | ${status} | ${at ?? '–'} | – | – | – | – |`);
      continue;
    }
    const r = finished.get(p.name);
    const status = r ? 'finished' : p.busy !== undefined ? `training${p.resumeAt !== null ? ` (step ${p.resumeAt} at its last checkpoint)` : ''} in another compare process, pid ${p.busy}` : p.resumeAt !== null ? `stopped at step ${p.resumeAt}: continues from there` : 'to train';
    lines.push(`| ${p.name} | ${status} | ${r ? r.steps : '–'} | ${r ? (r.wallSeconds / 60).toFixed(1) : '–'} | ${num(r?.final?.metrics.fd, 2)} | ${num(r?.final?.metrics.class_acc, 3)} | ${r?.final ? `${r.final.samples}, ${r.final.cfg}` : '–'} |`);
  }
  return `${lines.join('\n')}\n`;
}

export function writeProgress(file: string, plan: PlannedRun[], finished: Map<string, RunRecord>, command: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, progressMarkdown(plan, finished, command));
}

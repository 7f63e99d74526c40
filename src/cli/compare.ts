// `diffactor compare --specs a.yaml,b.yaml --budget 30m`: train every spec (≥ 2 seeds) for the same
// budget and step count on actors, evaluate beside training, write <out>/docs/results.md (or
// --docs DIR: the repository's docs/results.md is rewritten only when --docs docs asks for it).
import path from 'node:path';
import { compare, parseBudget, type CompareOptions } from '../study/compare.ts';
import { loadStudyFile } from '../study/studyFile.ts';
import { progressMarkdown } from '../study/progress.ts';
import { writeReport } from '../study/report.ts';
import { stopOnSignals } from './stopOnSignals.ts';
import { RunInterrupted } from '../run/runDir.ts';

export interface CompareCliOptions {
  study?: string; status?: boolean; specs?: string; budget?: string; seeds?: string; steps?: number; evalEvery?: number; evalSamples?: number; evalNfe?: number; out?: string; archive?: string; docs?: string; data?: string; set?: string[];
  finalSamples?: number; finalCfg?: string; baseline?: string;
  /** Comma-separated spec names: train only their runs (a lane pointed at one claim's runs). */
  only?: string;
}

/**
 * `2` or `2,repa:3`: a value for every spec, then values of the specs named (`--seeds`,
 * `--final-cfg`). `integer` refuses fractions; the default applies when only names are given.
 */
export function parsePerSpec(flag: string, v: string, o: { integer: boolean; fallback: number; example: string }): { value: number; per: Record<string, number> } {
  let value: number | null = null;
  const per: Record<string, number> = {};
  const num = o.integer ? '\\d+' : '\\d+(?:\\.\\d+)?';
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = new RegExp(`^(?:([A-Za-z0-9_-]+):)?(${num})$`).exec(part);
    if (!m) throw new Error(`compare: ${flag} '${v}': expected N or N,name:M,... (e.g. ${o.example}), got '${part}'`);
    if (m[1]) per[m[1]] = Number(m[2]);
    else if (value !== null) throw new Error(`compare: ${flag} '${v}': two default values (${value} and ${m[2]})`);
    else value = Number(m[2]);
  }
  return { value: value ?? o.fallback, per };
}

/** `--seeds 2` or `--seeds 2,repa:3,sra:3`: the seeds of every spec, then of the specs named. */
export function parseSeeds(v: string): { seeds: number; seedsFor: Record<string, number> } {
  const { value, per } = parsePerSpec('--seeds', v, { integer: true, fallback: 2, example: '2,repa:3' });
  return { seeds: value, seedsFor: per };
}

/**
 * `--final-cfg 2` or `--final-cfg 2,digit:1`: the final evaluation's guidance scale, and that of the
 * specs named (a method that samples without guidance, DiGIT, is measured at 1 beside the others at 2).
 */
export function parseFinalCfg(v: string): { cfg: number; cfgFor: Record<string, number> } {
  const { value, per } = parsePerSpec('--final-cfg', v, { integer: false, fallback: 1, example: '2,digit:1' });
  return { cfg: value, cfgFor: per };
}

/** The flags a study file replaces (all but --study): given beside it, they are refused, not merged. */
const STUDY_FLAGS: Record<string, string> = {
  specs: '--specs', budget: '--budget', seeds: '--seeds', steps: '--steps', evalEvery: '--eval-every', evalSamples: '--eval-samples', evalNfe: '--eval-nfe',
  finalSamples: '--final-samples', finalCfg: '--final-cfg', baseline: '--baseline', out: '--out', archive: '--archive', docs: '--docs', data: '--data', set: '--set',
};

/** `compare --study FILE`, or the same study given as flags. */
export function compareSettings(o: CompareCliOptions): { options: Omit<CompareOptions, 'signal' | 'quiet'>; docs: string } {
  if (o.study !== undefined) {
    const given = Object.keys(STUDY_FLAGS).filter((k) => o[k as keyof CompareCliOptions] !== undefined).map((k) => STUDY_FLAGS[k]);
    if (given.length) throw new Error(`compare --study ${o.study}: the study file holds the whole study; drop ${given.join(', ')} (or edit the file)`);
    return loadStudyFile(o.study);
  }
  if (o.specs === undefined || o.budget === undefined) throw new Error('compare: give --specs and --budget (e.g. --specs specs/sit-baseline.yaml,specs/repa.yaml --budget 30m), or --study FILE');
  const specs = o.specs.split(',').map((s) => s.trim()).filter(Boolean);
  if (o.finalCfg !== undefined && o.finalSamples === undefined) throw new Error('compare: --final-cfg applies to the final evaluation: give --final-samples too');
  if (specs.length < 2) throw new Error('compare: --specs needs at least two comma-separated spec files');
  const out = o.out ?? 'runs/compare';
  return {
    options: {
      specs, budgetSeconds: parseBudget(o.budget), ...parseSeeds(o.seeds ?? '2'), steps: o.steps, evalEvery: o.evalEvery ?? 250,
      evalSamples: o.evalSamples, evalNfe: o.evalNfe, out, archive: o.archive, data: o.data, sets: o.set, baseline: o.baseline,
      ...(o.finalSamples !== undefined && { final: { samples: o.finalSamples, ...parseFinalCfg(o.finalCfg ?? '1') } }),
    },
    docs: o.docs ?? path.join(out, 'docs'),
  };
}

export async function compareCli(o: CompareCliOptions): Promise<void> {
  const settings = compareSettings(o);
  const stop = stopOnSignals();
  let study: Awaited<ReturnType<typeof compare>>;
  try {
    // A study from a file spans sessions: its progress page is kept beside its report.
    const only = o.only?.split(',').map((x) => x.trim()).filter(Boolean);
    study = await compare({ ...settings.options, signal: stop.signal, status: o.status, ...(only !== undefined && { only }), ...(o.study !== undefined && { progress: { file: path.join(settings.docs, 'progress.md'), command: `npx diffactor compare --study ${o.study}` } }) });
  } catch (e) {
    // The run's own message names `train --resume`; a study continues by running compare again.
    if (e instanceof RunInterrupted) e.message = `interrupted after step ${e.step}: the checkpoint in ${e.out} is saved; run the same compare command again to continue the study`;
    throw e;
  } finally {
    stop.dispose();
  }
  if (o.status) {
    process.stdout.write(progressMarkdown(study.plan ?? [], new Map(study.runs.map((r) => [`${r.method}-seed${r.seed}`, r])), `npx diffactor ${process.argv.slice(2).filter((a) => a !== '--status').join(' ')}`));
    return;
  }
  if (study.partial) {
    console.error(`compare --only ${o.only}: ${study.runs.length} run${study.runs.length === 1 ? '' : 's'} finished; the report is written by the same compare without --only once every run of the study is`);
    return;
  }
  const command = `npx diffactor ${process.argv.slice(2).join(' ')}`;
  const file = writeReport(study, { docs: settings.docs, command });
  console.error(`compare: ${study.runs.length} runs; wrote ${file}`);
}

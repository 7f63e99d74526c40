// A study file (`diffactor compare --study FILE`): the whole of a `compare` command in one YAML
// file, so a study that runs over several sessions is the same study each time it is continued —
// its specs, seeds, steps, evaluations and per-spec overrides are committed beside its results
// instead of living in a long command line. Validated with zod like a run spec: errors name the
// file and the field. Paths in it are relative to the file (as a spec's are to the spec), except the
// values under `set`, which are spec fields and so relative to the spec file they override.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseBudget, type CompareOptions } from './compare.ts';

const name = z.string().regex(/^[A-Za-z0-9_-]+$/, 'a spec name (letters, digits, _ and -)');
const perSpec = <T extends z.ZodType>(v: T) => z.record(name, v);

export const StudyFileSchema = z.strictObject({
  specs: z.array(z.string().min(1)).min(2, 'at least two spec files'),
  budget: z.string().min(1),
  /** Seeds of every spec, or `{default: 2, repa: 3}`. */
  seeds: z.union([z.number().int(), z.strictObject({ default: z.number().int() }).catchall(z.number().int())]).default(2),
  steps: z.number().int().positive().optional(),
  eval_every: z.number().int().nonnegative().default(250),
  eval_samples: z.number().int().positive().optional(),
  eval_nfe: z.number().int().positive().optional(),
  final: z.strictObject({
    samples: z.number().int().positive(),
    cfg: z.number().min(1, 'a guidance scale ≥ 1 (1: unguided)').default(1),
    cfg_for: perSpec(z.number().min(1, 'a guidance scale ≥ 1 (1: unguided)')).optional(),
  }).optional(),
  baseline: name.optional(),
  out: z.string().min(1),
  archive: z.string().min(1).optional(),
  docs: z.string().min(1).optional(),
  /** A dataset name (fashion-mnist), or a folder (a path with a slash: relative to this file). */
  data: z.string().min(1).optional(),
  /**
   * Runs the specs read that are not runs of the study — a method's stage 1, which its stage-2 spec
   * names by checkpoint — trained first when missing: `{spec, out}`, `out` the directory that spec's
   * checkpoint path points into.
   */
  stages: z.array(z.strictObject({ spec: z.string().min(1), out: z.string().min(1) })).optional(),
  /** Spec fields to override: `'*'` for every spec, else by spec name; `{path: value}` each. */
  set: z.record(z.union([z.literal('*'), name]), z.record(z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'a field path such as train.lr'), z.unknown())).optional(),
});

export interface StudyFile {
  options: Omit<CompareOptions, 'signal' | 'quiet'>;
  /** Where results.md goes (default <out>/docs). */
  docs: string;
}

/** Read and validate a study file; its paths come back relative to the working directory. */
export function loadStudyFile(file: string): StudyFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`compare --study ${file}: cannot read the study file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new Error(`compare --study ${file}: not valid YAML: ${(e as Error).message}`);
  }
  const r = StudyFileSchema.safeParse(raw);
  if (!r.success) {
    // A bad record key reports "Invalid key in record"; what the key should be is in its inner issue.
    const why = (i: z.core.$ZodIssue) => (i.code === 'invalid_key' ? `not ${i.issues.map((j) => j.message).join('; ')}` : i.message);
    const lines = r.error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(top level)'}: ${why(i)}`);
    throw new Error(`compare --study ${file}: invalid study file\n${lines.join('\n')}`);
  }
  const s = r.data;
  const dir = path.dirname(path.resolve(file));
  const at = (p: string) => path.relative(process.cwd(), path.resolve(dir, p)) || '.';
  let budgetSeconds: number;
  try {
    budgetSeconds = parseBudget(s.budget);
  } catch (e) {
    throw new Error(`compare --study ${file}: budget: ${(e as Error).message}`);
  }
  const { default: seeds, ...seedsFor } = typeof s.seeds === 'number' ? { default: s.seeds } : s.seeds;
  // `compare` reads overrides as `[name:]path=value` with the value parsed as YAML: JSON is YAML, so
  // a string stays a string ("2" is not read back as 2) and a list stays a list.
  const sets = Object.entries(s.set ?? {}).flatMap(([spec, fields]) =>
    Object.entries(fields).map(([field, value]) => `${spec === '*' ? '' : `${spec}:`}${field}=${JSON.stringify(value)}`));
  const out = at(s.out);
  return {
    options: {
      specs: s.specs.map(at), budgetSeconds, seeds, seedsFor, steps: s.steps, evalEvery: s.eval_every, evalSamples: s.eval_samples,
      evalNfe: s.eval_nfe, out, archive: s.archive && at(s.archive), data: s.data && (/[\\/]/.test(s.data) ? at(s.data) : s.data), sets, baseline: s.baseline,
      ...(s.stages && { stages: s.stages.map((st) => ({ spec: at(st.spec), out: at(st.out) })) }),
      ...(s.final && { final: { samples: s.final.samples, cfg: s.final.cfg, cfgFor: s.final.cfg_for ?? {} } }),
    },
    docs: s.docs ? at(s.docs) : path.join(out, 'docs'),
  };
}

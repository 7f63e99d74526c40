// `compare --study FILE`: a study file gives exactly the settings of the equivalent flags, its paths
// are the file's, its overrides reach the spec with their YAML types, and a bad file or a flag given
// beside it is refused with the field named.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadStudyFile } from '../../src/study/studyFile.ts';
import { compareSettings } from '../../src/cli/compare.ts';
import { applyOverrides, loadSpec } from '../../src/spec/load.ts';
import { parseStudySet } from '../../src/study/compare.ts';
import { filesOf } from '../../src/study/runInputs.ts';

function studyDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'studyfile-'));
  mkdirSync(path.join(dir, 'specs', 'studies'), { recursive: true });
  return dir;
}

const write = (file: string, body: unknown) => (writeFileSync(file, typeof body === 'string' ? body : stringify(body)), file);
const rel = (p: string) => path.relative(process.cwd(), p);

describe('study file', () => {
  it('gives the same settings as the equivalent flags, with its paths taken relative to the file', () => {
    const dir = studyDir();
    const file = write(path.join(dir, 'specs', 'studies', 'full.yaml'), {
      specs: ['../a.yaml', '../b.yaml'],
      budget: '3h',
      seeds: { default: 2, a: 3 },
      steps: 1500,
      eval_every: 500,
      eval_nfe: 40,
      final: { samples: 1000, cfg: 2, cfg_for: { b: 1 } },
      baseline: 'a',
      out: '../../runs/full',
      archive: '../../docs/full/runs',
      docs: '../../docs/full',
      set: { '*': { 'train.batch_size': 32 }, b: { 'latent.autoencoder': 'standins/vae.safetensors', 'model.preset': 'SiT-S/1' } },
    });
    const fromFile = compareSettings({ study: file });
    const fromFlags = compareSettings({
      specs: [rel(path.join(dir, 'specs', 'a.yaml')), rel(path.join(dir, 'specs', 'b.yaml'))].join(','), budget: '3h', seeds: '2,a:3', steps: 1500,
      evalEvery: 500, evalNfe: 40, finalSamples: 1000, finalCfg: '2,b:1', baseline: 'a', out: rel(path.join(dir, 'runs', 'full')),
      archive: rel(path.join(dir, 'docs', 'full', 'runs')), docs: rel(path.join(dir, 'docs', 'full')),
      set: ['train.batch_size=32', 'b:latent.autoencoder="standins/vae.safetensors"', 'b:model.preset="SiT-S/1"'],
    });
    expect(fromFile).toEqual(fromFlags);
  });

  it('defaults as the flags do: 2 seeds, an evaluation every 250 steps, results under <out>/docs', () => {
    const dir = studyDir();
    const file = write(path.join(dir, 'study.yaml'), { specs: ['a.yaml', 'b.yaml'], budget: '30m', out: 'runs' });
    const s = loadStudyFile(file);
    expect(s.options).toMatchObject({ seeds: 2, seedsFor: {}, evalEvery: 250, sets: [] });
    expect(s.options.final).toBeUndefined();
    expect(s.docs).toBe(path.join(rel(path.join(dir, 'runs')), 'docs'));
    expect(compareSettings({ specs: 'a.yaml,b.yaml', budget: '30m' }).options).toMatchObject({ seeds: 2, seedsFor: {}, evalEvery: 250, out: 'runs/compare' });
  });

  it('hands its overrides to the spec with their YAML types: a quoted number stays a string, a list a list', () => {
    const dir = studyDir();
    const set = { '*': { 'a.b': 'x/y.safetensors', c: 2, d: [1, 2], e: '2', f: null, g: true } };
    const s = loadStudyFile(write(path.join(dir, 'study.yaml'), { specs: ['a.yaml', 'b.yaml'], budget: '1h', out: 'runs', set }));
    expect(applyOverrides({}, s.options.sets ?? [], 'test')).toEqual({ a: { b: 'x/y.safetensors' }, c: 2, d: [1, 2], e: '2', f: null, g: true });
  });

  it('refuses a bad file naming the field, and a flag given beside it', () => {
    const dir = studyDir();
    const f = (body: unknown) => write(path.join(dir, 'bad.yaml'), body);
    const ok = { specs: ['a.yaml', 'b.yaml'], budget: '1h', out: 'runs' };
    expect(() => loadStudyFile(path.join(dir, 'missing.yaml'))).toThrow(/missing\.yaml: cannot read the study file \(ENOENT\)/);
    expect(() => loadStudyFile(f('specs: [a, b'))).toThrow(/bad\.yaml: not valid YAML/);
    expect(() => loadStudyFile(f({ ...ok, specs: ['a.yaml'] }))).toThrow(/specs: .*at least two spec files/);
    expect(() => loadStudyFile(f({ ...ok, seed: 3 }))).toThrow(/invalid study file[\s\S]*seed/);
    expect(() => loadStudyFile(f({ ...ok, seeds: { repa: 3 } }))).toThrow(/seeds/);
    expect(() => loadStudyFile(f({ ...ok, budget: 'soon' }))).toThrow(/budget: .*'soon'/);
    expect(() => loadStudyFile(f({ ...ok, final: { samples: 1000, cfg: 0.5 } }))).toThrow(/final\.cfg: a guidance scale ≥ 1/);
    expect(() => loadStudyFile(f({ ...ok, set: { repa: { 'train lr': 1 } } }))).toThrow(/set\.repa.*a field path such as train\.lr/);
    expect(() => loadStudyFile(f({ budget: '1h', out: 'runs' }))).toThrow(/specs: /);
    expect(() => compareSettings({ study: f(ok), seeds: '3', out: 'x' })).toThrow(/the study file holds the whole study; drop --seeds, --out/);
    expect(() => compareSettings({})).toThrow(/give --specs and --budget.*or --study FILE/);
  });
});

describe('shipped study files', () => {
  const dir = path.resolve(import.meta.dirname, '../../specs/studies');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    it(`specs/studies/${f} loads, and every spec in it validates with its overrides`, () => {
      const s = loadStudyFile(path.join(dir, f));
      const sets = (s.options.sets ?? []).map(parseStudySet);
      const names = s.options.specs.map((file) => {
        const spec = loadSpec(file, sets.filter((x) => x.spec === null || x.spec === loadSpec(file).name).map((x) => x.set));
        if (sets.some((x) => x.spec === spec.name && x.set.startsWith('latent.autoencoder='))) expect(spec.latent?.autoencoder, `${file}: moved into a latent space`).toMatch(/\.safetensors$/);
        return spec.name;
      });
      for (const x of sets) if (x.spec !== null) expect(names, `set ${x.spec}: a spec of the study`).toContain(x.spec);
      // Each stage is a spec that loads, and some spec of the study reads a file inside its out.
      const read = s.options.specs.flatMap((file) => filesOf(loadSpec(file), null).map(([, p]) => path.resolve(p)));
      for (const st of s.options.stages ?? []) {
        expect(loadSpec(st.spec).train.steps).toBeGreaterThan(0);
        expect(read.some((p) => p.startsWith(path.resolve(st.out) + path.sep)), `stage ${st.spec}: read by a spec of the study`).toBe(true);
      }
      if (s.options.baseline) expect(names).toContain(s.options.baseline);
      expect(readFileSync(path.join(dir, f), 'utf8')).toMatch(/^# Duration on two cores: .*\d+(\.\d+)?\s*(min|h)\b/m);
    });
  }
});

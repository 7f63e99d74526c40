// The numbers of docs/simulate.md: `diffactor simulate` on the XL/2 paper specs (SiT, REPA, SRA,
// REG, REPA-E) on 8 × A100, the step time versus GPU count at the papers' global batch of 256
// (docs/img/simulate-gpus.svg, drawn with vega-lite as `diffactor plot` draws), printed as markdown.
// Regenerate with
//   npx tsx scripts/simulate-docs.ts > /tmp/simulate-tables.md
// and paste the tables into docs/simulate.md; `--others` prints only the table of the other
// methods' XL/2 specs (U-REPA, ReDi, DDT, DeepFlow, LayerSync, SoftREPA's analogue; no SVG).
// Device figures: src/bench/devices.ts.
import { writeFileAtomic } from '../src/io/atomic.ts';
import { loadSpec } from '../src/spec/load.ts';
import { simulate, type SimulationReport } from '../src/bench/simulate.ts';
import { A100, H100 } from '../src/bench/devices.ts';
import { renderSvg } from '../src/cli/plot.ts';

const METHODS = ['sit-baseline', 'repa', 'sra', 'reg', 'repa-e'];
const TITLE: Record<string, string> = { 'sit-baseline': 'SiT', repa: 'REPA', sra: 'SRA', reg: 'REG', 'repa-e': 'REPA-E' };
const spec = (m: string) => loadSpec(`specs/paper/${m}-sit-xl2.yaml`);
const w = (s: string) => process.stdout.write(s);
const f1 = (x: number) => x.toFixed(1), f2 = (x: number) => x.toFixed(2);

/** The other XL/2 paper specs, each at its own spec's batch and step count (SoftREPA on the 1 GPU its header names). */
function others(): void {
  const OTHERS: [string, string, number][] = [
    ['U-REPA', 'u-repa-sit-xl2', 8], ['ReDi', 'redi-sit-xl2', 8], ['DDT + REPA', 'ddt-sit-xl2', 8],
    ['DeepFlow', 'deepflow-sit-xl2', 8], ['LayerSync', 'layersync-sit-xl2', 8], ['SoftREPA (SiT-XL/2 analogue)', 'softrepa-sit-xl2', 1],
  ];
  w('#### Other methods at XL/2 on A100 (bf16), the spec\'s global batch\n\n');
  w('| method | spec | GPUs × batch | student trainable M | frozen M (all actors) | student G linear MACs / sample | step ms | steps | h | critical path |\n');
  w('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n');
  for (const [title, file, gpus] of OTHERS) {
    const sp = loadSpec(`specs/paper/${file}.yaml`), r = simulate(sp, { device: A100, gpus });
    const st = r.actors.find((a) => a.actor === 'student')!;
    const frozen = r.actors.filter((a) => a.actor !== 'teacher').reduce((n, a) => n + a.frozen, 0);
    w(`| ${title} | \`${file}\` | ${gpus} × ${r.batch} | ${f2(st.trainable / 1e6)} | ${f1(frozen / 1e6)} | ${f2(r.gmacsPerSample.student.linear)} | ${f1(r.stepSeconds * 1e3)} | ${sp.train.steps} | ${f1(r.stepSeconds * sp.train.steps / 3600)} | ${r.criticalPath.filter((c) => !c.startsWith('main.fetch')).join(' → ')} |\n`);
  }
}
if (process.argv.includes('--others')) {
  others();
  process.exit(0);
}

w('### XL/2 on 8 × A100 (bf16), batch 256 (32 per GPU), per step and replica\n\n');
w('| method | actor | trainable M | frozen M | fwd TFLOP | bwd TFLOP | fwd ms | bwd ms | AdamW + EMA ms | AdamW state GB | EMA GB | messages (MB) sent |\n');
w('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n');
const reports: Record<string, SimulationReport> = {};
for (const m of METHODS) {
  const r = (reports[m] = simulate(spec(m), { device: A100, gpus: 8 }));
  for (const a of r.actors) {
    if (a.actor === 'main') continue;
    const p = a.phases;
    w(`| ${TITLE[m]} | ${a.actor} | ${f1(a.trainable / 1e6)} | ${f1(a.frozen / 1e6)} | ${f2(p.forward.flops / 1e12)} | ${f2(p.backward.flops / 1e12)} | ${f1(p.forward.seconds * 1e3)} | ${f1(p.backward.seconds * 1e3)} | ${f1((p.update.seconds + p.ema.seconds) * 1e3)} | ${f2(a.optimizerBytes / 2 ** 30)} | ${f2(a.emaBytes / 2 ** 30)} | ${a.messages.count} (${f1(a.messages.bytes / 2 ** 20)}) |\n`);
  }
}
w('\n### XL/2 per step: memory, all-reduce, step time, 400K steps\n\n');
w('| method | student G/sample (fvcore) | tape activations GB / GPU | all-reduce ms | step ms (A100) | 400K steps h (8 × A100) | step ms (H100) | 400K steps h (8 × H100) | critical path |\n');
w('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n');
for (const m of METHODS) {
  const r = reports[m], h = simulate(spec(m), { device: H100, gpus: 8 });
  const g = r.gmacsPerSample.student;
  w(`| ${TITLE[m]} | ${f2(g.linear + 4 * g.normElements)} | ${f1(r.activationBytes / 2 ** 30)} | ${f1(r.allReduce.seconds * 1e3)} | ${f1(r.stepSeconds * 1e3)} | ${f1(r.stepSeconds * 4e5 / 3600)} | ${f1(h.stepSeconds * 1e3)} | ${f1(h.stepSeconds * 4e5 / 3600)} | ${r.criticalPath.filter((c) => !c.startsWith('main.fetch')).join(' → ')} |\n`);
}

// Step time versus GPU count at a global batch of 256.
const GPUS = [1, 2, 4, 8, 16, 32, 64];
const rows: { gpus: number; seconds: number; method: string; device: string }[] = [];
// REPA-E is left out of the sweep: at 1–2 GPUs its SD-VAE at batch 128–256 takes minutes to simulate.
const SWEEP = METHODS.filter((m) => m !== 'repa-e');
w('\n### Step time (ms) versus GPUs, global batch 256 (A100; NVLink to 8, then 200 Gb/s InfiniBand)\n\n');
w(`| method | ${GPUS.join(' | ')} |\n| --- |${GPUS.map(() => ' ---: |').join('')}\n`);
for (const m of SWEEP) {
  const cells: string[] = [];
  for (const n of GPUS) {
    const r = simulate(spec(m), { device: A100, gpus: n });
    rows.push({ gpus: n, seconds: r.stepSeconds * 1e3, method: TITLE[m], device: 'A100' });
    cells.push(f1(r.stepSeconds * 1e3));
  }
  w(`| ${TITLE[m]} | ${cells.join(' | ')} |\n`);
}
const svg = await renderSvg({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: 'Simulated step time, XL/2, global batch 256, A100 (roofline)',
  data: { values: rows },
  width: 560,
  height: 300,
  mark: { type: 'line', point: true },
  encoding: {
    x: { field: 'gpus', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'GPUs (data-parallel replicas)' },
    y: { field: 'seconds', type: 'quantitative', scale: { type: 'log' }, title: 'ms per step' },
    color: { field: 'method', type: 'nominal', title: null },
  },
  config: { font: 'sans-serif', legend: { orient: 'top' } },
});
writeFileAtomic('docs/img/simulate-gpus.svg', svg);
w('\n(docs/img/simulate-gpus.svg written)\n\n');
others();

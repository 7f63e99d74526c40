// A composed protocol from a module file through the CLI: `train --protocol-module` trains with
// it, the run directory records it, and `train --resume` continues with it by itself — the same
// metrics as one uninterrupted run. Resuming with another protocol is refused, naming both. Bad
// modules get errors that say what was expected.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { train } from '../../src/cli/train.ts';
import { runActors } from '../../src/train/actorRun.ts';
import { repaPlusSra } from '../../src/protocols/composed/repaPlusSra.ts';
import { loadProtocolModule, readProtocolRecord } from '../../src/protocols/module.ts';
import { tinySpec } from '../actors/specs.ts';

const SRA = tinySpec('sra').sra!;
const repoSrc = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'protocol-module-'));

function writeModule(dir: string, body: string): string {
  const f = path.join(dir, 'my-protocol.ts');
  writeFileSync(f, body);
  return f;
}

const composedModule = (dir: string) => writeModule(dir, `import { repaPlusSra } from '${repoSrc}/protocols/composed/repaPlusSra.ts';\nexport default repaPlusSra(${JSON.stringify(SRA)});\n`);

const metrics = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });

describe('--protocol-module', () => {
  it('trains, records the module, and --resume continues with it: equal to one whole run', async () => {
    const dir = tmp();
    const spec = tinySpec('repa', { train: { ...tinySpec('repa').train, steps: 6, schedule: 'constant' } });
    const specFile = path.join(dir, 'spec.yaml');
    writeFileSync(specFile, stringify(spec));
    const mod = composedModule(dir);
    const out = path.join(dir, 'run');
    await train({ spec: specFile, out, steps: 3, protocolModule: mod, samples: false });
    expect(readProtocolRecord(out)).toEqual({ name: 'repa+sra', module: mod });
    await train({ resume: out, steps: 6, samples: false }); // no --protocol-module: read from protocol.json
    const whole = path.join(dir, 'whole');
    await runActors({ spec, out: whole, protocol: repaPlusSra(SRA), placement: 'local', quiet: true, samples: false });
    const got = metrics(out);
    expect(got).toHaveLength(6);
    expect(got).toEqual(metrics(whole));
    expect(got[5]).toHaveProperty('align'); // SRA's term: the resumed leg ran the composed protocol
  }, 120_000);

  it('resuming with another protocol is refused, naming the recorded one and its module', async () => {
    const dir = tmp();
    const out = path.join(dir, 'run');
    const spec = tinySpec('repa', { train: { ...tinySpec('repa').train, steps: 2 } });
    await runActors({ spec, out, protocol: repaPlusSra(SRA), protocolModule: 'protocols/mine.ts', placement: 'local', quiet: true, samples: false });
    await expect(runActors({ out, resume: true, steps: 3, placement: 'local', quiet: true, samples: false }))
      .rejects.toThrow(/trained with protocol 'repa\+sra' from protocols\/mine\.ts; resuming it with 'repa' would drop its other parts \(pass --protocol-module protocols\/mine\.ts/);
  }, 60_000);

  it('bad modules: missing, without the export, or exporting something else', async () => {
    const dir = tmp();
    await expect(loadProtocolModule(path.join(dir, 'nope.ts'))).rejects.toThrow(/nope\.ts: no such file/);
    const none = writeModule(dir, 'export const x = 1;\n');
    await expect(loadProtocolModule(none)).rejects.toThrow(/expected a default export \(or an export named 'protocol'\).*found exports: x/);
    const wrong = writeModule(path.join(dir, '..', path.basename(tmp())), "export default { name: 'p', actors: [] };\n");
    await expect(loadProtocolModule(wrong)).rejects.toThrow(/is not a ProtocolDefinition/);
    const p = await loadProtocolModule(composedModule(tmp()));
    expect(p.name).toBe('repa+sra');
  });
});

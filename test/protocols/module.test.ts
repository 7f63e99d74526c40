// A protocol made in code, from a module file through the CLI: `train --protocol-module` trains with
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
import { runActors } from '../../src/run/actorRun.ts';
import { loadProtocolModule, readProtocolRecord, type ProtocolSource } from '../../src/protocols/module.ts';
import { tinySpec } from '../actors/specs.ts';

const repoSrc = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'protocol-module-'));

function writeModule(dir: string, body: string): string {
  const f = path.join(dir, 'my-protocol.ts');
  writeFileSync(f, body);
  return f;
}

/**
 * A protocol that is not the spec's: REPA's routes with the projector's weight λ = 1 instead of the
 * spec's 0.5 (the coordinator weights the term; the logged loss shows which protocol ran).
 */
const MODULE_SOURCE = (src: string) => `import { composeProtocol } from '${src}/protocols/compose.ts';
export default (spec) => ({ ...composeProtocol({ ...spec, repa: { ...spec.repa, proj_coeff: 1 } }), name: 'repa-lambda-1' });
`;
const composedModule = (dir: string) => writeModule(dir, MODULE_SOURCE(repoSrc));
const loadLambda1 = async (): Promise<ProtocolSource> => loadProtocolModule(composedModule(tmp()));

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
    expect(readProtocolRecord(out)).toEqual({ name: 'repa-lambda-1', module: mod });
    await train({ resume: out, steps: 6, samples: false }); // no --protocol-module: read from protocol.json
    const whole = path.join(dir, 'whole');
    await runActors({ spec, out: whole, protocol: await loadLambda1(), placement: 'local', quiet: true, samples: false });
    const got = metrics(out);
    expect(got).toHaveLength(6);
    expect(got).toEqual(metrics(whole));
    // λ = 1, not the spec's 0.5, in the resumed leg too: it ran the module's protocol.
    for (const m of got) expect(m.loss).toBe(Math.fround(m.diff + m.proj));
  }, 120_000);

  it('resuming with another protocol is refused, naming the recorded one and its module', async () => {
    const dir = tmp();
    const out = path.join(dir, 'run');
    const spec = tinySpec('repa', { train: { ...tinySpec('repa').train, steps: 2 } });
    await runActors({ spec, out, protocol: await loadLambda1(), protocolModule: 'protocols/mine.ts', placement: 'local', quiet: true, samples: false });
    await expect(runActors({ out, resume: true, steps: 3, placement: 'local', quiet: true, samples: false }))
      .rejects.toThrow(/trained with protocol 'repa-lambda-1' from protocols\/mine\.ts; resuming it with 'repa' would drop its other parts \(pass --protocol-module protocols\/mine\.ts/);
  }, 60_000);

  it('bad modules: missing, without the export, or exporting something else', async () => {
    const dir = tmp();
    await expect(loadProtocolModule(path.join(dir, 'nope.ts'))).rejects.toThrow(/nope\.ts: no such file/);
    const none = writeModule(dir, 'export const x = 1;\n');
    await expect(loadProtocolModule(none)).rejects.toThrow(/expected a default export \(or an export named 'protocol'\).*found exports: x/);
    const wrong = writeModule(path.join(dir, '..', path.basename(tmp())), "export default { name: 'p', actors: [] };\n");
    await expect(loadProtocolModule(wrong)).rejects.toThrow(/is neither a ProtocolDefinition/);
    const p = await loadLambda1();
    expect(typeof p).toBe('function');
  });
});

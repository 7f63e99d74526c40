// Supervision: a worker killed mid-run is reported with its last message, restarted, everyone is
// reloaded from the last checkpoint, the lost steps are replayed, and the run ends exactly where
// an uninterrupted one does. A NaN stops the run with the step, actor and message, and leaves the
// last checkpoint as it was.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors, RunFailure } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { tinySpec } from './specs.ts';
import { readMetrics as metrics } from '../run/methodRun.ts';

const dir = (p: string) => mkdtempSync(path.join(tmpdir(), p));
const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('supervision', () => {
  const midRun = tinySpec('repa', { train: { ...tinySpec('repa').train, steps: 16, checkpoint_every: 6 } });
  let uninterrupted: Promise<string> | null = null; // one uninterrupted run serves both victims
  it.each(['projector', 'student'])('killing the %s worker mid-run ends where an uninterrupted run does', async (victim) => {
    const spec = midRun;
    uninterrupted ??= (async () => {
      const d = dir('sup-a-');
      await runActors({ spec, out: d, quiet: true, samples: false });
      return d;
    })();
    const a = await uninterrupted, b = dir('sup-b-');
    let killed = false;
    const failures: string[] = [];
    const r = await runActors({
      spec, out: b, quiet: true, samples: false, onFailure: (f) => failures.push(`${f.kind} at step ${f.step}: ${f.error.message}`),
      onStep: (log, sys) => { if (log.step === 9 && !killed) { killed = true; sys.ref(victim).crash(); } },
    });
    expect(killed).toBe(true);
    expect(r.restarts).toBe(1);
    expect(failures).toHaveLength(1);
    // The report names the actor and the last message it was sent.
    expect(failures[0]).toMatch(new RegExp(`^actor at step 10: actor '${victim}' failed while handling '\\w+' of step \\d+: worker exited with code 70`));
    expect(metrics(b)).toEqual(metrics(a));
    const ca = loadCheckpoint(path.join(a, 'checkpoint.safetensors')), cb = loadCheckpoint(path.join(b, 'checkpoint.safetensors'));
    for (const key of ['model', 'ema', 'proj', 'opt'] as const) {
      for (const [k, t] of ca[key]) expect(Array.from(cb[key].get(k)!.data), `${key} ${k}`).toEqual(Array.from(t.data));
    }
  }, 120_000);

  it('a NaN stops the run with step, actor and message; the last checkpoint is not overwritten', async () => {
    const spec = tinySpec('sit-baseline', { train: { ...tinySpec('sit-baseline').train, steps: 16, checkpoint_every: 5 } });
    const out = dir('sup-nan-');
    const ckpt = path.join(out, 'checkpoint.safetensors');
    let before = '';
    const err = await runActors({
      spec, out, quiet: true, samples: false,
      onStep: (log, sys) => {
        if (log.step === 7) {
          before = hash(ckpt);
          void sys.ask('student', 'poison', { name: 'final_layer.linear.weight' });
        }
      },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(RunFailure);
    expect(err.step).toBe(8);
    expect(err.failure.kind).toBe('nonfinite');
    expect(err.failure.where).toBe('student.forward');
    expect(err.message).toMatch(/step 8.*student\.forward.*loss became NaN/);
    expect(hash(ckpt)).toBe(before);
    expect(loadCheckpoint(ckpt).state.step).toBe(5);
  }, 60_000);
});

describe('a worker crash before the first checkpoint', () => {
  // 8 steps, first checkpoint at 6: a crash at step 3 restarts every actor from its seed. It used
  // to rebuild the run context into a variable the run machine never read (its random streams had
  // already advanced), so the run diverged from step 1 and still reported success.
  const cases: [string, string[]][] = [
    ['sit-baseline', ['student', 'data', 'teacher']],
    ['repa', ['student', 'projector', 'data', 'encoder']],
    ['repa-e', ['student', 'projector', 'vae']],
  ];
  const whole = new Map<string, string>();
  describe.each(cases)('%s', (method, victims) => {
    const spec = tinySpec(method, { train: { ...tinySpec(method).train, steps: 8, checkpoint_every: 6 } });
    it.each(victims)('killing the %s worker at step 3 gives exactly the uninterrupted run', async (victim) => {
      if (!whole.has(method)) {
        const a = dir('early-a-');
        await runActors({ spec, out: a, quiet: true, samples: false });
        whole.set(method, a);
      }
      const a = whole.get(method)!, b = dir('early-b-');
      let killed = false;
      const r = await runActors({
        spec, out: b, quiet: true, samples: false, onFailure: () => {},
        onStep: (log, sys) => { if (log.step === 3 && !killed) { killed = true; sys.ref(victim).crash(); } },
      });
      expect(killed).toBe(true);
      expect(r.restarts).toBe(1);
      expect(metrics(b)).toEqual(metrics(a));
      const ca = loadCheckpoint(path.join(a, 'checkpoint.safetensors')), cb = loadCheckpoint(path.join(b, 'checkpoint.safetensors'));
      expect(cb.state.rng).toEqual(ca.state.rng);
      for (const key of ['model', 'ema', 'proj', 'opt', 'vae'] as const) {
        for (const [k, t] of ca[key] ?? []) expect(Array.from(cb[key]!.get(k)!.data), `${key} ${k}`).toEqual(Array.from(t.data));
      }
    }, 120_000);
  });
});

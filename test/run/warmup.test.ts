// train.warmup_steps above the run's steps (issue 19): the schedule cuts the warm-up to the run's
// length (build/schedule.ts), which used to happen silently. Now the run says so once when it
// opens, naming train.warmup_steps; a resume whose --steps moves that cut says from which step the
// learning rate changes. Runs with a warm-up inside their steps print nothing about it.
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTraining } from '../../src/run/run.ts';
import { openRun } from '../../src/run/runDir.ts';
import { scheduleFor } from '../../src/build/schedule.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'warmup-'));
const base = tinySpec('sit-baseline');
const spec = (train: Record<string, unknown>) => tinySpec('sit-baseline', { train: { ...base.train, ...train } });

/** stderr lines of `f` that talk about the warm-up. */
function warmupLines(f: () => void): string[] {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  try {
    f();
  } finally {
    spy.mockRestore();
  }
  return lines.filter((l) => l.includes('warmup_steps'));
}

describe('train.warmup_steps longer than the run', () => {
  it('says so once, naming train.warmup_steps, on a whole run', () => {
    const lines = warmupLines(() => runTraining({ spec: spec({ steps: 2, warmup_steps: 30, checkpoint_every: 1 }), out: tmp(), quiet: false, samples: false }));
    expect(lines).toEqual([
      'train.warmup_steps 30 is more than the run\'s 2 steps: the learning rate warms up over all 2 steps instead and reaches train.lr only at the last one; set train.warmup_steps to at most 2 (e.g. --set train.warmup_steps=1) for a shorter warm-up',
    ]);
    // What the line says is what the schedule does: the full rate at the last step, not before.
    const s = scheduleFor(spec({ steps: 2, warmup_steps: 30 }));
    expect([s(0), s(1)]).toEqual([0.5, 1]);
  }, 60_000);

  it('also when --steps cuts a spec\'s warm-up; silent when the warm-up fits', () => {
    const fit = warmupLines(() => openRun({ spec: spec({ steps: 40, warmup_steps: 30 }), out: tmp(), quiet: false }, 'test').lock.release());
    expect(fit).toEqual([]);
    const cut = warmupLines(() => openRun({ spec: spec({ steps: 40, warmup_steps: 30 }), steps: 20, out: tmp(), quiet: false }, 'test').lock.release());
    expect(cut).toHaveLength(1);
    expect(cut[0]).toMatch(/^train\.warmup_steps 30 is more than the run's 20 steps/);
    expect(warmupLines(() => openRun({ spec: spec({ steps: 2, warmup_steps: 30 }), out: tmp(), quiet: true }, 'test').lock.release())).toEqual([]);
  });

  it('a resume whose --steps moves the cut says from which step the learning rate differs', () => {
    const out = tmp();
    runTraining({ spec: spec({ steps: 2, warmup_steps: 6, schedule: 'constant', checkpoint_every: 2 }), out, quiet: true, samples: false });
    const lines = warmupLines(() => openRun({ out, resume: true, steps: 10, quiet: false }, 'test').lock.release());
    expect(lines).toEqual(['--steps 10: train.warmup_steps 6 was cut to the 2 steps the run had; the warm-up now spans 6 steps, so from step 3 on the learning rate differs from the one the run had']);
    // It does differ: the 2-step run was at the full rate from its last step on, the 10-step one is still warming up at step 3.
    const before = scheduleFor(spec({ steps: 2, warmup_steps: 6, schedule: 'constant' })), after = scheduleFor(spec({ steps: 10, warmup_steps: 6, schedule: 'constant' }));
    expect(before(2)).toBe(1);
    expect(after(2)).toBe(0.5);
    // Past both warm-ups nothing changes: no line.
    const late = tmp();
    runTraining({ spec: spec({ steps: 4, warmup_steps: 3, schedule: 'constant', checkpoint_every: 4 }), out: late, quiet: true, samples: false });
    expect(warmupLines(() => openRun({ out: late, resume: true, steps: 8, quiet: false }, 'test').lock.release())).toEqual([]);
  }, 60_000);
});

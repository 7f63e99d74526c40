// 1,000 REPA steps on worker actors: no actor's live-tape count, open steps or buffer pool grows
// (every forward's tape is consumed by its backward or dropped at release, and each step's
// buffers go back to the pool), and the coordinator's pool stays flat too.
import { expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { poolStats } from '../../src/tensor/pool.ts';
import { liveTapes } from '../../src/autograd/tape.ts';
import type { ActorStats } from '../../src/actors/messages.ts';
import { tinySpec } from './specs.ts';

it('1,000 steps: live tapes and buffer pools stay flat in every actor', async () => {
  const t = tinySpec('repa').train;
  const spec = tinySpec('repa', {
    model: { preset: 'SiT-S/4', hidden_size: 16, depth: 2, num_heads: 2 },
    train: { ...t, steps: 1000, batch_size: 4, checkpoint_every: 1000, log_every: 100 },
  });
  const snaps = new Map<number, Record<string, ActorStats>>();
  const coord = new Map<number, number>();
  const pending: Promise<void>[] = [];
  await runActors({
    spec, out: mkdtempSync(path.join(tmpdir(), 'leak-')), quiet: true, samples: false,
    onStep: (log, sys) => {
      if (log.step !== 100 && log.step !== 1000) return;
      coord.set(log.step, poolStats().created);
      pending.push((async () => {
        const names = ['data', 'encoder', 'student', 'teacher', 'projector'];
        const stats = await Promise.all(names.map((n) => sys.stats(n)));
        snaps.set(log.step, Object.fromEntries(names.map((n, i) => [n, stats[i]])));
      })());
    },
  });
  await Promise.all(pending);
  const early = snaps.get(100)!, late = snaps.get(1000)!;
  for (const name of Object.keys(early)) {
    expect(late[name].liveTapes, `${name} live tapes`).toBe(early[name].liveTapes);
    expect(late[name].liveTapes, `${name} live tapes`).toBeLessThanOrEqual(1);
    expect(late[name].openSteps, `${name} open steps`).toBeLessThanOrEqual(1);
    expect(late[name].pool.created, `${name} buffers created`).toBe(early[name].pool.created);
  }
  expect(coord.get(1000)).toBe(coord.get(100));
  expect(liveTapes.size).toBeLessThanOrEqual(1);
}, 300_000);

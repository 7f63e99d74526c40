// The proof that the actor system is exact: for every protocol, a run on actors (each role in its
// own worker thread, gradients crossing as messages) and the in-process reference trainer
// (src/run/reference.ts, one tape, one backward over the total loss) give the same losses and the
// same parameters — student, EMA teacher, heads, optimiser moments, REPA-E's VAE and the
// discriminator of its loss (weights, BatchNorm buffers, AdamW) — after 20 steps from the same
// spec and seed, to 1e-6 relative (per tensor: max |a − b| / max |b|). One actor run per protocol
// serves both checks: it keeps every step's checkpoint (checkpoint_every 1, keep_last 20), so the
// one-step gradients are read from its step-1 file (an actor run costs its workers' start-up).
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors, type ActorRunResult } from '../../src/run/actorRun.ts';
import { stepFile } from '../../src/run/retention.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { Trainer } from '../../src/run/reference.ts';
import { openTrainData } from '../../src/build/setup.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { COMPOSED, TINY, tinySpec } from './specs.ts';
import { methodNames } from '../../src/methods/registry.ts';

const TOL = 1e-6;

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

/**
 * The key part of a packed attention bias (`attn.qkv.bias` = [q; k; v]) has an exact gradient of
 * zero (softmax is invariant to a shift of every logit of a row), so what it receives is float32
 * rounding, which AdamW rescales to full-size steps: over many steps the two engines' different
 * (equally valid) summation orders show there first. It is compared against the tensor's scale at
 * 1e-4; its one-step gradient, like every other, at 1e-6.
 */
const KEY_BIAS_TOL = 1e-4;

function expectClose(actor: Map<string, Tensor>, ref: Map<string, Tensor>, what: string, keyBias = TOL): void {
  expect([...actor.keys()].sort(), `${what}: names`).toEqual([...ref.keys()].sort());
  for (const [k, t] of ref) {
    const a = actor.get(k)!.data;
    if (keyBias !== TOL && /attn\.qkv\.bias(\.exp_avg(_sq)?)?$/.test(k)) {
      const d = t.size / 3, parts = [[0, d], [d, 2 * d], [2 * d, 3 * d]] as const;
      const scale = Math.max(...Array.from(t.data, Math.abs)) || 1;
      parts.forEach(([lo, hi], i) => {
        let m = 0;
        for (let j = lo; j < hi; j++) m = Math.max(m, Math.abs(a[j] - t.data[j]));
        expect(i === 1 ? m / scale : relDiff(a.subarray(lo, hi), t.data.subarray(lo, hi)), `${what} '${k}' ${'qkv'[i]} part`).toBeLessThanOrEqual(i === 1 ? keyBias : TOL);
      });
      continue;
    }
    expect(relDiff(a, t.data), `${what} '${k}'`).toBeLessThanOrEqual(TOL);
  }
}

const RUNS = [...methodNames(), ...COMPOSED];

it('every registered method has a tiny spec', () => {
  expect(methodNames().filter((m) => !(m in TINY))).toEqual([]);
});

/** The tiny spec of `protocol` with every step's checkpoint kept (step 1 is the one-step check's). */
const everyStep = (protocol: string) => tinySpec(protocol, { train: { ...tinySpec(protocol).train, checkpoint_every: 1, keep_last: 20 } });

describe.each(RUNS)('%s', (protocol) => {
  const spec = everyStep(protocol);
  const out = mkdtempSync(path.join(tmpdir(), `equiv-${protocol}-`));
  let run: ActorRunResult;
  beforeAll(async () => { run = await runActors({ spec, out, quiet: true, samples: false }); }, 120_000);

  it('routed gradients == the formula\'s on one tape, after one step: every parameter of every actor', () => {
    const ref = new Trainer(spec, openTrainData(spec));
    ref.trainStep();
    const c = loadCheckpoint(stepFile(out, 1));
    expect(c.state.step).toBe(1);
    const rc = ref.checkpoint();
    const firstMoments = (m: Map<string, Tensor>) => new Map([...m].filter(([k]) => k.endsWith('.exp_avg')));
    const g = firstMoments(c.opt), rg = firstMoments(rc.opt);
    expect(g.size).toBeGreaterThan(0);
    expectClose(g, rg, 'gradient (AdamW first moment)');
    if (rc.vaeOpt) expectClose(firstMoments(c.vaeOpt!), firstMoments(rc.vaeOpt), 'VAE gradient (its AdamW first moment)');
    expect(c.discOpt?.size ?? 0).toBe(rc.discOpt?.size ?? 0);
    if (rc.discOpt?.size) {
      expectClose(firstMoments(c.discOpt!), firstMoments(rc.discOpt), 'discriminator gradient (its AdamW first moment)');
      expectClose(c.disc!, rc.disc!, 'discriminator after its first step (weights, BatchNorm buffers)');
      expect([...firstMoments(rc.discOpt).values()].some((t) => t.data.some((v) => v !== 0))).toBe(true);
    }
    // Not vacuous: the gradients are not all zero.
    expect([...rg.values()].some((t) => t.data.some((v) => v !== 0))).toBe(true);
  });

  it('actors == reference trainer after 20 steps: same losses, loss terms, parameters, EMA, heads and optimiser state', () => {
    const ref = new Trainer(spec, openTrainData(spec));
    const refLogs = Array.from({ length: 20 }, () => ref.trainStep());
    expect(run.logs.map((l) => l.step)).toEqual(refLogs.map((l) => l.step));
    for (const [i, l] of run.logs.entries()) {
      const r = refLogs[i];
      expect(Math.abs(l.loss - r.loss) / Math.abs(r.loss), `loss at step ${l.step}`).toBeLessThanOrEqual(TOL);
      expect(Object.keys(l.terms).sort()).toEqual(Object.keys(r.terms).sort());
      for (const k of Object.keys(r.terms)) expect(Math.abs(l.terms[k] - r.terms[k]), `${k} at step ${l.step}`).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(r.terms[k])));
      expect(Math.abs(l.grad_norm - r.grad_norm) / r.grad_norm, `grad norm at step ${l.step}`).toBeLessThanOrEqual(TOL);
    }
    const c = loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
    const rc = ref.checkpoint();
    expectClose(c.model, rc.model, 'student', KEY_BIAS_TOL);
    expectClose(c.ema, rc.ema, 'EMA teacher', KEY_BIAS_TOL);
    expectClose(c.proj, rc.proj, 'heads');
    expectClose(c.opt, rc.opt, 'AdamW state', KEY_BIAS_TOL);
    expect(c.vae?.size ?? 0).toBe(rc.vae?.size ?? 0);
    if (rc.vae) {
      expectClose(c.vae!, rc.vae, 'REPA-E VAE');
      expectClose(c.vaeOpt!, rc.vaeOpt!, 'REPA-E VAE AdamW state');
      expect(c.state.vaeOptStep).toBe(rc.state.vaeOptStep);
    }
    expect(c.disc?.size ?? 0).toBe(rc.disc?.size ?? 0);
    // Not vacuous: REPA-E's tiny spec trains its VAE with the full loss, discriminator included.
    if (protocol.split('+').includes('repa-e')) expect(rc.disc?.size ?? 0).toBeGreaterThan(0);
    if (rc.disc?.size) {
      expectClose(c.disc!, rc.disc, 'discriminator of the VAE loss (weights, BatchNorm buffers)');
      expectClose(c.discOpt!, rc.discOpt!, 'discriminator AdamW state');
      expect(c.state.discOptStep).toBe(rc.state.discOptStep);
    }
    expect(c.state.rng).toEqual(rc.state.rng);
    expect(c.state.loader).toEqual(rc.state.loader);
  });
});

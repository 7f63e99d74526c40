// REPA-E's gradient routing on actors (REPA-E (github.com/End2End-Diffusion/REPA-E)), read from the message trace of a short run:
// the VAE receives exactly one gradient per step — the alignment loss's ∂(c_vae·L_REPA)/∂z, sent
// by the student after the frozen align-only pass — and never one that carries the diffusion
// loss; the SiT's pass reads z detached (its forward comes with no tape link back to the VAE);
// the projector's VAE-step pass is frozen. With the equivalence test (actors == reference after
// 20 steps, VAE included) and the reference's invariants (test/methods/repae.test.ts), this pins
// down that the VAE's gradient is that of the alignment and regulariser terms alone. With vae_lr 0
// (the frozen-VAE control) the VAE only encodes: no alignment pass, no update message.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { readTraceJsonl } from '../../src/trace/jsonl.ts';
import { expectMessage, expectNoMessage, messagesOf, normalise } from '../../src/trace/assert.ts';
import { tinySpec } from '../actors/specs.ts';
import { Trainer } from '../../src/run/reference.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';

describe('REPA-E on actors: stop-gradient is routing', async () => {
  const spec = tinySpec('repa-e', { train: { ...tinySpec('repa-e').train, steps: 3 } });
  const out = mkdtempSync(path.join(tmpdir(), 'repae-trace-'));
  await runActors({ spec, out, quiet: true, samples: false, trace: true });
  const events = readTraceJsonl(path.join(out, 'trace.jsonl'));

  it('no message carries a diffusion-loss gradient to the VAE', () => {
    expectNoMessage(events, { to: 'vae', gradOf: 'diff' });
    expectNoMessage(events, { to: 'vae', gradOf: 'proj' });
    expectNoMessage(events, { to: 'vae', type: 'backward' });
  });

  it('each step the VAE gets one gradient: the alignment term, for z, from the student', () => {
    for (const step of [1, 2, 3]) {
      const [u] = expectMessage(events, { to: 'vae', kind: 'request', gradOf: 'vae_align', step }, 1);
      expect(u.type).toBe('update');
      expect(u.from).toBe('student');
      const [enc] = expectMessage(events, { from: 'vae', kind: 'reply', type: 'encode', step }, 1);
      const z = enc.tensors.find((t) => t.name === 'z')!;
      expect(u.tensors.map((t) => [t.name, t.shape])).toEqual([['grad', z.shape]]);
    }
  });

  it('the align-only pass runs the frozen projector; the SiT pass reads z with no way back', () => {
    for (const step of [1, 2, 3]) {
      const aligns = messagesOf(events, { to: 'projector', type: 'align', kind: 'request', step });
      expect(aligns).toHaveLength(2);
      const fwd = messagesOf(events, { to: 'student', type: 'forward', kind: 'request', step });
      expect(fwd).toHaveLength(1);
      expect(fwd[0].from).toBe('vae');
      // The only gradient the student gets back for the SiT pass is the projector's, for its hidden state.
      const [bw] = expectMessage(events, { to: 'student', type: 'backward', kind: 'request', step }, 1);
      expect(bw.meta?.grad_of).toEqual(['diff', 'proj']);
    }
  });

  it('step 1: the messages (as a set) and the order the algorithm box fixes', () => {
    const req = events.filter((e) => e.step === 1 && e.kind === 'request');
    const seq = normalise(req, { order: 'canonical' }).map((m) => `${m.from}→${m.to}: ${m.type}`);
    expect(seq).toEqual([
      'coordinator→data: next', 'coordinator→data: release', 'coordinator→encoder: release', 'coordinator→projector: release',
      'coordinator→projector: step', 'coordinator→student: release', 'coordinator→student: step', 'coordinator→teacher: release',
      'coordinator→vae: release', 'data→encoder: features', 'data→vae: encode', 'projector→student: alignBackward',
      'projector→student: backward', 'student→projector: align', 'student→projector: align', 'student→teacher: ema',
      'student→vae: update', 'vae→student: alignForward', 'vae→student: forward',
    ]);
    // Dependencies: the VAE step's chain, then the SiT's; the VAE update may overlap the SiT forward.
    const at = (type: string, to: string, nth = 0) => req.filter((e) => e.type === type && e.to === to)[nth].id;
    const chain = [at('encode', 'vae'), at('alignForward', 'student'), at('align', 'projector', 0), at('alignBackward', 'student'), at('update', 'vae')];
    expect([...chain].sort((a, b) => a - b)).toEqual(chain);
    const sit = [at('alignBackward', 'student'), at('forward', 'student'), at('align', 'projector', 1), at('backward', 'student'), at('step', 'student'), at('ema', 'teacher')];
    expect([...sit].sort((a, b) => a - b)).toEqual(sit);
  });
});

describe('REPA-E with a frozen VAE (vae_lr 0, specs/repa-latent.yaml) on actors: the VAE only encodes', async () => {
  const tiny = tinySpec('repa-e');
  const spec = tinySpec('repa-e', { repa_e: { ...(tiny.repa_e as object), vae_lr: 0 }, train: { ...tiny.train, steps: 4 } });
  const out = mkdtempSync(path.join(tmpdir(), 'repae-frozen-'));
  const run = await runActors({ spec, out, quiet: true, samples: false, trace: true });
  const events = readTraceJsonl(path.join(out, 'trace.jsonl'));

  it('per step: one encode, no alignment pass, no VAE update, one projector align (the SiT\'s)', () => {
    for (const step of [1, 2, 3, 4]) {
      expectMessage(events, { to: 'vae', type: 'encode', kind: 'request', step }, 1);
      expectNoMessage(events, { to: 'vae', type: 'update', step });
      expectNoMessage(events, { to: 'student', type: 'alignForward', step });
      expect(messagesOf(events, { to: 'projector', type: 'align', kind: 'request', step })).toHaveLength(1);
    }
  });

  it('the same steps as the reference trainer, and the VAE is the one it started as', () => {
    const ref = new Trainer(spec, openTrainData(spec));
    const refLogs = Array.from({ length: 4 }, () => ref.trainStep());
    for (const [i, l] of run.logs.entries()) {
      expect(Math.abs(l.loss - refLogs[i].loss) / Math.abs(refLogs[i].loss)).toBeLessThanOrEqual(1e-5);
      expect(Object.keys(l.terms).sort()).toEqual(Object.keys(refLogs[i].terms).sort());
    }
    const c = loadCheckpoint(path.join(out, 'checkpoint.safetensors')), rc = ref.checkpoint();
    for (const [k, t] of rc.model) {
      const a = c.model.get(k)!.data;
      t.data.forEach((v, i) => expect(Math.abs(a[i] - v), `student ${k}[${i}]`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(v))));
    }
    const start = new Trainer(spec, openTrainData(spec)).checkpoint();
    for (const [k, t] of start.vae!) expect(Array.from(c.vae!.get(k)!.data), `vae.${k}`).toEqual(Array.from(t.data));
  });
});

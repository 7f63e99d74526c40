// The training-step harness and benchmark: two harnesses from one seed give bit-identical losses
// and parameters step after step (the determinism the fused kernels promise), the loss falls on
// the fixed batch, the analytic flop count matches a hand count for P1, and the benchmark runs on
// a tiny config and reports the fields, with the PyTorch peer when /usr/bin/python3 has
// torch (the step-by-step protocol, both OpenMP wait policies, the faster one reported; the bf16
// autocast peers; the winners alone afterwards), and the peer's fast SiT computes the reference's
// step.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTrainStep } from '../../src/bench/trainStepCore.ts';
import { benchTrainStep, trainStepFlops } from '../../src/bench/trainStep.ts';
import { sitPreset } from '../../src/models/presets.ts';

describe('train step harness', () => {
  it('is bit-identical run to run and lowers the loss on its fixed batch', () => {
    const cfg = sitPreset('SiT-T/1');
    const a = createTrainStep(cfg, 4, 3), b = createTrainStep(cfg, 4, 3);
    const la: number[] = [], lb: number[] = [];
    for (let i = 0; i < 6; i++) { la.push(a.step()); lb.push(b.step()); }
    expect(lb).toEqual(la);
    const pa = a.model.namedParameters(), pb = new Map(b.model.namedParameters());
    for (const [name, p] of pa) {
      const q = pb.get(name)!;
      expect(Buffer.from(q.data.buffer, q.data.byteOffset, q.data.byteLength).equals(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength)), name).toBe(true);
    }
    for (const [name, t] of a.ema.target) expect(Array.from(t.data), `ema ${name}`).toEqual(Array.from(b.ema.target.get(name)!.data));
    expect(la[5]).toBeLessThan(la[0]);
  });

  it('bf16 harness: bit-identical run to run, losses within 1e-4 relative of fp32 over 6 steps (yet not equal), and benchmark bf16 fields', async () => {
    const cfg = sitPreset('SiT-T/1');
    const f = createTrainStep(cfg, 4, 3), a = createTrainStep(cfg, 4, 3, 'bf16'), b = createTrainStep(cfg, 4, 3, 'bf16');
    const lf: number[] = [], la: number[] = [], lb: number[] = [];
    for (let i = 0; i < 6; i++) { lf.push(f.step()); la.push(a.step()); lb.push(b.step()); }
    expect(lb).toEqual(la);
    // Step 0 matches exactly (adaLN and the final layer start at zero: the output is 0 either way).
    for (let i = 0; i < 6; i++) expect(Math.abs(la[i] - lf[i]) / lf[i]).toBeLessThan(1e-4);
    expect(la.slice(1).some((v, i) => v !== lf[i + 1])).toBe(true);
    expect(la[5]).toBeLessThan(la[0]);
    const r = await benchTrainStep({ json: true, quick: true, noPeer: true, bf16: true, configs: [{ config: 'T', preset: 'SiT-T/1', batch: 2 }] });
    const x = r.results[0];
    expect(x.bf16_times).toHaveLength(3);
    expect(x.bf16_seconds_per_step).toBeGreaterThan(0);
    expect(x.bf16_speedup_vs_fp32).toBeCloseTo(x.seconds_per_step / x.bf16_seconds_per_step!, 6);
    expect(x.bf16_speedup_vs_torch).toBeNull();
  });

  it('counts P1 flops as 3x (6 blocks of qkv/proj/fc1/fc2/adaLN + attention, embedders, final layer)', () => {
    const rows = 64 * 64, d = 192;
    const block = 2 * rows * d * (3 * d + d + 4 * d + 4 * d) + 2 * 64 * d * 6 * d + 4 * 64 * 64 * 64 * d;
    const rest = 2 * rows * 4 * d + 2 * rows * d * 4 + 2 * 64 * (256 * d + d * d + d * 2 * d);
    expect(trainStepFlops(sitPreset('SiT-P1'), 64)).toBe(3 * (6 * block + rest));
  });

  it('benchmark reports seconds per step and samples per second (tiny config, no peer)', async () => {
    const r = await benchTrainStep({ json: true, quick: true, noPeer: true, configs: [{ config: 'T', preset: 'SiT-T/1', batch: 2 }] });
    expect(r.results).toHaveLength(1);
    const x = r.results[0];
    expect(x.config).toBe('T');
    expect(x.seconds_per_step).toBeGreaterThan(0);
    expect(x.samples_per_s).toBeCloseTo(2 / x.seconds_per_step, 6);
    expect(x.steps).toBe(3);
    expect(x.speedup_vs_torch).toBeNull();
    expect(r.env.peer).toBe('not requested');
  });

  const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  it.runIf(hasTorch)('drives the PyTorch peer step by step (tiny config)', async () => {
    const r = await benchTrainStep({ json: true, quick: true, configs: [{ config: 'T', preset: 'SiT-T/1', batch: 2 }] });
    const x = r.results[0];
    expect(x.torch_times.default).toHaveLength(3);
    expect(x.torch_times.passive).toHaveLength(3);
    expect(x.torch_seconds_per_step).toBe(Math.min(x.torch_policy_seconds.default!, x.torch_policy_seconds.passive!));
    expect(x.torch_seconds_per_step).toBeGreaterThan(0);
    expect(x.speedup_vs_torch).toBeCloseTo(x.torch_seconds_per_step! / x.seconds_per_step, 6);
    const peer = r.env.peer as Record<'default' | 'passive', { torch: string; threads: number; blas: { omp_wait_policy: string | null } }>;
    expect(peer.default.torch).toMatch(/^1\.|^2\./);
    expect(peer.default.threads).toBeGreaterThan(0);
    expect(peer.default.blas.omp_wait_policy).toBeNull();
    expect(peer.passive.blas.omp_wait_policy).toBe('PASSIVE');
    // alone right after: the winning fp32 policy's steps, nothing of ours in between
    expect(x.torch_alone_times).toHaveLength(2);
    expect(x.torch_alone_seconds_per_step).toBeCloseTo((x.torch_alone_times[0] + x.torch_alone_times[1]) / 2, 3);
    expect(x.speedup_vs_torch_alone).toBeCloseTo(x.torch_alone_seconds_per_step! / x.seconds_per_step, 6);
    // the bf16 autocast peer: its own pair of policies in the same rotation, and alone
    expect(x.torch_bf16_times.default).toHaveLength(3);
    expect(x.torch_bf16_times.passive).toHaveLength(3);
    expect(x.torch_bf16_seconds_per_step).toBe(Math.min(x.torch_bf16_policy_seconds.default!, x.torch_bf16_policy_seconds.passive!));
    expect(x.speedup_vs_torch_bf16).toBeCloseTo(x.torch_bf16_seconds_per_step! / x.seconds_per_step, 6);
    expect(x.torch_bf16_alone_times).toHaveLength(2);
    const bf16 = r.env.peer_bf16 as Record<'default' | 'passive', { autocast: string; model: string }>;
    expect(bf16.default.autocast).toBe('bf16');
    expect(peer.default).toMatchObject({ autocast: 'none', model: 'fast' });
  }, 300_000);

  it.runIf(hasTorch)("the peer's fast SiT computes the reference's step (output, loss, every gradient)", () => {
    // scripts/torch_train_step_peer.py --check: scripts/torch_sit_fast.py against
    // test/fixtures/sit_reference.py on one set of perturbed weights; exit 1 past 1e-4 relative.
    for (const [preset, batch] of [['SiT-P1', 4], ['SiT-P2', 1]] as const) {
      const r = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('../../scripts/torch_train_step_peer.py', import.meta.url)), '--config', JSON.stringify(sitPreset(preset)), '--batch', String(batch), '--check'], { encoding: 'utf8' });
      expect(r.status, `${preset}: ${r.stdout}${r.stderr}`).toBe(0);
      const d = JSON.parse(r.stdout) as { out: number; loss: number; grad: number; params_with_grad: number };
      expect(d.params_with_grad).toBeGreaterThan(60);
      expect(Math.max(d.out, d.loss, d.grad)).toBeLessThanOrEqual(1e-4);
    }
  }, 300_000);
});

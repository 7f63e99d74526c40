// The training-step benchmark behind `diffactor bench train-step`: seconds per full SiT training
// step (forward, loss, backward, AdamW, EMA; trainStepCore.ts) for the project's configs P1 and P2,
// and of the same step in PyTorch (scripts/torch_train_step_peer.py, run by /usr/bin/python3 when
// it has torch) on the same number of threads. Each peer is a live process driven step by step, and
// ours and its steps alternate one by one (the first mover rotating too), so load from other
// processes on the shared machine hits both alike; each side's time is the median of its timed
// steps after warm-up. Two peers run side by side, OpenMP's default (spinning) wait policy and
// OMP_WAIT_POLICY=PASSIVE: the first is faster on a quiet machine, the second several times faster
// when another job holds a core; the report keeps the faster (a clearly slower one stops after 5
// steps). A second pair of peers runs the same step under torch.autocast('cpu', bfloat16) (PyTorch's
// CPU mixed precision) in the same rotation, reported as its own row. Right after the interleaved
// steps, the fastest fp32 peer and the fastest bf16 peer each run `aloneSteps` more steps alone
// (nothing of ours in between), reported beside the interleaved medians. It measures and prints;
// it asserts nothing.
//
// GFLOP/s uses one analytic count for both sides (matmul and attention products, forward plus
// twice that for the backward), so it is a rate comparison, not a profile.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../kernels/index.ts';
import { loadAddon } from '../kernels/native.ts';
import { sitPreset } from '../models/presets.ts';
import { gridSize, outChannels, type SiTConfig } from '../models/config.ts';
import { createTrainStep } from './trainStepCore.ts';

export interface TrainStepConfig {
  /** Name in the report (P1, P2). */
  config: string;
  /** Model preset (sitPreset name). */
  preset: string;
  batch: number;
}

/** The issue's configs: P1 (latent 4x8x8, patch 1, D 192, depth 6, 3 heads), P2 (1x32x32, patch 2, D 384, depth 12, 6 heads). */
export const TRAIN_STEP_CONFIGS: TrainStepConfig[] = [
  { config: 'P1', preset: 'SiT-P1', batch: 64 },
  { config: 'P2', preset: 'SiT-P2', batch: 16 },
];

export interface TrainStepResult {
  config: string;
  seconds_per_step: number;
  samples_per_s: number;
  batch: number;
  steps: number;
  gflop_per_step: number;
  gflops: number;
  torch_seconds_per_step: number | null;
  torch_samples_per_s: number | null;
  torch_gflops: number | null;
  /** torch seconds / our seconds: above 1 means diffactor is faster. */
  speedup_vs_torch: number | null;
  /** The peer's OpenMP wait policy whose median is reported, and both medians. */
  torch_policy: PeerPolicy | null;
  torch_policy_seconds: Partial<Record<PeerPolicy, number>>;
  /** Every timed step, seconds, in order (ours and the peers' alternate). */
  times: number[];
  torch_times: Partial<Record<PeerPolicy, number[]>>;
  /** The same step with bf16 Linear products (createTrainStep precision 'bf16'), interleaved with
   *  the others; null when not run (no native gemmBf16, or bf16: false). */
  bf16_seconds_per_step?: number | null;
  /** ours fp32 seconds / ours bf16 seconds, and torch fp32 seconds / ours bf16 seconds. */
  bf16_speedup_vs_fp32?: number | null;
  bf16_speedup_vs_torch?: number | null;
  /** torch bf16 autocast seconds / ours bf16 seconds (the issue's "faster than PyTorch bf16 autocast"). */
  bf16_speedup_vs_torch_bf16?: number | null;
  bf16_times?: number[];
  /** The fastest fp32 peer's median over steps run alone right after the interleaved ones. */
  torch_alone_seconds_per_step: number | null;
  torch_alone_times: number[];
  /** torch alone seconds / our (interleaved) seconds. */
  speedup_vs_torch_alone: number | null;
  /** The bf16 autocast peer: interleaved median of its faster policy, and alone. */
  torch_bf16_seconds_per_step: number | null;
  torch_bf16_policy: PeerPolicy | null;
  torch_bf16_policy_seconds: Partial<Record<PeerPolicy, number>>;
  torch_bf16_times: Partial<Record<PeerPolicy, number[]>>;
  torch_bf16_alone_seconds_per_step: number | null;
  torch_bf16_alone_times: number[];
  /** torch bf16 (interleaved) seconds / our seconds. */
  speedup_vs_torch_bf16: number | null;
}

/** OpenMP wait policies the peer runs with: libgomp's default (spin, then sleep) and PASSIVE. */
export type PeerPolicy = 'default' | 'passive';
const POLICIES: PeerPolicy[] = ['default', 'passive'];
/** Rounds after which a clearly slower peer policy stops. */
const PRUNE_AFTER = 5;

export interface TrainStepReport {
  results: TrainStepResult[];
  command: string;
  env: {
    loadavg_start: number[];
    loadavg_end: number[];
    cpus: number;
    cpu: string;
    backend: string;
    isa: string;
    threads: number;
    node: string;
    /** The fp32 peers ({default, passive}: torch, threads, model, BLAS) or why there is none. */
    peer: unknown;
    /** The bf16 autocast peers, likewise. */
    peer_bf16: unknown;
  };
}

/** fp32: the plain step; bf16: the same step under torch.autocast('cpu', dtype=torch.bfloat16). */
export type PeerPrecision = 'fp32' | 'bf16';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const peerScript = path.join(root, 'scripts/torch_train_step_peer.py');
const TORCH_PYTHON = '/usr/bin/python3';
/** Debian's OpenMP build of OpenBLAS (libopenblas0-openmp), the peer's best BLAS here. */
const OPENMP_BLAS_DIR = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

/** Multiply-add flops of one step: forward products, plus 2x for the backward (dX and dW). */
export function trainStepFlops(c: SiTConfig, batch: number): number {
  const t = gridSize(c) ** 2, rows = batch * t, d = c.hiddenSize, hid = d * c.mlpRatio, p2 = c.patchSize ** 2;
  const linear = (r: number, i: number, o: number) => 2 * r * i * o;
  const block = linear(rows, d, 3 * d) + linear(rows, d, d) + linear(rows, d, hid) + linear(rows, hid, d)
    + linear(batch, d, 6 * d) + 4 * batch * t * t * d; // + attention QK^T and PV over all heads
  const fwd = c.depth * block + linear(rows, c.inChannels * p2, d) + linear(rows, d, p2 * outChannels(c))
    + linear(batch, 256, d) + linear(batch, d, d) + linear(batch, d, 2 * d);
  return 3 * fwd;
}

/** The peer with the lowest median step among `group` (undefined when empty). */
function fastestPeer<P extends { times: number[] }>(group: P[]): P | undefined {
  return [...group].sort((a, b) => median(a.times) - median(b.times))[0];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** A running peer process: one JSON object per stdout line, requested by a line on stdin. */
class Peer {
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;
  private stderr = '';

  private constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    createInterface({ input: proc.stdout }).on('line', (l) => this.push(l)).on('close', () => { this.closed = true; this.push(null); });
    proc.stderr.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
    proc.on('error', (e) => { this.stderr += `\n${e.message}`; this.closed = true; this.push(null); });
  }

  private push(l: string | null): void {
    if (this.waiting) { const w = this.waiting; this.waiting = null; w(l); } else if (l !== null) this.lines.push(l);
  }

  /** The next JSON line; throws with the peer's last stderr line when it exits first. */
  async next<T>(): Promise<T> {
    const l = this.lines.shift() ?? (this.closed ? null : await new Promise<string | null>((r) => { this.waiting = r; }));
    if (l === null) throw new Error(`torch peer exited: ${this.stderr.trim().split('\n').pop() ?? ''}`);
    return JSON.parse(l) as T;
  }

  /** Runs one peer step; its seconds. */
  async step(): Promise<number> {
    this.proc.stdin.write('step\n');
    return (await this.next<{ seconds: number }>()).seconds;
  }

  close(): void { if (!this.proc.stdin.writableEnded) this.proc.stdin.end(); }

  /** Starts the peer for one config and waits until it has warmed up; or the reason it cannot run. */
  static async start(cfg: SiTConfig, tc: TrainStepConfig, warmup: number, threads: number, policy: PeerPolicy, precision: PeerPrecision = 'fp32'): Promise<{ peer: Peer; info: unknown } | string> {
    if (!existsSync(TORCH_PYTHON)) return `${TORCH_PYTHON} missing`;
    if (spawnSync(TORCH_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return 'no torch for /usr/bin/python3 (apt install python3-torch)';
    // The peer at its best on this CPU: OpenBLAS's AVX-512 kernels (Debian's 0.3.21 detects the CPU
    // as Prescott otherwise) and the OpenMP build when installed. Only the peer's environment.
    const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OMP_NUM_THREADS: String(threads) };
    if (policy === 'passive') env.OMP_WAIT_POLICY = 'PASSIVE';
    else delete env.OMP_WAIT_POLICY;
    if (existsSync(OPENMP_BLAS_DIR)) env.LD_LIBRARY_PATH = [OPENMP_BLAS_DIR, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
    const args = [peerScript, '--config', JSON.stringify(cfg), '--batch', String(tc.batch), '--warmup', String(warmup), '--threads', String(threads),
      '--autocast', precision === 'bf16' ? 'bf16' : 'none'];
    const peer = new Peer(spawn(TORCH_PYTHON, args, { env, stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      const ready = await peer.next<{ torch: string; threads: number; model: string; autocast: string; cpu_capability: string | null; blas: unknown }>();
      return { peer, info: { python: TORCH_PYTHON, torch: ready.torch, threads: ready.threads, model: ready.model, autocast: ready.autocast, cpu_capability: ready.cpu_capability, blas: ready.blas } };
    } catch (e) {
      return (e as Error).message;
    }
  }
}

export async function benchTrainStep(opts: {
  json: boolean;
  /** 3 timed steps after 1 warm-up (smoke runs). */
  quick?: boolean;
  configs?: TrainStepConfig[];
  /** Leave out the PyTorch peer. */
  noPeer?: boolean;
  /** Also time the bf16 step (default: when the addon has gemmBf16). */
  bf16?: boolean;
  /** Leave out the bf16 autocast peer (the fp32 one still runs). */
  noBf16Peer?: boolean;
  /** Steps each fastest peer runs alone after the interleaved ones (default 10, quick 2). */
  aloneSteps?: number;
}): Promise<TrainStepReport> {
  const withBf16 = opts.bf16 ?? typeof loadAddon().addon?.gemmBf16 === 'function';
  const configs = opts.configs ?? TRAIN_STEP_CONFIGS;
  // >= 20 timed steps per side after 3 warm-up steps (quick: 3 after 1).
  const steps = opts.quick ? 3 : 20, warmup = opts.quick ? 1 : 3;
  const aloneSteps = opts.aloneSteps ?? (opts.quick ? 2 : 10);
  const precisions: PeerPrecision[] = opts.noPeer ? [] : opts.noBf16Peer ? ['fp32'] : ['fp32', 'bf16'];
  const threads = Math.max(1, backendInfo.threads || os.cpus().length);
  const log = (s: string) => { if (!opts.json) process.stderr.write(s); };
  const loadStart = os.loadavg();
  let peerInfo: unknown = opts.noPeer ? 'not requested' : 'not run';
  let peerBf16Info: unknown = opts.noPeer || opts.noBf16Peer ? 'not requested' : 'not run';
  const results: TrainStepResult[] = [];

  for (const tc of configs) {
    const cfg = sitPreset(tc.preset);
    const flops = trainStepFlops(cfg, tc.batch);
    log(`train step ${tc.config} (${tc.preset}, batch ${tc.batch}) `);
    const peers: { precision: PeerPrecision; policy: PeerPolicy; peer: Peer; times: number[] }[] = [];
    for (const precision of precisions) {
      for (const policy of POLICIES) {
        const started = await Peer.start(cfg, tc, warmup, threads, policy, precision);
        const prev = precision === 'fp32' ? peerInfo : peerBf16Info;
        const info = typeof started === 'string' ? started
          : { ...(typeof prev === 'object' && prev !== null ? prev : {}), [policy]: started.info };
        if (precision === 'fp32') peerInfo = info; else peerBf16Info = info;
        if (typeof started !== 'string') peers.push({ precision, policy, peer: started.peer, times: [] });
      }
    }
    const harness = createTrainStep(cfg, tc.batch, 0);
    for (let i = 0; i < warmup; i++) harness.step();
    const ours: number[] = [];
    const half = withBf16 ? createTrainStep(cfg, tc.batch, 0, 'bf16') : null;
    if (half) for (let i = 0; i < warmup; i++) half.step();
    const halfTimes: number[] = [];
    const aloneTimes: Partial<Record<PeerPrecision, number[]>> = {};
    // One round: ours and each live peer once, the order rotating from round to round. After
    // PRUNE_AFTER rounds a peer more than 1.5x slower than the best one of its precision stops
    // (under load the spinning policy can take 30 s a step; the winner still gets every step).
    const live = new Set(peers);
    const runners: (() => Promise<void>)[] = [
      async () => {
        const t0 = performance.now();
        harness.step();
        ours.push((performance.now() - t0) / 1000);
      },
      ...peers.map((p) => async () => { if (live.has(p)) p.times.push(await p.peer.step()); }),
      ...(half ? [async () => {
        const t0 = performance.now();
        half.step();
        halfTimes.push((performance.now() - t0) / 1000);
      }] : []),
    ];
    try {
      for (let i = 0; i < steps; i++) {
        for (let j = 0; j < runners.length; j++) await runners[(i + j) % runners.length]();
        if (i + 1 === PRUNE_AFTER) {
          for (const precision of precisions) {
            const group = peers.filter((p) => p.precision === precision);
            if (group.length < 2) continue;
            const fastest = Math.min(...group.map((p) => median(p.times)));
            for (const p of group) if (median(p.times) > 1.5 * fastest) { live.delete(p); p.peer.close(); }
          }
        }
        if (i % 5 === 4) log('.');
      }
      // Alone, right after: the fastest peer of each precision, nothing of ours in between.
      for (const precision of precisions) {
        const winner = fastestPeer(peers.filter((p) => p.precision === precision));
        if (!winner) continue;
        const alone: number[] = [];
        for (let i = 0; i < aloneSteps; i++) alone.push(await winner.peer.step());
        aloneTimes[precision] = alone;
      }
    } finally {
      for (const p of peers) p.peer.close();
    }
    const s = median(ours);
    const best = fastestPeer(peers.filter((p) => p.precision === 'fp32'));
    const bestBf16 = fastestPeer(peers.filter((p) => p.precision === 'bf16'));
    const ts = best ? median(best.times) : null, tb = bestBf16 ? median(bestBf16.times) : null;
    const alone = aloneTimes.fp32 ?? [], aloneBf16 = aloneTimes.bf16 ?? [];
    const ta = alone.length ? median(alone) : null;
    const of = (precision: PeerPrecision, f: (p: (typeof peers)[number]) => unknown) =>
      Object.fromEntries(peers.filter((p) => p.precision === precision).map((p) => [p.policy, f(p)]));
    results.push({
      config: tc.config, seconds_per_step: s, samples_per_s: tc.batch / s, batch: tc.batch, steps: ours.length,
      gflop_per_step: flops / 1e9, gflops: flops / s / 1e9,
      torch_seconds_per_step: ts, torch_samples_per_s: ts ? tc.batch / ts : null, torch_gflops: ts ? flops / ts / 1e9 : null,
      speedup_vs_torch: ts ? ts / s : null,
      torch_policy: best?.policy ?? null,
      torch_policy_seconds: of('fp32', (p) => median(p.times)),
      times: ours.map((t) => +t.toFixed(4)),
      torch_times: of('fp32', (p) => p.times.map((t) => +t.toFixed(4))),
      torch_alone_seconds_per_step: ta,
      torch_alone_times: alone.map((t) => +t.toFixed(4)),
      speedup_vs_torch_alone: ta ? ta / s : null,
      torch_bf16_seconds_per_step: tb,
      torch_bf16_policy: bestBf16?.policy ?? null,
      torch_bf16_policy_seconds: of('bf16', (p) => median(p.times)),
      torch_bf16_times: of('bf16', (p) => p.times.map((t) => +t.toFixed(4))),
      torch_bf16_alone_seconds_per_step: aloneBf16.length ? median(aloneBf16) : null,
      torch_bf16_alone_times: aloneBf16.map((t) => +t.toFixed(4)),
      speedup_vs_torch_bf16: tb ? tb / s : null,
      ...(half ? {
        bf16_seconds_per_step: median(halfTimes), bf16_speedup_vs_fp32: s / median(halfTimes),
        bf16_speedup_vs_torch: ts ? ts / median(halfTimes) : null, bf16_speedup_vs_torch_bf16: tb ? tb / median(halfTimes) : null,
        bf16_times: halfTimes.map((t) => +t.toFixed(4)),
      } : {}),
    });
    log(` ${s.toFixed(3)} s/step${ts && best ? `, torch ${ts.toFixed(3)} s/step (${best.policy} wait policy; x${(ts / s).toFixed(2)}; alone ${ta?.toFixed(3)})` : ''}`
      + `${tb && bestBf16 ? `, torch bf16 ${tb.toFixed(3)} s/step (x${(tb / s).toFixed(2)})` : ''}\n`);
  }
  // A torch peer on the reference BLAS (no OpenBLAS installed: libblas3 alone) runs its matmuls
  // ~50x slower (measured: 1024^3 in 1.4 s); such a peer is no peer: say so loudly.
  const blasOf = (info: unknown) => Object.values(typeof info === 'object' && info !== null ? info : {})
    .map((i) => (i as { blas?: { library?: string | null } }).blas?.library ?? null);
  if (!opts.noPeer && [...blasOf(peerInfo), ...blasOf(peerBf16Info)].some((l) => !l || !l.includes('openblas'))) {
    process.stderr.write('warning: the PyTorch peer runs without OpenBLAS (reference BLAS): its times are not a fair peer; apt-get install libopenblas0-openmp\n');
  }
  const report: TrainStepReport = {
    results,
    command: `npx diffactor bench train-step${opts.json ? ' --json' : ''}${opts.quick ? ' --quick' : ''}`,
    env: {
      loadavg_start: loadStart, loadavg_end: os.loadavg(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown',
      backend: backendInfo.backend, isa: backendInfo.isa, threads, node: process.version, peer: peerInfo, peer_bf16: peerBf16Info,
    },
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printTrainStepTable(report);
  return report;
}

/** Markdown table: one row per config, ours and PyTorch side by side. */
export function printTrainStepTable(r: TrainStepReport, write: (s: string) => void = (s) => process.stdout.write(s)): void {
  const f = (v: number | null, digits: number) => (v === null ? 'n/a' : v.toFixed(digits));
  write('| config | batch | diffactor s/step | diffactor samples/s | PyTorch s/step | PyTorch samples/s | speedup (torch s / ours s) | GFLOP/s ours / torch | PyTorch alone s/step | speedup vs alone | PyTorch bf16 autocast s/step | speedup vs bf16 | PyTorch bf16 alone s/step |\n');
  write('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const x of r.results) {
    write(`| ${x.config} | ${x.batch} | ${f(x.seconds_per_step, 3)} | ${f(x.samples_per_s, 1)} | ${f(x.torch_seconds_per_step, 3)} | ${f(x.torch_samples_per_s, 1)} | ${f(x.speedup_vs_torch, 2)} | ${f(x.gflops, 0)} / ${f(x.torch_gflops, 0)}`
      + ` | ${f(x.torch_alone_seconds_per_step, 3)} | ${f(x.speedup_vs_torch_alone, 2)} | ${f(x.torch_bf16_seconds_per_step, 3)} | ${f(x.speedup_vs_torch_bf16, 2)} | ${f(x.torch_bf16_alone_seconds_per_step, 3)} |\n`);
  }
  if (r.results.some((x) => x.bf16_seconds_per_step != null)) {
    write('\n| config | bf16 s/step | fp32 s / bf16 s | torch fp32 s / bf16 s | torch bf16 autocast s / bf16 s |\n| --- | ---: | ---: | ---: | ---: |\n');
    for (const x of r.results) {
      write(`| ${x.config} | ${f(x.bf16_seconds_per_step ?? null, 3)} | ${f(x.bf16_speedup_vs_fp32 ?? null, 2)} | ${f(x.bf16_speedup_vs_torch ?? null, 2)} | ${f(x.bf16_speedup_vs_torch_bf16 ?? null, 2)} |\n`);
    }
  }
  const policies = r.results.map((x) => `${x.config}: ${x.torch_policy ?? 'n/a'} / bf16 ${x.torch_bf16_policy ?? 'n/a'}`).join(', ');
  write(`\nPyTorch OpenMP wait policy reported (the faster of default and PASSIVE; fp32 / bf16): ${policies}\n`);
  write(`load average ${r.env.loadavg_start.map((v) => v.toFixed(2)).join(' ')} (start), ${r.env.loadavg_end.map((v) => v.toFixed(2)).join(' ')} (end); ${r.env.cpus} cpus; ${r.env.backend} ${r.env.isa}, ${r.env.threads} threads\n`);
}

// Device profiles for `diffactor simulate`'s roofline: peak FLOP/s per precision, memory
// bandwidth, and the link a ring all-reduce crosses. The GPU numbers are the vendors' data-sheet
// figures (dense, no structured sparsity), cited per profile; the CPU profile is measured here, at
// run time, with the native SGEMM and a large copy (so it carries whatever load the machine has).
// Not here: the roofline itself (simulate.ts).
import { K } from '../kernels/index.ts';
import { backendInfo } from '../kernels/index.ts';

export type Precision = 'fp32' | 'tf32' | 'bf16';

export interface DeviceProfile {
  name: string;
  /** Where the numbers come from. */
  source: string;
  /** Peak FLOP/s of matrix products (gemm, attention) per precision. */
  matmul: Partial<Record<Precision, number>>;
  /** Peak FLOP/s of everything else (vector units, fp32). */
  vector: number;
  /** Memory bandwidth, bytes/s. */
  memory: number;
  /** Link between replicas for the gradient all-reduce: bytes/s one way per GPU, and latency per hop, s. */
  link: { bandwidth: number; latency: number; source: string };
  /** Beyond `perNode` replicas the ring crosses nodes: each GPU's network link, bytes/s one way, and latency. */
  network?: { perNode: number; bandwidth: number; latency: number; source: string };
  /** Precision simulate uses by default. */
  precision: Precision;
}

const T = 1e12, G = 1e9;

/**
 * NVIDIA A100 80GB SXM. "NVIDIA A100 Tensor Core GPU" data sheet (nvidia.com, 1758950-r4, Jun
 * 2021): FP32 19.5 TFLOPS, TF32 156, BF16 312 (dense), HBM2e 2,039 GB/s, NVLink 600 GB/s
 * (both directions: 300 GB/s each way).
 */
export const A100: DeviceProfile = {
  name: 'a100',
  source: 'NVIDIA A100 Tensor Core GPU data sheet (A100 80GB SXM; dense)',
  matmul: { fp32: 19.5 * T, tf32: 156 * T, bf16: 312 * T },
  vector: 19.5 * T,
  memory: 2039 * G,
  link: { bandwidth: 300 * G, latency: 5e-6, source: 'NVLink 3: 600 GB/s bidirectional per GPU (data sheet); 5 µs per hop assumed' },
  network: { perNode: 8, bandwidth: 25 * G, latency: 10e-6, source: 'DGX A100 data sheet: one 200 Gb/s HDR InfiniBand port per GPU; 10 µs per hop assumed' },
  precision: 'bf16',
};

/**
 * NVIDIA H100 SXM5 80GB. "NVIDIA H100 Tensor Core GPU" data sheet (nvidia.com, 2023): FP32 67
 * TFLOPS, TF32 989 and BF16 1,979 TFLOPS *with sparsity* (dense: half), HBM3 3.35 TB/s, NVLink
 * 900 GB/s (450 GB/s each way).
 */
export const H100: DeviceProfile = {
  name: 'h100',
  source: 'NVIDIA H100 Tensor Core GPU data sheet (H100 SXM; dense = half the sparsity figures)',
  matmul: { fp32: 67 * T, tf32: 494.5 * T, bf16: 989.5 * T },
  vector: 67 * T,
  memory: 3350 * G,
  link: { bandwidth: 450 * G, latency: 5e-6, source: 'NVLink 4: 900 GB/s bidirectional per GPU (data sheet); 5 µs per hop assumed' },
  network: { perNode: 8, bandwidth: 50 * G, latency: 10e-6, source: 'DGX H100 data sheet: one 400 Gb/s NDR InfiniBand port per GPU; 10 µs per hop assumed' },
  precision: 'bf16',
};

/** Best of `reps` timings of fn, seconds. */
function best(fn: () => void, reps: number): number {
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

/**
 * This machine, measured now: the native SGEMM's rate on 512³ (as `bench gemm` measures it, best of
 * a few) for matrix products and vector work alike, and the bandwidth of a 64 MB copy. Replicas of
 * a CPU run would talk over shared memory: the copy bandwidth, 1 µs per hop.
 */
export function measureCpu(): DeviceProfile {
  const n = 512;
  const a = new Float32Array(n * n).fill(1), b = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
  const gemm = () => K.gemm({ transA: false, transB: false, m: n, n, k: n, a, lda: n, b, ldb: n, c, ldc: n });
  gemm();
  const flops = (2 * n * n * n) / best(gemm, 8);
  const len = 16 * 2 ** 20, src = new Float32Array(len).fill(1), dst = new Float32Array(len);
  const bw = (2 * 4 * len) / best(() => dst.set(src), 5);
  return {
    name: 'cpu',
    source: `this machine, measured at start: ${backendInfo.backend} SGEMM 512³ ${(flops / G).toFixed(1)} GFLOP/s (${backendInfo.isa}, ${backendInfo.threads} threads), 64 MB copy ${(bw / G).toFixed(1)} GB/s — under whatever load shares the cores`,
    matmul: { fp32: flops },
    vector: flops,
    memory: bw,
    link: { bandwidth: bw, latency: 1e-6, source: 'shared memory (the copy bandwidth)' },
    precision: 'fp32',
  };
}

export const DEVICE_NAMES = ['cpu', 'a100', 'h100'] as const;

export function deviceProfile(name: string): DeviceProfile {
  if (name === 'a100') return A100;
  if (name === 'h100') return H100;
  if (name === 'cpu') return measureCpu();
  throw new Error(`--device: unknown device '${name}'; known: ${DEVICE_NAMES.join(', ')}`);
}

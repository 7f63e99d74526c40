// Every native GEMM path of this CPU, for tests that must hold on each: the fp32 GEMM on every ISA
// from the best down (setIsa), and the bf16 GEMM with VDPBF16PS (when the CPU has it) and emulated
// on each ISA. onPath switches the addon (process-wide) for the call and switches back.
import { loadAddon, type NativeAddon } from '../../src/kernels/native.ts';

const { addon } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
export type Isa = (typeof ISAS)[number];
const best = addon?.isa() as Isa | undefined;
const hasBf16 = typeof addon?.gemmBf16 === 'function';

export interface Path { name: string; fn: 'gemm' | 'gemmBf16'; isa: Isa; dot: boolean }
export function allPaths(nat: NativeAddon): Path[] {
  const isas = ISAS.slice(ISAS.indexOf(best!));
  const out: Path[] = isas.map((isa) => ({ name: `fp32 ${isa}`, fn: 'gemm', isa, dot: false }));
  if (!hasBf16) return out;
  nat.setIsa(best!);
  let dot = false;
  try { dot = nat.setBf16Dot!(true) === 'avx512bf16'; } catch { dot = false; }
  if (dot) out.push({ name: 'bf16 avx512bf16', fn: 'gemmBf16', isa: 'avx512', dot: true });
  for (const isa of isas) out.push({ name: `bf16 emulated on ${isa}`, fn: 'gemmBf16', isa, dot: false });
  return out;
}
export function onPath<T>(nat: NativeAddon, p: Path, fn: () => T): T {
  nat.setIsa(p.isa);
  if (hasBf16) nat.setBf16Dot!(p.dot);
  try {
    return fn();
  } finally {
    nat.setIsa(best!);
    if (hasBf16) try { nat.setBf16Dot!(true); } catch { /* no AVX512_BF16: stays emulated */ }
  }
}


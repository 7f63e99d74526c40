// `diffactor bench <what>`: runs a benchmark from src/bench and prints a table or one JSON object.
// Benchmarks time kernels against a peer (numpy/OpenBLAS, PyTorch) measured in the same run.
export async function bench(what: string, o: { json?: boolean; quick?: boolean }): Promise<void> {
  if (what === 'gemm') {
    const { benchGemm } = await import('../bench/gemm.ts');
    const { nativeKernels } = await import('../kernels/index.ts');
    const { loadAddon } = await import('../kernels/native.ts');
    const bf16 = typeof loadAddon().addon?.gemmBf16 === 'function';
    await benchGemm({ backends: nativeKernels ? ['native', ...(bf16 ? ['bf16' as const] : []), 'js'] : ['js'], json: !!o.json, quick: o.quick });
    return;
  }
  if (what === 'attention') {
    const { benchAttention } = await import('../bench/attention.ts');
    await benchAttention({ json: !!o.json, quick: o.quick });
    return;
  }
  if (what === 'train-step') {
    const { benchTrainStep } = await import('../bench/trainStep.ts');
    await benchTrainStep({ json: !!o.json, quick: o.quick });
    return;
  }
  if (what === 'actors') {
    const { benchActors } = await import('../bench/actors.ts');
    await benchActors({ json: !!o.json, quick: o.quick });
    return;
  }
  if (what === 'memory') {
    const { benchMemory } = await import('../bench/memory.ts');
    await benchMemory({ json: !!o.json, quick: o.quick });
    return;
  }
  throw new Error(`bench: unknown benchmark '${what}'`);
}

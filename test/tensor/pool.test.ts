import { describe, expect, it } from 'vitest';
import { empty, tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { clearPool, poolStats, setPoolLimit, untracked } from '../../src/tensor/pool.ts';
import { hasSharedMemory } from '../../src/tensor/sab.ts';
import { add, mul, reshape, backward } from '../../src/autograd/index.ts';

describe('storage', () => {
  it('lives in a SharedArrayBuffer', () => {
    expect(hasSharedMemory).toBe(true);
    expect(empty([3, 4]).buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('rejects data that does not fill the shape, naming both', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
  });

  it('a frozen tensor refuses writes through the in-place API', () => {
    const t = tensor([1, 2]).freeze();
    expect(() => t.assertWritable('fill')).toThrow(/frozen/);
  });
});

describe('tidy and the buffer pool', () => {
  it('frees intermediates, keeps the result, and disposes released tensors loudly', () => {
    let inner!: ReturnType<typeof empty>;
    const out = tidy(() => {
      inner = add(tensor([1, 2]), 1);
      return mul(inner, 2);
    });
    expect(out.toArray()).toEqual([4, 6]);
    expect(inner.disposed).toBe(true);
    expect(inner.data.length).toBe(0);
  });

  it('a view kept alive keeps its base storage', () => {
    const out = tidy(() => reshape(add(tensor([1, 2, 3, 4]), 0), [2, 2]));
    expect(out.toArray()).toEqual([1, 2, 3, 4]);
  });

  it('never recycles storage of tensors made outside any scope (parameters)', () => {
    const p = untracked(() => tensor([1, 2, 3]));
    tidy(() => { reshape(p, [3, 1]); });
    expect(p.disposed).toBe(false);
    expect(p.toArray()).toEqual([1, 2, 3]);
  });

  it('a training-like loop allocates no new SharedArrayBuffers after warm-up', () => {
    const w = untracked(() => tensor([0.5, -0.25, 2, 1], [2, 2]).requireGrad());
    const step = () => tidy(() => {
      const x = tensor([1, 2, 3, 4], [2, 2]);
      const y = mul(add(mul(x, w), w), x);
      backward([[y, tensor([1, 1, 1, 1], [2, 2])]]);
    });
    step(); step();
    const before = poolStats().created;
    for (let i = 0; i < 50; i++) step();
    expect(poolStats().created).toBe(before);
    // 50 steps of dL/dw = x*x + x accumulated (grad accumulation on a leaf)
    expect(Array.from(w.grad!.data)).toEqual([1 + 1, 4 + 2, 9 + 3, 16 + 4].map((v) => v * 52));
  });
});

describe('pool bound', () => {
  it('keeps at most its bound of free bytes, dropping the longest-unused buffers first; recent ones are still reused', () => {
    clearPool();
    setPoolLimit(64 * 1024);
    try {
      // Work whose shapes change every call (autoregressive sampling): 40 distinct sizes of 4–8 KB.
      const sizes = Array.from({ length: 40 }, (_, i) => 1024 + 32 * i); // float32 elements
      for (const n of sizes) tidy(() => { empty([n]); });
      const s = poolStats();
      expect(s.freeBytes).toBeLessThanOrEqual(64 * 1024);
      expect(s.evicted).toBeGreaterThan(0);
      // The newest size is still pooled, the oldest was dropped.
      const created = poolStats().created;
      tidy(() => { empty([sizes.at(-1)!]); });
      expect(poolStats().created).toBe(created);
      tidy(() => { empty([sizes[0]]); });
      expect(poolStats().created).toBe(created + 1);
      // A steady step within the bound reuses its buffers and evicts nothing.
      tidy(() => { empty([2048]); empty([2048]); }); // its first release makes room by eviction
      const steady = poolStats();
      for (let k = 0; k < 5; k++) tidy(() => { empty([2048]); empty([2048]); });
      expect(poolStats().evicted).toBe(steady.evicted);
      expect(poolStats().created).toBe(steady.created);
    } finally {
      setPoolLimit(4 * 2 ** 30);
      clearPool();
    }
  });
});

// `binary` (broadcast add/sub/mul/div over 4 strided dims): the TypeScript reference against a
// naive per-element loop over explicit multi-indices, and the native kernel against the reference
// on every SIMD path this CPU has. Every element is one IEEE operation, so native and reference
// agree exactly (float64 reference rounded once to float32 is the correctly rounded float32 result
// for +, -, *; division is compared with a 1-ulp tolerance); the 16K-element task split and any
// thread count give bit-identical results (checked in a one-thread child process).
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { binary } from '../../src/kernels/js/binary.ts';
import { BinOp, type BinOpCode } from '../../src/kernels/types.ts';
import { loadAddon, addonPath } from '../../src/kernels/native.ts';
import { expectClose, fillRandom } from './expectClose.ts';

const { addon, reason } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const best = addon?.isa() as Isa | undefined;
const paths: Isa[] = addon && best ? ISAS.slice(ISAS.indexOf(best)) : [];
const nat = addon as unknown as { binary: typeof binary };

const OPS: [string, BinOpCode, (x: number, y: number) => number][] = [
  ['add', BinOp.add, (x, y) => x + y], ['sub', BinOp.sub, (x, y) => x - y],
  ['mul', BinOp.mul, (x, y) => x * y], ['div', BinOp.div, (x, y) => x / y],
];

/** A 4-d case: shape, and per operand a stride per dim (0 = broadcast, else a contiguous layout over its non-broadcast dims, possibly transposed). */
interface Case { shape: number[]; sa: number[]; sb: number[]; lenA: number; lenB: number }

const layout = (shape: number[], keep: boolean[], perm: readonly number[]): { strides: number[]; len: number } => {
  const strides = [0, 0, 0, 0];
  let acc = 1;
  for (const d of perm) if (keep[d] && shape[d] > 1) { strides[d] = acc; acc *= shape[d]; }
  return { strides, len: acc };
};

const caseArb: fc.Arbitrary<Case> = fc.tuple(
  fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 4, maxLength: 4 }),
  fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  fc.constantFrom([3, 2, 1, 0], [0, 1, 2, 3], [2, 3, 1, 0], [3, 1, 2, 0]),
).map(([shape, ka, kb, perm]) => {
  const a = layout(shape, ka, [3, 2, 1, 0]), b = layout(shape, kb, perm);
  return { shape, sa: a.strides, sb: b.strides, lenA: a.len, lenB: b.len };
});

function naive(op: (x: number, y: number) => number, a: ArrayLike<number>, b: ArrayLike<number>, c: Case): Float64Array {
  const [n0, n1, n2, n3] = c.shape;
  const out = new Float64Array(n0 * n1 * n2 * n3);
  let o = 0;
  for (let i = 0; i < n0; i++) for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++) for (let l = 0; l < n3; l++) {
    const ia = i * c.sa[0] + j * c.sa[1] + k * c.sa[2] + l * c.sa[3], ib = i * c.sb[0] + j * c.sb[1] + k * c.sb[2] + l * c.sb[3];
    out[o++] = op(a[ia], b[ib]);
  }
  return out;
}

const size = (c: Case) => c.shape.reduce((p, d) => p * d, 1);

describe('binary reference', () => {
  it('equals a per-element loop over multi-indices (float64), every op', () => {
    fc.assert(fc.property(caseArb, fc.nat(1e6), (c, seed) => {
      const a = fillRandom(new Float64Array(c.lenA), seed, 0.5, 2), b = fillRandom(new Float64Array(c.lenB), seed + 1, 0.5, 2);
      for (const [name, code, f] of OPS) {
        const out = new Float64Array(size(c)).fill(NaN);
        binary(code, a, b, out, c.shape, c.sa, c.sb);
        expectClose(`js ${name} ${JSON.stringify(c)}`, out, naive(f, a, b, c), 0, 0);
      }
    }), { seed: 5, numRuns: 40 });
  });

  it('runs in place (out = a)', () => {
    const a = Float64Array.from([1, 2, 3, 4, 5, 6]), b = Float64Array.from([10, 20, 30]);
    binary(BinOp.add, a, b, a, [1, 1, 2, 3], [0, 0, 3, 1], [0, 0, 0, 1]);
    expect(Array.from(a)).toEqual([11, 22, 33, 14, 25, 36]);
  });
});

describe.runIf(addon !== null)(`binary native (addon: ${reason ?? 'loaded'})`, () => {
  afterAll(() => { if (best) addon!.setIsa(best); });

  for (const isa of paths) {
    it(`isa ${isa}: equals the reference on random broadcasts, incl. > 16K elements (several tasks)`, () => {
      expect(addon!.setIsa(isa)).toBe(isa);
      const big: Case = { shape: [3, 70, 5, 33], sa: [70 * 5 * 33, 5 * 33, 33, 1], sb: [33, 0, 0, 1], lenA: 3 * 70 * 5 * 33, lenB: 3 * 33 };
      const run = (c: Case, seed: number) => {
        const a = fillRandom(new Float32Array(c.lenA), seed, 0.5, 2), b = fillRandom(new Float32Array(c.lenB), seed + 1, -2, -0.5);
        for (const [name, code] of OPS) {
          const out = new Float32Array(size(c)).fill(NaN), ref = new Float64Array(size(c));
          nat.binary(code, a, b, out, c.shape, c.sa, c.sb);
          binary(code, Float64Array.from(a), Float64Array.from(b), ref, c.shape, c.sa, c.sb);
          const rounded = Float32Array.from(ref);
          expectClose(`${isa} ${name} ${JSON.stringify(c.shape)}`, out, rounded, 0, code === BinOp.div ? 1.2e-7 : 0);
        }
      };
      run(big, 11);
      fc.assert(fc.property(caseArb, fc.nat(1e6), (c, seed) => run(c, seed)), { seed: 6, numRuns: 30 });
    });
  }

  it('in place on a large array, and argument errors name the argument', () => {
    const n = 40000, a = fillRandom(new Float32Array(n), 3), b = fillRandom(new Float32Array(n), 4), ref = new Float32Array(n);
    for (let i = 0; i < n; i++) ref[i] = a[i] + b[i];
    nat.binary(BinOp.add, a, b, a, [1, 1, 1, n], [0, 0, 0, 1], [0, 0, 0, 1]);
    expectClose('in place', a, ref, 0, 0);
    const x = new Float32Array(8);
    expect(() => nat.binary(BinOp.add, x, x, x, [1, 1, 2, 5], [0, 0, 4, 1], [0, 0, 4, 1])).toThrow(/binary: argument 'a' is too short/);
    expect(() => nat.binary(BinOp.add, x, x, new Float32Array(4), [1, 1, 1, 8], [0, 0, 0, 1], [0, 0, 0, 1])).toThrow(/argument 'out' is too short/);
    expect(() => nat.binary(7 as BinOpCode, x, x, x, [1, 1, 1, 8], [0, 0, 0, 1], [0, 0, 0, 1])).toThrow(/argument 'op'/);
    expect(() => nat.binary(BinOp.add, x, x, x, [1, 1, 8], [0, 0, 1], [0, 0, 1])).toThrow(/argument 'shape' must have exactly 4 entries/);
  });

  it('bit-identical with a one-thread pool (child process)', () => {
    const script = `
      const a = require(${JSON.stringify(addonPath)});
      const n0 = 7, n3 = 9000, x = new Float32Array(n0 * n3), y = new Float32Array(n3), o = new Float32Array(n0 * n3);
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 3; for (let i = 0; i < n3; i++) y[i] = Math.cos(i) + 2;
      a.binary(3, x, y, o, [1, 1, n0, n3], [0, 0, n3, 1], [0, 0, 0, 1]);
      let s = 0; const u = new Uint32Array(o.buffer); for (let i = 0; i < u.length; i++) s = (Math.imul(s, 31) + u[i]) >>> 0;
      console.log(s);`;
    const run = (threads: string) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, DIFFACTOR_THREADS: threads }, encoding: 'utf8' }).stdout.trim();
    const one = run('1');
    expect(one).toMatch(/^\d+$/);
    expect(run('2')).toBe(one);
  });
});

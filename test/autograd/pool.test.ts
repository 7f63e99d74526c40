import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck } from '../../src/autograd/index.ts';
import { avgPool2d, upsampleNearest, upsampleBilinear } from '../../src/autograd/ops/pool.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const seedArb = fc.integer({ min: 0, max: 10_000 });
const imgArb = fc.record({
  n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 7 }), w: fc.integer({ min: 1, max: 7 }), seed: seedArb,
});

function check(r: { ok: boolean; message: string }): void {
  expect(r.ok, r.message).toBe(true);
}

const at = (x: Tensor, p: number, y: number, xx: number): number => x.data[(p * x.shape[2] + y) * x.shape[3] + xx];

describe('avgPool2d', () => {
  it('matches windowed means with padding counted in the divisor; gradcheck', () => {
    fc.assert(fc.property(imgArb, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1 }),
      ({ n, c, h, w, seed }, kh, kw, s, pad) => {
        const ph = Math.min(pad, Math.floor(kh / 2)), pw = Math.min(pad, Math.floor(kw / 2));
        fc.pre(h + 2 * ph >= kh && w + 2 * pw >= kw);
        const x = new Rng(seed).normal([n, c, h, w], 0, 1, 'float64');
        const y = avgPool2d(x, [kh, kw], s, [ph, pw]);
        const oh = Math.floor((h + 2 * ph - kh) / s) + 1, ow = Math.floor((w + 2 * pw - kw) / s) + 1;
        expect(y.shape).toEqual([n, c, oh, ow]);
        const ref: number[] = [];
        for (let p = 0; p < n * c; p++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) {
          let sum = 0;
          for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
            const iy = oy * s - ph + i, ix = ox * s - pw + j;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) sum += at(x, p, iy, ix);
          }
          ref.push(sum / (kh * kw));
        }
        expectClose('avgPool2d', y.data, ref, 1e-12, 1e-10);
        check(gradcheck((a) => avgPool2d(a, [kh, kw], s, [ph, pw]), [x]));
      }), { numRuns: 25, seed: 31 });
  });

  it('stride defaults to the kernel', () => {
    const y = avgPool2d(tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]), 2);
    expect(y.toArray()).toEqual([3.5, 5.5, 11.5, 13.5]);
  });
});

describe('upsampleNearest', () => {
  it('repeats each pixel into an s x s block; the gradient sums the block; gradcheck', () => {
    fc.assert(fc.property(imgArb, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), ({ n, c, h, w, seed }, fh, fw) => {
      const x = new Rng(seed).normal([n, c, h, w], 0, 1, 'float64');
      const y = upsampleNearest(x, [fh, fw]);
      expect(y.shape).toEqual([n, c, h * fh, w * fw]);
      const ref: number[] = [];
      for (let p = 0; p < n * c; p++) for (let oy = 0; oy < h * fh; oy++) for (let ox = 0; ox < w * fw; ox++) {
        ref.push(at(x, p, Math.floor((oy * h) / (h * fh)), Math.floor((ox * w) / (w * fw))));
      }
      expectClose('upsampleNearest', y.data, ref, 0, 0);
      check(gradcheck((a) => upsampleNearest(a, [fh, fw]), [x]));
    }), { numRuns: 20, seed: 37 });
  });

  it('the torch.nn.Upsample documentation example', () => {
    expect(upsampleNearest(tensor([1, 2, 3, 4], [1, 1, 2, 2]), 2).toArray()).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });
});

/** PyTorch's bilinear rule written per output pixel: source coordinate, clamp, four neighbours. */
function naiveBilinear(x: Tensor, oh: number, ow: number, ac: boolean, scale: [number, number] | null): number[] {
  const [n, c, h, w] = x.shape;
  const coord = (o: number, inS: number, outS: number, s: number | null): number => {
    if (inS === outS) return o;
    if (ac) return outS > 1 ? (o * (inS - 1)) / (outS - 1) : 0;
    const r = s ? 1 / s : inS / outS;
    return Math.max((o + 0.5) * r - 0.5, 0);
  };
  const out: number[] = [];
  for (let p = 0; p < n * c; p++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) {
    const sy = coord(oy, h, oh, scale?.[0] ?? null), sx = coord(ox, w, ow, scale?.[1] ?? null);
    const y0 = Math.min(Math.floor(sy), h - 1), x0 = Math.min(Math.floor(sx), w - 1);
    const y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
    const ly = sy - y0, lx = sx - x0;
    out.push((1 - ly) * ((1 - lx) * at(x, p, y0, x0) + lx * at(x, p, y0, x1)) + ly * ((1 - lx) * at(x, p, y1, x0) + lx * at(x, p, y1, x1)));
  }
  return out;
}

describe('upsampleBilinear', () => {
  it('matches PyTorch rule by size and by scale, both corner modes; gradcheck', () => {
    fc.assert(fc.property(imgArb, fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.boolean(),
      ({ n, c, h, w, seed }, oh, ow, ac, byScale) => {
        const x = new Rng(seed).normal([n, c, h, w], 0, 1, 'float64');
        // scales like 1.5 or 2.25 make floor(h * s) differ from h * s, where PyTorch still uses s
        const scale: [number, number] = [1 + (oh % 4) * 0.5, 0.75 + (ow % 3) * 0.75];
        const target = byScale ? { scale } : { size: [oh, ow] as const };
        const [eh, ew] = byScale ? [Math.floor(h * scale[0]), Math.floor(w * scale[1])] : [oh, ow];
        fc.pre(eh >= 1 && ew >= 1);
        const y = upsampleBilinear(x, target, ac);
        expect(y.shape).toEqual([n, c, eh, ew]);
        expectClose('upsampleBilinear', y.data, naiveBilinear(x, eh, ew, ac, byScale ? scale : null), 1e-12, 1e-10);
        check(gradcheck((a) => upsampleBilinear(a, target, ac), [x]));
      }), { numRuns: 30, seed: 41 });
  });

  it('the torch.nn.Upsample documentation examples (align_corners False and True)', () => {
    const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    expectClose('align_corners=False', upsampleBilinear(x, { scale: 2 }).data, [
      1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0,
    ], 1e-6, 0);
    const t = 1 / 3;
    expectClose('align_corners=True', upsampleBilinear(x, { size: [4, 4] }, true).data, [
      1, 1 + t, 1 + 2 * t, 2, 1 + 2 * t, 2, 2 + t, 2 + 2 * t, 2 + t, 2 + 2 * t, 3, 3 + t, 3, 3 + t, 3 + 2 * t, 4,
    ], 1e-6, 0);
  });

  it('align_corners=True reproduces a linear ramp exactly at the mapped coordinates', () => {
    const h = 4, w = 6, oh = 7, ow = 11;
    const x = tensor(Array.from({ length: h * w }, (_, i) => 2 * Math.floor(i / w) - 0.5 * (i % w) + 1), [1, 1, h, w], 'float64');
    const y = upsampleBilinear(x, { size: [oh, ow] }, true);
    const ref = Array.from({ length: oh * ow }, (_, i) => 2 * (Math.floor(i / ow) * (h - 1)) / (oh - 1) - 0.5 * ((i % ow) * (w - 1)) / (ow - 1) + 1);
    expectClose('ramp', y.data, ref, 1e-12, 1e-12);
  });
});

describe('float32 path', () => {
  it('avgPool2d, upsampleNearest and upsampleBilinear agree with float64', () => {
    const x = new Rng(43).normal([2, 3, 9, 7], 0, 1, 'float64');
    const tol = { atol: 1e-6, rtol: 1e-5 };
    expectF32Agrees('avgPool2d', (a) => avgPool2d(a, 3, 2, 1), [x], tol);
    expectF32Agrees('upsampleNearest', (a) => upsampleNearest(a, 2), [x], tol);
    expectF32Agrees('upsampleBilinear', (a) => upsampleBilinear(a, { size: [16, 5] }), [x], tol);
  });
});

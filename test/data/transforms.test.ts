import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  areaTaps, bytesToSigned, centreCrop, centrePad, cropResize, hflipInPlace, resize, type Plane,
} from '../../src/data/transforms.ts';
import { expectClose, expectSame } from './files.ts';

const plane = (c: number, h: number, w: number, f: (k: number) => number): Plane =>
  ({ data: Float32Array.from({ length: c * h * w }, (_, k) => f(k)), channels: c, height: h, width: w });

/** Area resampling written as a 2-D rectangle-overlap integral, independent of the separable code. */
function areaReference(img: Plane, h: number, w: number): Float64Array {
  const { channels: C, height: H, width: W } = img;
  const out = new Float64Array(C * h * w);
  for (let c = 0; c < C; c++) for (let oy = 0; oy < h; oy++) for (let ox = 0; ox < w; ox++) {
    const y0 = (oy * H) / h, y1 = ((oy + 1) * H) / h, x0 = (ox * W) / w, x1 = ((ox + 1) * W) / w;
    let s = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const oyl = Math.min(y1, y + 1) - Math.max(y0, y), oxl = Math.min(x1, x + 1) - Math.max(x0, x);
      if (oyl > 0 && oxl > 0) s += oyl * oxl * img.data[(c * H + y) * W + x];
    }
    out[(c * h + oy) * w + ox] = s / ((y1 - y0) * (x1 - x0));
  }
  return out;
}

describe('uint8 → [-1, 1]', () => {
  it('maps 0 → −1, 255 → 1, and every byte comes back by (x + 1)·127.5', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, v) => v);
    const x = bytesToSigned(bytes, new Float32Array(256));
    expect([x[0], x[255]]).toEqual([-1, 1]);
    expectSame(Array.from(x, (v) => Math.round((v + 1) * 127.5)), bytes, 'round trip');
    for (let v = 1; v < 256; v++) expect(x[v]).toBeGreaterThan(x[v - 1]);
  });
});

describe('centre crop and pad', () => {
  it('crops the centre window, odd pixel dropped at the bottom/right (by hand)', () => {
    const img = plane(1, 4, 5, (k) => k); // rows 0..4, 5..9, 10..14, 15..19
    expectSame(centreCrop(img, 2, 3).data, [6, 7, 8, 11, 12, 13], 'crop 4×5 → 2×3');
    expectSame(centreCrop(img, 3, 2).data, [1, 2, 6, 7, 11, 12], 'crop 4×5 → 3×2');
    expect(() => centreCrop(img, 5, 5)).toThrow(/5×5 does not fit in 4×5/);
  });

  it('pads around a centred image per channel (by hand)', () => {
    const img = plane(2, 1, 2, (k) => k + 1); // channel 0: [1, 2], channel 1: [3, 4]
    expectSame(centrePad(img, 3, 3, -1).data, [
      -1, -1, -1, 1, 2, -1, -1, -1, -1,
      -1, -1, -1, 3, 4, -1, -1, -1, -1,
    ], 'pad 1×2 → 3×3');
  });
});

describe('resize', () => {
  it('area 4×4 → 2×2 averages 2×2 blocks (by hand)', () => {
    const img = plane(1, 4, 4, (k) => k);
    expectSame(resize(img, 2, 2, 'area').data, [2.5, 4.5, 10.5, 12.5], 'area 4→2');
  });

  it('area 3 → 2 weighs the shared middle pixel by half (by hand)', () => {
    // [3, 6, 9]: out0 = (3 + 0.5·6)/1.5 = 4, out1 = (0.5·6 + 9)/1.5 = 8
    expectClose(resize(plane(1, 1, 3, (k) => 3 * (k + 1)), 1, 2, 'area').data, [4, 8], 1e-6, 'area 3→2');
  });

  it('bilinear uses half-pixel centres and clamps like PyTorch align_corners=False (by hand)', () => {
    // 2 → 4: sources −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel)
    expectSame(resize(plane(1, 1, 2, (k) => k), 1, 4, 'bilinear').data, [0, 0.25, 0.75, 1], 'bilinear 2→4');
    // 4 → 2: sources 0.5 and 2.5, no anti-aliasing
    expectSame(resize(plane(1, 4, 1, (k) => [0, 2, 4, 8][k]), 2, 1, 'bilinear').data, [1, 6], 'bilinear 4→2');
  });

  it("'auto' is area along a shrinking axis and bilinear along a growing one", () => {
    const img = plane(2, 6, 3, (k) => Math.sin(k));
    const auto = resize(img, 4, 5, 'auto').data;
    // shrink rows with area, then grow columns with bilinear, applied as two 1-D passes
    const rows = resize(img, 4, 3, 'area');
    expectClose(auto, resize(rows, 4, 5, 'bilinear').data, 1e-6, 'auto vs area∘bilinear');
  });

  it('area matches a 2-D overlap-integral reference for any sizes, and keeps the mean', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 1000 }),
      (H, W, h, w, s) => {
        const img = plane(2, H, W, (k) => Math.sin(k * 12.9898 + s) * 0.9);
        const got = resize(img, h, w, 'area').data;
        expectClose(got, areaReference(img, h, w), 2e-6, `area ${H}×${W} → ${h}×${w}`);
        const mean = (a: ArrayLike<number>) => Array.from(a).reduce((p, q) => p + q, 0) / a.length;
        expect(Math.abs(mean(got) - mean(img.data))).toBeLessThan(1e-5);
      }), { seed: 7, numRuns: 60 });
  });

  it('keeps a constant image constant in every mode, and same size is the identity', () => {
    for (const mode of ['area', 'bilinear', 'auto'] as const) {
      expectClose(resize(plane(3, 5, 7, () => 0.3), 3, 11, mode).data, new Array(3 * 3 * 11).fill(0.3), 1e-6, mode);
    }
    const img = plane(1, 3, 3, (k) => k);
    expect(resize(img, 3, 3, 'bilinear')).toBe(img);
  });

  it('the area taps of every source pixel sum to out/in (why the mean is kept)', () => {
    const t = areaTaps(7, 3);
    const per = new Float64Array(7);
    t.idx.forEach((ii, o) => ii.forEach((i, k) => { per[i] += t.wt[o][k]; }));
    expectClose(per, new Array(7).fill(3 / 7), 1e-12, 'column sums');
  });
});

describe('cropResize', () => {
  it('crops to the target aspect ratio before resizing (by hand)', () => {
    // 1×2×6 → 1×1: keep the centre 2×2 (columns 2, 3), then average
    const img = plane(1, 2, 6, (k) => k); // rows 0..5, 6..11
    expectSame(cropResize(img, 1, 1, 'area').data, [(2 + 3 + 8 + 9) / 4], 'wide');
    const tall = plane(1, 6, 2, (k) => k); // rows [0,1], [2,3], ..., [10,11]
    expectSame(cropResize(tall, 2, 2, 'area').data, [4, 5, 6, 7], 'tall');
  });
});

describe('horizontal flip', () => {
  it('mirrors each row of each channel in place, leaving neighbours alone (by hand)', () => {
    const d = Float32Array.from([9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 9]); // sample at offset 1: (2, 2, 3)
    hflipInPlace(d, 1, 2, 2, 3);
    expectSame(d, [9, 3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10, 9], 'flip');
  });

  it('twice is the identity', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 7 }), (C, H, W) => {
      const d = Float32Array.from({ length: C * H * W }, (_, k) => k);
      const e = d.slice();
      hflipInPlace(e, 0, C, H, W);
      hflipInPlace(e, 0, C, H, W);
      expectSame(e, d, 'flip∘flip');
    }), { seed: 3, numRuns: 30 });
  });
});

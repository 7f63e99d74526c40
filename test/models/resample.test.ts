// Position-grid resampling against PyTorch's F.interpolate (test/fixtures/vit/resample.safetensors,
// written by make_vit_fixture.py): bilinear and bicubic, antialias on and off, size= and DINOv2's
// scale_factor= path; plus closed-form properties (rows sum to 1, identity at the same size).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { resampleGrid, resampleMatrix, type ResampleMode } from '../../src/models/resample.ts';
import { expectClose } from '../kernels/expectClose.ts';

const fixture = readSafetensors(join(import.meta.dirname, '../fixtures/vit/resample.safetensors'));

/** (C, H, W) planes -> row-major (H*W, C) grid and back. */
function toGrid(planes: ArrayLike<number>, c: number, h: number, w: number): Float64Array {
  const g = new Float64Array(h * w * c);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) g[i * c + ch] = planes[ch * h * w + i];
  return g;
}

describe('resample vs torch F.interpolate', () => {
  const input = fixture.tensors.get('input')!; // (3, M, M)
  const [c, m] = input.shape;
  const cases = Object.keys(fixture.metadata).filter((k) => fixture.tensors.has(`case.${k}`));
  it('covers every case in the fixture', () => { expect(cases.length).toBeGreaterThanOrEqual(10); });
  for (const name of cases) {
    it(name, () => {
      const opts = JSON.parse(fixture.metadata[name]) as { mode: ResampleMode; size?: [number, number]; scale_factor?: [number, number]; antialias: boolean };
      const want = fixture.tensors.get(`case.${name}`)!; // (3, oh, ow)
      const [, oh, ow] = want.shape;
      if (opts.size) expect([oh, ow]).toEqual(opts.size);
      const got = resampleGrid(toGrid(input.data, c, m, m), c, m, m, oh, ow, {
        mode: opts.mode, antialias: opts.antialias, scaleFactor: opts.scale_factor?.[0], scaleFactorW: opts.scale_factor?.[1],
      });
      expectClose(name, got, toGrid(want.data, c, oh, ow), 1e-5, 1e-5);
    });
  }
});

describe('resampleMatrix properties', () => {
  it('rows sum to one and the same size is the identity (plain kernels)', () => {
    for (const mode of ['bilinear', 'bicubic'] as const) {
      for (const [i, o] of [[7, 3], [5, 11], [37, 16]]) {
        const w = resampleMatrix(i, o, { mode, antialias: o < i });
        for (let r = 0; r < o; r++) {
          let s = 0;
          for (let j = 0; j < i; j++) s += w[r * i + j];
          expect(Math.abs(s - 1)).toBeLessThan(1e-12);
        }
      }
      const id = resampleMatrix(6, 6, { mode });
      id.forEach((v, k) => expect(v).toBeCloseTo(Math.floor(k / 6) === k % 6 ? 1 : 0, 12));
    }
  });
});

// The Encoder actor: the frozen representation model (REPA/REG's "DINOv2"). `features` returns
// the patch tokens (B, T, Dz) and the class token (B, Dz) of clean images, computed without a
// tape. Its parameters never change: it has no optimiser and no `backward`.
import type { Tensor } from '../../tensor/tensor.ts';
import { buildEncoder } from '../../build/parts.ts';
import { openTrainData } from '../../build/setup.ts';
import type { RoleInit } from './common.ts';

export function encoderRole(init: RoleInit) {
  const data = openTrainData(init.spec, init.data);
  const encoder = buildEncoder(init.spec, data, init.config);
  return {
    describe: () => ({ dim: encoder.dim }),
    features(b: { x: Tensor }): { patch: Tensor; cls: Tensor } {
      const f = encoder.features(b.x);
      return { patch: f.patch, cls: f.cls };
    },
    /** A checksum of the parameters (tests: they never change). */
    checksum(): number {
      let s = 0;
      for (const [, p] of encoder.vit.namedParameters()) for (let i = 0; i < p.size; i += 7) s += p.data[i] * ((i % 13) + 1);
      return s;
    },
  };
}

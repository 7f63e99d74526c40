// qkvAttention (timm/DiT's packed-projection attention) against PyTorch: the fixture
// test/fixtures/attention/qkv.safetensors (from test/fixtures/make_qkv_attention_fixture.py, the
// reshape/permute/softmax composite in float64) on float64 (TypeScript kernels) and float32 (the
// native flash kernel reading q, k, v in place when the addon is loaded, else TypeScript).
// Tolerances: float64 2e-6 abs + 1e-6 rel (the fixture is float32-rounded); float32 2e-5 + 1e-4.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { nativeKernels } from '../../src/kernels/index.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { cast, type Tensor } from '../../src/tensor/tensor.ts';
import { qkvAttention } from '../../src/autograd/ops/attention.ts';
import { backward } from '../../src/autograd/index.ts';
import { mul, sum } from '../../src/autograd/ops/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const fixture = readSafetensors(fileURLToPath(new URL('../fixtures/attention/qkv.safetensors', import.meta.url))).tensors;
const fx = (name: string): Tensor => {
  const t = fixture.get(name);
  if (!t) throw new Error(`fixture has no ${name}`);
  return t;
};

describe('qkvAttention against PyTorch (timm Attention composite, float64)', () => {
  for (const c of ['t64', 't256', 'odd', 'long']) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${c}, ${dtype} (${dtype === 'float32' && nativeKernels ? 'native' : 'js'} kernels): out, dqkv`, () => {
        const qkv = cast(fx(`${c}.qkv`), dtype);
        qkv.requiresGrad = true;
        const out = qkvAttention(qkv, fx(`${c}.heads`).data[0], fx(`${c}.scale`).data[0]);
        expect(out.shape).toEqual(fx(`${c}.out`).shape);
        backward(sum(mul(out, cast(fx(`${c}.w`), dtype))));
        const [atol, rtol] = dtype === 'float64' ? [2e-6, 1e-6] : [2e-5, 1e-4];
        expectClose(`${c} out`, out.data, fx(`${c}.out`).data, atol, rtol);
        expectClose(`${c} dqkv`, qkv.grad!.data, fx(`${c}.dqkv`).data, atol, rtol);
      });
    }
  }
});

// grad(outputs, inputs): gradients with respect to chosen tensors without writing `.grad`, with the
// tape kept for the real backward. Checked against central finite differences (float64), against
// backward() on a fresh graph, and for what it must not touch.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { Tape, backward, noGrad, withTape, add, mul, mean, sum, tanh, matmul, sub } from '../../src/autograd/index.ts';
import { grad } from '../../src/autograd/grad.ts';
import { expectClose } from '../kernels/expectClose.ts';

// A small two-layer net: loss(W1, W2, x) = mean(tanh(x W1) W2)^2 + sum(W1^2) / 10.
const f = (x: Tensor, w1: Tensor, w2: Tensor): Tensor => {
  const h = tanh(matmul(x, w1)); // (4, 5)
  const y = matmul(h, w2); // (4, 2)
  return add(mean(mul(y, y)), mul(sum(mul(w1, w1)), 0.1));
};

function numericGrad(loss: () => number, t: Tensor, eps = 1e-6): Float64Array {
  const g = new Float64Array(t.size);
  for (let i = 0; i < t.size; i++) {
    const old = t.data[i];
    t.data[i] = old + eps; const lp = loss();
    t.data[i] = old - eps; const lm = loss();
    t.data[i] = old;
    g[i] = (lp - lm) / (2 * eps);
  }
  return g;
}

describe('grad()', () => {
  const rng = new Rng(5);
  const x = rng.normal([4, 3], 0, 1, 'float64');
  const w1 = rng.normal([3, 5], 0, 0.7, 'float64').requireGrad();
  const w2 = rng.normal([5, 2], 0, 0.7, 'float64').requireGrad();

  it('equals finite differences for leaves, writes no .grad and keeps the tape', () => {
    const tape = new Tape();
    const loss = withTape(tape, () => f(x, w1, w2));
    const n = tape.length;
    const [g1, g2] = grad(loss, [w1, w2], { tape });
    expect(w1.grad).toBeNull();
    expect(w2.grad).toBeNull();
    expect(tape.length).toBe(n);
    const L = (): number => noGrad(() => f(x, w1, w2)).item();
    expectClose('dW1', g1!.data, numericGrad(L, w1), 1e-7, 1e-6);
    expectClose('dW2', g2!.data, numericGrad(L, w2), 1e-7, 1e-6);
    // the real backward still runs on the same graph and agrees
    backward(loss, { tape });
    expectClose('backward dW1', w1.grad!.data, g1!.data, 1e-14, 0);
    expectClose('backward dW2', w2.grad!.data, g2!.data, 1e-14, 0);
    w1.grad = null; w2.grad = null;
  });

  it('differentiates with respect to an intermediate tensor and with cotangent seeds', () => {
    const tape = new Tape();
    const { h, y } = withTape(tape, () => {
      const h = tanh(matmul(x, w1));
      return { h, y: matmul(h, w2) };
    });
    const cot = new Rng(9).normal([4, 2], 0, 1, 'float64');
    const [gh] = grad([[y, cot]], [h], { tape });
    // d<cot, h W2>/dh = cot W2^T
    const want = noGrad(() => matmul(cot, new Tensor(transpose(w2), [2, 5])));
    expectClose('dh', gh!.data, want.data, 1e-12, 1e-12);
    expect(w1.grad).toBeNull();
  });

  it('skips the parts of the tape that do not lead to the inputs', () => {
    const tape = new Tape();
    let calls = 0;
    const loss = withTape(tape, () => {
      const a = mul(w1, 2);
      const b = mul(w2, 3);
      return add(sum(a), sum(b));
    });
    for (const e of tape.nodes) {
      const inner = e.node.backward;
      e.node.backward = (g) => { calls++; return inner(g); };
    }
    grad(loss, [w2], { tape });
    // add, sum(b), mul(w2): not sum(a) or mul(w1)
    expect(calls).toBe(3);
  });

  it('throws for an input the outputs do not depend on, unless allowUnused', () => {
    const tape = new Tape();
    const other = new Rng(1).normal([2], 0, 1, 'float64').requireGrad();
    const loss = withTape(tape, () => sum(mul(w1, w1)));
    expect(() => grad(loss, [other], { tape })).toThrow(/not reached/);
    expect(grad(loss, [other], { tape, allowUnused: true })).toEqual([null]);
    expect(() => grad(withTape(tape, () => sub(w1, 1)), [w1], { tape })).toThrow(/scalar/);
  });
});

function transpose(w: Tensor): Float64Array {
  const [r, c] = w.shape, out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = w.data[i * c + j];
  return out;
}

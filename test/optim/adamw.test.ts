// Tests for AdamW: against an independent scalar transcription of torch.optim.AdamW's
// single-tensor step (op by op, float32 rounding after each tensor op, as PyTorch computes it),
// a closed form for constant gradients, skipped parameters, and exact resume through a
// safetensors round trip of state().
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AdamW, ADAMW_DEFAULTS, type AdamWHyper } from '../../src/optim/adamw.ts';
import { cosineSchedule } from '../../src/optim/schedule.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.ts';
import { clone, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { expectClose, fillRandom } from '../kernels/expectClose.ts';

/**
 * torch/optim/adamw.py `_single_tensor_adamw` (amsgrad=False, maximize=False, capturable=False)
 * for one element. `r` rounds to the tensor dtype after each tensor op (Math.fround for float32);
 * python scalars (lr, bias corrections) stay double, and are cast to the tensor dtype where an op
 * takes them as a scalar argument.
 */
function torchAdamWElement(
  st: { p: number; m: number; v: number; step: number }, g: number, h: AdamWHyper, lr: number, r: (x: number) => number,
): void {
  const [b1, b2] = h.betas;
  st.step += 1;
  st.p = r(st.p * r(1 - lr * h.weightDecay)); // param.mul_(1 - lr * weight_decay)
  const w = r(1 - b1); // exp_avg.lerp_(grad, 1 - beta1): weight < 0.5 branch
  st.m = r(st.m + r(w * r(g - st.m)));
  st.v = r(st.v * r(b2)); // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  st.v = r(st.v + r(r(r(1 - b2) * g) * g));
  const bc1 = 1 - b1 ** st.step;
  const bc2 = 1 - b2 ** st.step;
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  const denom = r(r(r(Math.sqrt(st.v)) / r(bc2Sqrt)) + r(h.eps)); // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
  st.p = r(st.p + r(r(-stepSize) * r(st.m / denom))); // param.addcdiv_(exp_avg, denom, value=-step_size)
}

interface RefParam { name: string; st: { p: number; m: number; v: number; step: number }[]; hyper: AdamWHyper }

function refParam(name: string, p: Tensor, hyper: AdamWHyper): RefParam {
  return { name, st: Array.from(p.data, (x) => ({ p: x, m: 0, v: 0, step: 0 })), hyper };
}

function refStep(rp: RefParam, g: ArrayLike<number>, lrScale: number, r: (x: number) => number): void {
  rp.st.forEach((s, i) => torchAdamWElement(s, g[i], rp.hyper, rp.hyper.lr * lrScale, r));
}

const noDecay = (name: string): boolean => name.endsWith('.bias') || name === 'pos_embed';

/** Three parameters named like a DiT block, gradients drawn per step with some tiny entries (eps matters). */
function makeParams(dtype: 'float32' | 'float64'): [string, Tensor][] {
  const shapes: [string, number[]][] = [['blocks.0.attn.qkv.weight', [4, 6]], ['blocks.0.attn.qkv.bias', [6]], ['pos_embed', [1, 3, 2]]];
  return shapes.map(([n, s], i) => {
    const size = s.reduce((a, b) => a * b, 1);
    return [n, tensor(fillRandom(new Float64Array(size), 100 + i), s, dtype).requireGrad()];
  });
}

function setGrads(params: [string, Tensor][], step: number): void {
  params.forEach(([, p], i) => {
    const g = fillRandom(new Float64Array(p.size), 1000 * step + i, -2, 2);
    for (let j = 0; j < g.length; j += 5) g[j] *= 1e-9; // |g| ~ eps: the eps term is visible
    p.grad = tensor(g, p.shape, p.dtype);
  });
}

describe('AdamW against torch.optim.AdamW (scalar transcription)', () => {
  it('defaults are PyTorch\'s', () => {
    expect(ADAMW_DEFAULTS).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 });
    expect(new AdamW([]).defaults).toEqual(ADAMW_DEFAULTS);
  });

  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: 12 steps with weight decay, a no-decay group and a cosine schedule`, () => {
      const params = makeParams(dtype);
      const opt = new AdamW(params, { lr: 3e-2, weightDecay: 0.1, betas: [0.8, 0.95], groups: [{ match: noDecay, weightDecay: 0 }] });
      expect(opt.hyper('blocks.0.attn.qkv.bias').weightDecay).toBe(0);
      expect(opt.hyper('blocks.0.attn.qkv.weight').weightDecay).toBe(0.1);
      const refs = params.map(([n]) => refParam(n, params.find((x) => x[0] === n)![1], opt.hyper(n)));
      const r = dtype === 'float32' ? Math.fround : (x: number) => x;
      const schedule = cosineSchedule({ totalSteps: 12, warmupSteps: 3, minFactor: 0.1 });
      for (let step = 0; step < 12; step++) {
        setGrads(params, step);
        opt.step(schedule(step));
        params.forEach(([, p], i) => refStep(refs[i], p.grad!.data, schedule(step), r));
      }
      // float32: the kernel rounds once per stored value, PyTorch after every op: a few ulp.
      const tol = dtype === 'float32' ? 3e-6 : 1e-12;
      const state = opt.state();
      params.forEach(([n, p], i) => {
        expectClose(`${n} param`, p.data, refs[i].st.map((s) => s.p), tol, tol);
        expectClose(`${n} exp_avg`, state.tensors.get(`${n}.exp_avg`)!.data, refs[i].st.map((s) => s.m), tol, tol);
        expectClose(`${n} exp_avg_sq`, state.tensors.get(`${n}.exp_avg_sq`)!.data, refs[i].st.map((s) => s.v), tol * 1e-2, tol);
        expect(state.tensors.get(`${n}.step`)!.item()).toBe(12);
      });
      expect(state.step).toBe(12);
    });
  }

  it('constant gradient: p_n = a^n p0 - c (1 + a + ... + a^(n-1)), a = 1 - lr wd, c = lr g / (|g| + eps)', () => {
    // With a constant gradient the bias-corrected moments are exactly g and g^2 at every step.
    fc.assert(fc.property(
      fc.double({ min: 1e-4, max: 10, noNaN: true }), fc.boolean(),
      fc.double({ min: 0, max: 0.5, noNaN: true }), fc.integer({ min: 1, max: 30 }), fc.double({ min: -2, max: 2, noNaN: true }),
      (mag, neg, wd, n, p0) => {
        const g = neg ? -mag : mag;
        const lr = 1e-2;
        const p = tensor([p0], [1], 'float64').requireGrad();
        p.grad = tensor([g], [1], 'float64');
        const opt = new AdamW([['p', p]], { lr, weightDecay: wd });
        for (let i = 0; i < n; i++) opt.step();
        const a = 1 - lr * wd, c = lr * g / (Math.abs(g) + 1e-8);
        let geometric = 0;
        for (let k = 0; k < n; k++) geometric += a ** k;
        expectClose(`p after ${n} steps (g=${g}, wd=${wd})`, p.data, [a ** n * p0 - c * geometric], 1e-12, 1e-10);
      },
    ), { seed: 11, numRuns: 50 });
  });

  it('a parameter without a gradient is untouched and keeps its own step count', () => {
    const params = makeParams('float64');
    const opt = new AdamW(params, { lr: 1e-2 });
    const refs = params.map(([n, p]) => refParam(n, p, opt.hyper(n)));
    const id = (x: number) => x;
    for (let step = 0; step < 6; step++) {
      setGrads(params, step);
      if (step % 2 === 0) params[2][1].grad = null; // pos_embed only steps on odd steps
      opt.step();
      params.forEach(([, p], i) => { if (p.grad) refStep(refs[i], p.grad.data, 1, id); });
    }
    params.forEach(([n, p], i) => expectClose(n, p.data, refs[i].st.map((s) => s.p), 1e-12, 1e-12));
    const st = opt.state().tensors;
    expect(st.get('pos_embed.step')!.item()).toBe(3);
    expect(st.get('blocks.0.attn.qkv.bias.step')!.item()).toBe(6);
    // Never stepped: no state at all, as in PyTorch.
    const fresh = new AdamW([['q', tensor([1, 2]).requireGrad()]]);
    fresh.step();
    expect(fresh.state().tensors.size).toBe(0);
  });
});

describe('AdamW state', () => {
  it('state() through safetensors and loadState() continues bit-identically', () => {
    const a = makeParams('float32');
    const optA = new AdamW(a, { groups: [{ match: noDecay, weightDecay: 0 }] });
    a[1][1].grad = null;
    for (let step = 0; step < 3; step++) {
      setGrads(a, step);
      if (step === 0) a[1][1].grad = null; // one parameter one step behind
      optA.step();
    }
    const st = optA.state();
    const saved = decodeSafetensors(encodeSafetensors(st.tensors, { step: String(st.step) }), 'optimizer');
    // A new process: parameters restored from a checkpoint, optimiser from its state.
    const b: [string, Tensor][] = a.map(([n, p]) => [n, clone(p).requireGrad()]);
    const optB = new AdamW(b, { groups: [{ match: noDecay, weightDecay: 0 }] });
    optB.loadState({ step: Number(saved.metadata.step), tensors: saved.tensors });
    expect(optB.steps).toBe(3);
    for (let step = 3; step < 7; step++) {
      setGrads(a, step);
      setGrads(b, step);
      optA.step(0.5);
      optB.step(0.5);
    }
    a.forEach(([n, p], i) => expect(Array.from(b[i][1].data), n).toEqual(Array.from(p.data)));
  });

  it('state is allocated outside tidy scopes and survives them', () => {
    const p = tensor([1, -1, 2]).requireGrad();
    const opt = new AdamW([['p', p]]);
    tidy(() => {
      p.grad = tensor([0.5, 0.5, 0.5]);
      opt.step();
      return null;
    });
    const m = opt.state().tensors.get('p.exp_avg')!;
    expect(m.disposed).toBe(false);
    expectClose('exp_avg after one step', m.data, [0.05, 0.05, 0.05], 1e-8, 1e-6);
  });

  it('loadState rejects unknown names, partial entries, wrong shapes and bad steps, changing nothing', () => {
    const p = tensor([1, 2]).requireGrad();
    const opt = new AdamW([['p', p]]);
    p.grad = tensor([1, 1]);
    opt.step();
    const good = opt.state();
    const before = Array.from(good.tensors.get('p.exp_avg')!.data);
    const variant = (edit: (m: Map<string, Tensor>) => void) => {
      const m = new Map([...good.tensors].map(([k, t]) => [k, clone(t)]));
      edit(m);
      return { step: 1, tensors: m };
    };
    expect(() => opt.loadState(variant((m) => m.set('q.exp_avg', tensor([0]))))).toThrow(/unknown parameters: q\.exp_avg/);
    expect(() => opt.loadState(variant((m) => m.delete('p.exp_avg_sq')))).toThrow(/'p' needs .*some are missing/);
    expect(() => opt.loadState(variant((m) => m.set('p.exp_avg', tensor([0, 0, 0]))))).toThrow(/'p\.exp_avg' has shape \[3\], parameter \[2\]/);
    expect(() => opt.loadState(variant((m) => m.set('p.step', tensor([1.5], []))))).toThrow(/'p\.step' must be one integer >= 1/);
    expect(() => opt.loadState({ step: -1, tensors: good.tensors })).toThrow(/invalid step/);
    expect(Array.from(opt.state().tensors.get('p.exp_avg')!.data)).toEqual(before);
    // An empty state resets every parameter.
    opt.loadState({ step: 0, tensors: new Map() });
    expect(opt.state().tensors.size).toBe(0);
  });
});

describe('AdamW validation', () => {
  it('rejects bad hyperparameters, duplicates, frozen parameters and gradient shape mismatches', () => {
    const p = tensor([1]).requireGrad();
    expect(() => new AdamW([['p', p]], { lr: -1 })).toThrow(/invalid lr/);
    expect(() => new AdamW([['p', p]], { betas: [1, 0.9] })).toThrow(/invalid beta1/);
    expect(() => new AdamW([['p', p]], { groups: [{ match: () => true, betas: [0.9, 1.5] }] })).toThrow(/group 0: invalid beta2/);
    expect(() => new AdamW([['p', p]], { eps: NaN })).toThrow(/invalid eps/);
    expect(() => new AdamW([['p', p], ['p', tensor([2])]])).toThrow(/appears twice/);
    expect(() => new AdamW([['p', p], ['q', p]])).toThrow(/same tensor/);
    const opt = new AdamW([['p', p]]);
    p.grad = tensor([1, 2]);
    expect(() => opt.step()).toThrow(/gradient of 'p' has shape \[2\], parameter \[1\]/);
    p.grad = tensor([1]);
    p.freeze();
    expect(() => opt.step()).toThrow(/frozen/);
  });
});

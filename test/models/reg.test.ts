// REG's SiT (models/reg.ts) against a float64 PyTorch reference written from the REG description
// (test/fixtures/make_reg_fixture.py): forward (image and class-token velocities), hidden states
// over 1+T tokens, projector output, the REG loss terms and every parameter gradient, 1e-4
// relative. Also: official names, pos_embed row 0 = 0, shared weights equal the SiT of the same
// seed, and the zero-initialised outputs at init.
import { describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, mul, sub, noGrad } from '../../src/autograd/index.ts';
import { clone, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { RegSiT, createRegSiT } from '../../src/models/reg.ts';
import { createSiT } from '../../src/models/sit.ts';
import { Projector } from '../../src/models/projector.ts';
import { parseSiTConfig } from '../../src/models/config.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { regAlignTarget, regClsLoss, regTotalLoss, repaProjLoss } from '../../src/methods/index.ts';
import { velocityLoss } from '../../src/diffusion/index.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/reg/reg.safetensors');
const RTOL = 1e-4;

function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, RTOL * 1e-2 * scale, RTOL);
}

describe('REG SiT', () => {
  it('matches the PyTorch reference: outputs, hidden states, projector, loss terms, every gradient', () => {
    const { tensors, metadata } = readSafetensors(FIX);
    expect(metadata.format).toBe('diffactor-reg-parity');
    const get = (k: string): Tensor => { const v = tensors.get(k); if (!v) throw new Error(`fixture: no '${k}'`); return v; };
    const config = parseSiTConfig(metadata.config);
    const clsDim = Number(metadata.cls_dim), k = Number(metadata.encoder_depth);
    const w = new Map([...tensors].filter(([n]) => n.startsWith('w.')).map(([n, v]) => [n.slice(2), v]));
    const model = new RegSiT(config, clsDim, new Rng(1)).eval();
    const proj = new Projector(config.hiddenSize, Number(metadata.projector_dim), clsDim, new Rng(2));
    model.loadStateDict(new Map([...w].filter(([n]) => !n.startsWith('projectors.')))); // strict: official names
    proj.loadStateDict(new Map([...w].filter(([n]) => n.startsWith('projectors.0.')).map(([n, v]) => [n.slice('projectors.0.'.length), v])));

    const t = get('in.t').toArray(), y = get('in.y').toArray();
    const tb4 = tensor(t, [t.length, 1, 1, 1]), tb2 = tensor(t, [t.length, 1]);
    const [x, eps, g, epsG] = ['in.x', 'in.eps', 'in.g', 'in.eps_g'].map(get);
    const xt = add(mul(x, sub(tensor([1]), tb4)), mul(eps, tb4));
    const gt = clone(add(mul(g, sub(tensor([1]), tb2)), mul(epsG, tb2))).requireGrad();
    const o = model.forward(xt, t, y, { cls: gt, taps: [1, 2, 3] });
    expectParity('image velocity', o.out.data, get('out.pred').data);
    expect(o.cls.shape).toEqual([3, clsDim]);
    expectParity('class velocity', o.cls.data, get('out.cls').data);
    for (const b of [1, 2, 3]) expectParity(`hidden ${b} (1+T tokens)`, o.hidden.get(b)!.data, get(`out.hidden.${b}`).data);
    const z = proj.forward(o.hidden.get(k)!);
    expectParity('projector over 1+T tokens', z.data, get('out.proj').data);

    const diff = velocityLoss(o.out, sub(eps, x)).loss;
    const pl = repaProjLoss([{ pred: z, target: regAlignTarget(g, get('in.patch')) }]);
    const cl = regClsLoss(o.cls, sub(epsG, g));
    const loss = regTotalLoss(diff, pl, cl, 0.5, 0.03);
    for (const [n, v] of [['diff', diff], ['proj_loss', pl], ['cls_loss', cl], ['loss', loss]] as const) expectParity(n, v.data, get(`out.${n}`).data);
    backward(loss);
    const params = [...model.namedParameters(), ...proj.namedParameters('projectors.0.')];
    const gradKeys = [...tensors.keys()].filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
    expect(params.map(([n]) => n).sort()).toEqual(gradKeys);
    for (const [n, p] of params) expectParity(`grad ${n}`, p.grad!.data, get(`grad.${n}`).data);
  });

  it('official names; pos_embed row 0 zero and rows 1.. the SiT table; shared weights are the SiT of the seed; zero outputs at init', () => {
    const config = sitPreset('SiT-T/2', { depth: 2, hiddenSize: 32 });
    const reg = createRegSiT(config, 6, 4), sit = createSiT(config, 4);
    const rs = reg.stateDict(), ss = sit.stateDict();
    const extra = [...rs.keys()].filter((n) => !ss.has(n)).sort();
    expect(extra).toEqual(['cls_projectors2.bias', 'cls_projectors2.weight', 'final_layer.linear_cls.bias', 'final_layer.linear_cls.weight', 'wg_norm.bias', 'wg_norm.weight']);
    expect([...ss.keys()].every((n) => rs.has(n))).toBe(true);
    const T = 16, D = 32;
    expect(rs.get('pos_embed')!.shape).toEqual([1, 1 + T, D]);
    expect(rs.get('pos_embed')!.toArray().slice(0, D).every((v) => v === 0)).toBe(true);
    expect(rs.get('pos_embed')!.toArray().slice(D)).toEqual(ss.get('pos_embed')!.toArray());
    for (const [n, v] of ss) if (n !== 'pos_embed') expect(rs.get(n)!.toArray(), n).toEqual(v.toArray());
    expect(rs.get('cls_projectors2.weight')!.shape).toEqual([D, 6]);
    expect(rs.get('final_layer.linear_cls.weight')!.shape).toEqual([6, D]);
    expect(rs.get('wg_norm.weight')!.toArray().every((v) => v === 1)).toBe(true);
    const B = 2, rng = new Rng(9);
    const o = noGrad(() => reg.eval().forward(rng.normal([B, 4, 8, 8]), [0.3, 0.9], [1, 10], { cls: rng.normal([B, 6]) }));
    expect(o.out.toArray().every((v) => v === 0) && o.cls.toArray().every((v) => v === 0)).toBe(true);
    expect(() => reg.forward(rng.normal([B, 4, 8, 8]), [0.3, 0.9], [1, 2], { cls: rng.normal([B, 5]) })).toThrow(/class token cls \(2, 6\)/);
  });
});

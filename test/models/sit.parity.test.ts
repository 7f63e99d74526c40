// SiT/DiT against the PyTorch reference (test/fixtures/sit_reference.py, fixtures written by
// test/fixtures/make_sit_fixture.py): forward output, tapped hidden states, timestep features, the
// velocity loss and EVERY parameter gradient (plus the input gradient), float32, 1e-4 relative.
// Then the other direction: a checkpoint written by writeSafetensors loads into the PyTorch model
// with load_state_dict(strict=True) and gives diffactor's output (needs /usr/bin/python3 + torch).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { add, backward, mseLoss, mul, sub, noGrad } from '../../src/autograd/index.ts';
import { clone, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { SiT, createSiT } from '../../src/models/sit.ts';
import { parseSiTConfig, sitConfigToJSON } from '../../src/models/config.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { timestepFrequencies } from '../../src/models/embeddings.ts';
import { expectClose } from '../kernels/expectClose.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures');
const RTOL = 1e-4;

/**
 * |got - ref| <= RTOL * (|ref| + 1e-2 * max|ref|): relative per element, with a floor at 1% of the
 * tensor's scale so that entries that cancel to ~0 (float32 noise ~1e-7 of the scale) do not fail.
 */
function expectParity(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  expectClose(what, got, ref, RTOL * 1e-2 * scale, RTOL);
}

function loadFixture(name: 'sit' | 'dit') {
  const { tensors, metadata } = readSafetensors(join(FIX, 'sit', `${name}.safetensors`));
  const get = (k: string): Tensor => {
    const t = tensors.get(k);
    if (!t) throw new Error(`fixture ${name}: no tensor '${k}'`);
    return t;
  };
  const weights = new Map([...tensors].filter(([k]) => k.startsWith('w.')).map(([k, v]) => [k.slice(2), v]));
  return { tensors, get, weights, config: parseSiTConfig(metadata.config), metadata };
}

describe.each(['sit', 'dit'] as const)('%s parity with PyTorch', (name) => {
  it('forward, hidden taps, loss and every gradient match to 1e-4', () => {
    const f = loadFixture(name);
    expect(f.metadata.format).toBe('diffactor-sit-parity');
    const model = new SiT(f.config, new Rng(1)).eval();
    model.loadStateDict(f.weights); // strict: the fixture's keys are exactly the official state_dict
    const [t, y] = [f.get('in.t').toArray(), f.get('in.y').toArray()];
    expectParity('timestep features', timestepFrequencies(t, 256), f.get('out.tfreq').data);

    // SiT: x_t = (1 - t) x + t eps, built here from the inputs; DiT: the input as is.
    let xt = f.get('in.x');
    if (name === 'sit') {
      const tb = tensor(t, [t.length, 1, 1, 1]);
      xt = add(mul(f.get('in.x'), sub(tensor([1]), tb)), mul(f.get('in.eps'), tb));
    }
    expectParity('x_t', xt.data, f.get('out.xt').data);
    xt = clone(xt).requireGrad();

    const { out, hidden, labels } = model.forward(xt, t, y, { taps: [1, 2] });
    expect([...labels]).toEqual(y); // eval: no dropout
    expectParity('forward output', out.data, f.get('out.pred').data);
    expect(out.shape).toEqual(f.get('out.pred').shape);
    for (const k of [1, 2]) expectParity(`hidden after block ${k}`, hidden.get(k)!.data, f.get(`out.hidden.${k}`).data);

    const target = name === 'sit' ? sub(f.get('in.eps'), f.get('in.x')) : f.get('in.target');
    const loss = mseLoss(out, target);
    expectParity('loss', loss.data, f.get('out.loss').data);
    backward(loss);

    const params = model.namedParameters();
    const gradKeys = [...f.tensors.keys()].filter((k) => k.startsWith('grad.') && k !== 'grad.input').map((k) => k.slice(5)).sort();
    expect(params.map(([k]) => k).sort()).toEqual(gradKeys); // every trainable parameter, and nothing else
    for (const [k, p] of params) {
      expect(p.grad, `no gradient for ${k}`).not.toBeNull();
      expectParity(`grad ${k}`, p.grad!.data, f.get(`grad.${k}`).data);
    }
    expectParity('grad input', xt.grad!.data, f.get('grad.input').data);
  });
});

const python = '/usr/bin/python3';
const torchProbe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const noTorch = torchProbe.error ? `${python} not runnable (${torchProbe.error.message})`
  : torchProbe.status !== 0 ? `${python} has no torch/numpy: ${torchProbe.stderr.trim().split('\n').pop()}` : null;

describe('checkpoint into PyTorch', () => {
  it.skipIf(noTorch !== null)(`our safetensors state dict loads with load_state_dict(strict=True) and gives our output${noTorch ? ` (skipped: ${noTorch})` : ''}`, () => {
    for (const name of ['SiT-T/2', 'DiT-T/1'] as const) {
      const cfg = sitPreset(name, { depth: 2, hiddenSize: 32 });
      const model = createSiT(cfg, 5).eval();
      // Perturb every weight so that adaLN-Zero's zeros do not make the comparison trivial.
      const noise = new Rng(6);
      for (const p of model.parameters()) { const n = noise.normalArray(p.size, 0, 0.05); p.data.forEach((v, i) => { p.data[i] = v + n[i]; }); }
      const rng = new Rng(7);
      const b = 2;
      const x = rng.normal([b, cfg.inChannels, cfg.inputSize, cfg.inputSize]);
      const t = name.startsWith('SiT') ? [0.25, 0.9] : [999, 3];
      const y = [1, cfg.numClasses];
      const ours = noGrad(() => model.forward(x, t, y).out);

      const dir = mkdtempSync(join(tmpdir(), 'sit-ckpt-'));
      try {
        const ckpt = join(dir, 'model.safetensors'), inputs = join(dir, 'in.safetensors'), outFile = join(dir, 'out.safetensors');
        writeSafetensors(ckpt, model.stateDict(), { config: sitConfigToJSON(cfg) });
        writeSafetensors(inputs, { 'in.x': x, 'in.t': tensor(t), 'in.y': tensor(y) });
        const r = spawnSync(python, [join(FIX, 'check_sit_checkpoint.py'), ckpt, inputs, outFile], { encoding: 'utf8' });
        expect(`${r.stdout}${r.stderr}`.trim()).toBe('ok');
        const theirs = readSafetensors(outFile).tensors.get('out.pred')!;
        expect(theirs.shape).toEqual(ours.shape);
        expectParity(`${name} PyTorch output on our checkpoint`, ours.data, theirs.data);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

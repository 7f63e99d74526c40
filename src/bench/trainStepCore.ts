// One SiT training step as the benchmark times it (and as scripts/torch_train_step_peer.py mirrors
// it): linear-interpolant flow matching on a fixed synthetic batch, forward in training mode (label
// dropout on), mean_flat velocity MSE, backward, AdamW, EMA update, zero grad. The batch is made once
// (data loading is not part of the step). precision 'bf16': the Linear products (forward, dx, dW)
// and the qkv attention's products read bf16 operands with fp32 sums (setLinearPrecision);
// weights, AdamW, EMA and softmax statistics stay fp32.
// Not here: timing, the peer, printing (trainStep.ts).
import { Rng } from '../tensor/rng.ts';
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { untracked } from '../tensor/pool.ts';
import { backward, noGrad } from '../autograd/tape.ts';
import { setLinearPrecision } from '../autograd/ops/matmul.ts';
import { createSiT, type SiT } from '../models/sit.ts';
import type { SiTConfig } from '../models/config.ts';
import { AdamW } from '../optim/adamw.ts';
import { Ema } from '../optim/ema.ts';
import { flowTrainingPair, linear, velocityLoss } from '../diffusion/index.ts';

export interface TrainStepHarness {
  model: SiT;
  opt: AdamW;
  ema: Ema;
  /** Runs one full step; returns the loss. */
  step(): number;
}

/** A model, optimiser, EMA and fixed batch of `batch` samples; every number is a function of seed. */
export function createTrainStep(config: SiTConfig, batch: number, seed = 0, precision: 'fp32' | 'bf16' = 'fp32'): TrainStepHarness {
  const model = createSiT(config, seed).train();
  const params = model.namedParameters();
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const ema = Ema.of(params, 0.9999);
  const rng = new Rng(seed, 1);
  const c = config.inChannels, s = config.inputSize;
  const { x, eps, t, y } = untracked(() => ({
    x: tensor(rng.normalArray(batch * c * s * s), [batch, c, s, s]), // (B, C, H, W)
    eps: tensor(rng.normalArray(batch * c * s * s), [batch, c, s, s]),
    t: rng.uniformArray(batch), // (B)
    y: rng.randintArray(0, config.numClasses, batch), // (B)
  }));
  const dropRng = rng.child('labels');
  const step = (): number => {
    const prev = setLinearPrecision(precision);
    let loss: number;
    try {
      loss = tidy(() => {
        const { xt, target } = noGrad(() => flowTrainingPair(linear, x, eps, t));
        const { out } = model.forward(xt, t, y, { rng: dropRng });
        const l: Tensor = velocityLoss(out, target).loss;
        backward(l);
        return l.item();
      });
    } finally {
      setLinearPrecision(prev);
    }
    opt.step();
    ema.update();
    opt.zeroGrad();
    return loss;
  };
  return { model, opt, ema, step };
}

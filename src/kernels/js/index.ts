// The TypeScript reference kernels assembled into one Kernels object (float32 or float64).
import type { Kernels } from '../types.ts';
import { gemm } from './gemm.ts';
import { actForward, actBackward } from './activations.ts';
import { attentionForward, attentionBackward } from './attention.ts';
import { layerNormForward, layerNormBackward } from './layernorm.ts';
import { softmaxForward, softmaxBackward } from './softmax.ts';
import { modulateForward, modulateBackward } from './modulate.ts';
import { reduceSum, sumSquares } from './reduce.ts';
import { adamw, ema } from './optim.ts';
import { binary } from './binary.ts';
import { gatedResidualForward, gatedResidualBackward, layerNormModulateForward, layerNormModulateBackward } from './adaln.ts';
import { qkvAttentionForward, qkvAttentionBackward } from './qkvAttention.ts';

export const jsKernels: Kernels = {
  name: 'js',
  gemm,
  attentionForward,
  attentionBackward,
  layerNormForward,
  layerNormBackward,
  softmaxForward,
  softmaxBackward,
  actForward,
  actBackward,
  modulateForward,
  modulateBackward,
  reduceSum,
  sumSquares,
  adamw,
  ema,
  binary,
  gatedResidualForward,
  gatedResidualBackward,
  layerNormModulateForward,
  layerNormModulateBackward,
  qkvAttentionForward,
  qkvAttentionBackward,
};

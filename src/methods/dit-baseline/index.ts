// The DiT baseline (Peebles & Xie, "Scalable Diffusion Models with Transformers", ICCV 2023;
// github.com/facebookresearch/DiT): ε-prediction on the linear-β DDPM schedule (1000 steps), the
// hybrid loss L_simple + L_vlb when the model learns Σ (learn_sigma, DiT's default). It changes the
// objective, so it combines with no other method.
import type { MethodDefinition } from '../method.ts';

export const ditBaseline: MethodDefinition = {
  name: 'dit-baseline',
  title: 'DiT (baseline)',
  cite: 'Peebles & Xie, DiT, ICCV 2023 — github.com/facebookresearch/DiT (train.py, diffusion/gaussian_diffusion.py)',
  objective: 'ddpm',
  family: 'DiT',
  samplers: ['ddpm', 'ddim'],
  changes: ['objective'],
};

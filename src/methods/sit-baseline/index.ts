// The SiT baseline (Ma et al., "SiT: Exploring Flow and Diffusion-based Generative Models with
// Scalable Interpolant Transformers", ECCV 2024; github.com/willisma/SiT): velocity matching on the
// linear path, L = ‖v_θ(x_t, t, y) − (ε − x)‖² (t = 0 data). Nothing beyond what every step does.
import type { MethodDefinition } from '../method.ts';

export const sitBaseline: MethodDefinition = {
  name: 'sit-baseline',
  title: 'SiT (baseline)',
  cite: 'Ma et al., SiT, ECCV 2024 — github.com/willisma/SiT (train.py, transport/)',
  objective: 'velocity',
  family: 'SiT',
};

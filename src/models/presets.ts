// Named model sizes, as DiT's `DiT_models` table: `SiT-XL/2` -> config. Families SiT and DiT
// share the sizes (DiT learns sigma, SiT does not). S/B/L/XL are the papers' sizes on 32x32x4
// SD-VAE latents with 1000 classes; T is a tiny size for unit tests; P1 and P2 are the sizes this
// project trains on two CPU cores (P1: 4x8x8 latents, patch 1; P2: 1x32x32 pixels, patch 2).
import { parseSiTConfig, type SiTConfig } from './config.ts';

interface Size { depth: number; hiddenSize: number; numHeads: number }

const SIZES: Record<string, Size> = {
  T: { depth: 2, hiddenSize: 64, numHeads: 2 },
  S: { depth: 12, hiddenSize: 384, numHeads: 6 },
  B: { depth: 12, hiddenSize: 768, numHeads: 12 },
  L: { depth: 24, hiddenSize: 1024, numHeads: 16 },
  XL: { depth: 28, hiddenSize: 1152, numHeads: 16 },
};
const PATCHES = [1, 2, 4, 8];

/** The two small configurations of this project's experiments (issue configs P1 and P2). */
const PROJECT: Record<string, Omit<SiTConfig, 'family' | 'learnSigma' | 'timeScale' | 'mlpRatio' | 'classDropoutProb'>> = {
  P1: { inputSize: 8, inChannels: 4, patchSize: 1, hiddenSize: 192, depth: 6, numHeads: 3, numClasses: 10 },
  P2: { inputSize: 32, inChannels: 1, patchSize: 2, hiddenSize: 384, depth: 12, numHeads: 6, numClasses: 10 },
};

function familyDefaults(family: 'SiT' | 'DiT'): Pick<SiTConfig, 'family' | 'learnSigma' | 'timeScale' | 'mlpRatio' | 'classDropoutProb'> {
  return { family, learnSigma: family === 'DiT', timeScale: 1, mlpRatio: 4, classDropoutProb: 0.1 };
}

/** Every preset name: {SiT,DiT}-{T,S,B,L,XL}/{1,2,4,8} and {SiT,DiT}-{P1,P2}. */
export function presetNames(): string[] {
  const out: string[] = [];
  for (const fam of ['SiT', 'DiT']) {
    for (const s of Object.keys(SIZES)) for (const p of PATCHES) out.push(`${fam}-${s}/${p}`);
    for (const p of Object.keys(PROJECT)) out.push(`${fam}-${p}`);
  }
  return out;
}

/** The config named `name` (e.g. 'SiT-XL/2', 'DiT-B/4', 'SiT-P1'), with fields overridden. */
export function sitPreset(name: string, overrides: Partial<SiTConfig> = {}): SiTConfig {
  const m = /^(SiT|DiT)-(?:(T|S|B|L|XL)\/(\d+)|(P\d+))$/.exec(name);
  const known = presetNames();
  if (!m || !known.includes(name)) throw new Error(`unknown model preset '${name}'; known: ${known.join(', ')}`);
  const family = m[1] as 'SiT' | 'DiT';
  const base = m[4]
    ? PROJECT[m[4]]
    : { ...SIZES[m[2]], patchSize: Number(m[3]), inputSize: m[2] === 'T' ? 8 : 32, inChannels: 4, numClasses: m[2] === 'T' ? 10 : 1000 };
  return parseSiTConfig({ ...familyDefaults(family), ...base, ...overrides });
}

// The SiT/DiT model config: a plain JSON-serialisable object (it goes into checkpoint metadata),
// its schema with clear errors, and derived sizes. Not here: named sizes (presets.ts).
import { z } from 'zod';

export const sitConfigSchema = z.object({
  /** 'SiT' (flow matching, REPA's code) or 'DiT' (DDPM); the backbone is the same. */
  family: z.enum(['SiT', 'DiT']),
  /** Latent (or pixel) height = width. */
  inputSize: z.number().int().positive(),
  inChannels: z.number().int().positive(),
  patchSize: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  depth: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  mlpRatio: z.number().positive(),
  numClasses: z.number().int().positive(),
  /** Label dropout for classifier-free guidance; > 0 adds the null class at index numClasses. */
  classDropoutProb: z.number().min(0).max(1),
  /** Output 2*C channels (DiT: noise and the variance interpolation) instead of C. */
  learnSigma: z.boolean(),
  /**
   * The timestep embedder sees timeScale * t. Official code uses 1 for both families, with
   * different inputs: REPA/SiT pass the raw flow time t in [0, 1] (no x1000), DiT passes the DDPM
   * integer step 0..999. Set 1000 to feed [0, 1] time into DiT's frequency range.
   */
  timeScale: z.number().positive(),
}).strict().superRefine((c, ctx) => {
  const issue = (message: string): void => { ctx.addIssue({ code: 'custom', message }); };
  if (c.inputSize % c.patchSize !== 0) issue(`inputSize ${c.inputSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.hiddenSize % c.numHeads !== 0) issue(`hiddenSize ${c.hiddenSize} is not divisible by numHeads ${c.numHeads}`);
  if (c.hiddenSize % 4 !== 0) issue(`hiddenSize ${c.hiddenSize} must be a multiple of 4 (2-D sin-cos position embedding)`);
  if (!Number.isInteger(c.hiddenSize * c.mlpRatio)) issue(`hiddenSize * mlpRatio = ${c.hiddenSize * c.mlpRatio} is not an integer`);
});

export type SiTConfig = z.infer<typeof sitConfigSchema>;

/** Validate an object or a JSON string; the error lists every problem with its field. */
export function parseSiTConfig(v: unknown): SiTConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = sitConfigSchema.safeParse(obj);
  if (!r.success) {
    throw new Error(`invalid SiT config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

/** Stable JSON (fields in schema order) for checkpoint metadata. */
export function sitConfigToJSON(c: SiTConfig): string {
  return JSON.stringify(parseSiTConfig(c));
}

export const gridSize = (c: SiTConfig): number => c.inputSize / c.patchSize;
export const numTokens = (c: SiTConfig): number => gridSize(c) ** 2;
export const outChannels = (c: SiTConfig): number => (c.learnSigma ? 2 * c.inChannels : c.inChannels);

/**
 * Trainable parameter count of the model a config builds (pos_embed excluded: it is a buffer here,
 * though DiT's train.py counts it since it is a frozen nn.Parameter there).
 */
export function sitParamCount(c: SiTConfig): number {
  const d = c.hiddenSize, p = c.patchSize, hid = d * c.mlpRatio;
  const lin = (i: number, o: number): number => i * o + o;
  const embed = lin(c.inChannels * p * p, d) + lin(256, d) + lin(d, d) + (c.numClasses + (c.classDropoutProb > 0 ? 1 : 0)) * d;
  const block = lin(d, 3 * d) + lin(d, d) + lin(d, hid) + lin(hid, d) + lin(d, 6 * d);
  return embed + c.depth * block + lin(d, 2 * d) + lin(d, p * p * outChannels(c));
}

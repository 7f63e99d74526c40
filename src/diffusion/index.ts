// diffusion/: interpolants, time sampling and conventions, losses, DDPM schedule, samplers and
// guidance — pure functions over tensors; models come in as ModelFn. One import for all of it.
export * from './types.ts';
export * from './interpolant.ts';
export * from './convention.ts';
export * from './timeSampling.ts';
export * from './flowLoss.ts';
export * from './ddpmSchedule.ts';
export * from './ddpmPosterior.ts';
export * from './gaussianTerms.ts';
export * from './ddpmLoss.ts';
export * from './guidance.ts';
export * from './odeSampler.ts';
export * from './sdeSampler.ts';
export * from './ddpmSampler.ts';

// nn: Module and the layers built on it, one import.
export * from './module.ts';
export * as init from './init.ts';
export * from './linear.ts';
export * from './layerNorm.ts';
export * from './embedding.ts';
export * from './conv2d.ts';
export * from './activation.ts';
export * from './sequential.ts';
export * from './mlp.ts';
export * from './attention.ts';
export * from './patchEmbed.ts';
export * from './groupNorm.ts';
export * from './batchNorm.ts';
export * from './rmsNorm.ts';
export * from './swiglu.ts';
export * from './ropeAttention.ts';

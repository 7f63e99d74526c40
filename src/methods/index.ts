// methods/: the method modules (one folder each, see method.ts) and the pieces they are made of;
// the pure loss and model pieces, one import for all.
export * from './repa/loss.ts';
export * from './encoder.ts';
export * from './sra/loss.ts';
export * from './partialForward.ts';
export * from './reg/loss.ts';
export * from './reg/sampler.ts';
export * from './repa-e/pieces.ts';

// All differentiable ops, one import.
export * from './arith.ts';
export * from './shape.ts';
export * from './layout.ts';
export * from './matmul.ts';
export * from './reduce.ts';
export * from './unary.ts';
export * from './softmax.ts';
export * from './losses.ts';
export * from './norm.ts';
export * from './attention.ts';
export * from './conv.ts';
export * from './pool.ts';
export * from './embedding.ts';
export * from './adaLN.ts';
export * from './modulate.ts';
export * from './rmsNorm.ts';
export * from './rope.ts';

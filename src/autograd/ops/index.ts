// All differentiable ops, one import.
export * from './arith.ts';
export * from './shape.ts';
export * from './layout.ts';

// Autograd: the tape engine, gradcheck and every differentiable op.
export * from './tape.ts';
export * from './gradcheck.ts';
export * from './ops/index.ts';

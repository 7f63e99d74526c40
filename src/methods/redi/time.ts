// ReDi's time convention at the boundary (github.com/zelaki/ReDi transport/transport.py, SiT's
// linear path): x_t = t·x + (1 − t)·ε with t = 1 data, target u = x − ε. diffactor trains with
// t = 0 data: x_t = (1 − t)·x + t·ε, target ε − x. The same state at t_diffactor = 1 − t_redi, and
// the velocities differ in sign. Everything inside diffactor uses its own convention; these map a
// ReDi-convention value (the PyTorch fixture's, the paper's formulas) to diffactor's and back.
// Not here: sampling (diffactor's samplers run from t = 1 to 0 in its convention).

/** t_diffactor = 1 − t_redi (and back: the map is its own inverse). */
export function fromRediTime(tRedi: number): number {
  return 1 - tRedi;
}
export const toRediTime = fromRediTime;

/** A ReDi velocity (d/dt_redi of the state) as diffactor's (d/dt_diffactor): −v. */
export function fromRediVelocity(v: ArrayLike<number>): Float32Array {
  return Float32Array.from(v, (x) => -x);
}

// grad(outputs, inputs): the gradients of outputs with respect to chosen tensors, like
// torch.autograd.grad(..., retain_graph=True), without touching anything backward() touches.
// The tape is walked in reverse as backward() does, but:
//   - nothing is written to any tensor's `.grad` (leaves included), and `retainGrad` is ignored;
//   - gradient hooks do not run (in this project hooks route gradients to other actors: a side
//     effect that belongs to the real backward only);
//   - the tape is kept, so the ordinary backward() of the full loss can follow on the same graph;
//   - only nodes between the inputs and the outputs run their backward (a forward sweep marks the
//     tape entries that depend on an input; the rest are skipped).
// Used for taming-transformers' adaptive GAN weight (models/ganLoss.ts: ‖∂nll/∂W‖ / ‖∂g/∂W‖ for
// the decoder's last weight W). Op backwards are pure functions of their saved tensors, so running
// some of them here and again in backward() gives the same numbers.
import { Tensor, ones } from '../tensor/tensor.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';
import { addInto, addNew } from './accumulate.ts';
import { currentTape, type Tape } from './tape.ts';

export interface GradOptions {
  /** The tape the outputs were recorded on (default: the current one). */
  tape?: Tape;
  /** Return null for an input the outputs do not depend on, instead of throwing (torch's allow_unused). */
  allowUnused?: boolean;
}

/**
 * ∂(Σ seeds)/∂input for each input. `outputs` is a scalar (seed 1) or [tensor, cotangent] pairs.
 * Inputs may be leaves (parameters) or intermediate tensors recorded on the tape. Returns fresh
 * tensors (never aliases of the seeds or of another op's buffers), null only with allowUnused.
 */
export function grad(outputs: Tensor | [Tensor, Tensor][], inputs: readonly Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const tape = opts.tape ?? currentTape();
  if (outputs instanceof Tensor && outputs.size !== 1) {
    throw new Error(`grad(): output must be a scalar, got shape ${fmtShape(outputs.shape)}; pass [[tensor, cotangent]] seeds otherwise`);
  }
  const seeds: [Tensor, Tensor][] = outputs instanceof Tensor ? [[outputs, ones(outputs.shape, outputs.dtype)]] : outputs;
  const targets = new Set(inputs);
  // Forward sweep: tensors that depend on an input (the inputs themselves included).
  const reach = new Set<Tensor>(inputs);
  for (const { node, output } of tape.nodes) {
    if (node.inputs.some((t) => t !== null && reach.has(t))) reach.add(output);
  }
  const grads = new Map<Tensor, Tensor>();
  const owned = new Set<Tensor>();
  const accumulate = (t: Tensor, g: Tensor): void => {
    if (!sameShape(t.shape, g.shape)) throw new Error(`grad(): gradient shape ${fmtShape(g.shape)} does not match tensor ${fmtShape(t.shape)}`);
    const prev = grads.get(t);
    if (!prev) { grads.set(t, g); return; }
    if (owned.has(prev)) addInto(prev, g);
    else {
      const s = addNew(prev, g);
      owned.add(s);
      grads.set(t, s);
    }
  };
  for (const [t, g] of seeds) {
    if (!t.requiresGrad) throw new Error(`grad(): output ${fmtShape(t.shape)} does not require grad`);
    if (reach.has(t)) accumulate(t, g);
  }
  const found = new Map<Tensor, Tensor>();
  for (let i = tape.nodes.length - 1; i >= 0; i--) {
    const { node, output } = tape.nodes[i];
    const g = grads.get(output);
    if (!g) continue;
    grads.delete(output);
    if (targets.has(output)) found.set(output, g);
    if (!node.inputs.some((t) => t !== null && reach.has(t))) continue; // nothing below leads to an input
    const inGrads = node.backward(g);
    node.inputs.forEach((inp, j) => {
      const gi = inGrads[j];
      if (inp && gi && inp.requiresGrad && reach.has(inp)) accumulate(inp, gi);
    });
  }
  // Leaves (and inputs never met as a node's output) hold whatever reached them.
  for (const [t, g] of grads) if (targets.has(t) && !found.has(t)) found.set(t, g);
  return inputs.map((t) => {
    const g = found.get(t);
    if (!g) {
      if (opts.allowUnused) return null;
      throw new Error(`grad(): input ${t.name ? `'${t.name}' ` : ''}${fmtShape(t.shape)} is not reached from the outputs (pass allowUnused to get null)`);
    }
    const c = new Tensor(g.dtype === 'float64' ? new Float64Array(g.size) : new Float32Array(g.size), g.shape);
    c.data.set(g.data);
    return c;
  });
}

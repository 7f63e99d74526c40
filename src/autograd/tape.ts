// Reverse-mode autograd on a tape. Each op that sees an input requiring grad records one node
// (its inputs and a backward closure) on the current tape; backward() walks the tape in reverse.
// A tape belongs to one actor (one thread); an actor that keeps a forward open across messages
// gives it its own Tape (withTape) and later calls backward with gradients injected from other
// actors (several seeds at once). This file is the engine; the ops are in ./ops.
import { Tensor, ones, type GradNode } from '../tensor/tensor.ts';
import { untracked } from '../tensor/pool.ts';
import { fmtShape, sameShape } from '../tensor/shape.ts';
import { addInto, addNew } from './accumulate.ts';
import { MetaF32, meta, metaPhase } from '../kernels/meta.ts';

export class Tape {
  nodes: { node: GradNode; output: Tensor }[] = [];
  get length(): number { return this.nodes.length; }
  clear(): void { this.nodes = []; }
}

let current = new Tape();
let gradEnabled = true;
/** Tapes alive (created and not yet cleared by backward or discard): for leak tests. */
export const liveTapes = new Set<Tape>();

export function currentTape(): Tape { return current; }
export function isGradEnabled(): boolean { return gradEnabled; }

/** Run fn recording onto `tape` instead of the thread's default tape. */
export function withTape<T>(tape: Tape, fn: () => T): T {
  const saved = current;
  current = tape;
  liveTapes.add(tape);
  try { return fn(); } finally { current = saved; }
}

/** Run fn without recording anything (evaluation, EMA, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const saved = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = saved; }
}

export function enableGrad<T>(fn: () => T): T {
  const saved = gradEnabled;
  gradEnabled = true;
  try { return fn(); } finally { gradEnabled = saved; }
}

/** Drop a tape without running backward (abandoned step). */
export function discardTape(tape: Tape): void {
  tape.clear();
  liveTapes.delete(tape);
}

/** True when an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/**
 * Record `output = op(inputs)` with its backward. backward receives the gradient of the output and
 * returns one gradient per input (null where the input needs none). Returns output for chaining.
 */
export function record(
  name: string,
  inputs: readonly (Tensor | null)[],
  output: Tensor,
  backward: (g: Tensor) => (Tensor | null)[],
): Tensor {
  if (!needsGrad(...inputs)) return output;
  // Which inputs get a gradient is decided when the op runs, as in PyTorch: a parameter frozen while
  // it was used (requires_grad False) gets nothing from this op even if it is unfrozen before backward.
  const node: GradNode = { name, inputs: inputs.map((t) => (t && t.requiresGrad ? t : null)), backward };
  output.requiresGrad = true;
  output.node = node;
  current.nodes.push({ node, output });
  return output;
}

/** A view sharing storage, cut from the graph. */
export function detach(t: Tensor): Tensor {
  return new Tensor(t.data, t.shape);
}

export interface BackwardOptions {
  tape?: Tape;
  /** Keep the tape's nodes (to call backward again on the same graph). */
  retainGraph?: boolean;
}

function runHooks(t: Tensor, g: Tensor): Tensor {
  if (!t.hooks) return g;
  for (const h of t.hooks) {
    const r = h(g);
    if (r) {
      if (!sameShape(r.shape, g.shape)) throw new Error(`gradient hook on ${fmtShape(t.shape)} returned shape ${fmtShape(r.shape)}`);
      g = r;
    }
  }
  return g;
}

/**
 * Backpropagate. `roots` is a scalar loss (seed 1) or a list of [tensor, gradient] seeds — the
 * gradients another actor sent for tensors this actor produced. Leaf gradients accumulate into
 * `.grad` (allocated outside any tidy scope, so they persist until zeroed).
 */
export function backward(roots: Tensor | [Tensor, Tensor][], opts: BackwardOptions = {}): void {
  if (!meta.on) { backwardOn(roots, opts); return; }
  // Shape-only execution (kernels/meta.ts): the tape as backward starts holds the step's saved activations.
  meta.counters?.onBackward?.(opts.tape ?? current);
  metaPhase('backward', () => backwardOn(roots, opts));
}

function backwardOn(roots: Tensor | [Tensor, Tensor][], opts: BackwardOptions): void {
  const tape = opts.tape ?? current;
  const grads = new Map<Tensor, Tensor>();
  const seeds: [Tensor, Tensor][] = roots instanceof Tensor ? [[roots, ones(roots.shape, roots.dtype)]] : roots;
  if (roots instanceof Tensor && roots.size !== 1) {
    throw new Error(`backward(): loss must be a scalar, got shape ${fmtShape(roots.shape)}; pass [[tensor, grad]] seeds otherwise`);
  }
  const leafOrder: Tensor[] = [];
  const owned = new Set<Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    if (!sameShape(t.shape, g.shape)) throw new Error(`gradient shape ${fmtShape(g.shape)} does not match tensor ${fmtShape(t.shape)}`);
    const prev = grads.get(t);
    if (prev) {
      // Op backwards may hand the same gradient tensor to several inputs: never write into one
      // we did not allocate here.
      if (owned.has(prev)) addInto(prev, g);
      else {
        const sum = addNew(prev, g);
        owned.add(sum);
        grads.set(t, sum);
      }
    } else {
      grads.set(t, g);
      if (t.node === null) leafOrder.push(t);
    }
  };
  for (const [t, g] of seeds) {
    if (!t.requiresGrad) throw new Error(`backward(): seed tensor ${fmtShape(t.shape)} does not require grad`);
    accumulate(t, g);
  }
  for (let i = tape.nodes.length - 1; i >= 0; i--) {
    const { node, output } = tape.nodes[i];
    let g = grads.get(output);
    if (!g) continue;
    grads.delete(output);
    g = runHooks(output, g);
    if (output.retainsGrad) output.grad = g;
    const inGrads = node.backward(g);
    node.inputs.forEach((inp, j) => {
      const gi = inGrads[j];
      if (inp && inp.requiresGrad && gi) accumulate(inp, gi);
    });
  }
  untracked(() => {
    for (const leaf of leafOrder) {
      const g = runHooks(leaf, grads.get(leaf)!);
      if (leaf.grad) addInto(leaf.grad, g);
      else {
        if (g.data instanceof MetaF32) { leaf.grad = new Tensor(new MetaF32(g.size), g.shape); continue; } // shape-only
        const c = new Tensor(g.dtype === 'float64' ? new Float64Array(g.size) : new Float32Array(g.size), g.shape);
        c.data.set(g.data);
        leaf.grad = c;
      }
    }
  });
  if (!opts.retainGraph) {
    tape.clear();
    liveTapes.delete(tape);
  }
}

/** Set `.grad` of every tensor to zero (keeping its storage). */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) p.grad?.data.fill(0);
}

// Module: a tree of named parameters, buffers and child modules whose flattened names follow
// PyTorch's state_dict convention (`blocks.3.attn.qkv.weight`), so checkpoints move both ways
// between diffactor and the official PyTorch models. Parameters are allocated outside any tidy
// scope (they live as long as the module). Layers and models subclass it; it holds no math.
import { Tensor, fromData, type DType } from '../tensor/tensor.ts';
import { fmtShape, sameShape, sizeOf, type Shape } from '../tensor/shape.ts';
import { SharedBuffer } from '../tensor/sab.ts';
import { MetaF32, meta } from '../kernels/meta.ts';

/** Permanent storage (never pooled): parameters, buffers, optimiser state. */
export function persistent(shape: Shape, dtype: DType = 'float32'): Tensor {
  const n = sizeOf(shape);
  if (meta.on) return fromData(new MetaF32(n), shape); // shape-only (kernels/meta.ts): no storage
  const buf = new SharedBuffer(Math.max(n * (dtype === 'float64' ? 8 : 4), 8));
  return fromData(dtype === 'float64' ? new Float64Array(buf, 0, n) : new Float32Array(buf, 0, n), shape);
}

export class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  /** Register a trainable parameter (created zero-filled; fill it with an initialiser). */
  protected param(name: string, shape: Shape, init?: (data: Float32Array | Float64Array) => void): Tensor {
    this.checkName(name);
    const t = persistent(shape).requireGrad();
    t.name = name;
    init?.(t.data);
    this._params.set(name, t);
    return t;
  }

  /** Register non-trainable state that belongs in the state_dict (running stats, pos_embed). */
  protected buffer(name: string, shape: Shape, init?: (data: Float32Array | Float64Array) => void): Tensor {
    this.checkName(name);
    const t = persistent(shape);
    t.name = name;
    init?.(t.data);
    this._buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this._children.set(name, m);
    return m;
  }

  /** Direct submodules by name. */
  children(): [string, Module][] {
    return [...this._children];
  }

  private checkName(name: string): void {
    if (!name || name.includes('.')) throw new Error(`module member name '${name}' must be non-empty and contain no '.'`);
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name)) {
      throw new Error(`module member '${name}' registered twice`);
    }
  }

  /** Parameters in registration order, depth first, with dotted names. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this._buffers) out.push([prefix + n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers by state_dict name. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copy values in by name. strict: every key must match both ways. Shapes must match exactly.
   * Errors list every missing, unexpected and mis-shaped key at once.
   */
  loadStateDict(state: Map<string, Tensor>, strict = true): void {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const badShape = [...own].filter(([k, t]) => state.has(k) && !sameShape(state.get(k)!.shape, t.shape))
      .map(([k, t]) => `${k}: checkpoint ${fmtShape(state.get(k)!.shape)} vs model ${fmtShape(t.shape)}`);
    const problems = [
      ...(strict && missing.length ? [`missing keys: ${missing.join(', ')}`] : []),
      ...(strict && unexpected.length ? [`unexpected keys: ${unexpected.join(', ')}`] : []),
      ...(badShape.length ? [`shape mismatches: ${badShape.join('; ')}`] : []),
    ];
    if (problems.length) throw new Error(`loadStateDict: ${problems.join(' | ')}`);
    for (const [k, t] of own) {
      const src = state.get(k);
      if (src) t.data.set(src.data);
    }
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this { return this.train(false); }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad?.data.fill(0);
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }
}

/** Children named 0, 1, 2, … like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
  get length(): number { return this.items.length; }
}

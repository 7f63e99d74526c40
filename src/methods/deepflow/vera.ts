// DeepFlow's VeRA block (Velocity Refiner with Acceleration; Shin et al., "Deeply Supervised
// Flow-Based Generative Models", ICCV 2025, arXiv 2503.14494; official models/blocks.py of
// github.com/ByteDance-Seed/DeepFlow, classes DeepFlowBlock, velocity_modulation,
// CrossAttentionBlock, build_acc_mlp). Between two branches of the trunk it maps the branch-end
// hidden state h (B, T, D), the spatial tokens P (B, T, D) and the time-gap embedding e (B, 2D) to
//   a_f = ACC_MLP(h)                                    (B, T, D)  acceleration features
//   r   = MLP(LN(u)(1 + γ) + β), u = [h ; a_f]          (B, T, D)  (β, γ) = Linear(SiLU(e)), γ ∈ [−5, 5] if legacy
//   h'  = q̃ + MHA(q̃, k̃, k̃), q̃ = LN_aff(P), k̃ = LN_aff(r)   (B, T, D)  cross-space attention
// Each piece is a pure function of its tensors (gradchecked in float64 by test/methods/deepflow.property.test.ts)
// and a Module holding the official parameter names. Not here: the trunk and heads (model.ts), losses (loss.ts).
import type { Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { add, chunk, clamp, concat, layerNorm, layerNormModulate, linear, qkvAttention, slice } from '../../autograd/index.ts';
import { Module } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { LayerNorm } from '../../nn/layerNorm.ts';
import { Mlp } from '../../nn/mlp.ts';
import { Sequential } from '../../nn/sequential.ts';
import { SiLU, activate } from '../../nn/activation.ts';
import { xavierUniform, zeros } from '../../nn/init.ts';

export interface LinearParams { weight: Tensor; bias: Tensor }

const params = (l: Linear): LinearParams => ({ weight: l.weight, bias: l.bias! });

/** ACC_MLP: Linear(D→Pm)–SiLU–Linear(Pm→2Pm)–SiLU–Linear(2Pm→Pm)–SiLU–Linear(Pm→D); h (B, T, D) -> (B, T, D). */
export function accMlp(layers: readonly LinearParams[], h: Tensor): Tensor {
  let x = h;
  layers.forEach((l, i) => {
    x = linear(x, l.weight, l.bias);
    if (i < layers.length - 1) x = activate('silu', x);
  });
  return x;
}

export interface ModulationParams { ada: LinearParams; fc1: LinearParams; fc2: LinearParams }

/**
 * Time-gap modulation (velocity_modulation): u (B, T, 2D), e (B, 2D) -> (B, T, D). LN without
 * affine, eps 1e-6; MLP 2D → 2D → D with GELU(tanh).
 */
export function timeGapModulation(p: ModulationParams, u: Tensor, e: Tensor, legacyScaling: boolean): Tensor {
  const [shift, scale0] = chunk(linear(activate('silu', e), p.ada.weight, p.ada.bias), 2, -1); // 2 × (B, 2D)
  const scale = legacyScaling ? clamp(scale0, -5, 5) : scale0;
  const m = layerNormModulate(u, shift, scale, 1e-6); // (B, T, 2D)
  return linear(activate('gelu_tanh', linear(m, p.fc1.weight, p.fc1.bias)), p.fc2.weight, p.fc2.bias); // (B, T, D)
}

export interface CrossAttentionParams { norm: LinearParams; inProj: LinearParams; outProj: LinearParams }

/**
 * Cross-space attention (CrossAttentionBlock): one affine LayerNorm (eps 1e-5) on both sides,
 * q̃ = LN(query), k̃ = ṽ = LN(kv); nn.MultiheadAttention with packed in_proj (rows q, k, v);
 * returns q̃ + MHA(q̃, k̃, ṽ). query, kv (B, T, D) with the same T (both are the token grid).
 */
export function crossSpaceAttention(p: CrossAttentionParams, query: Tensor, kv: Tensor, heads: number): Tensor {
  const d = query.shape[2];
  if (kv.ndim !== 3 || kv.shape[1] !== query.shape[1] || kv.shape[2] !== d) {
    throw new Error(`crossSpaceAttention: query (B, T, ${d}) and kv must share (B, T, D), got kv [${kv.shape.join(', ')}]`);
  }
  const q = layerNorm(query, d, p.norm.weight, p.norm.bias, 1e-5); // (B, T, D)
  const k = layerNorm(kv, d, p.norm.weight, p.norm.bias, 1e-5); // (B, T, D)
  const qProj = linear(q, slice(p.inProj.weight, 0, 0, d), slice(p.inProj.bias, 0, 0, d)); // (B, T, D)
  const kvProj = linear(k, slice(p.inProj.weight, 0, d, 3 * d), slice(p.inProj.bias, 0, d, 3 * d)); // (B, T, 2D): [k ; v]
  const attn = qkvAttention(concat([qProj, kvProj], -1), heads); // (B, T, D)
  return add(q, linear(attn, p.outProj.weight, p.outProj.bias)); // (B, T, D)
}

/** nn.MultiheadAttention's parameters under their PyTorch names (in_proj_weight, in_proj_bias, out_proj.*). */
export class MultiheadAttentionParams extends Module {
  readonly in_proj_weight: Tensor;
  readonly in_proj_bias: Tensor;
  readonly out_proj: Linear;

  constructor(dim: number, rng: Rng) {
    super();
    this.in_proj_weight = this.param('in_proj_weight', [3 * dim, dim]);
    this.in_proj_bias = this.param('in_proj_bias', [3 * dim]);
    this.out_proj = this.child('out_proj', new Linear(dim, dim, rng.child('out_proj')));
    xavierUniform(this.in_proj_weight, rng.child('init.in_proj_weight'));
    xavierUniform(this.out_proj.weight, rng.child('init.out_proj'));
    zeros(this.out_proj.bias!);
  }
}

export class CrossSpaceAttention extends Module {
  readonly multihead_attn: MultiheadAttentionParams;
  readonly layer_norm: LayerNorm;

  constructor(dim: number, readonly heads: number, rng: Rng) {
    super();
    if (dim % heads !== 0) throw new Error(`CrossSpaceAttention: dim ${dim} is not divisible by ${heads} heads`);
    this.multihead_attn = this.child('multihead_attn', new MultiheadAttentionParams(dim, rng.child('multihead_attn')));
    this.layer_norm = this.child('layer_norm', new LayerNorm(dim, { eps: 1e-5 }));
  }

  parts(): CrossAttentionParams {
    const a = this.multihead_attn;
    return { norm: { weight: this.layer_norm.weight!, bias: this.layer_norm.bias! }, inProj: { weight: a.in_proj_weight, bias: a.in_proj_bias }, outProj: params(a.out_proj) };
  }

  forward(query: Tensor, kv: Tensor): Tensor {
    return crossSpaceAttention(this.parts(), query, kv, this.heads);
  }
}

export class TimeGapModulation extends Module {
  readonly norm_final: LayerNorm;
  readonly mlp: Mlp;
  readonly adaLN_modulation: Sequential;

  /** width = 2D (the input [h ; a_f] and the gap embedding); output D. */
  constructor(width: number, readonly legacyScaling: boolean, rng: Rng) {
    super();
    this.norm_final = this.child('norm_final', new LayerNorm(width, { elementwiseAffine: false, eps: 1e-6 }));
    this.mlp = this.child('mlp', new Mlp(width, width, rng.child('mlp'), { outFeatures: width / 2, act: 'gelu_tanh' }));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([SiLU(), new Linear(width, 2 * width, rng.child('adaLN_modulation.1'))]));
    for (const l of [this.mlp.fc1, this.mlp.fc2]) { xavierUniform(l.weight, rng.child(`init.${l === this.mlp.fc1 ? 'fc1' : 'fc2'}`)); zeros(l.bias!); }
    const ada = this.adaLN_modulation.at<Linear>(-1);
    zeros(ada.weight); zeros(ada.bias!); // zero-init (initialize_weights)
  }

  parts(): ModulationParams {
    return { ada: params(this.adaLN_modulation.at<Linear>(-1)), fc1: params(this.mlp.fc1), fc2: params(this.mlp.fc2) };
  }

  forward(u: Tensor, e: Tensor): Tensor {
    return timeGapModulation(this.parts(), u, e, this.legacyScaling);
  }
}

/** One VeRA block (DeepFlowBlock): acc_mlp, acc_norm (time-gap modulation), cross_attention. */
export class VeraBlock extends Module {
  readonly acc_mlp: Sequential;
  readonly acc_norm: TimeGapModulation;
  readonly cross_attention: CrossSpaceAttention;

  constructor(dim: number, accHidden: number, heads: number, legacyScaling: boolean, rng: Rng) {
    super();
    const sizes = [dim, accHidden, 2 * accHidden, accHidden, dim];
    const layers: Linear[] = sizes.slice(1).map((o, i) => new Linear(sizes[i], o, rng.child(`acc_mlp.${2 * i}`)));
    layers.forEach((l, i) => { xavierUniform(l.weight, rng.child(`init.acc_mlp.${2 * i}`)); zeros(l.bias!); });
    this.acc_mlp = this.child('acc_mlp', new Sequential(layers.flatMap((l, i) => (i < layers.length - 1 ? [l, SiLU()] : [l]))));
    this.acc_norm = this.child('acc_norm', new TimeGapModulation(2 * dim, legacyScaling, rng.child('acc_norm')));
    this.cross_attention = this.child('cross_attention', new CrossSpaceAttention(dim, heads, rng.child('cross_attention')));
  }

  accLayers(): LinearParams[] {
    return this.acc_mlp.layers.filter((l): l is Linear => l instanceof Linear).map(params);
  }

  /** h (B, T, D) branch-end hidden state, spatial (B, T, D) input tokens, gap (B, 2D) -> acceleration features and h'. */
  forward(h: Tensor, spatial: Tensor, gap: Tensor): { acc: Tensor; out: Tensor } {
    const acc = accMlp(this.accLayers(), h); // (B, T, D)
    const refined = this.acc_norm.forward(concat([h, acc], -1), gap); // (B, T, D)
    return { acc, out: this.cross_attention.forward(spatial, refined) };
  }
}

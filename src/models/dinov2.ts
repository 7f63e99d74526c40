// Loading DINOv2 weights from safetensors into the ViT (vit.ts), strictly. Accepted layouts:
// the official state_dict names (torch.hub `dinov2_vit*14[_reg]` saved with safetensors), the
// chunked layout of DINOv2 training checkpoints (`blocks.<chunk>.<i>.*`, block_chunks > 0), and
// Hugging Face transformers' Dinov2Model names (`embeddings.*`, `encoder.layer.N.attention.
// attention.{query,key,value}` joined into qkv, `layer_scale1.lambda1`, `layernorm`). The config
// is read from the shapes; the head count is not in the shapes, so it comes from the options, the
// file's metadata, or DINOv2's 64-dim heads. Optionally resamples pos_embed at load (REPA resizes
// DINOv2-B's 37x37 grid to 16x16 with timm's bicubic antialias). Not here: .pth pickles (convert
// them with safetensors.torch.save_file first), SwiGLU ViT-g.
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { parseViTConfig, ViT, vitGrid, type ViTConfig } from './vit.ts';
import { resampleGrid, type ResampleOptions } from './resample.ts';

export interface LoadDinov2Options {
  /** Heads per block; default: metadata `num_heads`, else embedDim / 64 (every DINOv2 size). */
  numHeads?: number;
  /** Strip this prefix from every key first (e.g. 'teacher.backbone.', 'dinov2.'). */
  prefix?: string;
  /** Override interpolate_pos_encoding settings (default: the hub's, by register count). */
  interpolate?: Partial<Pick<ViTConfig, 'interpolateMode' | 'interpolateAntialias' | 'interpolateOffset'>>;
  /** Resample pos_embed to this grid at load; the model's native image size becomes grid * patch. */
  resampleTo?: number;
  /** How (default timm resample_abs_pos_embed: bicubic with antialias, size= path). */
  resampleOptions?: ResampleOptions;
}

const HF_BLOCK: [RegExp, string][] = [
  [/^norm1\./, 'norm1.'], [/^norm2\./, 'norm2.'], [/^mlp\.fc1\./, 'mlp.fc1.'], [/^mlp\.fc2\./, 'mlp.fc2.'],
  [/^attention\.output\.dense\./, 'attn.proj.'], [/^layer_scale1\.lambda1$/, 'ls1.gamma'], [/^layer_scale2\.lambda1$/, 'ls2.gamma'],
];
const HF_TOP: Record<string, string> = {
  'embeddings.cls_token': 'cls_token', 'embeddings.mask_token': 'mask_token', 'embeddings.position_embeddings': 'pos_embed',
  'embeddings.register_tokens': 'register_tokens', 'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
  'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias', 'layernorm.weight': 'norm.weight', 'layernorm.bias': 'norm.bias',
};

/** Hugging Face Dinov2Model names -> official names (q, k, v rows stacked into qkv). Unknown keys pass through. */
function fromHuggingFace(src: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', Tensor>>>();
  for (const [k, t] of src) {
    if (HF_TOP[k]) { out.set(HF_TOP[k], t); continue; }
    const m = /^encoder\.layer\.(\d+)\.(.*)$/.exec(k);
    if (!m) { out.set(k, t); continue; }
    const [, i, rest] = m;
    const a = /^attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(rest);
    if (a) {
      const slot = `blocks.${i}.attn.qkv.${a[2]}`;
      const parts = qkv.get(slot) ?? {};
      parts[a[1] as 'query' | 'key' | 'value'] = t;
      qkv.set(slot, parts);
      continue;
    }
    const rule = HF_BLOCK.find(([re]) => re.test(rest));
    out.set(rule ? `blocks.${i}.${rest.replace(rule[0], rule[1])}` : k, t);
  }
  for (const [slot, p] of qkv) {
    if (!p.query || !p.key || !p.value) throw new Error(`loadDinov2: ${slot} is missing one of query/key/value`);
    const rows = p.query.shape[0];
    const joined = new Float32Array(3 * p.query.size); // (3D, ...) = [q; k; v]
    [p.query, p.key, p.value].forEach((t, j) => joined.set(t.data, j * t.size));
    out.set(slot, tensor(joined, [3 * rows, ...p.query.shape.slice(1)]));
  }
  return out;
}

/** Any accepted layout -> the official flat names. */
export function normalizeDinov2Keys(src: Map<string, Tensor>, prefix = ''): Map<string, Tensor> {
  let sd = new Map<string, Tensor>();
  for (const [k, t] of src) {
    if (prefix && !k.startsWith(prefix)) continue;
    sd.set(k.slice(prefix.length), t);
  }
  if (sd.has('embeddings.cls_token')) sd = fromHuggingFace(sd);
  const flat = new Map<string, Tensor>();
  for (const [k, t] of sd) flat.set(k.replace(/^blocks\.\d+\.(\d+)\.(?=[a-z])/, 'blocks.$1.'), t); // un-chunk
  return flat;
}

function need(sd: Map<string, Tensor>, key: string): Tensor {
  const t = sd.get(key);
  if (!t) throw new Error(`loadDinov2: no '${key}' in the checkpoint (keys: ${[...sd.keys()].slice(0, 8).join(', ')}, …)`);
  return t;
}

/** The ViT config of an official-layout state_dict. */
export function inferDinov2Config(sd: Map<string, Tensor>, metadata: Record<string, string> = {}, opts: LoadDinov2Options = {}): ViTConfig {
  if ([...sd.keys()].some((k) => /\.mlp\.(w12|w3)\./.test(k))) throw new Error('loadDinov2: SwiGLU FFN checkpoints (ViT-g) are not supported');
  const d = need(sd, 'cls_token').shape[2];
  const proj = need(sd, 'patch_embed.proj.weight'); // (D, C, p, p)
  const n = need(sd, 'pos_embed').shape[1] - 1;
  const grid = Math.round(Math.sqrt(n));
  if (grid * grid !== n) throw new Error(`loadDinov2: pos_embed has ${n} patch positions, not a square grid`);
  let depth = 0;
  while (sd.has(`blocks.${depth}.norm1.weight`)) depth++;
  if (depth === 0) throw new Error('loadDinov2: no blocks.0.norm1.weight: not a DINOv2 layout');
  const registers = sd.get('register_tokens')?.shape[1] ?? 0;
  const numHeads = opts.numHeads ?? (metadata.num_heads ? Number(metadata.num_heads) : d / 64);
  if (!Number.isInteger(numHeads) || numHeads < 1) throw new Error(`loadDinov2: cannot tell the head count of a ${d}-dim model; pass { numHeads }`);
  const hub = registers > 0 ? { interpolateAntialias: true, interpolateOffset: 0 } : { interpolateAntialias: false, interpolateOffset: 0.1 };
  return parseViTConfig({
    imgSize: grid * proj.shape[2], patchSize: proj.shape[2], inChannels: proj.shape[1], embedDim: d, depth, numHeads,
    mlpRatio: need(sd, 'blocks.0.mlp.fc1.weight').shape[0] / d, numRegisterTokens: registers,
    layerScaleInit: sd.has('blocks.0.ls1.gamma') ? 1 : null, interpolateMode: 'bicubic', ...hub, ...opts.interpolate,
  });
}

/** Replace pos_embed (1, 1+M*M, D) by its patch grid resampled to (1, 1+g*g, D). */
function resamplePosEmbed(pos: Tensor, grid: number, opts: ResampleOptions): Tensor {
  const [, n1, d] = pos.shape;
  const m = Math.round(Math.sqrt(n1 - 1));
  const out = new Float32Array((1 + grid * grid) * d);
  out.set(pos.data.subarray(0, d));
  out.set(resampleGrid(pos.data.subarray(d), d, m, m, grid, grid, opts), d);
  return tensor(out, [1, 1 + grid * grid, d]);
}

/** Read a DINOv2 safetensors file into a ViT in eval mode (strict: every key, every shape). */
export function loadDinov2(path: string, opts: LoadDinov2Options = {}): ViT {
  const { tensors, metadata } = readSafetensors(path);
  const sd = normalizeDinov2Keys(tensors, opts.prefix);
  let config = inferDinov2Config(sd, metadata, opts);
  if (opts.resampleTo !== undefined && opts.resampleTo !== vitGrid(config)) {
    sd.set('pos_embed', resamplePosEmbed(need(sd, 'pos_embed'), opts.resampleTo, opts.resampleOptions ?? { mode: 'bicubic', antialias: true }));
    config = parseViTConfig({ ...config, imgSize: opts.resampleTo * config.patchSize });
  }
  const model = new ViT(config, new Rng(0), { init: false });
  try {
    model.loadStateDict(sd, true);
  } catch (e) {
    throw new Error(`loadDinov2 ${path} (inferred ${config.depth}x${config.embedDim}, grid ${vitGrid(config)}, ${config.numRegisterTokens} registers, ` +
      `pos_embed ${fmtShape(sd.get('pos_embed')?.shape ?? [])}): ${(e as Error).message}`);
  }
  return model.eval();
}

/** Write a ViT with the official key names; metadata carries the head count for loadDinov2. */
export function saveDinov2(model: ViT, path: string): void {
  writeSafetensors(path, model.stateDict(), { format: 'dinov2', num_heads: String(model.config.numHeads), vit_config: JSON.stringify(model.config) });
}

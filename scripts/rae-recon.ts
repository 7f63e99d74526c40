// RAE stage 1's reconstruction error on the test split beside the shipped VAE's (docs/methods.md,
// "RAE"): MSE in [−1, 1] and PSNR in [0, 1] of the first --images test images (src/methods/rae/recon.ts).
//   npx tsx scripts/rae-recon.ts --checkpoint runs/rae-decoder/checkpoint.safetensors [--vae specs/standins/vae-fashion-mnist.safetensors] [--images 1000]
// The decoder is the checkpoint's EMA weights; the encoder is the spec's (its section in the checkpoint).
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../src/build/checkpoint.ts';
import { buildEncoder, samplingModel } from '../src/build/parts.ts';
import { openDataset } from '../src/data/open.ts';
import { loadSdVae } from '../src/models/sdVae.ts';
import { RaeDecoderModel } from '../src/methods/rae/model.ts';
import { raeReconstruct, reconstructionError, vaeReconstruct } from '../src/methods/rae/recon.ts';

const { values: a } = parseArgs({ options: { checkpoint: { type: 'string' }, vae: { type: 'string' }, images: { type: 'string', default: '1000' } } });
if (!a.checkpoint) throw new Error('--checkpoint RUN/checkpoint.safetensors is required (a rae stage-1 run)');
const n = Number.parseInt(a.images!, 10);
const c = loadCheckpoint(a.checkpoint);
const model = samplingModel(c.spec, c.config, c.ema);
if (!(model instanceof RaeDecoderModel)) throw new Error(`${a.checkpoint} is not an RAE stage-1 checkpoint (its spec lists ${c.spec.methods.join(', ')})`);
model.eval();
const test = openDataset(c.spec.data.dataset, { split: 'test', size: c.spec.data.size });
const encoder = buildEncoder(c.spec, test, c.config);
const fmt = (what: string, r: { images: number; mse: number; psnr: number }) => `${what}: ${r.images} test images, MSE ${r.mse.toFixed(5)}, PSNR ${r.psnr.toFixed(2)} dB`;
console.log(fmt(`RAE decoder (${a.checkpoint}, EMA)`, reconstructionError(raeReconstruct(model, encoder), test, n)));
if (a.vae) console.log(fmt(`VAE (${a.vae}, posterior mean)`, reconstructionError(vaeReconstruct(loadSdVae(a.vae).eval()), test, n)));

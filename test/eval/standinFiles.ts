// Seed-weight stand-ins for tests: a ResNet-T evaluation classifier and a one-block DINOv2-layout
// ViT for C×16×16 images (default 3: the tiny specs' built-in data), written to `dir`. Metrics computed with
// them are meaningless; the pipeline around them is what the tests check.
import path from 'node:path';
import { createClassifier, classifierPreset } from '../../src/models/classifier.ts';
import { saveClassifier, CLASSIFIER_FORMAT } from '../../src/standins/classifier.ts';
import { createViT, vitPreset } from '../../src/models/vit.ts';
import { saveDinov2 } from '../../src/models/dinov2.ts';

export function writeTestStandins(dir: string, o: { channels?: number; dataset?: string } = {}): { classifier: string; encoder: string } {
  const channels = o.channels ?? 3, dataset = o.dataset ?? 'builtin';
  const prefix = o.dataset ? `${o.dataset}-` : '';
  const classifier = path.join(dir, `${prefix}classifier.safetensors`), encoder = path.join(dir, `${prefix}encoder.safetensors`);
  const config = classifierPreset('ResNet-T', { inChannels: channels, numClasses: 10 });
  saveClassifier(classifier, {
    model: createClassifier(config, 1),
    metadata: {
      format: CLASSIFIER_FORMAT, config: JSON.stringify(config), dataset, test_accuracy: '0',
      input_shape: JSON.stringify([channels, 16, 16]), class_names: JSON.stringify(Array.from({ length: 10 }, (_, i) => `c${i}`)),
    },
  });
  saveDinov2(createViT(vitPreset('ViT-T/4', { imgSize: 16, patchSize: 4, inChannels: channels, embedDim: 16, depth: 1, numHeads: 2 }), 2), encoder);
  return { classifier, encoder };
}

// A view of any ImageDataset at another resolution (transforms.ts `resize`), for running a
// model at a size the source does not have natively (e.g. CIFAR-10 at 16×16). Not a cache:
// each get() resamples.
import { checkIndex, sampleSize, type ImageDataset } from './dataset.ts';
import { resize, type ResizeMode } from './transforms.ts';

export function resizedDataset(ds: ImageDataset, height: number, width: number, mode: ResizeMode = 'auto'): ImageDataset {
  if (height === ds.height && width === ds.width) return ds;
  const src = new Float32Array(sampleSize(ds));
  const view: ImageDataset = {
    name: `${ds.name} @${height}×${width}`,
    count: ds.count,
    channels: ds.channels,
    height,
    width,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    get(i, out, offset) {
      checkIndex(view, i);
      const label = ds.get(i, src, 0);
      out.set(resize({ data: src, channels: ds.channels, height: ds.height, width: ds.width }, height, width, mode).data, offset);
      return label;
    },
    label: (i) => ds.label(i),
  };
  return view;
}

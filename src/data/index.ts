// Public surface of src/data: the dataset contract, the sources, transforms, the loader and
// openDataset. Import from here outside src/data.
export { type ImageDataset, sampleSize, byteToSigned } from './dataset.ts';
export { builtinDataset, type BuiltinOptions } from './builtin.ts';
export { fashionMnistDataset, idxDataset, FASHION_MNIST_CLASSES } from './fashionMnist.ts';
export { cifar10Dataset, CIFAR10_CLASSES } from './cifar10.ts';
export { pngFolderDataset, PNG_FOLDER_LAYOUT } from './pngFolder.ts';
export { resizedDataset } from './resized.ts';
export { centreCrop, centrePad, cropResize, resize, hflipInPlace, bytesToSigned, type Plane, type ResizeMode } from './transforms.ts';
export { Loader, type Batch, type LoaderOptions, type LoaderState } from './loader.ts';
export { openDataset, detectFolder, type OpenOptions } from './open.ts';
export { makeShapes, SHAPE_CLASSES } from './shapes.ts';
export { readIdx, readFashionMnist, FASHION_MNIST_DIR } from './idx.ts';

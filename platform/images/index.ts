// The images the local node runs: the project's own, built from their Dockerfiles into a content-keyed
// cache (build.ts), the pinned tools' (tools.ts), and the store the node reads them from (store.ts).
export type { ImageLayout } from './layout.js';
export { parseDockerfile, readDockerfile, type Stage, type Step } from './dockerfile.js';
export { buildImage, buildImageFiles, defaultImageCacheDir, imageLayout, linkTree, type BuildOptions, type BuiltImage } from './build.js';
export { readStore, storeFile, writeToStore } from './store.js';
export { kubeStateMetricsImage, knativeCommands, mcImage, minioImage, prometheusImage, toolImages, writeToolImages } from './tools.js';

// The bucket's archive format, shared by the snapshot function (which writes exports) and restore
// (which reads them back): object keys, the export documents, window arithmetic, durations, and the
// S3 client settings both use. It imports nothing of ours.
export * from './duration.js';
export * from './format.js';
export * from './keys.js';
export * from './reader.js';
export * from './s3.js';
export * from './window.js';

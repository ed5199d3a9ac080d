// How promsnap talks to the bucket, the same for the function that writes exports and the restore
// that reads them: an S3 client that works with MinIO and other S3-compatible stores.
import { S3Client } from '@aws-sdk/client-s3';

export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Path-style (endpoint/bucket/key): S3-compatible stores rarely have per-bucket DNS names.
    forcePathStyle: true,
    // SDK versions since early 2025 add CRC checksums to every upload and expect them back by
    // default; MinIO and other S3-compatibles do not all accept or return them. Only where the API
    // requires a checksum is one sent.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A store that does not answer must fail the delivery (to be retried), not hang it.
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 },
  });
}

// The seam between images and the local node (cluster-interfaces.md): an image the node can run, as files
// on this machine bound at container paths, with what the image's config says to start.

/** An image the local node can run: its final stage laid out as files on this machine. */
export interface ImageLayout {
  /** e.g. dev.local/simulation:0.1.0, ko://knative.dev/serving/cmd/queue, quay.io/prometheus/prometheus:v3.16.0 */
  reference: string;
  /** Host path -> path in the container's root. */
  binds: Array<{ source: string; target: string }>;
  /** The image's ENTRYPOINT ([] when it has none); a container's `command` replaces it. */
  entrypoint: string[];
  /** The image's CMD; a container's `args` replace it. */
  cmd: string[];
  workdir: string;
  env: Record<string, string>;
  /** The image's USER; none means root, as in Docker. */
  user?: { uid: number; gid: number };
}

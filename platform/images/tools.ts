// The images of the pinned tools, as the local node runs them: each image reference the platform's
// manifests and Knative's own config/ YAML name, mapped to the binary provision.sh built, bound where the
// real image keeps it, with the real image's ENTRYPOINT, CMD, WORKDIR and USER:
//   ko://knative.dev/serving/cmd/<x>, ko://knative.dev/eventing/cmd/<x>  -> /ko-app/<x>, user 65532 (ko's base)
//   quay.io/prometheus/prometheus:v<PROMETHEUS_VERSION>                  -> /bin/prometheus, /bin/promtool, user nobody
//   quay.io/minio/minio:<tag>, quay.io/minio/mc:<tag>                     -> /usr/bin/minio, /usr/bin/mc
//   registry.k8s.io/kube-state-metrics/kube-state-metrics:v<version>      -> /kube-state-metrics, user nobody
// A layout names where provision.sh puts the binary whether or not it is built yet; the node reports a
// bind source that does not exist.
import path from 'node:path';
import { toolDir, versions, type ToolName } from '../tools/versions.js';
import type { ImageLayout } from './layout.js';
import { writeToStore } from './store.js';

export const prometheusImage = `quay.io/prometheus/prometheus:v${versions.prometheus}`;
export const kubeStateMetricsImage = `registry.k8s.io/kube-state-metrics/kube-state-metrics:v${versions.kubeStateMetrics}`;
/**
 * The MinIO and mc images platform/minio names (a test checks they agree). What runs for them is the
 * MinIO and mc built at MINIO_VERSION and MC_VERSION (Go module versions: MinIO's module is not tagged
 * by release, so the build and the tag are not the same commit).
 */
export const minioImage = 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z';
export const mcImage = 'quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z';

/** Knative's commands built by provision.sh, by binary name: the import path under knative.dev/<repo>/cmd/. */
export const knativeCommands: Record<'knative-serving' | 'knative-eventing', Record<string, string>> = {
  'knative-serving': { controller: 'controller', webhook: 'webhook', autoscaler: 'autoscaler', activator: 'activator', queue: 'queue' },
  'knative-eventing': {
    controller: 'controller',
    mtping: 'mtping',
    ingress: 'broker/ingress',
    filter: 'broker/filter',
    mtchannel_broker: 'mtchannel_broker',
    channel_controller: 'in_memory/channel_controller',
    channel_dispatcher: 'in_memory/channel_dispatcher',
    webhook: 'webhook',
    jobsink: 'jobsink',
    requestreply: 'requestreply',
  },
};

const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const nobody = { uid: 65534, gid: 65534 };

function binary(tool: ToolName, name: string, env: NodeJS.ProcessEnv): string {
  return path.join(toolDir(tool, env), 'bin', name);
}

export function toolImages(env: NodeJS.ProcessEnv = process.env): ImageLayout[] {
  const ko = (['knative-serving', 'knative-eventing'] as const).flatMap((tool) =>
    Object.entries(knativeCommands[tool]).map(([name, cmd]): ImageLayout => {
      const app = `/ko-app/${path.posix.basename(cmd)}`;
      return {
        reference: `ko://knative.dev/${tool.slice('knative-'.length)}/cmd/${cmd}`,
        binds: [{ source: binary(tool, name, env), target: app }],
        entrypoint: [app],
        cmd: [],
        workdir: '/',
        // What ko sets on its default base image (cgr.dev/chainguard/static, user nonroot = 65532).
        env: { PATH: `${defaultPath}:/ko-app`, KO_DATA_PATH: '/var/run/ko', SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt' },
        user: { uid: 65532, gid: 65532 },
      };
    }),
  );
  return [
    ...ko,
    {
      reference: prometheusImage,
      binds: [
        { source: binary('prometheus', 'prometheus', env), target: '/bin/prometheus' },
        { source: binary('prometheus', 'promtool', env), target: '/bin/promtool' },
      ],
      entrypoint: ['/bin/prometheus'],
      cmd: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
      workdir: '/prometheus',
      env: { PATH: defaultPath },
      user: nobody,
    },
    {
      reference: minioImage,
      binds: [{ source: binary('minio', 'minio', env), target: '/usr/bin/minio' }],
      // The image's docker-entrypoint.sh runs `minio "$@"` (after switching to MINIO_USERNAME, not used here).
      entrypoint: ['/usr/bin/minio'],
      cmd: [],
      workdir: '/',
      env: { PATH: defaultPath },
    },
    {
      reference: mcImage,
      binds: [{ source: binary('mc', 'mc', env), target: '/usr/bin/mc' }],
      entrypoint: ['mc'],
      cmd: [],
      workdir: '/',
      env: { PATH: defaultPath },
    },
    {
      reference: kubeStateMetricsImage,
      binds: [{ source: binary('kube-state-metrics', 'kube-state-metrics', env), target: '/kube-state-metrics' }],
      entrypoint: ['/kube-state-metrics', '--port=8080', '--telemetry-port=8081'],
      cmd: [],
      workdir: '/',
      env: { PATH: defaultPath },
      user: nobody,
    },
  ];
}

/** Writes every tool image into the store (at cluster start). */
export async function writeToolImages(store: string, env: NodeJS.ProcessEnv = process.env): Promise<ImageLayout[]> {
  const layouts = toolImages(env);
  for (const layout of layouts) await writeToStore(store, layout);
  return layouts;
}

// What `npm start` prints once everything is Ready: each component's URL and the commands that use them,
// as a user pastes them (kubectl with the printed KUBECONFIG, hey through the ingress as on kind, mc, and
// Skaffold's local profile). Pure: the running cluster's facts in, lines out.
import path from 'node:path';
import type { LocalUrls } from './start.js';

export interface BannerFacts {
  urls: LocalUrls;
  kubeconfig: string;
  dockerHost: string;
  /** The data dir, and whether it is the default one (.promsnap in the project). */
  dataDir: string;
  defaultDataDir: boolean;
  mcUser: { accessKeyId: string; secretAccessKey: string };
  bucket: string;
  /** How the schedule fires: the manifest's cron or --ping-every's. */
  schedule: string;
  logFile: string;
  stateDir: string;
  startupMs: number;
}

/** The Host a ksvc URL asks for, for `hey -host` and `curl -H Host:`. */
export function hostOf(url: string): string {
  return new URL(url).host;
}

export function banner(facts: BannerFacts): string[] {
  const { urls } = facts;
  const dataDirEnv = facts.defaultDataDir ? '' : ` PROMSNAP_DATA_DIR=${facts.dataDir}`;
  const loadFlags = facts.defaultDataDir ? '' : ` --data-dir ${facts.dataDir}`;
  const simulationHost = hostOf(urls.simulation);
  const snapshotHost = hostOf(urls.snapshot);
  return [
    `Kubernetes API   ${urls.api}`,
    `                 export KUBECONFIG=${facts.kubeconfig}`,
    `                 kubectl get ksvc -A; kubectl get pods -n promsnap -w; npm run cluster -- status`,
    `Prometheus API   ${urls.prometheus}/api/v1/query?query=up`,
    `MinIO console    ${urls.minioConsole}  (S3 API ${urls.minio})`,
    `MinIO client     mc alias set promsnap ${urls.minio} ${facts.mcUser.accessKeyId} ${facts.mcUser.secretAccessKey}`,
    `                 mc ls --recursive promsnap/${facts.bucket}`,
    `Simulation       ${urls.simulation}  (ksvc, through the ingress at ${urls.ingress})`,
    `                 hey -z 30s -c 50 -host ${simulationHost} ${urls.ingress}/simulate-requests`,
    `                 npm run load -- -z 30s -c 50${loadFlags}`,
    `Snapshot         ${urls.snapshot}  (cluster-local; from here: curl -H 'Host: ${snapshotHost}' ${urls.ingressInternal}/lastdata)`,
    `                 fires ${facts.schedule}; one line per stored snapshot below`,
    `Skaffold         export KUBECONFIG=${facts.kubeconfig} DOCKER_HOST=${facts.dockerHost}${dataDirEnv}; skaffold dev -p local --tail=false --cleanup=false`,
    `Logs             ${facts.logFile} (control plane, node); pods: ${path.join(facts.stateDir, 'node', 'pods')}/<pod uid>/logs/`,
    `ready in ${(facts.startupMs / 1000).toFixed(1)} s; Ctrl-C stops everything`,
  ];
}

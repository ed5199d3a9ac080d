// The local node: one process inside the cluster sandbox doing what a kubelet does for the platform's
// pods (plus scheduling them to itself and provisioning their volumes). Command line, as
// /work/notes/cluster-interfaces.md fixes it:
//
//   node --import tsx platform/node/main.ts --kubeconfig K --name promsnap-node --node-ip 10.244.0.1
//     --pod-cidr 10.244.1.0/24 --state-dir D --images DIR [--network [--knative-ingress]] [--data-dir DIR]
//     [--controller-kubeconfig K2] [--cluster-dns 10.96.0.10] [--cluster-domain cluster.local]
//     [--shutdown-grace-seconds 10] [--kubelet-port 10250]
//
// --kubeconfig is the kubelet's identity (system:node:<name>); --controller-kubeconfig the account the
// scheduler, provisioner and network parts use (setup.ts makes it; without it they use --kubeconfig,
// which works only for an identity NodeRestriction does not confine). With --network, the KIngress starts
// when the API server serves Knative's networking API; --knative-ingress starts it regardless, for a
// cluster that installs Knative while its node starts (it routes once the API appears).
// It logs JSON lines; on SIGTERM (or SIGINT) it stops every pod, each within its grace period capped at
// --shutdown-grace-seconds, and exits 0 with nothing of theirs left running.
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, logLevels, type LogLevel } from '../../functions/runtime/src/logger.js';
import { findSystemTool } from '../tools/find.js';
import { BackOff, crashLoopBackOff, imagePullBackOff } from './backoff.js';
import { EventRecorder } from './events.js';
import { ImageStore } from './images.js';
import { parseCidr, parseIp, PodIpam } from './ipam.js';
import { connectKube } from './kube.js';
import { startKubeletServer } from './kubelet-server.js';
import { startHostedNetwork } from './network-host.js';
import { NodeMetrics } from './metrics.js';
import { NodeRegistration, nodeCapacity } from './node.js';
import { ObjectCache } from './objects.js';
import { findBridge } from './pod-network.js';
import { Provisioner } from './provisioner.js';
import type { Privilege } from './security.js';
import { PodSync } from './sync.js';

export interface NodeOptions {
  kubeconfig: string;
  controllerKubeconfig: string;
  name: string;
  nodeIp: string;
  podCidr: string;
  stateDir: string;
  images: string;
  network: boolean;
  knativeIngress: boolean;
  dataDir: string;
  clusterDns: string;
  clusterDomain: string;
  shutdownGraceSeconds: number;
  kubeletPort: number;
  logLevel: LogLevel;
}

/** Parses the command line; throws a message naming the flag that is wrong. */
export function parseNodeArgs(argv: string[]): NodeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      'controller-kubeconfig': { type: 'string' },
      name: { type: 'string', default: 'promsnap-node' },
      'node-ip': { type: 'string', default: '10.244.0.1' },
      'pod-cidr': { type: 'string', default: '10.244.1.0/24' },
      'state-dir': { type: 'string' },
      images: { type: 'string' },
      network: { type: 'boolean', default: false },
      'knative-ingress': { type: 'boolean', default: false },
      'data-dir': { type: 'string' },
      'cluster-dns': { type: 'string', default: '10.96.0.10' },
      'cluster-domain': { type: 'string', default: 'cluster.local' },
      'shutdown-grace-seconds': { type: 'string', default: '10' },
      'kubelet-port': { type: 'string', default: '10250' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  for (const required of ['kubeconfig', 'state-dir', 'images'] as const) if (!values[required]) throw new Error(`--${required} is required`);
  const grace = Number(values['shutdown-grace-seconds']);
  if (!Number.isInteger(grace) || grace < 0)
    throw new Error(`--shutdown-grace-seconds must be a whole number of seconds, not ${values['shutdown-grace-seconds']}`);
  const port = Number(values['kubelet-port']);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`--kubelet-port must be a port number, not ${values['kubelet-port']}`);
  parseIp(values['node-ip']);
  parseIp(values['cluster-dns']);
  parseCidr(values['pod-cidr']);
  if (!(logLevels as readonly string[]).includes(values['log-level'])) throw new Error(`--log-level must be one of ${logLevels.join(', ')}`);
  const stateDir = path.resolve(values['state-dir']!);
  return {
    kubeconfig: values.kubeconfig!,
    controllerKubeconfig: values['controller-kubeconfig'] ?? values.kubeconfig!,
    name: values.name,
    nodeIp: values['node-ip'],
    podCidr: values['pod-cidr'],
    stateDir,
    images: values.images!,
    network: values.network,
    knativeIngress: values['knative-ingress'],
    dataDir: path.resolve(values['data-dir'] ?? path.join(stateDir, 'volumes')),
    clusterDns: values['cluster-dns'],
    clusterDomain: values['cluster-domain'],
    shutdownGraceSeconds: grace,
    kubeletPort: port,
    logLevel: values['log-level'] as LogLevel,
  };
}

/** The programs the node's runtime runs (pod namespaces, mounts, processes, the serving certificate). */
export const runtimeTools = ['ip', 'unshare', 'nsenter', 'setpriv', 'mount', 'umount', 'sleep', 'hostname', 'openssl'] as const;

/** Root, or one mapped user in a user namespace (the rootless sandbox). */
export async function detectPrivilege(): Promise<Privilege> {
  const map = await readFile('/proc/self/uid_map', 'utf8').catch(() => '0 0 4294967295');
  const full = map
    .trim()
    .split('\n')
    .some((line) => /^\s*0\s+0\s+4294967295\s*$/.test(line));
  return process.geteuid?.() === 0 && full ? 'root' : 'rootless';
}

export interface RunningNode {
  stop(): Promise<void>;
}

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const log = createLogger({ level: options.logLevel, fields: { component: 'promsnap-node', node: options.name } });
  // Every program the runtime calls, found now: a missing one stops the node with how to install it.
  for (const tool of runtimeTools) findSystemTool(tool);
  const privilege = await detectPrivilege();
  const bridge = await findBridge(options.nodeIp);
  await mkdir(path.join(options.stateDir, 'pods'), { recursive: true });
  await mkdir(options.dataDir, { recursive: true });
  const images = new ImageStore(options.images, (file, err) => log.error('image store entry unreadable', { file, err: err.message }));
  const known = await images.current();
  const kube = connectKube(options.kubeconfig);
  const controllers = connectKube(options.controllerKubeconfig);
  const events = new EventRecorder(kube, options.name, log);
  const objects = new ObjectCache(kube, log);
  const hostResolvConf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');

  const registration = new NodeRegistration(
    kube,
    { name: options.name, nodeIp: options.nodeIp, podCidr: options.podCidr, kubeletPort: options.kubeletPort },
    log,
  );
  await registration.register();

  let sync: PodSync | undefined = undefined;
  const metrics = new NodeMetrics(options.name, () => sync?.running() ?? { pods: 0, containers: 0 });
  sync = new PodSync({
    kube,
    scheduler: controllers,
    log,
    schedulerEvents: new EventRecorder(controllers, options.name, log, 'promsnap.dev/scheduler'),
    objects,
    nodeName: options.name,
    runtime: {
      kube,
      log,
      metrics,
      events,
      objects,
      images,
      ipam: new PodIpam(options.podCidr, [options.nodeIp]),
      crashBackOff: new BackOff(crashLoopBackOff),
      imageBackOff: new BackOff(imagePullBackOff),
      nodeName: options.name,
      nodeIp: options.nodeIp,
      bridge,
      dns: { clusterDns: options.clusterDns, clusterDomain: options.clusterDomain, hostResolvConf },
      stateDir: options.stateDir,
      dataDir: options.dataDir,
      privilege,
      allocatable: nodeCapacity(),
      services: () => sync?.serviceList() ?? [],
    },
  });
  const provisioner = new Provisioner(controllers, options.name, options.dataDir, log);
  await provisioner.start();
  // Before the pods: they resolve names and dial ClusterIPs from their first moment.
  const network = options.network
    ? await startHostedNetwork({
        kubeConfig: controllers.kubeConfig,
        log,
        nodeIp: options.nodeIp,
        clusterDns: options.clusterDns,
        clusterDomain: options.clusterDomain,
        knativeIngress: options.knativeIngress,
      })
    : undefined;
  await sync.start();
  const kubelet = await startKubeletServer({
    kube,
    log,
    nodeName: options.name,
    nodeIp: options.nodeIp,
    port: options.kubeletPort,
    dir: options.stateDir,
    metrics,
    containers: () => sync.containerSamples(),
    pods: () => sync.pods(),
  });
  log.info('node ready', {
    privilege,
    bridge: bridge.bridge,
    podCidr: options.podCidr,
    images: known.length,
    kubelet: kubelet.url,
    network: network
      ? { services: network.services !== undefined, dns: network.dns && `${network.dns.address}:${network.dns.port}`, ingress: network.ingress?.address }
      : false,
  });

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        log.info('node stopping', { pods: sync.podCount, graceCapSeconds: options.shutdownGraceSeconds });
        await sync.stop(options.shutdownGraceSeconds * 1000);
        // After the pods: their preStop hooks and drains may still use DNS and ClusterIPs.
        await network?.close();
        provisioner.stop();
        await kubelet.close();
        objects.stop();
        registration.stop();
        log.info('node stopped');
      })();
      return stopping;
    },
  };
}

async function main(): Promise<void> {
  let options: NodeOptions;
  try {
    options = parseNodeArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`promsnap node: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const node = await startNode(options);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`promsnap node: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    void node.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'unhandled rejection', err: String(reason) })}\n`);
  });
  main().catch((err: Error) => {
    process.stderr.write(`promsnap node: ${err.message}\n`);
    process.exit(1);
  });
}

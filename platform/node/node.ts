// The Node object and its heartbeat, as the kubelet keeps them: the Node registered with the labels a
// kubelet may set, its pod CIDR, addresses, capacity from this machine and nodeInfo; a Lease in
// kube-node-lease renewed every 10 s (the node lifecycle controller's liveness signal); the status with
// its conditions every minute. The node is Ready as long as this process runs.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { V1MicroTime, type V1Lease, type V1Node } from '@kubernetes/client-node';
import type { Logger } from '../../functions/runtime/src/logger.js';
import { messageOf, statusOf, strategicMergePatch, type Kube } from './kube.js';

export const kubeletVersion = 'v1.37.2';
const leaseDurationSeconds = 40;
const leaseRenewMs = 10_000;
const statusReportMs = 60_000;

export interface NodeIdentity {
  name: string;
  nodeIp: string;
  podCidr: string;
  /** Where the kubelet endpoint listens (the Node's daemonEndpoints). */
  kubeletPort?: number;
}

/** What the node offers: this machine's CPUs and memory, 110 pods, as a kubelet reports them. */
export function nodeCapacity(): Record<string, string> {
  return {
    cpu: String(os.availableParallelism()),
    memory: `${Math.floor(os.totalmem() / 1024)}Ki`,
    pods: '110',
    'ephemeral-storage': `${Math.floor(os.totalmem() / 1024)}Ki`,
  };
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function osImage(): string {
  const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readOr('/etc/os-release', ''));
  return match?.[1] ?? 'Linux';
}

export function nodeObject(identity: NodeIdentity): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: identity.name,
      labels: {
        'kubernetes.io/hostname': identity.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
      },
    },
    spec: { podCIDR: identity.podCidr, podCIDRs: [identity.podCidr] },
  };
}

export function nodeStatus(identity: NodeIdentity, now: Date, transitions: Date): object {
  const capacity = nodeCapacity();
  const condition = (type: string, status: 'True' | 'False', reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    lastTransitionTime: transitions.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  return {
    status: {
      capacity,
      allocatable: capacity,
      conditions: [
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status (promsnap local node)'),
      ],
      addresses: [
        { type: 'InternalIP', address: identity.nodeIp },
        { type: 'Hostname', address: identity.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: identity.kubeletPort ?? 10250 } },
      nodeInfo: {
        machineID: readOr('/etc/machine-id', ''),
        systemUUID: readOr('/etc/machine-id', ''),
        bootID: readOr('/proc/sys/kernel/random/boot_id', ''),
        kernelVersion: os.release(),
        osImage: osImage(),
        containerRuntimeVersion: 'promsnap://0.1.0',
        kubeletVersion,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      },
    },
  };
}

export class NodeRegistration {
  private leaseTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly since = new Date();

  constructor(
    private readonly kube: Kube,
    private readonly identity: NodeIdentity,
    private readonly log: Logger,
  ) {}

  async register(): Promise<void> {
    try {
      await this.kube.core.createNode({ body: nodeObject(this.identity) });
    } catch (err) {
      if (statusOf(err) !== 409) throw new Error(`could not register Node ${this.identity.name}: ${messageOf(err)}`, { cause: err });
    }
    await this.reportStatus();
    await this.renewLease();
    this.leaseTimer = setInterval(() => void this.renewLease(), leaseRenewMs);
    this.statusTimer = setInterval(() => void this.reportStatus(), statusReportMs);
  }

  stop(): void {
    clearInterval(this.leaseTimer);
    clearInterval(this.statusTimer);
  }

  private async reportStatus(): Promise<void> {
    try {
      await this.kube.core.patchNodeStatus({ name: this.identity.name, body: nodeStatus(this.identity, new Date(), this.since) }, strategicMergePatch);
    } catch (err) {
      this.log.warn('node status not reported', { err: messageOf(err) });
    }
  }

  private async renewLease(): Promise<void> {
    const name = this.identity.name;
    const namespace = 'kube-node-lease';
    try {
      let lease: V1Lease | undefined;
      try {
        lease = await this.kube.coordination.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      if (!lease) {
        const node = await this.kube.core.readNode({ name });
        await this.kube.coordination.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata?.uid ?? '' }] },
            spec: { holderIdentity: name, leaseDurationSeconds, renewTime: new V1MicroTime() },
          },
        });
        return;
      }
      lease.spec = { ...lease.spec, holderIdentity: name, leaseDurationSeconds, renewTime: new V1MicroTime() };
      await this.kube.coordination.replaceNamespacedLease({ name, namespace, body: lease });
    } catch (err) {
      this.log.warn('node lease not renewed', { err: messageOf(err) });
    }
  }
}

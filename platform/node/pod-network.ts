// A pod's sandbox in the kubelet's sense: network, mount and UTS namespaces held by one sleeping process
// (the holder), a veth pair with the pod's end as eth0 and the node's end on the cluster bridge, the pod
// IP, loopback, a default route via the node, and the pod's hostname. The holder is its own process group,
// so a signal meant for the node never reaches it; killing it (after the containers) takes the namespaces,
// the veth pair and every mount made in them along.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { runCommand } from '../tools/command.js';
import { findSystemTool } from '../tools/find.js';
import { parseIp } from './ipam.js';

export interface BridgeInfo {
  bridge: string;
  prefixLength: number;
}

interface IpAddrShow {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** The interface holding the node IP (the cluster bridge) and its prefix, as `ip -j addr` reports them. */
export async function findBridge(nodeIp: string): Promise<BridgeInfo> {
  const { stdout } = await runCommand(findSystemTool('ip'), ['-j', '-4', 'addr', 'show']);
  for (const link of JSON.parse(stdout) as IpAddrShow[]) {
    const address = link.addr_info?.find((a) => a.family === 'inet' && a.local === nodeIp);
    if (address) return { bridge: link.ifname, prefixLength: address.prefixlen };
  }
  throw new Error(`no interface holds the node IP ${nodeIp}: the node must run inside the cluster sandbox, whose bridge has that address`);
}

/** The node-side veth name: v + the pod IP in hex (9 characters, unique per IP, within IFNAMSIZ). */
export function vethName(podIp: string): string {
  return `v${parseIp(podIp).toString(16).padStart(8, '0')}`;
}

export interface PodSandbox {
  readonly holderPid: number;
  readonly podIp: string;
  readonly veth: string;
  /** Kills the holder; the namespaces go once no container is left in them. */
  stop(): Promise<void>;
}

export interface PodSandboxOptions {
  podIp: string;
  nodeIp: string;
  bridge: BridgeInfo;
  hostname: string;
}

export async function startPodSandbox(options: PodSandboxOptions): Promise<PodSandbox> {
  const ip = findSystemTool('ip');
  const holder: ChildProcess = spawn(
    findSystemTool('unshare'),
    ['--net', '--mount', '--uts', '--propagation', 'private', '--', findSystemTool('sleep'), 'infinity'],
    {
      stdio: 'ignore',
      detached: true,
    },
  );
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    holder.once('spawn', resolve);
    holder.once('error', reject);
  });
  const pid = holder.pid!;
  const veth = vethName(options.podIp);
  const stop = async () => {
    if (holder.exitCode === null && holder.signalCode === null) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
    // The kernel frees a network namespace, and the veth end in it, some time after its last process
    // has gone (seen: a veth still there right after the node stopped). Deleting the host end removes
    // both ends now; the pod's IP, and with it this name, is handed out again only after stop().
    await runCommand(ip, ['link', 'delete', veth], { allowFailure: true });
  };
  try {
    // unshare has set up the namespaces once it execs sleep; until then the pid still shows unshare's.
    await waitForExec(pid, 'sleep');
    await runCommand(ip, ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
    await runCommand(ip, ['link', 'set', veth, 'master', options.bridge.bridge, 'up']);
    const inside = [
      'link set lo up',
      `addr add ${options.podIp}/${options.bridge.prefixLength} dev eth0`,
      'link set eth0 up',
      `route add default via ${options.nodeIp} dev eth0`,
    ].join('\n');
    await runCommand(findSystemTool('nsenter'), ['-t', String(pid), '-n', ip, '-batch', '-'], { input: `${inside}\n` });
    await runCommand(findSystemTool('nsenter'), ['-t', String(pid), '-u', findSystemTool('hostname'), options.hostname]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { holderPid: pid, podIp: options.podIp, veth, stop };
}

async function waitForExec(pid: number, command: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === command) return;
    if (comm === '') throw new Error(`the pod's namespace holder (pid ${pid}) exited while starting`);
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`the pod's namespace holder (pid ${pid}) did not start within a second`);
}

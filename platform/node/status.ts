// A pod's status as the kubelet writes it (pkg/kubelet/kubelet_pods.go getPhase, pkg/kubelet/status
// generate.go), in the stages kwok's pod stages show: on create Initialized (or ContainersNotInitialized),
// Ready/ContainersReady False "containers with unready status: [...]", waiting ContainerCreating or
// PodInitializing, hostIP, podIP, startTime; running -> running.startedAt, started; ready from probes;
// finished -> terminated and a terminal phase. Pure: the pod worker hands in what it knows.
import type { V1Container, V1Pod, V1PodCondition } from '@kubernetes/client-node';

export interface WaitingState {
  reason: string;
  message?: string;
}

export interface TerminatedState {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID?: string;
}

export type ContainerState = { waiting: WaitingState } | { running: { startedAt: string } } | { terminated: TerminatedState };

/** What the node knows of one container, in the API's own shape. */
export interface ContainerView {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  state: ContainerState;
  lastState?: { terminated: TerminatedState };
  restartCount: number;
  ready: boolean;
  started: boolean;
  user?: { linux: { uid: number; gid: number; supplementalGroups: number[] } };
}

export interface PodView {
  pod: V1Pod;
  hostIP: string;
  podIP: string | undefined;
  startTime: string;
  initContainers: ContainerView[];
  containers: ContainerView[];
  /** The network namespace and IP are in place. */
  sandboxReady: boolean;
  /** Every container has stopped for good (terminal phase). */
  terminal: boolean;
  /** A pod-level reason and message (Terminated: the node shut down). */
  reason?: { reason: string; message: string };
  /** Conditions as last written, so an unchanged condition keeps its lastTransitionTime. */
  previousConditions?: PreviousCondition[];
  now: string;
}

export type PreviousCondition = Pick<V1PodCondition, 'type' | 'status'> & { lastTransitionTime?: Date | string };

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

/** A condition; a reason or message it no longer has is null, which deletes it in the strategic merge patch. */
export interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string | null;
  message: string | null;
  lastTransitionTime: string;
  lastProbeTime: null;
}

export interface PodStatusPatch {
  phase: PodPhase;
  reason?: string;
  message?: string;
  conditions: Condition[];
  hostIP: string;
  hostIPs: Array<{ ip: string }>;
  podIP?: string;
  podIPs?: Array<{ ip: string }>;
  startTime: string;
  initContainerStatuses?: ContainerView[];
  containerStatuses: ContainerView[];
}

/** API times have whole seconds (metav1.Time). */
export function apiTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Whether a container that exited with this code restarts (pod restartPolicy, or the container's own with its rules). */
export function containerShouldRestart(container: V1Container, restartPolicy: string | undefined, exitCode: number): boolean {
  for (const rule of container.restartPolicyRules ?? []) {
    const codes = rule.exitCodes;
    if (!codes) continue;
    const listed = (codes.values ?? []).includes(exitCode);
    if (codes.operator === 'In' ? listed : !listed) return rule.action === 'Restart';
  }
  const policy = container.restartPolicy ?? restartPolicy ?? 'Always';
  if (policy === 'Always') return true;
  if (policy === 'OnFailure') return exitCode !== 0;
  return false;
}

function isTerminated(state: ContainerState): state is { terminated: TerminatedState } {
  return 'terminated' in state;
}
function isRunning(state: ContainerState): state is { running: { startedAt: string } } {
  return 'running' in state;
}

/** getPhase with the ContainerRestartRules gate on (its default in 1.37), without sidecars. */
export function podPhase(pod: V1Pod, init: ContainerView[], containers: ContainerView[], terminal: boolean): PodPhase {
  const spec = pod.spec!;
  let pendingInit = 0;
  let failedInitNotRestartable = 0;
  for (const container of spec.initContainers ?? []) {
    const status = init.find((s) => s.name === container.name);
    if (!status || isRunning(status.state)) {
      pendingInit++;
      continue;
    }
    const exit = isTerminated(status.state) ? status.state.terminated.exitCode : status.lastState?.terminated.exitCode;
    if (exit === undefined) pendingInit++;
    else if (exit !== 0 && !containerShouldRestart(container, spec.restartPolicy, exit)) failedInitNotRestartable++;
  }
  if (failedInitNotRestartable > 0) return 'Failed';

  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let stoppedNotRestartable = 0;
  let succeeded = 0;
  for (const container of spec.containers) {
    const status = containers.find((s) => s.name === container.name);
    if (!status) {
      unknown++;
      continue;
    }
    if (isRunning(status.state)) running++;
    else if (isTerminated(status.state)) {
      stopped++;
      const exitCode = status.state.terminated.exitCode;
      if (!containerShouldRestart(container, spec.restartPolicy, exitCode)) stoppedNotRestartable++;
      if (exitCode === 0) succeeded++;
    } else if (status.lastState) {
      stopped++;
      if (!containerShouldRestart(container, spec.restartPolicy, status.lastState.terminated.exitCode)) stoppedNotRestartable++;
    } else waiting++;
  }

  if (pendingInit > 0 || waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (terminal) return stopped === succeeded ? 'Succeeded' : 'Failed';
    if (stopped !== stoppedNotRestartable) return 'Running';
    return stopped === succeeded ? 'Succeeded' : 'Failed';
  }
  return 'Pending';
}

/** Go prints a []string as [a b]: the kubelet's condition messages keep that form. */
function goList(names: string[]): string {
  return `[${names.join(' ')}]`;
}

function condition(type: string, status: boolean, now: string, previous: PreviousCondition[] | undefined, reason?: string, message?: string): Condition {
  const value = status ? 'True' : 'False';
  const before = previous?.find((c) => c.type === type);
  const since = before && before.status === value && before.lastTransitionTime ? apiTimeOf(before.lastTransitionTime) : now;
  return { type, status: value, reason: reason || null, message: message || null, lastTransitionTime: since, lastProbeTime: null };
}

function apiTimeOf(value: Date | string): string {
  return typeof value === 'string' ? value : apiTime(value.getTime());
}

/** The status the node writes (a strategic merge patch: conditions merge by type, so PodScheduled stays). */
export function podStatus(view: PodView): PodStatusPatch {
  const { pod, now, previousConditions: previous } = view;
  const spec = pod.spec!;
  const phase = podPhase(pod, view.initContainers, view.containers, view.terminal);
  const terminalPhase = phase === 'Succeeded' || phase === 'Failed';

  const conditions: Condition[] = [];
  conditions.push(
    condition(
      'PodReadyToStartContainers',
      view.sandboxReady && !(view.terminal && terminalPhase),
      now,
      previous,
      view.sandboxReady ? undefined : 'PodSandboxNotReady',
    ),
  );

  const unknownInit = (spec.initContainers ?? []).filter((c) => !view.initContainers.some((s) => s.name === c.name)).map((c) => c.name);
  const incompleteInit = (spec.initContainers ?? [])
    .filter((c) => {
      const status = view.initContainers.find((s) => s.name === c.name);
      return status && !status.ready;
    })
    .map((c) => c.name);
  const anyRegularStarted = view.containers.some((s) => !('waiting' in s.state) || s.lastState !== undefined);
  if (phase === 'Succeeded' && unknownInit.length === 0) conditions.push(condition('Initialized', true, now, previous, 'PodCompleted'));
  else if (anyRegularStarted || (unknownInit.length === 0 && incompleteInit.length === 0)) conditions.push(condition('Initialized', true, now, previous));
  else {
    const messages = [
      ...(unknownInit.length ? [`containers with unknown status: ${goList(unknownInit)}`] : []),
      ...(incompleteInit.length ? [`containers with incomplete status: ${goList(incompleteInit)}`] : []),
    ];
    conditions.push(condition('Initialized', false, now, previous, 'ContainersNotInitialized', messages.join(', ')));
  }

  const unknown = spec.containers.filter((c) => !view.containers.some((s) => s.name === c.name)).map((c) => c.name);
  const unready = spec.containers.filter((c) => view.containers.find((s) => s.name === c.name)?.ready === false).map((c) => c.name);
  let containersReady: Condition;
  if ((phase === 'Succeeded' && unknown.length === 0) || phase === 'Failed') {
    containersReady = condition('ContainersReady', false, now, previous, phase === 'Failed' ? 'PodFailed' : 'PodCompleted');
  } else if (unknown.length || unready.length) {
    const message = [
      ...(unknown.length ? [`containers with unknown status: ${goList(unknown)}`] : []),
      ...(unready.length ? [`containers with unready status: ${goList(unready)}`] : []),
    ].join(', ');
    containersReady = condition('ContainersReady', false, now, previous, 'ContainersNotReady', message);
  } else containersReady = condition('ContainersReady', true, now, previous);
  conditions.push(containersReady);

  let ready: Condition;
  if (containersReady.status !== 'True')
    ready = condition('Ready', false, now, previous, containersReady.reason ?? undefined, containersReady.message ?? undefined);
  else {
    const gates = (spec.readinessGates ?? [])
      .map((gate) => {
        const found = pod.status?.conditions?.find((c) => c.type === gate.conditionType);
        if (!found) return `corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`;
        return found.status === 'True' ? undefined : `the status of pod readiness gate "${gate.conditionType}" is not "True", but ${found.status}`;
      })
      .filter((m): m is string => m !== undefined);
    ready = gates.length ? condition('Ready', false, now, previous, 'ReadinessGatesNotReady', gates.join(', ')) : condition('Ready', true, now, previous);
  }
  conditions.push(ready);

  return {
    phase: view.reason ? 'Failed' : phase,
    ...(view.reason ?? {}),
    conditions,
    hostIP: view.hostIP,
    hostIPs: [{ ip: view.hostIP }],
    ...(view.podIP ? { podIP: view.podIP, podIPs: [{ ip: view.podIP }] } : {}),
    startTime: view.startTime,
    ...(view.initContainers.length ? { initContainerStatuses: view.initContainers } : {}),
    containerStatuses: view.containers,
  };
}

/** The first view of a pod's containers, before any runs (kwok's pod-create stage). */
export function initialContainers(pod: V1Pod): { initContainers: ContainerView[]; containers: ContainerView[] } {
  const hasInit = (pod.spec?.initContainers ?? []).length > 0;
  const fresh = (container: V1Container, reason: string): ContainerView => ({
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    state: { waiting: { reason } },
    restartCount: 0,
    ready: false,
    started: false,
  });
  return {
    initContainers: (pod.spec?.initContainers ?? []).map((c) => fresh(c, 'PodInitializing')),
    containers: (pod.spec?.containers ?? []).map((c) => fresh(c, hasInit ? 'PodInitializing' : 'ContainerCreating')),
  };
}

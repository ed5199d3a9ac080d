// Knative's Destination (duck v1): where a PingSource, Trigger or dead-letter sink sends events.
import { field, findObject, text, type KubeObject } from './objects.js';

/** A Knative Destination (duck v1): an object reference, a URI, or a URI relative to the reference. */
export interface Destination {
  ref?: { apiVersion: string; kind: string; name: string; namespace?: string };
  uri?: string;
}

export function destination(value: unknown, where: string): Destination {
  const ref = field(value, 'ref') as Destination['ref'] | undefined;
  const uri = text(field(value, 'uri'));
  if (!ref && uri === undefined) throw new Error(`${where} has neither ref nor uri`);
  return { ...(ref ? { ref } : {}), ...(uri !== undefined ? { uri } : {}) };
}

/** The object a Destination's ref names, among the rendered ones (its namespace defaulting to `namespace`). */
export function destinationObject(objects: readonly KubeObject[], dest: Destination, namespace: string): KubeObject {
  if (!dest.ref) throw new Error(`destination ${JSON.stringify(dest)} names no object`);
  const group = dest.ref.apiVersion.includes('/') ? dest.ref.apiVersion.split('/')[0] : '';
  return findObject(objects, group ? `${dest.ref.kind}.${group}` : dest.ref.kind, dest.ref.name, dest.ref.namespace ?? namespace);
}

// SIMULATION_LABELS: extra labels on every series the simulation exposes (`team=payments,env=dev`),
// for telling one simulation from another where the scrape does not (a local run has no pod labels).
// A list of name=value separated by commas, so a value cannot hold a comma. Names follow Prometheus's
// classic syntax (the text exposition prints them unquoted), and the ones another part already owns
// are refused rather than silently lost or overridden.
import { durationLabelNames, requestLabelNames } from './metrics.js';

const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Names that cannot be set, each with the reason given when someone tries. */
export const reservedLabelNames: ReadonlyMap<string, string> = new Map([
  // The contract's default label, which alert rules and queries select on.
  ['app', 'it is always "simulation"'],
  // Prometheus sets these on every target; an exposed one would be renamed exported_<name>.
  ['job', 'Prometheus sets it on every target'],
  ['instance', 'Prometheus sets it on every target'],
  ['le', 'it names histogram buckets'],
  ['quantile', 'it names summary quantiles'],
  // A metric's own label wins over a default label, so these series would silently not carry it.
  ...[...requestLabelNames, ...durationLabelNames].map((name) => [name, 'the request metrics already use it'] as const),
  ...['version', 'major', 'minor', 'patch', 'kind', 'space', 'type'].map((name) => [name, "Node.js's default metrics already use it"] as const),
]);

/** Reads `text` (the value of the variable `variable`); every problem names the variable. */
export function parseLabels(variable: string, text: string): { labels: Record<string, string>; problems: string[] } {
  const labels: Record<string, string> = {};
  const problems: string[] = [];
  for (const entry of text.split(',').map((e) => e.trim())) {
    if (entry === '') continue; // a trailing comma
    const equals = entry.indexOf('=');
    if (equals === -1) {
      problems.push(`${variable}: ${JSON.stringify(entry)} must be name=value`);
      continue;
    }
    const name = entry.slice(0, equals).trim();
    const value = entry.slice(equals + 1).trim();
    if (!labelName.test(name)) {
      problems.push(`${variable}: label name ${JSON.stringify(name)} must match [a-zA-Z_][a-zA-Z0-9_]*`);
    } else if (name.startsWith('__')) {
      problems.push(`${variable}: label name ${JSON.stringify(name)} starts with "__", which Prometheus reserves for itself`);
    } else if (reservedLabelNames.has(name)) {
      problems.push(`${variable}: label ${JSON.stringify(name)} cannot be set: ${reservedLabelNames.get(name)}`);
    } else if (Object.hasOwn(labels, name)) {
      problems.push(`${variable}: label ${JSON.stringify(name)} is given twice`);
    } else if (value === '') {
      problems.push(`${variable}: label ${JSON.stringify(name)} has an empty value (Prometheus reads that as no label)`);
    } else {
      labels[name] = value;
    }
  }
  return { labels, problems };
}

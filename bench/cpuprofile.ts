// Reads the .cpuprofile files `node --cpu-prof` writes (bench --profile DIR) and says where the time
// went: self time by function and by package, so a slow snapshot points at the code to change.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  byFunction: Array<[string, number]>;
  byPackage: Array<[string, number]>;
}

/** node_modules/<pkg> or <scope>/<pkg>, or the repository folder, or node's own (node:internal). */
function packageOf(url: string): string {
  if (url === '') return '(native, gc, idle)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node:internal';
  const repo = /\/(functions|events|bench|platform)\/(.*)$/.exec(url);
  return repo ? `${repo[1]}/${repo[2]}` : url;
}

export function summarise(profile: Profile, file: string, top = 15): ProfileSummary {
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = selfMs.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${path.basename(url)}:${lineNumber + 1}` : '';
    const fn = `${functionName || '(anonymous)'} ${where}`.trim();
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    const pkg = packageOf(url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { file, totalMs: (profile.endTime - profile.startTime) / 1000, byFunction: sorted(byFunction), byPackage: sorted(byPackage) };
}

export async function summariseDir(dir: string): Promise<ProfileSummary[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out: ProfileSummary[] = [];
  for (const f of files) out.push(summarise(JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Profile, path.join(dir, f)));
  return out;
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [`${s.file} (${s.totalMs.toFixed(0)} ms profiled)`, '  self time by package:'];
  for (const [name, ms] of s.byPackage) lines.push(`    ${ms.toFixed(0).padStart(7)} ms  ${name}`);
  lines.push('  self time by function:');
  for (const [name, ms] of s.byFunction) lines.push(`    ${ms.toFixed(0).padStart(7)} ms  ${name}`);
  return lines.join('\n');
}

// A fresh clone has no credentials (the *.env files are git-ignored): renderPlatform creates them from
// the committed examples, with random values, and never replaces one that exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureCredentials, envKeys, platformDir, randomValue } from '../credentials.js';
import { findGenerated, renderPlatform, secretData } from '../manifests/index.js';
import { runCommand } from '../tools/command.js';

/** platform/ as a fresh clone has it: manifests and examples, no *.env, no code. */
async function freshCopy(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'promsnap-credentials-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dir = path.join(root, 'platform');
  await cp(platformDir, dir, {
    recursive: true,
    filter: (source) => !/\.env$/.test(source) && !/\.tmp$/.test(source) && !source.endsWith('.ts') && !source.includes(`${path.sep}node_modules`),
  });
  return dir;
}

test('the *.env files are git-ignored and only their examples are committed', async () => {
  const { stdout: tracked } = await runCommand('git', ['ls-files', 'platform'], { cwd: path.dirname(platformDir) });
  const files = tracked.split('\n');
  const examples = files.filter((f) => f.endsWith('.env.example'));
  assert.deepEqual(examples.sort(), ['platform/minio/minio-root.env.example', 'platform/minio/snapshot-s3.env.example']);
  const committed = examples.map((f) => f.slice(0, -'.example'.length)).filter((f) => files.includes(f));
  assert.deepEqual(committed, [], 'committed credentials');
  const { stdout: ignored } = await runCommand('git', ['check-ignore', 'platform/minio/minio-root.env', 'platform/minio/snapshot-s3.env'], {
    cwd: path.dirname(platformDir),
  });
  assert.equal(ignored.trim().split('\n').length, 2);
});

test('a fresh clone renders: each missing *.env is created from its example, reported in one line, and used', async (t) => {
  const dir = await freshCopy(t);
  const lines: string[] = [];
  const { objects } = await renderPlatform({ dir, log: (line) => lines.push(line) });
  assert.deepEqual(lines.map((l) => l.replace(/^created .*\/(minio\/[^ ]+) /, 'created $1 ')).sort(), [
    'created minio/minio-root.env (MINIO_ROOT_USER, MINIO_ROOT_PASSWORD: random values)',
    'created minio/snapshot-s3.env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: random values)',
  ]);
  const root = secretData(objects, findGenerated(objects, 'Secret', 'minio-root', 'promsnap').metadata.name, 'promsnap');
  const fn = secretData(objects, findGenerated(objects, 'Secret', 'snapshot-s3', 'promsnap').metadata.name, 'promsnap');
  assert.deepEqual(Object.keys(root).sort(), ['MINIO_ROOT_PASSWORD', 'MINIO_ROOT_USER']);
  assert.deepEqual(Object.keys(fn).sort(), ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
  // MinIO's limits: user names 3 to 20 characters without `=` or `,`, secrets at least 8.
  for (const name of [root['MINIO_ROOT_USER']!, fn['AWS_ACCESS_KEY_ID']!]) assert.match(name, /^[a-z][a-z0-9]{19}$/);
  for (const secret of [root['MINIO_ROOT_PASSWORD']!, fn['AWS_SECRET_ACCESS_KEY']!]) assert.match(secret, /^[A-Za-z0-9]{40}$/);
  const examples =
    (await readFile(path.join(dir, 'minio/minio-root.env.example'), 'utf8')) + (await readFile(path.join(dir, 'minio/snapshot-s3.env.example'), 'utf8'));
  for (const value of [...Object.values(root), ...Object.values(fn)]) assert.ok(!examples.includes(value), 'a value copied from an example');
  assert.equal((await stat(path.join(dir, 'minio/minio-root.env'))).mode & 0o777, 0o600, 'readable by the owner only');

  // A second render changes nothing: same files, same Secrets (same content hash).
  const again = await renderPlatform({ dir, log: (line) => lines.push(line) });
  assert.equal(lines.length, 2);
  assert.deepEqual(
    again.objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name),
    objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name),
  );
});

test('a credentials file that exists is never touched, even if it lacks keys; only missing files are made', async (t) => {
  const dir = await freshCopy(t);
  const mine = '# my own\nMINIO_ROOT_USER=admin\nMINIO_ROOT_PASSWORD=my-own-password\n';
  await writeFile(path.join(dir, 'minio/minio-root.env'), mine);
  const created = await ensureCredentials({ dir });
  assert.deepEqual(
    created.map((c) => path.relative(dir, c.file)),
    ['minio/snapshot-s3.env'],
  );
  assert.equal(await readFile(path.join(dir, 'minio/minio-root.env'), 'utf8'), mine);
  assert.deepEqual(await ensureCredentials({ dir }), []);
});

test('several callers at once create each file exactly once, complete, with nothing left aside', async (t) => {
  const dir = await freshCopy(t);
  const results = await Promise.all(Array.from({ length: 8 }, () => ensureCredentials({ dir })));
  assert.deepEqual(
    results
      .flat()
      .map((c) => path.relative(dir, c.file))
      .sort(),
    ['minio/minio-root.env', 'minio/snapshot-s3.env'],
  );
  const files = await readdir(path.join(dir, 'minio'));
  assert.deepEqual(
    files.filter((f) => f.endsWith('.tmp')),
    [],
  );
  assert.deepEqual(envKeys(await readFile(path.join(dir, 'minio/snapshot-s3.env'), 'utf8')), ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
});

test('random values differ every time; malformed examples are refused with the line', () => {
  const values = new Set(Array.from({ length: 200 }, () => randomValue('MINIO_ROOT_PASSWORD')));
  assert.equal(values.size, 200);
  assert.match(randomValue('S3_USER'), /^[a-z][a-z0-9]{19}$/);
  assert.throws(() => envKeys('# c\nGOOD=1\nnot a line\n', 'x.env.example'), /x\.env\.example:3: expected KEY=value/);
  assert.throws(() => envKeys('A=1\nA=2\n', 'x'), /A is given twice/);
  assert.throws(() => envKeys('# nothing\n', 'x'), /names no keys/);
});

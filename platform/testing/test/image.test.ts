// platform/testing/image.ts must catch an image that would not do what the tests claim.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { packagesLoadedBy, parseDockerfile, runImage } from '../image.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const base = `node:${process.versions.node}-bookworm-slim`;

async function dockerfile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-dockerfile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'Dockerfile');
  await writeFile(file, text);
  return file;
}

test('stages are read with their WORKDIR, ENV, COPY sources, USER and exec-form CMD', () => {
  const stages = parseDockerfile(
    [
      `FROM ${base} AS build`,
      'WORKDIR /src',
      'WORKDIR app',
      'COPY package.json ./',
      'RUN npm ci \\',
      '    --no-audit',
      `FROM ${base}`,
      'ENV NODE_ENV=production GREETING="hello there"',
      'WORKDIR /srv',
      'COPY --from=build /src/app/dist ./dist',
      'COPY ["a file.txt", "b.txt", "files/"]',
      'USER 1000:1001',
      'EXPOSE 8080',
      'CMD ["node", "dist/main.js", "two words"]',
    ].join('\n'),
  );
  assert.equal(stages.length, 2);
  assert.equal(stages[0]!.name, 'build');
  assert.equal(stages[0]!.workdir, '/src/app');
  assert.deepEqual(
    stages[0]!.steps.map((s) => (s.kind === 'run' ? s.command : s.dest)),
    ['./', 'npm ci --no-audit'],
  );
  const final = stages[1]!;
  assert.deepEqual(final.env, { NODE_ENV: 'production', GREETING: 'hello there' });
  assert.deepEqual(final.steps[0], { kind: 'copy', from: 'build', sources: ['/src/app/dist'], dest: './dist', line: 10, workdir: '/srv' });
  assert.deepEqual(final.steps[1], { kind: 'copy', from: undefined, sources: ['a file.txt', 'b.txt'], dest: 'files/', line: 11, workdir: '/srv' });
  assert.equal(final.user, '1000:1001');
  assert.deepEqual(final.expose, ['8080']);
  assert.deepEqual(final.cmd, ['node', 'dist/main.js', 'two words']);
});

test('instructions it cannot replay are refused, not skipped', () => {
  assert.throws(() => parseDockerfile(`FROM ${base}\nADD https://example.com/x /x`), /line 2: ADD is not replayed/);
  assert.throws(() => parseDockerfile(`FROM ${base}\nARG VERSION`), /line 2: ARG is not replayed/);
  assert.throws(() => parseDockerfile(`FROM ${base}\nCMD node server.js`), /line 2: CMD must use the JSON \(exec\) form/);
  assert.throws(() => parseDockerfile(`FROM ${base}\nCOPY --chown=1000 a b`), /COPY --chown is not replayed/);
});

test('an image without a numeric non-root USER is refused', async (t) => {
  const cmd = 'CMD ["node", "-e", "0"]';
  for (const [user, message] of [
    ['', /USER is missing/],
    ['USER node', /USER is "node": give a numeric uid/],
    ['USER 0', /runs as root/],
  ] as const) {
    const file = await dockerfile(t, [`FROM ${base}`, user, cmd].join('\n'));
    await assert.rejects(runImage({ dockerfile: file, context: repoRoot }), message);
  }
});

test('a final stage that installs dev dependencies is caught', async (t) => {
  const file = await dockerfile(
    t,
    [`FROM ${base}`, 'WORKDIR /app', 'COPY package.json package-lock.json ./', 'RUN npm ci', 'USER 1000', 'CMD ["node", "-e", "0"]'].join('\n'),
  );
  await assert.rejects(runImage({ dockerfile: file, context: repoRoot }), /dev dependencies in the final image: .*node_modules\/typescript/);
});

test('an unknown RUN step and a base image on another Node are caught', async (t) => {
  const unknown = await dockerfile(t, [`FROM ${base}`, 'RUN apt-get update', 'USER 1000', 'CMD ["node", "-e", "0"]'].join('\n'));
  await assert.rejects(runImage({ dockerfile: unknown, context: repoRoot }), /line 2: RUN apt-get update is not replayed/);

  const otherNode = await dockerfile(
    t,
    ['FROM node:22.0.0-bookworm-slim', 'WORKDIR /app', 'COPY package.json package-lock.json ./', 'USER 1000', 'CMD ["node", "-e", "0"]'].join('\n'),
  );
  await assert.rejects(runImage({ dockerfile: otherNode, context: repoRoot }), /carries Node 22\.0\.0, but this replay runs Node/);
});

test('packagesLoadedBy follows relative imports and finds every way a package is loaded, types aside', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-imports-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    path.join(dir, 'server.js'),
    [
      "import express from 'express';",
      'import { readFile } from "node:fs/promises";',
      "import './side-effect.js';",
      "export { handler } from './handler.js';",
      "const lazy = () => import('axios');",
    ].join('\n'),
  );
  await writeFile(path.join(dir, 'side-effect.js'), "import '@aws-sdk/client-s3/dist-es/index.js';\n");
  await writeFile(
    path.join(dir, 'handler.js'),
    [
      "import { createRequire } from 'node:module';",
      "const { Ajv } = createRequire(import.meta.url)('ajv');",
      "export const handler = require('cloudevents');",
    ].join('\n'),
  );
  assert.deepEqual(await packagesLoadedBy(path.join(dir, 'server.js')), ['@aws-sdk/client-s3', 'ajv', 'axios', 'cloudevents', 'express']);
});

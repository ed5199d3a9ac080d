import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandError, runCommand } from '../command.js';

const node = process.execPath;

test('runCommand hands back what the command printed, with stdin given', async () => {
  const result = await runCommand(node, ['-e', 'process.stdin.pipe(process.stdout); console.error("to stderr")'], { input: 'héllo' });
  assert.deepEqual(result, { code: 0, stdout: 'héllo', stderr: 'to stderr\n' });
});

test('a non-zero exit is a CommandError naming the command and its stderr, or a result when allowed', async () => {
  const script = ['-e', 'console.error("bad flag --x"); process.exit(4)'];
  await assert.rejects(runCommand(node, script), (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.result.code, 4);
    assert.match(err.message, /exited 4:\nbad flag --x/);
    return true;
  });
  assert.equal((await runCommand(node, script, { allowFailure: true })).code, 4);
});

test('a command that runs past its time-out is killed and reported as 124', async () => {
  const result = await runCommand(node, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 300, allowFailure: true });
  assert.equal(result.code, 124);
  assert.match(result.stderr, /killed after 300 ms/);
});

test('a command that does not exist is an error, not a hang', async () => {
  await assert.rejects(runCommand('/nonexistent/promsnap-tool', []), /could not run \/nonexistent\/promsnap-tool/);
});

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort, lowPortRange, portInUse, retryOnPortClash } from '../ports.js';

test('freePort hands out distinct free ports below the ephemeral range', async () => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  assert.equal(new Set(ports).size, ports.length);
  for (const port of ports) {
    assert.ok(port >= lowPortRange.min && port <= lowPortRange.max, `${port} is in range`);
    assert.equal(await portInUse(port), false);
  }
});

test('portInUse sees a listener', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  assert.equal(await portInUse((server.address() as net.AddressInfo).port), true);
});

test('retryOnPortClash tries again only after a port clash', async () => {
  let calls = 0;
  assert.equal(
    await retryOnPortClash(() => {
      if (++calls < 3) return Promise.reject(new Error('listen tcp 127.0.0.1:20001: bind: address already in use'));
      return Promise.resolve('started');
    }),
    'started',
  );
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(
    retryOnPortClash(() => {
      calls++;
      return Promise.reject(new Error('no such file'));
    }),
    /no such file/,
  );
  assert.equal(calls, 1);
});

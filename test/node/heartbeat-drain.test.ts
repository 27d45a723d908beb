// Regression: heartbeat Pings went through the handler's send path, so onDrain fired after every
// heartbeat Ping even when the handler had sent nothing (a pump-style handler saw spurious drains).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { acceptWebSocket, type WebSocketConnection } from '../../src/index.js';

test('heartbeat Pings caused onDrain although the handler sent nothing', async () => {
  let drains = 0;
  let ws: WebSocketConnection | null = null;
  const server = createServer();
  server.on('upgrade', (request, socket, head) => {
    ws = acceptWebSocket(
      request,
      socket,
      head,
      {
        onMessage: (message, type) => void ws!.send(message, type),
        onDrain: () => void drains++,
      },
      // A 60 s deadline: this live client must never miss it, however busy the machine.
      { heartbeatInterval: 20, heartbeatTimeout: 60_000 },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  await once(client, 'open');
  let pings = 0;
  await new Promise<void>((resolve) => client.on('ping', () => ++pings === 3 && resolve()));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(drains, 0, 'three heartbeat Pings, no send by the handler: no onDrain');

  client.send('echo me');
  const [reply] = await once(client, 'message');
  assert.equal(String(reply), 'echo me');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(drains, 1, 'one send, emptied once: one onDrain');

  client.close(1000);
  await once(client, 'close');
  server.close();
});

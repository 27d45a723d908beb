// What an open connection keeps (issue 13, idle memory): the upgrade request as an UpgradeRequest
// (node:http's IncomingMessage can be collected once the connection is open), a trace object only
// when someone watches (a pef-ws channel subscribed later still hears of it, with a number of its
// own), a router's admission slot given back when the connection ends, and a handler's queue made
// only when it is used.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { acceptWebSocket, UpgradeRequest, WebSocketHandler, WebSocketRouter, type CloseMessage, type WebSocketConnection } from '../../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A client that connected and waits for the server's first message or the close. */
async function open(url: string, protocols?: string): Promise<WebSocket> {
  const client = new WebSocket(url, protocols, { headers: { 'X-Kept': 'yes' } });
  await once(client, 'open');
  return client;
}

describe('the upgrade request an open connection keeps', () => {
  test('connection.request is an UpgradeRequest with the URL, the header fields and the socket', async () => {
    const server = createServer();
    let connection: WebSocketConnection | null = null;
    let original: IncomingMessage | null = null;
    server.on('upgrade', (request: IncomingMessage, socket, head) => {
      original = request;
      connection = acceptWebSocket(request, socket, head, {}, { heartbeatInterval: 0 });
    });
    const port = await listen(server);
    const client = await open(`ws://127.0.0.1:${port}/room?name=a%20b`);
    try {
      const request = connection!.request;
      assert.ok(request instanceof UpgradeRequest);
      assert.equal(request.method, 'GET');
      assert.equal(request.url, '/room?name=a%20b');
      assert.equal(request.httpVersion, '1.1');
      assert.equal(request.headers['x-kept'], 'yes');
      assert.equal(request.headers.host, `127.0.0.1:${port}`);
      assert.equal(request.headers, original!.headers, "node:http's headers object itself, not a copy");
      assert.equal(request.socket, original!.socket);
      assert.equal(request.socket.remotePort, (client as unknown as { _socket: { localPort: number } })._socket.localPort);
    } finally {
      client.terminate();
      server.close();
    }
  });

  // Root cause of 0.6 KB per idle connection: the connection kept node:http's IncomingMessage (its
  // stream state, raw header list, listeners) for its whole life.
  test("node:http's IncomingMessage is not kept alive by an open connection", async () => {
    const server = createServer();
    let connection: WebSocketConnection | null = null;
    let collected: WeakRef<IncomingMessage> | null = null;
    server.on('upgrade', (request: IncomingMessage, socket, head) => {
      collected = new WeakRef(request);
      connection = acceptWebSocket(request, socket, head, {}, { heartbeatInterval: 0 });
    });
    const port = await listen(server);
    const client = await open(`ws://127.0.0.1:${port}/`);
    try {
      // Let node:http's own references (the parser's, the upgrade event's) go.
      for (let i = 0; i < 5 && collected!.deref() !== undefined; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        gc();
      }
      assert.equal(collected!.deref(), undefined, 'the IncomingMessage is still reachable');
      assert.equal(connection!.request.url, '/', 'what the connection needs of it stays');
    } finally {
      client.terminate();
      server.close();
    }
  });
});

describe('a trace object only when someone watches', () => {
  test('a pef-ws:close subscriber that came after the open still gets the close, with a number', async () => {
    const server = createServer();
    const connections: WebSocketConnection[] = [];
    server.on('upgrade', (request: IncomingMessage, socket, head) => {
      const ws = acceptWebSocket(request, socket, head, {}, { heartbeatInterval: 0, trace: false });
      if (ws) connections.push(ws);
    });
    const port = await listen(server);
    const first = await open(`ws://127.0.0.1:${port}/a`);
    const second = await open(`ws://127.0.0.1:${port}/b`);
    const closes: CloseMessage[] = [];
    const listener = (message: unknown): void => void closes.push(message as CloseMessage);
    subscribe('pef-ws:close', listener);
    try {
      first.close(4000, 'first');
      await once(first, 'close');
      second.close(4001, 'second');
      await once(second, 'close');
      while (closes.length < 2) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        closes.map((m) => [m.connection, m.code, m.reason]),
        [
          [connections[0], 4000, 'first'],
          [connections[1], 4001, 'second'],
        ],
      );
      assert.ok(Number.isInteger(closes[0]!.id) && Number.isInteger(closes[1]!.id));
      assert.notEqual(closes[0]!.id, closes[1]!.id, 'each connection has its own number');
    } finally {
      unsubscribe('pef-ws:close', listener);
      server.close();
    }
  });
});

describe("a router's connections", () => {
  test('maxConnections slots come back as connections end, whatever their hooks do', async () => {
    const ended: number[] = [];
    class Held extends WebSocketHandler {
      override onClose(code: number): void {
        ended.push(code);
        throw new Error('onClose threw'); // logged; the slot still goes back
      }
    }
    const logged: unknown[] = [];
    const router = new WebSocketRouter({ maxConnections: 2, heartbeatInterval: 0, logger: { error: (...args: unknown[]) => void logged.push(args[0]) } }).route('/wsHeld', Held);
    const server = createServer();
    router.attach(server);
    const port = await listen(server);
    try {
      for (let round = 0; round < 3; round++) {
        const a = await open(`ws://127.0.0.1:${port}/wsHeld`);
        const b = await open(`ws://127.0.0.1:${port}/wsHeld`);
        assert.equal(router.connectionCount, 2);
        const refused = new WebSocket(`ws://127.0.0.1:${port}/wsHeld`);
        const [, response] = (await once(refused, 'unexpected-response')) as [unknown, IncomingMessage];
        assert.equal(response.statusCode, 503);
        a.close(1000);
        b.close(1000);
        await Promise.all([once(a, 'close'), once(b, 'close')]);
        while (router.connectionCount > 0) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(ended, [1000, 1000, 1000, 1000, 1000, 1000]);
      assert.equal(logged.length, 6);
    } finally {
      await router.close();
      server.close();
    }
  });

  test("a handler's queue: used for the first time in onClose, subscribe does nothing and publish still works", async () => {
    const seen: string[] = [];
    let published: Promise<number> | null = null;
    let subscribed: Promise<void> | null = null;
    class Late extends WebSocketHandler {
      override onClose(): void {
        subscribed = this.subscribe('late');
        published = this.publish('late', 'after close');
      }
      override onQueue(topic: string, message: string | Buffer): void {
        seen.push(`${topic} ${String(message)}`);
      }
    }
    class Listener extends WebSocketHandler {
      override onOpen(): Promise<void> {
        return this.subscribe('late');
      }
    }
    const router = new WebSocketRouter({ heartbeatInterval: 0 }).route('/wsLate', Late).route('/wsListener', Listener);
    const server = createServer();
    router.attach(server);
    const port = await listen(server);
    try {
      const listener = await open(`ws://127.0.0.1:${port}/wsListener`);
      const heard = once(listener, 'message');
      const late = await open(`ws://127.0.0.1:${port}/wsLate`);
      late.close(1000);
      const [data] = (await heard) as [Buffer];
      assert.equal(data.toString(), 'after close', "the closed handler's publish reached the other subscriber");
      await subscribed;
      assert.equal(await published, 1);
      // The listener hears 'second' in the same delivery as any other subscriber of the topic would.
      const second = once(listener, 'message');
      await router.publish('late', 'second');
      assert.equal(String(((await second) as [Buffer])[0]), 'second');
      assert.deepEqual(seen, [], 'nothing is delivered to a handler that subscribed after its onClose');
      listener.close();
      await once(listener, 'close');
    } finally {
      await router.close();
      server.close();
    }
  });
});

// Overload and shutdown at the router: maxConnections (503), the per-address limit (429, off by
// default), a class's own limits, and router.close() under load: every message a handler saw
// before the shutdown has its reply on the wire before the 1001 Going Away.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { WebSocketRouter } from '../../src/framework/router.js';
import { WebSocketHandler } from '../../src/framework/handler.js';
import { CloseCode } from '../../src/protocol/constants.js';
import type { MessageType } from '../../src/node/types.js';
import { assertNoLeaks, handles, trackTimers } from './helpers.js';

let seen = 0;
class Echo extends WebSocketHandler {
  override onMessage(message: string | Buffer, type: MessageType): void {
    seen++;
    this.send(message, type);
  }
}
/** Replies after an await, as a handler that looks something up does (in order: one lookup after another). */
class SlowEcho extends WebSocketHandler {
  #previous: Promise<void> = Promise.resolve();
  override onMessage(message: string | Buffer, type: MessageType): Promise<void> {
    seen++;
    this.#previous = this.#previous.then(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1 + (seen % 5)));
      this.send(message, type);
    });
    return this.#previous;
  }
}
class Small extends WebSocketHandler {
  static options = { maxConnections: 1 };
}
class Public extends WebSocketHandler {
  static options = { origins: '*' as const };
}

const servers = new Set<{ server: Server; router: WebSocketRouter }>();

async function start(router: WebSocketRouter): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  router.attach(server);
  servers.add({ server, router });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function stopAll(): Promise<void> {
  for (const { server, router } of servers) {
    await router.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  servers.clear();
}

/** Opens a ws client (optionally from another loopback address); resolves when open. */
async function open(port: number, path: string, localAddress?: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, localAddress ? { localAddress } : {});
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return ws;
}

/** A raw handshake; resolves with the whole response when the server refuses (or the head of a 101). */
function refusal(port: number, path: string, localAddress = '127.0.0.1', extra = ''): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      ),
    );
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.startsWith('HTTP/1.1 101')) socket.destroy();
    });
    socket.on('close', () => resolve(received));
  });
}

function closeClient(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => ws.once('close', () => resolve()).close(1000));
}

describe('Router limits and graceful shutdown', () => {
  afterEach(stopAll);

  test('past maxConnections a handshake gets 503 with Retry-After; a closed connection frees its slot', async () => {
    const before = handles();
    const timers = trackTimers();
    const router = new WebSocketRouter({ maxConnections: 3 }).route('/wsEcho', Echo);
    const { port } = await start(router);
    const clients = [await open(port, '/wsEcho'), await open(port, '/wsEcho'), await open(port, '/wsEcho')];
    const body = 'server full: too many WebSocket connections\n';
    assert.equal(
      await refusal(port, '/wsEcho'),
      'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${body.length}\r\nRetry-After: 5\r\n\r\n${body}`,
    );
    assert.equal(router.connectionCount, 3);
    await closeClient(clients.pop()!);
    while (router.connectionCount > 2) await new Promise((resolve) => setTimeout(resolve, 5));
    clients.push(await open(port, '/wsEcho'));
    await Promise.all(clients.map(closeClient));
    await stopAll();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  test('the per-address limit is off by default and answers 429 per address when set', async () => {
    const open20 = new WebSocketRouter().route('/wsEcho', Echo);
    const first = await start(open20);
    const many = await Promise.all(Array.from({ length: 20 }, () => open(first.port, '/wsEcho')));
    assert.equal(open20.connectionCount, 20);
    await Promise.all(many.map(closeClient));

    const router = new WebSocketRouter({ maxConnectionsPerIp: 2 }).route('/wsEcho', Echo);
    const { port } = await start(router);
    const a = [await open(port, '/wsEcho'), await open(port, '/wsEcho')];
    const response = await refusal(port, '/wsEcho');
    assert.match(response, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(response, /\r\n\r\ntoo many WebSocket connections from one address \(at most 2\)\n$/);
    // Another address (Linux routes all of 127/8 to loopback) has its own count.
    const b = await open(port, '/wsEcho', '127.0.0.2');
    await Promise.all([...a, b].map(closeClient));
  });

  test("a class's static options set its own limit without touching other routes", async () => {
    const router = new WebSocketRouter().route('/wsSmall', Small).route('/wsEcho', Echo);
    const { port } = await start(router);
    const one = await open(port, '/wsSmall');
    assert.match(await refusal(port, '/wsSmall'), /^HTTP\/1\.1 503 /);
    const echo = await open(port, '/wsEcho');
    await Promise.all([one, echo].map(closeClient));
  });

  test("the router refuses cross-origin pages with 403 unless a class's static options allow them", async () => {
    const router = new WebSocketRouter().route('/wsEcho', Echo).route('/wsPublic', Public);
    const { port } = await start(router);
    const evil = 'Origin: https://evil.example\r\n';
    assert.match(await refusal(port, '/wsEcho', '127.0.0.1', evil), /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(await refusal(port, '/wsPublic', '127.0.0.1', evil), /^HTTP\/1\.1 101 /);
    assert.match(await refusal(port, '/wsEcho', '127.0.0.1', `Origin: http://127.0.0.1:${port}\r\n`), /^HTTP\/1\.1 101 /);
  });

  for (const [name, Class] of [['a synchronous', Echo], ['an async', SlowEcho]] as const) {
  test(`router.close() under load with ${name} handler: every message a handler saw has its echo written before the 1001`, async () => {
    const before = handles();
    const timers = trackTimers();
    const router = new WebSocketRouter().route('/wsEcho', Class);
    seen = 0;
    const { server, port } = await start(router);
    const clients = await Promise.all(Array.from({ length: 20 }, () => open(port, '/wsEcho')));
    const results = clients.map((ws, c) => {
      let sent = 0;
      let echoed = 0;
      let stop = false;
      const message = (i: number) => `client ${c} message ${i} ${'é'.repeat(i % 50)}`;
      const pump = () => {
        while (!stop && ws.readyState === WebSocket.OPEN && sent - echoed < 8) ws.send(message(sent++));
      };
      ws.on('message', (data: Buffer) => {
        assert.equal(data.toString(), message(echoed), `client ${c}: echo ${echoed} in order and byte-exact`);
        echoed++;
        pump();
      });
      pump();
      return new Promise<{ code: number; reason: string; sent: number; echoed: number }>((resolve) =>
        ws.once('close', (code, reason) => {
          stop = true;
          resolve({ code, reason: reason.toString(), sent, echoed });
        }),
      );
    });
    // Let traffic flow, then shut down while messages are in flight.
    while (seen < 2000) await new Promise((resolve) => setTimeout(resolve, 5));
    const seenAtClose = seen;
    await router.close();
    const ended = await Promise.all(results);
    let echoedTotal = 0;
    for (const result of ended) {
      assert.deepEqual([result.code, result.reason], [CloseCode.GoingAway, 'server shutting down']);
      echoedTotal += result.echoed;
    }
    // Every message the handlers saw before close() was called was echoed back before the Close.
    assert.ok(echoedTotal >= seenAtClose, `${echoedTotal} echoes for ${seenAtClose} messages seen`);
    assert.equal(router.connectionCount, 0);
    assert.match(await refusal(port, '/wsEcho'), /^HTTP\/1\.1 503 /);
    servers.clear();
    await new Promise((resolve) => server.close(resolve));
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });
  }
});

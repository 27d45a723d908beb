// The client against real servers: ours (acceptWebSocket and the router), ws's, over TLS with a
// self-signed certificate, and over IPv6. Messages both ways, permessage-deflate with each parameter
// set, subprotocols, the closing handshake from each side, the heartbeat, the hooks' order.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import {
  acceptWebSocket,
  connect,
  CloseCode,
  WebSocketHandler,
  WebSocketRouter,
  type MessageType,
  type PerMessageDeflateOptions,
  type WebSocketConnection,
  type WebSocketOptions,
} from '../../src/index.js';

const fixtures = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const TLS = { cert: readFileSync(`${fixtures}cert.pem`), key: readFileSync(`${fixtures}key.pem`) };

/** Our echo server on node:http (or https); it records each upgrade request. */
async function ourEchoServer(
  options: WebSocketOptions = {},
  listen: { host?: string; tls?: boolean } = {},
): Promise<{ server: Server; url: string; requests: IncomingMessage[]; connections: WebSocketConnection[] }> {
  const server = listen.tls ? createHttpsServer(TLS) : createServer();
  const requests: IncomingMessage[] = [];
  const connections: WebSocketConnection[] = [];
  server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) => {
    requests.push(request);
    const ws = acceptWebSocket(request, socket, head, { onMessage: (message, type) => void ws!.send(message, type) }, options);
    if (ws) connections.push(ws);
  });
  const host = listen.host ?? '127.0.0.1';
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { server, url: `${listen.tls ? 'wss' : 'ws'}://${shown}:${port}`, requests, connections };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections?.();
  server.close();
  await once(server, 'close');
}

describe('our client against our server', () => {
  let echo: Awaited<ReturnType<typeof ourEchoServer>>;
  before(async () => {
    echo = await ourEchoServer({ origins: '*', selectProtocol: (offered) => (offered.includes('echo.v2') ? 'echo.v2' : null) });
  });
  after(() => stop(echo.server));

  test('messages of every kind and size go both ways; the hooks run in order; closed says how it ended', async () => {
    const calls: string[] = [];
    const received: [string | Buffer, string][] = [];
    const client = connect(
      `${echo.url}/echo?x=1`,
      {
        onOpen() {
          calls.push('onOpen');
        },
        onMessage(message, type) {
          received.push([message, type]);
          if (received.length === 5) client.close(CloseCode.Normal, 'done');
        },
        onClose(code, reason) {
          calls.push(`onClose ${code} ${reason}`);
        },
      },
      { protocols: ['echo.v1', 'echo.v2'], origin: 'http://127.0.0.1', headers: { 'X-Client': 'pef' }, heartbeatInterval: 0 },
    );
    await client.opened;
    assert.equal(client.readyState, 'open');
    assert.equal(client.protocol, 'echo.v2');
    assert.equal(client.extensions, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    assert.equal(client.response!.status, 101);
    const request = echo.requests.at(-1)!;
    assert.equal(request.url, '/echo?x=1');
    assert.equal(request.headers['x-client'], 'pef');
    assert.equal(request.headers['origin'], 'http://127.0.0.1');
    const big = Buffer.alloc(300_000, 'abc');
    assert.equal(client.send('hello'), true);
    client.send('');
    client.send(Buffer.from([0, 1, 255]), 'binary');
    client.send(big, 'binary', { compress: false });
    client.send('ü'.repeat(5000));
    const info = await client.closed;
    // §7.1.5-§7.1.6: the code and reason are those of the Close received, the server's echo.
    assert.deepEqual(info, { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(received, [
      ['hello', 'text'],
      ['', 'text'],
      [Buffer.from([0, 1, 255]), 'binary'],
      [big, 'binary'],
      ['ü'.repeat(5000), 'text'],
    ]);
    assert.deepEqual(calls, ['onOpen', 'onClose 1000 ']);
    assert.equal(client.readyState, 'closed');
    assert.equal(client.isDefunct(), true);
    assert.equal(client.send('late'), false);
  });

  for (const compression of [
    false,
    {},
    { serverNoContextTakeover: true, clientNoContextTakeover: true },
    { serverMaxWindowBits: 9, clientMaxWindowBits: 8, threshold: 0 },
    { serverMaxWindowBits: 15, clientMaxWindowBits: 15, level: 1 },
  ] as (false | PerMessageDeflateOptions)[]) {
    test(`permessage-deflate ${JSON.stringify(compression)}: negotiated and applied both ways`, async () => {
      const client = connect(echo.url, {}, { compression, heartbeatInterval: 0 });
      await client.opened;
      const text = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) });
      for (let i = 0; i < 3; i++) client.send(text);
      client.send(Buffer.alloc(5000, 1), 'binary');
      const got = [];
      for await (const message of client) {
        got.push(message);
        if (got.length === 4) break;
      }
      assert.deepEqual(got, [
        { type: 'text', data: text },
        { type: 'text', data: text },
        { type: 'text', data: text },
        { type: 'binary', data: Buffer.alloc(5000, 1) },
      ]);
      if (compression === false) assert.equal(client.extensions, '');
      else assert.match(client.extensions, /^permessage-deflate/);
      if (compression && compression.serverNoContextTakeover) assert.match(client.extensions, /server_no_context_takeover/);
      client.close();
      assert.equal((await client.closed).wasClean, true);
    });
  }

  test('a WebSocketHandler works as the hooks of a client: this.send, this.close, this.request', async () => {
    const seen: string[] = [];
    class Greeter extends WebSocketHandler {
      override onOpen(): void {
        seen.push(`open ${this.request.url} ${this.protocol || '-'}`);
        this.send('hi from a handler');
      }
      override onMessage(message: string | Buffer, type: MessageType): void {
        seen.push(`${type} ${String(message)}`);
        this.close(CloseCode.Normal, 'thanks');
      }
    }
    const client = connect(`${echo.url}/greet`, new Greeter(), { heartbeatInterval: 0 });
    assert.deepEqual(await client.closed, { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(seen, ['open /greet -', 'text hi from a handler']);
  });

  test('the client has the methods and fields of WebSocketConnection that code moving between the two uses', async () => {
    const client = connect(echo.url, {}, { heartbeatInterval: 0 });
    await client.opened;
    // A compile-time check: this assignment type-checks only while the shapes agree.
    const endpoint: Pick<
      WebSocketConnection,
      'send' | 'ping' | 'close' | 'terminate' | 'isDefunct' | 'bufferedAmount' | 'protocol' | 'extensions' | 'latency' | 'pause' | 'resume' | 'request'
    > = client;
    assert.equal(endpoint.send('x', 'binary', { compress: false }), true);
    endpoint.terminate();
    assert.equal((await client.closed).code, 1006);
  });

  test('the server closes: onClose gets its code and reason, the iterator ends', async () => {
    const client = connect(echo.url, {}, { heartbeatInterval: 0 });
    await client.opened;
    client.send('one');
    const server = echo.connections.at(-1)!;
    const messages = [];
    for await (const message of client) {
      messages.push(message);
      server.close(CloseCode.GoingAway, 'restart');
    }
    assert.deepEqual(messages, [{ type: 'text', data: 'one' }]);
    assert.deepEqual(await client.closed, { code: 1001, reason: 'restart', wasClean: true });
  });

  test('a message over maxPayload fails the connection with 1009', async () => {
    const errors: string[] = [];
    const client = connect(echo.url, { onError: (e) => void errors.push((e as { code?: string }).code!) }, { maxPayload: 100, heartbeatInterval: 0 });
    await client.opened;
    client.send('x'.repeat(200), 'text', { compress: false });
    const info = await client.closed;
    assert.equal(info.code, 1009);
    assert.equal(info.wasClean, false);
    assert.deepEqual(errors, ['WS_ERR_PAYLOAD_TOO_BIG']);
  });

  test('the heartbeat: the client pings, our server answers, latency is measured; onDrain follows a send', async () => {
    let drained = 0;
    const client = connect(echo.url, { onDrain: () => void drained++, onMessage() {} }, { heartbeatInterval: 20 });
    await client.opened;
    while (client.latency === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(client.latency >= 0);
    assert.equal(client.ping('x'), true);
    client.send('x');
    while (drained === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(client.bufferedAmount, 0);
    client.close();
    await client.closed;
  });

  test('a router refusing the path: WS_ERR_HANDSHAKE_STATUS 404 with the router’s body', async () => {
    const router = new WebSocketRouter().route('/chat', class {});
    const server = createServer();
    router.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await assert.rejects(connect(`${url}/nope`).opened, (error: { code: string; status: number; body: Buffer }) => {
        assert.equal(error.code, 'WS_ERR_HANDSHAKE_STATUS');
        assert.equal(error.status, 404);
        assert.ok(error.body.length > 0);
        return true;
      });
      const client = connect(`${url}/chat`, {}, { heartbeatInterval: 0 });
      await client.opened;
      await router.close();
      assert.equal((await client.closed).code, CloseCode.GoingAway);
    } finally {
      await stop(server);
    }
  });
});

describe('our client against ws', () => {
  for (const perMessageDeflate of [false, true, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, threshold: 0 }]) {
    test(`echo with ws perMessageDeflate ${JSON.stringify(perMessageDeflate)}`, async () => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate, handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false) });
      await once(wss, 'listening');
      wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
      try {
        const client = connect(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, {}, { protocols: ['a', 'b'], heartbeatInterval: 0 });
        await client.opened;
        assert.equal(client.protocol, 'b');
        assert.equal(client.extensions === '', perMessageDeflate === false);
        const text = 'ws interop '.repeat(500);
        client.send(text);
        client.send(Buffer.from(text), 'binary');
        client.send('é');
        const got = [];
        for await (const message of client) {
          got.push(message);
          if (got.length === 3) client.close(CloseCode.Normal, 'bye');
        }
        assert.deepEqual(got, [
          { type: 'text', data: text },
          { type: 'binary', data: Buffer.from(text) },
          { type: 'text', data: 'é' },
        ]);
        assert.deepEqual(await client.closed, { code: 1000, reason: 'bye', wasClean: true }, 'ws echoes the reason');
      } finally {
        wss.close();
      }
    });
  }

  test('ws closing with a code and a reason', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (socket) => socket.close(4000, 'custom'));
    try {
      const client = connect(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, {}, { heartbeatInterval: 0 });
      assert.deepEqual(await client.closed, { code: 4000, reason: 'custom', wasClean: true });
    } finally {
      wss.close();
    }
  });
});

describe('wss:// (node:tls) with a self-signed certificate', () => {
  let echo: Awaited<ReturnType<typeof ourEchoServer>>;
  before(async () => {
    echo = await ourEchoServer({}, { tls: true });
  });
  after(() => stop(echo.server));

  test('trusted through `ca`: messages go both ways', async () => {
    const client = connect(`${echo.url}/secure`, {}, { ca: TLS.cert, heartbeatInterval: 0 });
    await client.opened;
    client.send('over tls');
    const { value } = await client[Symbol.asyncIterator]().next();
    assert.deepEqual(value, { type: 'text', data: 'over tls' });
    client.close();
    assert.equal((await client.closed).wasClean, true);
  });

  test('the certificate is checked against `servername` (localhost) and the host name', async () => {
    const byName = connect(echo.url.replace('127.0.0.1', 'localhost'), {}, { ca: TLS.cert, heartbeatInterval: 0 });
    await byName.opened;
    byName.terminate();
    const named = connect(echo.url, {}, { ca: TLS.cert, servername: 'localhost', heartbeatInterval: 0 });
    await named.opened;
    named.terminate();
    await assert.rejects(connect(echo.url, {}, { ca: TLS.cert, servername: 'example.com' }).opened, { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  test('untrusted: the TLS error fails the handshake, unless rejectUnauthorized is false', async () => {
    const { hooks, errors } = (() => {
      const errors: string[] = [];
      return { errors, hooks: { onError: (e: Error) => void errors.push((e as { code?: string }).code!) } };
    })();
    await assert.rejects(connect(echo.url, hooks).opened, { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    assert.deepEqual(errors, ['DEPTH_ZERO_SELF_SIGNED_CERT']);
    const insecure = connect(echo.url, {}, { rejectUnauthorized: false, heartbeatInterval: 0 });
    await insecure.opened;
    insecure.close();
    await insecure.closed;
  });
});

describe('IPv6', () => {
  test('ws://[::1]:port/ connects, with the address in brackets in Host', async (t) => {
    let echo: Awaited<ReturnType<typeof ourEchoServer>>;
    try {
      echo = await ourEchoServer({}, { host: '::1' });
    } catch (error) {
      t.skip(`::1 is not available here: ${(error as Error).message}`);
      return;
    }
    try {
      const client = connect(`${echo.url}/v6?q`, {}, { heartbeatInterval: 0 });
      await client.opened;
      assert.match(echo.requests[0]!.headers.host!, /^\[::1\]:\d+$/);
      assert.equal(echo.requests[0]!.url, '/v6?q');
      client.send('six');
      const { value } = await client[Symbol.asyncIterator]().next();
      assert.deepEqual(value, { type: 'text', data: 'six' });
      client.close();
      await client.closed;
    } finally {
      await stop(echo.server);
    }
  });
});

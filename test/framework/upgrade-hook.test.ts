// The upgrade hook: `static upgrade(request)` on a handler class (and acceptWebSocket's `upgrade`
// option) decides a request before the 101 and gives the connection typed data. Each path is
// checked over a raw socket with the exact response bytes: accepted with data, refused with each
// status, a hook that throws, one past its deadline, a client that leaves while it runs.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectRaw, type Socket } from 'node:net';
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import {
  acceptWebSocket,
  refuseUpgrade,
  WebSocketHandler,
  WebSocketRouter,
  HandshakeError,
  type UpgradeContext,
  type WebSocketConnection,
} from '../../src/index.js';
import { MAX_EARLY_BYTES } from '../../src/node/upgrade-hook.js';
import { Opcode } from '../../src/protocol/constants.js';
import { clientFrame, parseFrame, upgradeRequest } from '../helpers/net.js';
import { closed, connect, deferred, listen, memoryLogger, nextMessage } from './helpers.js';

/** The whole response to a raw upgrade request that the server refuses (it closes the socket). */
function refusal(port: number, path: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectRaw(port, '127.0.0.1', () => socket.write(upgradeRequest(port, { path, headers })));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

/** The response head a refusal of `status` with `body` and `extra` header lines is written as. */
function expected(status: string, body: string, extra = ''): string {
  return (
    `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
  );
}

function cookie(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, value] = part.trim().split('=');
    if (key === name) return value;
  }
  return undefined;
}

/** A plain class, typed through declaration merging: `this.data` is `{ token: string }`. */
class Plain {
  static upgrade(request: IncomingMessage): { token: string } {
    return { token: String(request.headers['x-token']) };
  }
  onOpen(): void {
    const token: string = this.data.token;
    this.send(`${token} ${this.url.href}`);
  }
}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
interface Plain extends WebSocketHandler<{ token: string }> {}

describe('static upgrade(request): authenticate before the 101, typed data per connection', () => {
  test('an async hook accepts with data: this.data is what it returned, this.url parses the query', async () => {
    class Chat extends WebSocketHandler<{ user: string }> {
      static async upgrade(request: IncomingMessage): Promise<{ user: string } | HandshakeError> {
        await new Promise((resolve) => setImmediate(resolve));
        const user = cookie(request, 'user');
        return user === undefined ? refuseUpgrade(401, 'log in first', { 'WWW-Authenticate': 'Cookie' }) : { user };
      }
      override onOpen(): void {
        const user: string = this.data.user; // typed by the class's type argument
        this.send(`hello ${user} in ${this.url.searchParams.get('room')} after ${this.url.searchParams.get('lastId')}`);
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsChat', Chat));
    try {
      const ws = new WebSocket(`${server.base}/wsChat?room=a&lastId=7`, { headers: { Cookie: 'theme=dark; user=alice' } });
      assert.deepEqual(await nextMessage(ws), { data: 'hello alice in a after 7', isBinary: false });
      ws.close();
      await closed(ws);
      assert.equal(
        await refusal(server.port, '/wsChat'),
        expected('401 Unauthorized', 'log in first\n', 'WWW-Authenticate: Cookie\r\n'),
      );
    } finally {
      await server.close();
    }
  });

  test('a sync hook on a plain class (no extends) gives data; this.url has the ws: origin of the Host', async () => {
    const server = await listen(new WebSocketRouter().route('/wsPlain', Plain));
    try {
      const ws = new WebSocket(`${server.base}/wsPlain?x=1`, { headers: { 'X-Token': 't1' } });
      assert.deepEqual(await nextMessage(ws), { data: `t1 ws://127.0.0.1:${server.port}/wsPlain?x=1`, isBinary: false });
      ws.close();
      await closed(ws);
    } finally {
      await server.close();
    }
  });

  test('refusals are written with their status, headers and body: 401, 403, 429, and a thrown refusal', async () => {
    class Gate extends WebSocketHandler {
      static upgrade(request: IncomingMessage) {
        switch (request.url) {
          case '/wsGate?401':
            return refuseUpgrade(401, 'token expired', { 'WWW-Authenticate': 'Bearer realm="chat", error="invalid_token"' });
          case '/wsGate?403':
            return refuseUpgrade(403);
          case '/wsGate?429':
            return Promise.resolve(refuseUpgrade(429, 'slow down', { 'Retry-After': '30' }));
          default:
            throw refuseUpgrade(404, 'no such room');
        }
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsGate', Gate));
    try {
      assert.equal(
        await refusal(server.port, '/wsGate?401'),
        expected('401 Unauthorized', 'token expired\n', 'WWW-Authenticate: Bearer realm="chat", error="invalid_token"\r\n'),
      );
      assert.equal(await refusal(server.port, '/wsGate?403'), expected('403 Forbidden', 'the WebSocket upgrade was refused\n'));
      assert.equal(await refusal(server.port, '/wsGate?429'), expected('429 Too Many Requests', 'slow down\n', 'Retry-After: 30\r\n'));
      assert.equal(await refusal(server.port, '/wsGate?x'), expected('404 Not Found', 'no such room\n'));
      assert.equal(server.server.listenerCount('upgrade'), 1);
    } finally {
      await server.close();
    }
  });

  test('a hook that throws gets 500 with no detail for the peer; the error is logged with the class and path', async () => {
    const logger = memoryLogger();
    const boom = new Error('database password is hunter2');
    let constructed = 0;
    class Broken extends WebSocketHandler {
      constructor() {
        super();
        constructed++;
      }
      static async upgrade(): Promise<never> {
        throw boom;
      }
    }
    const server = await listen(new WebSocketRouter({ logger }).route('/wsBroken', Broken));
    try {
      const response = await refusal(server.port, '/wsBroken');
      assert.equal(response, expected('500 Internal Server Error', 'the upgrade was not accepted: internal error\n'));
      assert.deepEqual(logger.calls, [['pef-front-websocket: the upgrade hook of Broken (/wsBroken) threw', boom]]);
      assert.equal(constructed, 0);
    } finally {
      await server.close();
    }
  });

  test('a hook past upgradeTimeout: 503, its signal aborted, the line logged, and its late answer ignored', async () => {
    const logger = memoryLogger();
    const aborted = deferred<unknown>();
    let constructed = 0;
    class Slow extends WebSocketHandler<string> {
      static options = { upgradeTimeout: 30 };
      constructor() {
        super();
        constructed++;
      }
      static upgrade(_request: IncomingMessage, { signal }: UpgradeContext): Promise<string> {
        // Never decides by itself: only the deadline can end it.
        return new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted.resolve(signal.reason);
            resolve('too late');
          }),
        );
      }
    }
    const server = await listen(new WebSocketRouter({ logger }).route('/wsSlow', Slow));
    try {
      const response = await refusal(server.port, '/wsSlow');
      assert.equal(response, expected('503 Service Unavailable', 'the upgrade was not decided in time\n'));
      assert.equal(((await aborted.promise) as Error).message, 'the upgrade was not decided in time');
      assert.deepEqual(logger.calls, [['pef-front-websocket: the upgrade hook of Slow (/wsSlow) did not finish within 30 ms']]);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(constructed, 0);
      assert.equal(server.server.listenerCount('upgrade'), 1);
    } finally {
      await server.close();
    }
  });

  test('a client that leaves while the hook runs: the signal aborts, no instance, no hook, its slot given back', async () => {
    const entered = deferred();
    const aborted = deferred<unknown>();
    let answered: Promise<unknown> | undefined;
    let constructed = 0;
    class Leaving extends WebSocketHandler<{ user: string }> {
      static options = { maxConnections: 1 };
      constructor() {
        super();
        constructed++;
      }
      static calls = 0;
      static upgrade(_request: IncomingMessage, { signal }: UpgradeContext): Promise<{ user: string }> | { user: string } {
        if (++Leaving.calls === 2) return { user: 'second' };
        entered.resolve();
        answered = new Promise((resolve) => signal.addEventListener('abort', () => resolve(aborted.resolve(signal.reason))));
        return answered.then(() => ({ user: 'gone' }));
      }
      override onOpen(): void {
        this.send(this.data.user);
      }
    }
    const router = new WebSocketRouter().route('/wsLeaving', Leaving);
    const server = await listen(router);
    try {
      const socket = connectRaw(server.port, '127.0.0.1', () => socket.write(upgradeRequest(server.port, { path: '/wsLeaving' })));
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      await entered.promise;
      socket.end();
      assert.equal(((await aborted.promise) as Error).message, 'the client closed the connection');
      await answered;
      await once(socket, 'close');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(received, '');
      assert.equal(constructed, 0);
      assert.equal(router.connectionCount, 0);
      // Its slot (maxConnections 1) was given back when it left: the next client gets in.
      const ws = new WebSocket(`${server.base}/wsLeaving`);
      assert.deepEqual(await nextMessage(ws), { data: 'second', isBinary: false });
      assert.equal(constructed, 1);
      ws.close();
      await closed(ws);
    } finally {
      await server.close();
    }
  });

  test('bytes a client sends before its 101 are kept and handled once the hook accepts', async () => {
    const frame = clientFrame(Opcode.Text, 'early');
    const request = upgradeRequest(0, { path: '/wsEarly' });
    class Early extends WebSocketHandler<number> {
      static upgrade(req: IncomingMessage): Promise<number> {
        // Decides once the server has read the request and the frame: its own count of bytes read.
        return new Promise((resolve) => {
          const check = (): void => {
            if (req.socket.bytesRead >= Buffer.byteLength(request) + frame.length) resolve(req.socket.bytesRead);
            else setTimeout(check, 5);
          };
          check();
        });
      }
      override onMessage(message: string | Buffer): void {
        this.send(`${message} after ${this.data} bytes`);
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsEarly', Early));
    try {
      const socket: Socket = connectRaw(server.port, '127.0.0.1', () =>
        socket.write(Buffer.concat([Buffer.from(upgradeRequest(server.port, { path: '/wsEarly' }), 'latin1'), frame])),
      );
      let received = Buffer.alloc(0);
      const reply = new Promise<Buffer>((resolve) =>
        socket.on('data', (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          const end = received.indexOf('\r\n\r\n');
          if (end === -1) return;
          const parsed = parseFrame(received.subarray(end + 4));
          if (parsed !== null) resolve(parsed.payload);
        }),
      );
      const total = Buffer.byteLength(upgradeRequest(server.port, { path: '/wsEarly' })) + frame.length;
      assert.equal((await reply).toString(), `early after ${total} bytes`);
      assert.match(received.toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  test(`a client that sends more than ${MAX_EARLY_BYTES} bytes before its 101 is dropped and the hook aborted`, async () => {
    const aborted = deferred<unknown>();
    const entered = deferred();
    class Flooded extends WebSocketHandler {
      static upgrade(_request: IncomingMessage, { signal }: UpgradeContext): Promise<undefined> {
        entered.resolve();
        return new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted.resolve(signal.reason);
            resolve(undefined);
          }),
        );
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsFlooded', Flooded));
    try {
      const socket = connectRaw(server.port, '127.0.0.1', () => socket.write(upgradeRequest(server.port, { path: '/wsFlooded' })));
      socket.on('error', () => {});
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      await entered.promise;
      socket.write(Buffer.alloc(MAX_EARLY_BYTES + 1));
      assert.equal(((await aborted.promise) as Error).message, 'the client sent too much before the handshake completed');
      await once(socket, 'close');
      assert.equal(received, '');
    } finally {
      await server.close();
    }
  });

  test('router.close() answers requests whose hook still runs with 503', async () => {
    const entered = deferred();
    class Waiting extends WebSocketHandler {
      static upgrade(_request: IncomingMessage, { signal }: UpgradeContext): Promise<undefined> {
        entered.resolve();
        return new Promise((resolve) => signal.addEventListener('abort', () => resolve(undefined)));
      }
    }
    const router = new WebSocketRouter().route('/wsWaiting', Waiting);
    const server = await listen(router);
    try {
      const response = refusal(server.port, '/wsWaiting');
      await entered.promise;
      await router.close();
      assert.equal(await response, expected('503 Service Unavailable', 'the server is shutting down\n'));
    } finally {
      await server.close();
    }
  });

  test('a request that fails the handshake checks never reaches the hook', async () => {
    let calls = 0;
    class Counted extends WebSocketHandler {
      static upgrade(): undefined {
        calls++;
        return undefined;
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsCounted', Counted));
    try {
      const response = await refusal(server.port, '/wsCounted', { 'Sec-WebSocket-Version': '8' });
      assert.match(response, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
      const foreign = await refusal(server.port, '/wsCounted', { Origin: 'http://evil.example' });
      assert.match(foreign, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.equal(calls, 0);
    } finally {
      await server.close();
    }
  });

  test('a static upgrade that is not a function is refused when the route is registered', () => {
    class Bad {
      static upgrade = 'yes';
    }
    assert.throws(() => new WebSocketRouter().route('/wsBad', Bad as never), { name: 'TypeError', message: 'static upgrade of Bad must be a function' });
  });
});

describe('refuseUpgrade checks what it will write, at the call', () => {
  test('a HandshakeError with code WS_ERR_HANDSHAKE_REFUSED and the given status, message and headers', () => {
    const error = refuseUpgrade(429, 'slow down', { 'Retry-After': '30' });
    assert.ok(error instanceof HandshakeError);
    assert.deepEqual([error.code, error.status, error.message, error.headers], ['WS_ERR_HANDSHAKE_REFUSED', 429, 'slow down', { 'Retry-After': '30' }]);
  });

  test('bad statuses, names, values, owned fields and missing required fields throw', () => {
    assert.throws(() => refuseUpgrade(200), {
      name: 'RangeError',
      code: 'ERR_HTTP_INVALID_STATUS_CODE',
      message: "a refusal's status must be a whole number from 300 to 599, not 200",
    });
    assert.throws(() => refuseUpgrade(600), RangeError);
    assert.throws(() => refuseUpgrade(403, 'x', { 'Bad Name': 'v' }), { name: 'TypeError', code: 'ERR_INVALID_HTTP_TOKEN' });
    assert.throws(() => refuseUpgrade(403, 'x', { 'X-Evil': 'a\r\nSet-Cookie: s=1' }), { name: 'TypeError', code: 'ERR_INVALID_CHAR' });
    assert.throws(() => refuseUpgrade(403, 'x', { 'Content-Length': '0' }), { name: 'TypeError', code: 'ERR_HANDSHAKE_FIELD' });
    assert.throws(() => refuseUpgrade(403, 'x', { Connection: 'keep-alive' }), { name: 'TypeError', code: 'ERR_HANDSHAKE_FIELD' });
    assert.throws(() => refuseUpgrade(401, 'x'), {
      name: 'TypeError',
      code: 'ERR_REQUIRED_FIELD',
      message: 'a 401 response requires the www-authenticate header field',
    });
    assert.throws(() => refuseUpgrade(405, 'x'), { name: 'TypeError', code: 'ERR_REQUIRED_FIELD' });
    assert.throws(() => refuseUpgrade(302, 'x'), { name: 'TypeError', code: 'ERR_REQUIRED_FIELD' });
    assert.throws(() => refuseUpgrade(403, 'two\r\nlines'), { name: 'TypeError', code: 'ERR_INVALID_CHAR' });
  });

  test('a HandshakeError a hook makes by hand with a bad field throws in the hook: 500, logged, no bad byte', async () => {
    const logger = memoryLogger();
    class Crafted extends WebSocketHandler {
      static upgrade(): HandshakeError {
        return new HandshakeError('WS_ERR_HANDSHAKE_REFUSED', 403, 'no', { 'X-Evil': 'a\r\nb' });
      }
    }
    const server = await listen(new WebSocketRouter({ logger }).route('/wsCrafted', Crafted));
    try {
      assert.equal(await refusal(server.port, '/wsCrafted'), expected('500 Internal Server Error', 'the upgrade was not accepted: internal error\n'));
      assert.equal(logger.calls.length, 1);
      assert.equal(logger.calls[0]![0], 'pef-front-websocket: the upgrade hook of Crafted (/wsCrafted) threw');
      assert.equal((logger.calls[0]![1] as { code: string }).code, 'ERR_INVALID_CHAR');
    } finally {
      await server.close();
    }
  });
});

describe('acceptWebSocket with an upgrade option', () => {
  test('returns a promise of the connection, whose data is what the hook returned; a refusal resolves null', async () => {
    const opened: (WebSocketConnection | null)[] = [];
    class Greeter extends WebSocketHandler<{ user: string }> {
      override onOpen(): void {
        this.send(`hi ${this.data.user}`);
      }
    }
    const server = createServer();
    server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) => {
      void acceptWebSocket(request, socket, head, new Greeter(), {
        upgrade: async (req) => (req.url === '/no' ? refuseUpgrade(403, 'no') : { user: 'bob' }),
      }).then((connection) => opened.push(connection));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      // The greeting may come in the same packet as the 101: listen before 'open'.
      const ws = new WebSocket(`ws://127.0.0.1:${port}/yes`);
      assert.deepEqual(await nextMessage(ws), { data: 'hi bob', isBinary: false });
      assert.deepEqual(opened[0]?.data, { user: 'bob' });
      assert.equal(await refusal(port, '/no'), expected('403 Forbidden', 'no\n'));
      assert.equal(opened[1], null);
      ws.close();
      await closed(ws);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('terminate() on a handler', () => {
  test('destroys the socket at once: the client sees 1006, onClose gets 1006', async () => {
    const onClose = deferred<number>();
    class Rude extends WebSocketHandler {
      override onMessage(): void {
        this.terminate();
      }
      override onClose(code: number): void {
        onClose.resolve(code);
      }
    }
    const handler = new Rude();
    handler.terminate(); // not bound yet: nothing happens
    const server = await listen(new WebSocketRouter().route('/wsRude', Rude));
    try {
      const ws = await connect(`${server.base}/wsRude`);
      const seen = closed(ws);
      ws.send('bye');
      assert.equal((await seen).code, 1006);
      assert.equal(await onClose.promise, 1006);
    } finally {
      await server.close();
    }
  });

  test('this.data and this.url before the handler is bound throw, naming onOpen', () => {
    const handler = new WebSocketHandler<{ user: string }>();
    assert.throws(() => handler.data, { message: 'this handler is not bound to a connection yet: read this.data from onOpen on' });
    assert.throws(() => handler.url, { message: 'this handler is not bound to a connection yet: read this.url from onOpen on' });
  });
});

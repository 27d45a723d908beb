// Routing and loading: handler folders (/ws<File>, static path, static options, static protocols,
// selectProtocol), loading errors that name the file, 404 for unknown paths, plain HTTP left
// alone, handleUpgrade for code that owns the event, and the graceful router.close().

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { CloseCode, HandlerLoadError, WebSocketHandler, WebSocketRouter, type HandlerClass, type MessageType } from '../../src/index.js';
import { closed, connect, deferred, listen, nextMessage, refused } from './helpers.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const fixture = (...parts: string[]): string => join(fixtures, ...parts);

class Echo extends WebSocketHandler {
  override onMessage(message: string | Buffer, type: MessageType): void {
    this.send(message, type);
  }
}

describe('loading a handler folder', () => {
  test('serves /ws + the base name of every .js, .mjs, .cjs and .ts module, skipping .d.ts, tests and other files', async () => {
    const router = await WebSocketRouter.fromDirectory(fixture('good'));
    assert.deepEqual(router.routes, [
      '/wsChat', '/wsEcho', '/wsLegacy', '/wsLimited', '/elsewhere', '/wsPlain', '/wsSelector', '/wsTyped', '/wsWrapped',
    ]);
    const server = await listen(router);

    const echo = await connect(`${server.base}/wsEcho`);
    const echoed = nextMessage(echo);
    echo.send(Buffer.from([1, 2, 3]));
    assert.deepEqual(await echoed, { data: Buffer.from([1, 2, 3]), isBinary: true });

    // A plain class (named export) and a CommonJS class get the base class on load.
    const plain = await connect(`${server.base}/wsPlain`);
    const plainReply = nextMessage(plain);
    plain.send('hi');
    assert.deepEqual(await plainReply, { data: 'plain: hi', isBinary: false });
    assert.deepEqual(await nextMessage(new WebSocket(`${server.base}/wsLegacy`)), { data: 'legacy', isBinary: false });
    // The documented typing of a plain class (interface merging) works at run time too.
    const typed = await connect(`${server.base}/wsTyped`);
    const typedReply = nextMessage(typed);
    typed.send('hi');
    assert.deepEqual(await typedReply, { data: 'typed: hi', isBinary: false });
    typed.close();
    // CommonJS whose exports object holds the class under the file's name.
    assert.deepEqual(await nextMessage(new WebSocket(`${server.base}/wsWrapped`)), { data: 'wrapped', isBinary: false });

    for (const ws of [echo, plain]) ws.close();
    await server.close();
  });

  test('static path replaces /ws + the file name, and the query string stays in this.request.url', async () => {
    const server = await listen(await WebSocketRouter.fromDirectory(fixture('good')));
    const ws = new WebSocket(`${server.base}/elsewhere?x=1&y=%20`);
    assert.deepEqual(await nextMessage(ws), { data: 'moved to /elsewhere?x=1&y=%20', isBinary: false });
    assert.deepEqual(await refused(`${server.base}/wsMoved`), { status: 404, body: 'no WebSocket handler at this path\n' });
    ws.close();
    await server.close();
  });

  test('static options override the router options for that class only', async () => {
    const server = await listen(await WebSocketRouter.fromDirectory(fixture('good'), { maxPayload: 1024 }));
    const limited = await connect(`${server.base}/wsLimited`);
    const fits = nextMessage(limited);
    limited.send('x'.repeat(16));
    assert.deepEqual(await fits, { data: 'x'.repeat(16), isBinary: false });
    const close = closed(limited);
    limited.send('x'.repeat(17));
    assert.equal((await close).code, CloseCode.MessageTooBig);

    const echo = await connect(`${server.base}/wsEcho`);
    const big = nextMessage(echo);
    echo.send('x'.repeat(1024));
    assert.equal((await big).data, 'x'.repeat(1024));
    const echoClose = closed(echo);
    echo.send('x'.repeat(1025));
    assert.equal((await echoClose).code, CloseCode.MessageTooBig);
    await server.close();
  });

  test('static protocols: the first of the class\'s list the client offered wins; none offered is accepted with ""', async () => {
    const server = await listen(await WebSocketRouter.fromDirectory(fixture('good')));
    const cases: [string[], string][] = [
      [['chat.v1'], 'chat.v1'],
      [['chat.v1', 'chat.v2'], 'chat.v2'],
      [['other', 'chat.v1'], 'chat.v1'],
      [[], ''],
    ];
    for (const [offered, chosen] of cases) {
      const ws = new WebSocket(`${server.base}/wsChat`, offered);
      assert.deepEqual(await nextMessage(ws), { data: `protocol "${chosen}"`, isBinary: false }, offered.join());
      assert.equal(ws.protocol, chosen);
      ws.close();
    }
    await server.close();
  });

  test('static protocols: a client offering none of them is refused with 400 naming the supported ones', async () => {
    const server = await listen(await WebSocketRouter.fromDirectory(fixture('good')));
    assert.deepEqual(await refused(`${server.base}/wsChat`, ['chat.v3', 'graphql-ws']), {
      status: 400,
      body: 'unsupported subprotocol; this endpoint speaks chat.v2, chat.v1\n',
    });
    await server.close();
  });

  test('static selectProtocol chooses instead of a list, with the request at hand', async () => {
    const server = await listen(await WebSocketRouter.fromDirectory(fixture('good')));
    const ws = new WebSocket(`${server.base}/wsSelector`, ['a', 'b', 'c']);
    assert.deepEqual(await nextMessage(ws), { data: 'protocol "c"', isBinary: false });
    ws.close();
    await server.close();
  });

  test('a module that throws on import stops loading with an error naming the file and the cause', async () => {
    const file = fixture('throws', 'Bad.mjs');
    const error = await WebSocketRouter.fromDirectory(fixture('throws')).catch((e: unknown) => e);
    assert.ok(error instanceof HandlerLoadError);
    assert.equal(error.code, 'WS_ERR_HANDLER_LOAD');
    assert.equal(error.file, file);
    assert.equal(error.message, `${file}:2:7: failed to load: exploded on import`);
    assert.deepEqual([error.line, error.column], [2, 7]);
    assert.ok(error.cause instanceof Error);
    assert.equal(error.cause.message, 'exploded on import');
  });

  test('a module that exports no class stops loading with an error naming the file', async () => {
    const file = fixture('noclass', 'Thing.mjs');
    await assert.rejects(WebSocketRouter.fromDirectory(fixture('noclass')), {
      name: 'HandlerLoadError',
      code: 'WS_ERR_HANDLER_LOAD',
      file,
      message: `${file}: exports no handler class (expected a default export or an export named "Thing" that is a class)`,
    });
  });

  test('two modules claiming one route stop loading with an error naming both files', async () => {
    const a = fixture('duplicate', 'A.mjs');
    const b = fixture('duplicate', 'B.mjs');
    await assert.rejects(WebSocketRouter.fromDirectory(fixture('duplicate')), {
      name: 'HandlerLoadError',
      file: b,
      message: `${b}: claims the route /wsB, which ${a} has already`,
    });
  });

  test('a route taken by route() is named in the error of a module claiming it, and nothing is registered', async () => {
    const router = new WebSocketRouter().route('/wsEcho', Echo);
    const file = fixture('good', 'Echo.ts');
    await assert.rejects(router.loadDirectory(fixture('good')), {
      name: 'HandlerLoadError',
      message: `${file}: claims the route /wsEcho, which Echo (registered by route()) has already`,
    });
    assert.deepEqual(router.routes, ['/wsEcho']);
  });

  test('an invalid static path stops loading with an error naming the file', async () => {
    const file = fixture('badstatic', 'Bad.mjs');
    await assert.rejects(WebSocketRouter.fromDirectory(fixture('badstatic')), {
      name: 'HandlerLoadError',
      message: `${file}: a route must be a path starting with "/" without query or fragment, not "noslash"`,
    });
  });

  test('a folder with no handler module, or no folder at all, stops loading with an error naming it', async () => {
    const empty = fixture('empty');
    await assert.rejects(WebSocketRouter.fromDirectory(empty), {
      name: 'HandlerLoadError',
      file: empty,
      message: `${empty}: no handler modules in the folder`,
    });
    const missing = fixture('missing');
    await assert.rejects(WebSocketRouter.fromDirectory(missing), {
      name: 'HandlerLoadError',
      file: missing,
      message: `${missing}: the handler folder does not exist`,
    });
  });
});

describe('routing', () => {
  test('route() registers by hand; a taken path or a path without "/" throws', () => {
    const router = new WebSocketRouter().route('/wsEcho', Echo);
    assert.throws(() => router.route('/wsEcho', Echo), { name: 'Error', message: 'the route /wsEcho is taken by Echo' });
    assert.throws(() => router.route('wsEcho', Echo), {
      name: 'TypeError',
      message: 'a route must be a path starting with "/" without query or fragment, not "wsEcho"',
    });
    assert.throws(() => new WebSocketRouter({ maxPayload: 0 }), { name: 'RangeError', message: 'maxPayload must be a positive number' });
    assert.deepEqual(router.routes, ['/wsEcho']);
  });

  test('invalid statics are refused when the class is registered, naming what is wrong', () => {
    const cases: [HandlerClass, string][] = [
      [class BadOptions { static options = 5; } as unknown as HandlerClass, 'static options of BadOptions must be an object, not number'],
      [class NoProtocols { static protocols = []; }, 'static protocols of NoProtocols must be a non-empty list of subprotocol tokens'],
      [class BadToken { static protocols = ['chat v1']; }, 'static protocols of BadToken must be a non-empty list of subprotocol tokens'],
      [class BadSelect { static selectProtocol = 'first'; } as unknown as HandlerClass, 'static selectProtocol of BadSelect must be a function'],
      [(() => {}) as unknown as HandlerClass, 'the handler for /wsX must be a class, not function'],
    ];
    for (const [Class, message] of cases) {
      assert.throws(() => new WebSocketRouter().route('/wsX', Class), { name: 'TypeError', message });
    }
  });

  test('a request target in absolute form (as proxies send it) is routed by its path', async () => {
    const server = await listen(new WebSocketRouter().route('/wsEcho', Echo));
    const socket = connectTcp(server.port, '127.0.0.1');
    const response = new Promise<string>((resolve) => {
      let text = '';
      socket.setEncoding('latin1').on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('\r\n\r\n')) resolve(text.slice(0, text.indexOf('\r\n')));
      });
    });
    socket.write(
      `GET http://127.0.0.1:${server.port}/wsEcho?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    assert.equal(await response, 'HTTP/1.1 101 Switching Protocols');
    socket.destroy();
    await server.close();
  });

  test('attach() listens once per server and detach() stops listening', () => {
    const router = new WebSocketRouter().route('/wsEcho', Echo);
    const server = createServer();
    router.attach(server).attach(server);
    assert.equal(server.listenerCount('upgrade'), 1);
    router.detach(server).detach(server);
    assert.equal(server.listenerCount('upgrade'), 0);
  });

  test('an upgrade request for an unknown path gets 404, as do paths that only start like a route', async () => {
    const server = await listen(new WebSocketRouter().route('/wsEcho', Echo));
    for (const path of ['/wsNope', '/wsEcho/', '/wsEcho.pm', '/wsecho', '/']) {
      assert.deepEqual(await refused(`${server.base}${path}`), { status: 404, body: 'no WebSocket handler at this path\n' }, path);
    }
    await server.close();
  });

  test('plain HTTP requests are never touched, on route paths or others', async () => {
    const server = await listen(new WebSocketRouter().route('/wsEcho', Echo));
    for (const path of ['/', '/wsEcho']) {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'plain http\n');
    }
    await server.close();
  });

  test('handleUpgrade returns false and leaves the socket alone for a path that is not a route', async () => {
    const router = new WebSocketRouter().route('/wsEcho', Echo);
    const results: boolean[] = [];
    const server = createServer();
    server.on('upgrade', (request, socket, head) => {
      const handled = router.handleUpgrade(request, socket, head);
      results.push(handled);
      if (!handled) socket.end('HTTP/1.1 418 I\'m a teapot\r\nContent-Length: 7\r\nConnection: close\r\n\r\nteapot\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.deepEqual(await refused(`${base}/elsewhere`), { status: 418, body: 'teapot\n' });
    const ws = await connect(`${base}/wsEcho?q=1`);
    assert.deepEqual(results, [false, true]);
    const close = closed(ws);
    ws.close();
    await close;
    await router.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('router.close()', () => {
  test('sends 1001 Going Away to every connection, resolves once all are closed, and refuses new ones with 503', async () => {
    const closes: number[] = [];
    class Tracked extends Echo {
      override onClose(code: number): void {
        closes.push(code);
      }
    }
    const router = new WebSocketRouter().route('/wsTracked', Tracked);
    const server = await listen(router);
    const clients = await Promise.all([1, 2, 3].map(() => connect(`${server.base}/wsTracked`)));
    assert.equal(router.connectionCount, 3);
    const seen = Promise.all(clients.map(closed));
    await router.close();
    assert.equal(router.connectionCount, 0);
    assert.deepEqual(await seen, [1, 2, 3].map(() => ({ code: CloseCode.GoingAway, reason: 'server shutting down' })));
    assert.deepEqual(closes, [CloseCode.GoingAway, CloseCode.GoingAway, CloseCode.GoingAway]);
    assert.deepEqual(await refused(`${server.base}/wsTracked`), { status: 503, body: 'the server is shutting down\n' });
    assert.equal(router.close(), router.close());
    await server.close();
  });

  test('destroys a connection whose peer never answers the Close, after the close timeout', async () => {
    const onClose = deferred<number>();
    class Waiting extends WebSocketHandler {
      static options = { closeTimeout: 50 };
      override onClose(code: number): void {
        onClose.resolve(code);
      }
    }
    const router = new WebSocketRouter().route('/wsWaiting', Waiting);
    const server = await listen(router);
    const silent = await connect(`${server.base}/wsWaiting`);
    silent.pause(); // reads nothing, so it never answers the server's Close
    const seen = closed(silent);
    await router.close();
    assert.equal(router.connectionCount, 0);
    assert.equal(await onClose.promise, CloseCode.Abnormal);
    silent.resume();
    assert.equal((await seen).code, CloseCode.GoingAway);
    await server.close();
  });

  test('resolves at once when there is no connection', async () => {
    const router = new WebSocketRouter().route('/wsEcho', Echo);
    await router.close();
    assert.equal(router.connectionCount, 0);
  });
});

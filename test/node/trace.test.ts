// Watching the wire: the exact trace lines of a known exchange (the `trace` option and
// NODE_DEBUG=pef-ws), and what the node:diagnostics_channel channels receive.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { acceptWebSocket, WebSocketHandler, WebSocketRouter, type WebSocketConnection, type WebSocketOptions } from '../../src/index.js';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { ProtocolError, HandshakeError } from '../../src/protocol/errors.js';
import { encodeClosePayload, encodeFrame } from '../../src/protocol/frame.js';
import { ConnectionTrace, formatFrame, lateTrace, type FrameMessage } from '../../src/node/trace.js';
import type { UpgradeRequest } from '../../src/node/request.js';

const MASK = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A masked client frame as one buffer. */
function frame(opcode: number, payload: Uint8Array | string, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat(encodeFrame(opcode, data, { fin, mask: MASK }));
}

function upgradeRequest(port: number, path: string, extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

interface EchoServer {
  server: Server;
  port: number;
  /** Resolves with [code, reason] when the n-th connection's onClose has run. */
  closed: Promise<[number, string]>;
  connections: WebSocketConnection[];
}

/** An echo server whose first connection's onClose resolves `closed`. */
async function echoServer(options: WebSocketOptions): Promise<EchoServer> {
  let resolveClosed!: (value: [number, string]) => void;
  const closed = new Promise<[number, string]>((resolve) => (resolveClosed = resolve));
  const connections: WebSocketConnection[] = [];
  const server = createServer();
  server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) => {
    const ws: WebSocketConnection | null = acceptWebSocket(
      request,
      socket,
      head,
      {
        onMessage: (message, type) => void ws!.send(message, type),
        onError: () => {},
        onClose: (code, reason) => resolveClosed([code, reason]),
      },
      options,
    );
    if (ws) connections.push(ws);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, closed, connections };
}

/** Opens a TCP connection and writes the upgrade request and `frames` in one write. */
async function client(port: number, path: string, frames: Buffer[], extra = ''): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.on('end', () => socket.end());
  socket.write(Buffer.concat([Buffer.from(upgradeRequest(port, path, extra), 'latin1'), ...frames]));
  return socket;
}

async function stop(echo: EchoServer, socket: Socket): Promise<void> {
  socket.destroy();
  echo.server.close();
  await once(echo.server, 'close');
}

/** The id from a trace line's `#N` prefix. */
function idOf(line: string): number {
  const match = /^#(\d+) /.exec(line);
  assert.ok(match, `not a trace line: ${line}`);
  return Number(match[1]);
}

const bytes20 = Buffer.from(Array.from({ length: 20 }, (_, i) => i));

describe('trace lines', () => {
  test('the trace option gets a line for the handshake, each frame both ways in wire order, and the close', async () => {
    const lines: string[] = [];
    const echo = await echoServer({ trace: (line) => lines.push(line), selectProtocol: (offered) => offered[0] ?? null });
    const socket = await client(
      echo.port,
      '/echo?room=1',
      [
        frame(Opcode.Text, 'hello'),
        frame(Opcode.Text, 'hel', false),
        frame(Opcode.Ping, 'p'),
        frame(Opcode.Continuation, 'lo'),
        frame(Opcode.Binary, bytes20),
        frame(Opcode.Close, encodeClosePayload(CloseCode.Normal, 'bye')),
      ],
      'Sec-WebSocket-Protocol: chat, superchat\r\n',
    );
    assert.deepEqual(await echo.closed, [CloseCode.Normal, 'bye']);
    const id = idOf(lines[0]!);
    assert.deepEqual(lines, [
      `#${id} handshake 101 url="/echo?room=1" protocol="chat" extensions=""`,
      `#${id} in text fin=1 rsv=000 masked=1 len=5 hex=68656c6c6f`,
      `#${id} out text fin=1 rsv=000 masked=0 len=5 hex=68656c6c6f`,
      `#${id} in text fin=0 rsv=000 masked=1 len=3 hex=68656c`,
      `#${id} in ping fin=1 rsv=000 masked=1 len=1 hex=70`,
      `#${id} out pong fin=1 rsv=000 masked=0 len=1 hex=70`,
      `#${id} in continuation fin=1 rsv=000 masked=1 len=2 hex=6c6f`,
      `#${id} out text fin=1 rsv=000 masked=0 len=5 hex=68656c6c6f`,
      `#${id} in binary fin=1 rsv=000 masked=1 len=20 hex=000102030405060708090a0b0c0d0e0f...`,
      `#${id} out binary fin=1 rsv=000 masked=0 len=20 hex=000102030405060708090a0b0c0d0e0f...`,
      `#${id} in close fin=1 rsv=000 masked=1 len=5 code=1000 reason="bye" hex=03e8627965`,
      `#${id} out close fin=1 rsv=000 masked=0 len=2 code=1000 reason="" hex=03e8`,
      `#${id} closed code=1000 reason="bye"`,
    ]);
    await stop(echo, socket);
  });

  test('a protocol failure is traced as the offending frame, the Close sent for it and the error', async () => {
    const lines: string[] = [];
    const echo = await echoServer({ trace: (line) => lines.push(line) });
    const socket = await client(echo.port, '/', [frame(Opcode.Text, Uint8Array.of(0xc3, 0x28))]);
    const reason = 'invalid UTF-8 in a text message';
    assert.deepEqual(await echo.closed, [CloseCode.InvalidPayload, reason]);
    const id = idOf(lines[0]!);
    assert.deepEqual(lines, [
      `#${id} handshake 101 url="/" protocol="" extensions=""`,
      `#${id} in text fin=1 rsv=000 masked=1 len=2 hex=c328`,
      `#${id} out close fin=1 rsv=000 masked=0 len=33 code=1007 reason="${reason}" hex=03ef696e76616c6964205554462d3820...`,
      `#${id} error WS_ERR_INVALID_UTF8 close=1007 "${reason}"`,
      `#${id} closed code=1007 reason="${reason}"`,
    ]);
    await stop(echo, socket);
  });

  // Root cause: the sequence rules moved to the frame's first two bytes (onFrameStart), before
  // the frame was marked for observing, so a frame failed on them was missing from the trace.
  test('a frame that breaks the frame sequence is traced before the Close, and one failed before its 64-bit length shows len=?', async () => {
    const lines: string[] = [];
    const echo = await echoServer({ trace: (line) => lines.push(line) });
    const socket = await client(echo.port, '/', [frame(Opcode.Continuation, 'hi')]);
    const reason = 'continuation frame without a message to continue';
    assert.deepEqual(await echo.closed, [CloseCode.ProtocolError, reason]);
    const id = idOf(lines[0]!);
    assert.deepEqual(lines.slice(1, 3), [
      `#${id} in continuation fin=1 rsv=000 masked=1 len=2 hex=`,
      `#${id} out close fin=1 rsv=000 masked=0 len=${2 + reason.length} code=1002 reason="${reason}" hex=${Buffer.from(encodeClosePayload(CloseCode.ProtocolError, reason)).toString('hex', 0, 16)}...`,
    ]);
    await stop(echo, socket);
    assert.equal(formatFrame(3, 'in', true, 0, Opcode.Text, true, NaN, Buffer.alloc(0)), '#3 in text fin=1 rsv=000 masked=1 len=?');
  });

  test('with permessage-deflate the handshake line names the extension and a compressed frame shows RSV1', async () => {
    const lines: string[] = [];
    const echo = await echoServer({ trace: (line) => lines.push(line) });
    // RFC 7692 §7.2.1: DEFLATE with a sync flush, its final 00 00 ff ff removed.
    const deflated = deflateRawSync('hello', { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const compressed = deflated.subarray(0, deflated.length - 4);
    const socket = await client(
      echo.port,
      '/z',
      [
        Buffer.concat(encodeFrame(Opcode.Text, compressed, { rsv: 0x40, mask: MASK })),
        frame(Opcode.Close, encodeClosePayload(CloseCode.Normal)),
      ],
      'Sec-WebSocket-Extensions: permessage-deflate\r\n',
    );
    await echo.closed;
    const extensions = echo.connections[0]!.extensions;
    assert.match(extensions, /^permessage-deflate/);
    const id = idOf(lines[0]!);
    assert.deepEqual(lines, [
      `#${id} handshake 101 url="/z" protocol="" extensions=${JSON.stringify(extensions)}`,
      `#${id} in text fin=1 rsv=100 masked=1 len=${compressed.length} hex=${compressed.toString('hex')}`,
      // Under the threshold of 96 bytes the reply goes uncompressed.
      `#${id} out text fin=1 rsv=000 masked=0 len=5 hex=68656c6c6f`,
      `#${id} in close fin=1 rsv=000 masked=1 len=2 code=1000 reason="" hex=03e8`,
      `#${id} out close fin=1 rsv=000 masked=0 len=2 code=1000 reason="" hex=03e8`,
      `#${id} closed code=1000 reason=""`,
    ]);
    await stop(echo, socket);
  });

  test('a refused handshake is traced with its status, its error code and its message', async () => {
    const lines: string[] = [];
    const echo = await echoServer({ trace: (line) => lines.push(line) });
    const socket = connect({ port: echo.port, host: '127.0.0.1' });
    socket.on('data', () => {});
    await once(socket, 'connect');
    socket.write(upgradeRequest(echo.port, '/old').replace('Version: 13', 'Version: 8'));
    await once(socket, 'close');
    const id = idOf(lines[0]!);
    assert.deepEqual(lines, [
      `#${id} handshake 426 url="/old" WS_ERR_HANDSHAKE_VERSION "unsupported Sec-WebSocket-Version; this server speaks 13"`,
    ]);
    echo.server.close();
    await once(echo.server, 'close');
  });

  test('a router traces a request for a path that is no route, and one over maxConnections, as refused handshakes', async () => {
    const lines: string[] = [];
    const errors: unknown[] = [];
    const listener = (message: unknown): void => void errors.push(message);
    subscribe('pef-ws:error', listener);
    class Echo extends WebSocketHandler {}
    class Full extends WebSocketHandler {
      static options: WebSocketOptions = { maxConnections: 1 };
    }
    const router = new WebSocketRouter({ trace: (line) => lines.push(line) }).route('/echo', Echo).route('/full', Full);
    const server = createServer();
    router.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const sockets: Socket[] = [];
    try {
      const refused = async (path: string): Promise<void> => {
        const socket = connect({ port, host: '127.0.0.1' });
        sockets.push(socket);
        socket.on('data', () => {});
        await once(socket, 'connect');
        socket.write(upgradeRequest(port, path));
        await once(socket, 'close');
      };
      await refused('/nope?x=1');
      // The one connection /full may hold, then a second one.
      const first = await client(port, '/full', []);
      sockets.push(first);
      await once(first, 'data');
      await refused('/full');
      const ids = lines.map(idOf);
      assert.deepEqual(lines, [
        `#${ids[0]} handshake 404 url="/nope?x=1" WS_ERR_HANDSHAKE_NOT_FOUND "no WebSocket handler at this path"`,
        `#${ids[1]} handshake 101 url="/full" protocol="" extensions=""`,
        `#${ids[2]} handshake 503 url="/full" WS_ERR_HANDSHAKE_FULL "server full: too many WebSocket connections"`,
      ]);
      assert.deepEqual(
        errors.map((m) => {
          const { connection, request, error } = m as { connection: unknown; request: UpgradeRequest; error: HandshakeError };
          return [connection, request.url, error.code, error.status];
        }),
        [
          [null, '/nope?x=1', 'WS_ERR_HANDSHAKE_NOT_FOUND', 404],
          [null, '/full', 'WS_ERR_HANDSHAKE_FULL', 503],
        ],
      );
    } finally {
      unsubscribe('pef-ws:error', listener);
      for (const socket of sockets) socket.destroy();
      await router.close();
      server.close();
      await once(server, 'close');
    }
  });

  test('frame lines name the RSV bits and show a Close without a code and a Close of one byte', () => {
    const none = Buffer.alloc(0);
    assert.equal(formatFrame(7, 'in', true, 0x40, Opcode.Binary, true, 3, Buffer.from('abc')), '#7 in binary fin=1 rsv=100 masked=1 len=3 hex=616263');
    assert.equal(formatFrame(7, 'in', true, 0x30, Opcode.Text, true, 0, none), '#7 in text fin=1 rsv=011 masked=1 len=0');
    assert.equal(formatFrame(7, 'out', true, 0, Opcode.Close, false, 0, none), '#7 out close fin=1 rsv=000 masked=0 len=0 code=none');
    assert.equal(formatFrame(7, 'in', true, 0, Opcode.Close, true, 1, Buffer.of(3)), '#7 in close fin=1 rsv=000 masked=1 len=1 code=invalid hex=03');
    assert.equal(formatFrame(7, 'in', true, 0, Opcode.Close, true, 3, Buffer.of(0x03, 0xe8, 0x25)), '#7 in close fin=1 rsv=000 masked=1 len=3 code=1000 reason="%" hex=03e825');
  });

  test('frames are not observed at all when nobody traces and nobody subscribes to pef-ws:frame', () => {
    const request = { url: '/' } as UpgradeRequest;
    assert.equal(new ConnectionTrace(request, undefined).onFrame, null);
    assert.equal(new ConnectionTrace(request, false).onFrame, null);
    assert.equal(typeof new ConnectionTrace(request, () => {}).onFrame, 'function');
    const listener = (): void => {};
    subscribe('pef-ws:frame', listener);
    try {
      assert.equal(typeof new ConnectionTrace(request, undefined).onFrame, 'function');
      // A connection that opened unwatched gets a trace late, with its frames still not watched
      // (its frames are not observed, and its prepared frames stay shared).
      const late = lateTrace({ request } as WebSocketConnection);
      assert.ok(late !== null);
      assert.equal(late.onFrame, null);
    } finally {
      unsubscribe('pef-ws:frame', listener);
    }
    assert.equal(new ConnectionTrace(request, undefined).onFrame, null);
  });
});

describe('NODE_DEBUG=pef-ws', () => {
  const execFileAsync = promisify(execFile);
  const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
  // A child process: one echo connection with default options, then one with trace: false.
  const script = `
    import { createServer } from 'node:http';
    import { connect } from 'node:net';
    import { once } from 'node:events';
    import { acceptWebSocket } from ${JSON.stringify(index)};
    const server = createServer();
    let trace;
    server.on('upgrade', (req, socket, head) => {
      const ws = acceptWebSocket(req, socket, head, { onMessage: (m) => ws.send(m) }, { trace });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = server.address().port;
    const frame = (opcode, text) => {
      const data = Buffer.from(text);
      return Buffer.concat([Buffer.of(0x80 | opcode, 0x80 | data.length, 0, 0, 0, 0), data]);
    };
    for (const option of [undefined, false]) {
      trace = option;
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.on('data', () => {});
      socket.write('GET /debug HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
        'Sec-WebSocket-Key: ${KEY}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n');
      socket.write(Buffer.concat([frame(1, 'hi%s'), frame(8, '')]));
      await once(socket, 'end');
      socket.end();
      await once(socket, 'close');
    }
    server.close();
  `;

  async function run(env: NodeJS.ProcessEnv): Promise<{ stderr: string; pid: string }> {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `${script}; process.stdout.write(String(process.pid));`],
      { env: { ...process.env, ...env }, cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    );
    return { stderr, pid: stdout };
  }

  test('prints the trace lines through util.debuglog, and trace: false silences them', async () => {
    const { stderr, pid } = await run({ NODE_DEBUG: 'pef-ws' });
    const prefix = `PEF-WS ${pid}: `;
    assert.equal(
      stderr,
      [
        `${prefix}#1 handshake 101 url="/debug" protocol="" extensions=""`,
        `${prefix}#1 in text fin=1 rsv=000 masked=1 len=4 hex=68692573`,
        `${prefix}#1 out text fin=1 rsv=000 masked=0 len=4 hex=68692573`,
        `${prefix}#1 in close fin=1 rsv=000 masked=1 len=0 code=none`,
        `${prefix}#1 out close fin=1 rsv=000 masked=0 len=0 code=none`,
        `${prefix}#1 closed code=1005 reason=""`,
        '',
      ].join('\n'),
    );
  });

  test('prints nothing when NODE_DEBUG does not name pef-ws', async () => {
    const { stderr } = await run({ NODE_DEBUG: 'pef-ws-other' });
    assert.equal(stderr, '');
  });
});

describe('diagnostics channels', () => {
  test('pef-ws:open, pef-ws:frame, pef-ws:error and pef-ws:close receive one message per event', async () => {
    const seen: { channel: string; message: unknown }[] = [];
    const names = ['pef-ws:open', 'pef-ws:frame', 'pef-ws:error', 'pef-ws:close'];
    const listeners = names.map((channel) => {
      const listener = (message: unknown): void => void seen.push({ channel, message });
      subscribe(channel, listener);
      return [channel, listener] as const;
    });
    try {
      const echo = await echoServer({});
      const socket = await client(echo.port, '/metrics', [frame(Opcode.Text, 'ok'), frame(Opcode.Text, Uint8Array.of(0xff))]);
      assert.deepEqual(await echo.closed, [CloseCode.InvalidPayload, 'invalid UTF-8 in a text message']);
      const ws = echo.connections[0]!;
      const open = seen[0]!.message as { id: number; connection: unknown; request: UpgradeRequest; protocol: string; extensions: string };
      const id = open.id;
      assert.equal(seen[0]!.channel, 'pef-ws:open');
      assert.equal(open.connection, ws);
      assert.equal(open.request.url, '/metrics');
      assert.equal(open.protocol, '');
      assert.equal(open.extensions, '');

      const summary = seen.slice(1).map(({ channel, message }) => {
        if (channel === 'pef-ws:frame') {
          const f = message as FrameMessage;
          assert.equal(f.id, id);
          assert.equal(f.connection, ws);
          return `${f.direction} ${f.opcode} ${f.fin} ${f.rsv} ${f.masked} ${f.length} ${f.head.toString('hex')}`;
        }
        if (channel === 'pef-ws:error') {
          const e = message as { id: number; connection: unknown; error: Error };
          assert.equal(e.id, id);
          assert.equal(e.connection, ws);
          assert.ok(e.error instanceof ProtocolError);
          return `error ${e.error.code} ${e.error.closeCode} ${e.error.message}`;
        }
        const c = message as { id: number; connection: unknown; code: number; reason: string };
        assert.equal(channel, 'pef-ws:close');
        assert.equal(c.id, id);
        assert.equal(c.connection, ws);
        return `close ${c.code} ${c.reason}`;
      });
      assert.deepEqual(summary, [
        'in 1 true 0 true 2 6f6b',
        'out 1 true 0 false 2 6f6b',
        'in 1 true 0 true 1 ff',
        `out 8 true 0 false 33 03ef${Buffer.from('invalid UTF-8 in a text message').toString('hex')}`,
        'error WS_ERR_INVALID_UTF8 1007 invalid UTF-8 in a text message',
        'close 1007 invalid UTF-8 in a text message',
      ]);
      await stop(echo, socket);
    } finally {
      for (const [channel, listener] of listeners) unsubscribe(channel, listener);
    }
  });

  test('pef-ws:error receives a refused handshake with its request and a null connection', async () => {
    const seen: unknown[] = [];
    const listener = (message: unknown): void => void seen.push(message);
    subscribe('pef-ws:error', listener);
    try {
      const echo = await echoServer({});
      const socket = connect({ port: echo.port, host: '127.0.0.1' });
      socket.on('data', () => {});
      await once(socket, 'connect');
      socket.write(upgradeRequest(echo.port, '/nope').replace(`Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Key: short'));
      await once(socket, 'close');
      assert.equal(seen.length, 1);
      const message = seen[0] as { connection: unknown; request: UpgradeRequest; error: HandshakeError };
      assert.equal(message.connection, null);
      assert.equal(message.request.url, '/nope');
      assert.ok(message.error instanceof HandshakeError);
      assert.equal(message.error.code, 'WS_ERR_HANDSHAKE_KEY');
      assert.equal(message.error.status, 400);
      assert.equal(message.error.message, 'Sec-WebSocket-Key must be base64 of 16 bytes');
      echo.server.close();
      await once(echo.server, 'close');
    } finally {
      unsubscribe('pef-ws:error', listener);
    }
  });
});

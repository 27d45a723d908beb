// permessage-deflate over real sockets: interop with `ws` as the client in each of its
// perMessageDeflate modes, the compression option, per-message `compress: false`, a bomb, and the
// windows freed when connections close.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket, { type PerMessageDeflateOptions as WsDeflateOptions } from 'ws';
import { Harness, type Session } from './harness.js';
import { CloseCode } from '../../src/protocol/constants.js';
import { deflateMemory, type PerMessageDeflateOptions } from '../../src/protocol/deflate.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { resolveOptions, type WebSocketOptions } from '../../src/node/options.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketHandler } from '../../src/framework/handler.js';
import { WebSocketRouter } from '../../src/framework/router.js';
import type { MessageType } from '../../src/node/types.js';

/** An echo server: every message goes back with its type. */
function echo(options: WebSocketOptions = {}): Promise<Harness> {
  return Harness.start({
    hooks: (session: Session) => ({
      onMessage: (message, type) => void session.ws.send(message, type),
    }),
    options,
  });
}

async function connect(harness: Harness, perMessageDeflate: boolean | WsDeflateOptions): Promise<WebSocket> {
  const client = new WebSocket(`ws://127.0.0.1:${harness.port}/`, { perMessageDeflate });
  await once(client, 'open');
  return client;
}

/** Sends each message and waits for its echo; returns what came back. */
async function roundTrip(client: WebSocket, messages: (string | Buffer)[]): Promise<(string | Buffer)[]> {
  const received: (string | Buffer)[] = [];
  const done = new Promise<void>((resolve, reject) => {
    client.on('message', (data: Buffer, isBinary: boolean) => {
      received.push(isBinary ? data : data.toString('utf8'));
      if (received.length === messages.length) resolve();
    });
    client.once('close', (code) => reject(new Error(`closed with ${code}`)));
  });
  for (const message of messages) client.send(message, { binary: typeof message !== 'string' });
  await done;
  return received;
}

async function closeClient(client: WebSocket): Promise<void> {
  if (client.readyState === WebSocket.CLOSED) return;
  const closed = once(client, 'close');
  client.close();
  await closed;
}

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(80);
const BINARY = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) % 97));
const MESSAGES: (string | Buffer)[] = ['hi', TEXT, BINARY, '', Buffer.alloc(0), TEXT.slice(5), 'héllo wörld ✓ '.repeat(30), TEXT];

describe('interop with ws as the client, in each perMessageDeflate mode', () => {
  const modes: [string, boolean | WsDeflateOptions, string][] = [
    ['default', true, 'permessage-deflate; client_max_window_bits=12'],
    ['serverNoContextTakeover', { serverNoContextTakeover: true }, 'permessage-deflate; server_no_context_takeover; client_max_window_bits=12'],
    ['clientNoContextTakeover', { clientNoContextTakeover: true }, 'permessage-deflate; client_no_context_takeover; client_max_window_bits=12'],
    ['serverMaxWindowBits 9', { serverMaxWindowBits: 9 }, 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=12'],
    ['serverMaxWindowBits 10', { serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=12'],
    ['clientMaxWindowBits 8', { clientMaxWindowBits: 8 }, 'permessage-deflate; client_max_window_bits=8'],
    ['threshold 0', { threshold: 0 }, 'permessage-deflate; client_max_window_bits=12'],
    [
      'both no context takeover, 8-bit windows, threshold 0',
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 8, clientMaxWindowBits: 8, threshold: 0 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8',
    ],
  ];
  for (const [name, mode, response] of modes) {
    test(`${name}: negotiates "${response}" and echoes text and binary messages intact`, async () => {
      const harness = await echo({ compression: { threshold: 0 } });
      try {
        const client = await connect(harness, mode);
        // ws reports the names of the extensions in use; the server, the whole response.
        assert.equal(client.extensions, 'permessage-deflate');
        const session = await harness.session();
        assert.equal(session.ws.extensions, response);
        assert.deepEqual(await roundTrip(client, MESSAGES), MESSAGES);
        // Twice: the second round runs with the windows the first left (context takeover).
        assert.deepEqual(await roundTrip(client, MESSAGES), MESSAGES);
        await closeClient(client);
      } finally {
        await harness.close();
      }
    });
  }

  test('a 1 MiB text message goes both ways compressed, the server writing a fraction of it', async () => {
    const harness = await echo({ maxPayload: 2 * 1024 * 1024 });
    try {
      const client = await connect(harness, { threshold: 0 });
      const session = await harness.session();
      const before = session.bytesWritten;
      const big = Array.from({ length: 1024 * 1024 / 64 }, (_, i) => `line ${String(i).padStart(8, '0')} of the big text message`.padEnd(63, '.') + '\n').join('');
      assert.equal(big.length, 1024 * 1024);
      const [back] = await roundTrip(client, [big]);
      assert.equal(back, big);
      assert.ok(session.bytesWritten - before < 256 * 1024, `server wrote ${session.bytesWritten - before} bytes`);
      await closeClient(client);
    } finally {
      await harness.close();
    }
  });
});

describe('the compression option', () => {
  test('compression false declines every offer: no Sec-WebSocket-Extensions, messages still echo', async () => {
    const harness = await echo({ compression: false });
    try {
      const client = await connect(harness, true);
      assert.equal(client.extensions, '');
      assert.deepEqual(await roundTrip(client, [TEXT]), [TEXT]);
      await closeClient(client);
    } finally {
      await harness.close();
    }
  });

  test('settings are negotiated: clientNoContextTakeover and serverMaxWindowBits 10 (used, not announced)', async () => {
    const harness = await echo({ compression: { clientNoContextTakeover: true, serverMaxWindowBits: 10 } });
    try {
      const client = await connect(harness, true);
      assert.equal((await harness.session()).ws.extensions, 'permessage-deflate; client_no_context_takeover; client_max_window_bits=12');
      assert.deepEqual(await roundTrip(client, MESSAGES), MESSAGES);
      await closeClient(client);
    } finally {
      await harness.close();
    }
  });

  test('a client that offers nothing gets no extension', async () => {
    const harness = await echo();
    try {
      const client = await connect(harness, false);
      assert.equal(client.extensions, '');
      assert.deepEqual(await roundTrip(client, [TEXT]), [TEXT]);
      await closeClient(client);
    } finally {
      await harness.close();
    }
  });

  test('settings out of range are refused when the options are resolved', () => {
    const settings: PerMessageDeflateOptions = { serverMaxWindowBits: 16 };
    assert.throws(() => resolveOptions({ compression: settings }), {
      name: 'RangeError',
      message: 'compression.serverMaxWindowBits must be an integer from 8 to 15',
    });
    assert.throws(() => resolveOptions({ compression: 'yes' as unknown as boolean }), {
      name: 'TypeError',
      message: 'compression must be true, false or an object of permessage-deflate settings',
    });
  });

  test("send(data, type, { compress: false }) sends that message uncompressed", async () => {
    const harness = await Harness.start({
      hooks: (session) => ({
        onMessage: (message) => {
          session.ws.send(message, 'text', { compress: message !== 'plain' });
        },
      }),
    });
    try {
      const client = await connect(harness, true);
      const session = await harness.session();
      const payload = 'x'.repeat(100_000);
      let before = session.bytesWritten;
      const replies: string[] = [];
      client.on('message', (data: Buffer) => replies.push(data.toString()));
      client.send('plain');
      await once(client, 'message');
      assert.equal(session.bytesWritten - before, 2 + 5);
      before = session.bytesWritten;
      // A long reply, compressed: a few hundred bytes on the wire.
      session.ws.send(payload);
      await once(client, 'message');
      assert.ok(session.bytesWritten - before < 1000, `compressed: ${session.bytesWritten - before} bytes`);
      before = session.bytesWritten;
      session.ws.send(payload, 'text', { compress: false });
      await once(client, 'message');
      // A 10-byte header (64-bit length) and the payload as it is.
      assert.equal(session.bytesWritten - before, 10 + 100_000);
      assert.deepEqual(replies, ['plain', payload, payload]);
      await closeClient(client);
    } finally {
      await harness.close();
    }
  });
});

describe('compression per handler class', () => {
  test('static options = { compression: false } turns compression off for that class only (PEF no_compression)', async () => {
    class Compressed extends WebSocketHandler {
      override onMessage(message: string | Buffer, type: MessageType): void {
        this.send(message, type);
      }
    }
    class Plain extends Compressed {
      static options = { compression: false };
    }
    const router = new WebSocketRouter().route('/compressed', Compressed).route('/plain', Plain);
    const server = createServer();
    router.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      for (const [path, extensions] of [['/compressed', 'permessage-deflate'], ['/plain', '']] as const) {
        const client = new WebSocket(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: true });
        await once(client, 'open');
        assert.equal(client.extensions, extensions, path);
        assert.deepEqual(await roundTrip(client, [TEXT]), [TEXT]);
        await closeClient(client);
      }
    } finally {
      await router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('bombs and memory', () => {
  test('a client message of 10 KB that inflates past maxPayload fails the connection with 1009', async () => {
    const harness = await echo({ maxPayload: 1024 * 1024 });
    try {
      const client = await connect(harness, { threshold: 0 });
      const session = await harness.session();
      const closed = once(client, 'close');
      client.send(Buffer.alloc(10 * 1024 * 1024));
      const [code] = (await closed) as [number, Buffer];
      assert.equal(code, CloseCode.MessageTooBig);
      const [error] = (await session.waitFor('onError')) as [ProtocolError];
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, 'WS_ERR_PAYLOAD_TOO_BIG');
      assert.equal(error.closeCode, CloseCode.MessageTooBig);
      assert.equal(error.message, 'message over the limit of 1048576 bytes');
      const [serverCode] = await session.closed();
      assert.equal(serverCode, CloseCode.MessageTooBig);
    } finally {
      await harness.close();
    }
  });

  test('the windows of 20 connections with context takeover are all freed when they close', async () => {
    const start = deflateMemory();
    const harness = await echo({ compression: { threshold: 0 } });
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, () => connect(harness, { threshold: 0 })));
      for (const client of clients) assert.deepEqual(await roundTrip(client, [TEXT]), [TEXT]);
      assert.equal(deflateMemory().windows, start.windows + 40);
      await Promise.all(clients.map(closeClient));
      await Promise.all(harness.sessions.map((session) => session.closed()));
      assert.deepEqual(deflateMemory(), start);
    } finally {
      await harness.close();
    }
  });

  test('without context takeover no window is held between messages', async () => {
    const start = deflateMemory();
    const harness = await echo({ compression: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true } });
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, () => connect(harness, { threshold: 0 })));
      for (const client of clients) assert.deepEqual(await roundTrip(client, [TEXT, TEXT]), [TEXT, TEXT]);
      assert.deepEqual(deflateMemory(), start);
      await Promise.all(clients.map(closeClient));
    } finally {
      await harness.close();
    }
  });
});

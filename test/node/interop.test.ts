// Interoperability with the `ws` package as the client, with and without permessage-deflate:
// text, binary, fragmented messages, ping/pong, closing with a code and reason both ways,
// 10 MiB messages both ways, and many messages in order.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { CloseCode } from '../../src/protocol/constants.js';
import type { MessageType } from '../../src/node/types.js';
import { Harness, type Session } from './harness.js';

const MiB = 1024 * 1024;

type Received = { data: Buffer; isBinary: boolean };

/** A ws client whose messages are queued, so a test can take them one at a time. */
class Client {
  readonly ws: WebSocket;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | null = null;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.#queue.push({ data, isBinary });
      this.#waiter?.();
    });
  }

  async next(): Promise<Received> {
    while (this.#queue.length === 0) await new Promise<void>((resolve) => (this.#waiter = resolve));
    this.#waiter = null;
    return this.#queue.shift()!;
  }
}

async function open(perMessageDeflate: boolean, options: Parameters<typeof Harness.start>[0] = {}) {
  const harness = await Harness.start({
    hooks: (session) => ({ onMessage: (message: string | Buffer, type: MessageType) => void session.ws.send(message, type) }),
    ...options,
  });
  const ws = new WebSocket(`ws://127.0.0.1:${harness.port}/`, { perMessageDeflate });
  const client = new Client(ws);
  await once(ws, 'open');
  const session = await harness.session();
  await session.waitFor('onOpen');
  return { harness, client, ws, session };
}

async function finish(harness: Harness, ws: WebSocket, session: Session): Promise<void> {
  if (ws.readyState !== WebSocket.CLOSED) {
    const closed = once(ws, 'close');
    ws.close(CloseCode.Normal);
    await closed;
  }
  await session.closed();
  await harness.close();
}

for (const deflate of [false, true]) {
  describe(`ws as the client, permessage-deflate ${deflate ? 'on' : 'off'}`, () => {
    test('the extension is negotiated exactly when the client offers it', async () => {
      const { harness, ws, session } = await open(deflate);
      assert.equal(ws.extensions.startsWith('permessage-deflate'), deflate);
      assert.equal(session.ws.extensions.startsWith('permessage-deflate'), deflate);
      await finish(harness, ws, session);
    });

    test('a text message is echoed as text and a binary message as binary', async () => {
      const { harness, client, ws, session } = await open(deflate);
      ws.send('héllo wörld, ' + 'x'.repeat(200));
      const text = await client.next();
      assert.equal(text.isBinary, false);
      assert.equal(text.data.toString('utf8'), 'héllo wörld, ' + 'x'.repeat(200));
      const bytes = randomBytes(1000);
      ws.send(bytes);
      const binary = await client.next();
      assert.equal(binary.isBinary, true);
      assert.deepEqual(binary.data, bytes);
      assert.deepEqual(session.callsOf('onMessage').map(([, type]) => type), ['text', 'binary']);
      await finish(harness, ws, session);
    });

    test('a message ws sends in fragments (fin: false) arrives as one message', async () => {
      const { harness, client, ws, session } = await open(deflate);
      ws.send('Hel', { fin: false });
      ws.send('lo, ', { fin: false });
      ws.send('world', { fin: true });
      assert.equal((await client.next()).data.toString(), 'Hello, world');
      ws.send(Buffer.of(1, 2), { binary: true, fin: false });
      ws.send(Buffer.of(3), { binary: true, fin: true });
      assert.deepEqual((await client.next()).data, Buffer.of(1, 2, 3));
      assert.deepEqual(session.callsOf('onMessage'), [
        ['Hello, world', 'text'],
        [Buffer.of(1, 2, 3), 'binary'],
      ]);
      await finish(harness, ws, session);
    });

    test("ws's ping gets a pong with the same payload, and the server's ping reaches ws", async () => {
      const { harness, ws, session } = await open(deflate);
      const pong = once(ws, 'pong');
      ws.ping('client ping');
      assert.equal(((await pong)[0] as Buffer).toString(), 'client ping');
      const ping = once(ws, 'ping');
      assert.equal(session.ws.ping('server ping'), true);
      assert.equal(((await ping)[0] as Buffer).toString(), 'server ping');
      await finish(harness, ws, session);
    });

    test('ws closing with a code and reason: the server sees both and echoes the code', async () => {
      const { harness, ws, session } = await open(deflate);
      const closed = once(ws, 'close');
      ws.close(4321, 'client done');
      // ws reports the Close it received: the server's echo carries the code and no reason.
      const [code, reason] = (await closed) as [number, Buffer];
      assert.equal(code, 4321);
      assert.equal(reason.toString(), '');
      assert.deepEqual(await session.closed(), [4321, 'client done']);
      await harness.close();
    });

    test('the server closing with a code and reason: ws sees them and answers', async () => {
      const { harness, ws, session } = await open(deflate);
      const closed = once(ws, 'close');
      session.ws.close(4000, 'server done');
      const [code, reason] = (await closed) as [number, Buffer];
      assert.equal(code, 4000);
      assert.equal(reason.toString(), 'server done');
      // ws answers with the code and reason of the Close it received.
      assert.deepEqual(await session.closed(), [4000, 'server done']);
      await harness.close();
    });

    test('10 MiB messages go both ways, binary and text', async () => {
      const { harness, client, ws, session } = await open(deflate, { options: { maxPayload: 16 * MiB } });
      const bytes = randomBytes(10 * MiB);
      ws.send(bytes);
      const binary = await client.next();
      assert.equal(binary.data.length, bytes.length);
      assert.ok(binary.data.equals(bytes));
      const text = 'ü'.repeat(5 * MiB); // 10 MiB of UTF-8
      ws.send(text);
      const back = await client.next();
      assert.equal(back.isBinary, false);
      assert.equal(back.data.length, 10 * MiB);
      assert.ok(back.data.equals(Buffer.from(text)));
      await finish(harness, ws, session);
    });

    test('a message over maxPayload closes the connection with 1009 for ws', async () => {
      const { harness, ws, session } = await open(deflate, { options: { maxPayload: 1024 } });
      const closed = once(ws, 'close');
      ws.send(randomBytes(1025));
      const [code] = (await closed) as [number, Buffer];
      assert.equal(code, CloseCode.MessageTooBig);
      assert.equal((await session.closed())[0], CloseCode.MessageTooBig);
      await harness.close();
    });

    test('a thousand messages arrive and are echoed in order', async () => {
      const { harness, client, ws, session } = await open(deflate);
      for (let i = 0; i < 1000; i++) ws.send(i % 2 === 0 ? `message ${i}` : Buffer.from(`message ${i}`));
      for (let i = 0; i < 1000; i++) {
        const message = await client.next();
        assert.equal(message.isBinary, i % 2 === 1);
        assert.equal(message.data.toString(), `message ${i}`);
      }
      assert.equal(session.callsOf('onMessage').length, 1000);
      await finish(harness, ws, session);
    });
  });
}

describe('ws as the client: subprotocols and many connections', () => {
  test('the subprotocol chosen by selectProtocol is the one ws reports', async () => {
    const harness = await Harness.start({
      options: { selectProtocol: (offered) => offered.find((name) => name === 'chat.v2') ?? null },
    });
    const ws = new WebSocket(`ws://127.0.0.1:${harness.port}/`, ['chat.v1', 'chat.v2']);
    await once(ws, 'open');
    assert.equal(ws.protocol, 'chat.v2');
    const session = await harness.session();
    assert.equal(session.ws.protocol, 'chat.v2');
    await finish(harness, ws, session);
  });

  test('fifty clients at once each get their own messages back, in order', async () => {
    const harness = await Harness.start({
      hooks: (session) => ({ onMessage: (message: string | Buffer, type: MessageType) => void session.ws.send(message, type) }),
    });
    const clients = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${harness.port}/`, { perMessageDeflate: false });
        const client = new Client(ws);
        await once(ws, 'open');
        return client;
      }),
    );
    clients.forEach((client, c) => {
      for (let i = 0; i < 20; i++) client.ws.send(`client ${c} message ${i}`);
    });
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < 20; i++) assert.equal((await client.next()).data.toString(), `client ${c} message ${i}`);
      }),
    );
    await Promise.all(
      clients.map(async (client) => {
        const closed = once(client.ws, 'close');
        client.ws.close(CloseCode.Normal);
        await closed;
      }),
    );
    await Promise.all(harness.sessions.map((session) => session.closed()));
    assert.equal(harness.sessions.length, 50);
    for (const session of harness.sessions) assert.deepEqual(session.callsOf('onClose'), [[CloseCode.Normal, '']]);
    await harness.close();
  });
});


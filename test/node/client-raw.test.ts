// The client against a raw TCP server, byte for byte: the upgrade request, every frame masked with
// a fresh key (§5.3), a masked frame from the server (1002), each bad response with its exact
// HandshakeError code, redirects, the handshake timeout, a server closing inside the head, and the
// closing handshake's timing (§7.1.1: the server closes TCP first; the client after closeTimeout).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { connect, CloseCode, HandshakeError, Opcode, PreparedMessage, ProtocolError, type ConnectOptions, type OpenMessage, type WebSocketConnection, type WebSocketHooks } from '../../src/index.js';
import { closePayload } from '../helpers/net.js';
import { RawPeer, rawServer, response101 } from './client-helpers.js';

/** Hooks that record every call in order. */
function recorder(): { hooks: WebSocketHooks; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const hooks: WebSocketHooks = {
    onOpen: () => void calls.push(['onOpen']),
    onMessage: (message, type) => void calls.push(['onMessage', message, type]),
    onError: (error) => void calls.push(['onError', (error as { code?: string }).code ?? error.message]),
    onClose: (code, reason) => void calls.push(['onClose', code, reason]),
  };
  return { hooks, calls };
}

/** A raw server and a client connected to it, open: no compression, no heartbeat unless told. */
async function openPair(
  hooks: WebSocketHooks = {},
  options: ConnectOptions = {},
): Promise<{ server: Awaited<ReturnType<typeof rawServer>>; client: ReturnType<typeof connect>; peer: RawPeer }> {
  const server = await rawServer(() => {});
  const client = connect(server.url(), hooks, { compression: false, heartbeatInterval: 0, ...options });
  const peer = await server.peer();
  await peer.accept();
  await client.opened;
  return { server, client, peer };
}

describe('4.1 the upgrade request on the wire', () => {
  test('GET with the path and query, Host with the port, a fresh key, version 13, the offers and the extra fields', async () => {
    const heads: string[] = [];
    const server = await rawServer(async (peer) => {
      heads.push(await peer.readHead());
      peer.socket.end();
    });
    try {
      for (let i = 0; i < 2; i++) {
        const client = connect(
          server.url('/chat/room?id=7&x=%20'),
          {},
          { protocols: ['chat', 'v2.chat'], origin: 'http://example.com', headers: { 'X-Token': 'a b' }, compression: false },
        );
        await client.closed;
      }
      const keys = heads.map(RawPeer.keyOf);
      assert.notEqual(keys[0], keys[1]);
      for (const [i, head] of heads.entries()) {
        assert.equal(
          head,
          'GET /chat/room?id=7&x=%20 HTTP/1.1\r\n' +
            `Host: 127.0.0.1:${server.port}\r\n` +
            'Upgrade: websocket\r\n' +
            'Connection: Upgrade\r\n' +
            `Sec-WebSocket-Key: ${keys[i]}\r\n` +
            'Sec-WebSocket-Version: 13\r\n' +
            'Sec-WebSocket-Protocol: chat, v2.chat\r\n' +
            'Origin: http://example.com\r\n' +
            'X-Token: a b\r\n' +
            '\r\n',
        );
        assert.equal(Buffer.from(keys[i]!, 'base64').length, 16);
      }
    } finally {
      await server.close();
    }
  });

  test('offers permessage-deflate by default, with the settings given', async () => {
    const heads: string[] = [];
    const server = await rawServer(async (peer) => {
      heads.push(await peer.readHead());
      peer.socket.end();
    });
    try {
      await connect(server.url()).closed;
      await connect(server.url(), {}, { compression: { serverNoContextTakeover: true, clientMaxWindowBits: 15, serverMaxWindowBits: 15 } }).closed;
      assert.match(heads[0]!, /\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\r\n/);
      assert.match(heads[1]!, /\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits\r\n/);
    } finally {
      await server.close();
    }
  });

  test('bad arguments are errors at the call, before any connection', () => {
    assert.throws(() => connect('http//nowhere'), { code: 'ERR_INVALID_URL' });
    assert.throws(() => connect('ftp://127.0.0.1/'), TypeError);
    assert.throws(() => connect('ws://127.0.0.1/#frag'), /no fragment/);
    assert.throws(() => connect('ws://127.0.0.1/', {}, { protocols: ['a b'] }), /a subprotocol is a token/);
    assert.throws(() => connect('ws://127.0.0.1/', {}, { protocols: ['a', 'a'] }), /unique/);
    assert.throws(() => connect('ws://127.0.0.1/', {}, { headers: { 'X-A': 'x\r\nInjected: 1' } }), { code: 'ERR_INVALID_CHAR' });
    assert.throws(() => connect('ws://127.0.0.1/', {}, { headers: { 'bad name': 'x' } }), { code: 'ERR_INVALID_HTTP_TOKEN' });
    for (const name of ['Sec-WebSocket-Key', 'Upgrade', 'host', 'Origin', 'Sec-WebSocket-Protocol']) {
      assert.throws(() => connect('ws://127.0.0.1/', {}, { headers: { [name]: 'x' } }), { code: 'ERR_HANDSHAKE_FIELD' });
    }
    assert.throws(() => connect('ws://127.0.0.1/', {}, { origin: 'http://a\r\nX: 1' }), { code: 'ERR_INVALID_CHAR' });
    assert.throws(() => connect('ws://127.0.0.1/', {}, { handshakeTimeout: -1 }), RangeError);
    assert.throws(() => connect('ws://127.0.0.1/', {}, { maxRedirects: 1.5 }), RangeError);
    assert.throws(() => connect('ws://127.0.0.1/', {}, { maxPayload: 0 }), RangeError);
    assert.throws(() => connect('ws://127.0.0.1/', {}, { compression: { level: 10 } }), RangeError);
  });
});

describe('5.3 masking', () => {
  test('every frame the client sends is masked, each with a key of its own', async () => {
    const { server, client, peer } = await openPair();
    try {
      for (let i = 0; i < 20; i++) client.send(`message ${i}`);
      client.send(Buffer.alloc(70_000, 7), 'binary');
      client.ping('p');
      client.close(CloseCode.Normal, 'done');
      const keys = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const frame = await peer.readFrame();
        assert.equal(frame.masked, true);
        assert.equal(frame.opcode, Opcode.Text);
        assert.equal(frame.payload.toString(), `message ${i}`);
        keys.add(frame.maskKey!.toString('hex'));
      }
      const big = await peer.readFrame();
      assert.deepEqual([big.masked, big.opcode, big.payload.length, big.payload.every((b) => b === 7)], [true, Opcode.Binary, 70_000, true]);
      keys.add(big.maskKey!.toString('hex'));
      const ping = await peer.readFrame();
      assert.deepEqual([ping.masked, ping.opcode, ping.payload.toString()], [true, Opcode.Ping, 'p']);
      keys.add(ping.maskKey!.toString('hex'));
      const close = await peer.readFrame();
      assert.deepEqual([close.masked, close.opcode], [true, Opcode.Close]);
      assert.deepEqual(close.payload, closePayload(1000, 'done'));
      keys.add(close.maskKey!.toString('hex'));
      assert.equal(keys.size, 23);
    } finally {
      await server.close();
    }
  });

  test('sendPrepared on a client masks the frame (a prepared frame is a server\'s, unmasked: it went out unmasked)', async () => {
    // The client's connection, as the pef-ws:open diagnostics channel hands it out.
    let connection: WebSocketConnection | null = null;
    const onOpen = (message: unknown): void => void (connection = (message as OpenMessage).connection);
    subscribe('pef-ws:open', onOpen);
    const { server, peer } = await openPair().finally(() => unsubscribe('pef-ws:open', onOpen));
    try {
      const message = new PreparedMessage('hi');
      assert.equal(connection!.sendPrepared(message), true);
      assert.equal(connection!.sendPrepared(message), true);
      const keys = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const frame = await peer.readFrame();
        assert.deepEqual([frame.masked, frame.opcode, frame.payload.toString()], [true, Opcode.Text, 'hi']);
        keys.add(frame.maskKey!.toString('hex'));
      }
      assert.equal(keys.size, 2);
      assert.deepEqual(message.frame, Buffer.from('8102' + Buffer.from('hi').toString('hex'), 'hex')); // the shared frame itself is untouched
    } finally {
      await server.close();
    }
  });

  test('a masked frame from the server fails the connection with 1002 (WS_ERR_MASKED_FRAME)', async () => {
    const { hooks, calls } = recorder();
    const { server, client, peer } = await openPair(hooks);
    try {
      peer.sendFrame(Opcode.Text, 'masked', { mask: Uint8Array.of(1, 2, 3, 4) });
      const close = await peer.readFrame();
      assert.deepEqual([close.masked, close.opcode], [true, Opcode.Close]);
      assert.equal(close.payload.readUInt16BE(0), CloseCode.ProtocolError);
      assert.equal(close.payload.toString('utf8', 2), 'MASK must be clear on frames from a server');
      // Failing, the client ends its side at once (§7.1.7).
      await peer.endedOrClosed();
      peer.socket.end();
      assert.deepEqual(await client.closed, { code: 1002, reason: 'MASK must be clear on frames from a server', wasClean: false });
      assert.deepEqual(calls, [['onOpen'], ['onError', 'WS_ERR_MASKED_FRAME'], ['onClose', 1002, 'MASK must be clear on frames from a server']]);
    } finally {
      await server.close();
    }
  });
});

describe('4.1 a response that is not a valid 101', () => {
  const ACCEPT_WRONG = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n';
  const cases: { name: string; answer: (key: string) => string; code: string; status: number; body?: string }[] = [
    {
      name: 'a 403 with a body',
      answer: () => 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nforbidden\n',
      code: 'WS_ERR_HANDSHAKE_STATUS',
      status: 403,
      body: 'forbidden\n',
    },
    { name: 'a 200 that ends the connection', answer: () => 'HTTP/1.1 200 OK\r\n\r\n<html>', code: 'WS_ERR_HANDSHAKE_STATUS', status: 200, body: '<html>' },
    { name: 'a wrong Accept', answer: () => ACCEPT_WRONG, code: 'WS_ERR_HANDSHAKE_ACCEPT', status: 101 },
    { name: 'no Upgrade', answer: (key) => response101(key).replace('Upgrade: websocket\r\n', ''), code: 'WS_ERR_HANDSHAKE_UPGRADE', status: 101 },
    { name: 'no Connection', answer: (key) => response101(key).replace('Connection: Upgrade\r\n', ''), code: 'WS_ERR_HANDSHAKE_CONNECTION', status: 101 },
    { name: 'a subprotocol not offered', answer: (key) => response101(key, 'Sec-WebSocket-Protocol: chat\r\n'), code: 'WS_ERR_HANDSHAKE_PROTOCOL', status: 101 },
    {
      name: 'an extension not offered',
      answer: (key) => response101(key, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'),
      code: 'WS_ERR_HANDSHAKE_EXTENSION',
      status: 101,
    },
    { name: 'a head that is not HTTP', answer: () => 'SSH-2.0-OpenSSH_9.6\r\n\r\n', code: 'WS_ERR_HANDSHAKE_RESPONSE', status: 0 },
  ];
  for (const c of cases) {
    test(`${c.name}: onError and opened get ${c.code}, then onClose(1006)`, async () => {
      const server = await rawServer(async (peer) => {
        const head = await peer.readHead();
        peer.socket.end(c.answer(RawPeer.keyOf(head)));
      });
      try {
        const { hooks, calls } = recorder();
        const client = connect(server.url(), hooks, { compression: false });
        const error = await client.opened.then(
          () => assert.fail('opened'),
          (e: unknown) => e,
        );
        assert.ok(error instanceof HandshakeError);
        assert.equal(error.code, c.code);
        assert.equal(error.status, c.status);
        if (c.body !== undefined) assert.equal(error.body.toString(), c.body);
        assert.deepEqual(await client.closed, { code: 1006, reason: '', wasClean: false });
        assert.deepEqual(calls, [['onError', c.code], ['onClose', 1006, '']]);
        assert.equal(client.isDefunct(), true);
        assert.equal(client.send('late'), false);
        assert.equal(client.readyState, 'closed');
      } finally {
        await server.close();
      }
    });
  }

  test('the body of a refusal is read up to 512 bytes while the server keeps the connection open', async () => {
    const server = await rawServer(async (peer) => {
      await peer.readHead();
      peer.socket.write(`HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\n${'z'.repeat(1000)}`);
    });
    try {
      const error = await connect(server.url()).opened.catch((e: unknown) => e);
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_STATUS');
      assert.equal(error.message, 'the server answered 503 Service Unavailable');
      assert.equal(error.body.toString(), 'z'.repeat(512));
      assert.equal(error.headers['content-length'], '1000');
    } finally {
      await server.close();
    }
  });

  test('a server that closes inside the response head: WS_ERR_HANDSHAKE_CLOSED with what it sent', async () => {
    const server = await rawServer(async (peer) => {
      await peer.readHead();
      peer.socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgr');
    });
    try {
      const error = await connect(server.url()).opened.catch((e: unknown) => e);
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_CLOSED');
      assert.equal(error.status, 0);
      assert.equal(error.body.toString(), 'HTTP/1.1 101 Switching Protocols\r\nUpgr');
    } finally {
      await server.close();
    }
  });

  test('a server that never answers: WS_ERR_HANDSHAKE_TIMEOUT after handshakeTimeout, and the socket is closed', async () => {
    const server = await rawServer(async (peer) => {
      await peer.readHead();
      peer.socket.write('HTTP/1.1 101 Switching');
    });
    try {
      const client = connect(server.url(), {}, { handshakeTimeout: 50 });
      const error = await client.opened.catch((e: unknown) => e);
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_TIMEOUT');
      assert.equal(error.message, 'no complete response within 50 ms');
      // What arrived before the deadline: all of it, or (on a slow machine) a part or nothing.
      assert.ok('HTTP/1.1 101 Switching'.startsWith(error.body.toString()), error.body.toString());
      await server.peers[0]!.endedOrClosed();
    } finally {
      await server.close();
    }
  });

  test('a refused connection: the socket error (ECONNREFUSED), onError then onClose(1006)', async () => {
    const server = await rawServer(() => {});
    const url = server.url();
    await server.close();
    const { hooks, calls } = recorder();
    const client = connect(url, hooks);
    await assert.rejects(client.opened, { code: 'ECONNREFUSED' });
    assert.deepEqual(await client.closed, { code: 1006, reason: '', wasClean: false });
    assert.deepEqual(calls, [['onError', 'ECONNREFUSED'], ['onClose', 1006, '']]);
    // The iterator of a client whose handshake failed throws that failure.
    const bare = connect(url);
    await assert.rejects(bare[Symbol.asyncIterator]().next(), { code: 'ECONNREFUSED' });
  });

  test('onError and onClose that throw or reject during a failed handshake go to the logger', async () => {
    const server = await rawServer(() => {});
    const url = server.url();
    await server.close();
    const logged: string[] = [];
    const client = connect(
      url,
      {
        onError() {
          throw new Error('thrown');
        },
        onClose: () => Promise.reject(new Error('rejected')),
      },
      { logger: { error: (message: unknown, error: unknown) => void logged.push(`${String(message)}: ${(error as Error).message}`) } },
    );
    await client.closed;
    await tick();
    assert.deepEqual(logged, ['pef-front-websocket: onError threw: thrown', 'pef-front-websocket: onClose rejected: rejected']);
  });

  test('close() and terminate() during the handshake abort it: WS_ERR_HANDSHAKE_ABORTED; send() throws WS_ERR_NOT_OPEN', async () => {
    const server = await rawServer(async (peer) => void (await peer.readHead()));
    try {
      const client = connect(server.url());
      assert.equal(client.readyState, 'connecting');
      assert.equal(client.isDefunct(), false);
      assert.equal(client.bufferedAmount, 0);
      assert.throws(() => client.send('early'), { code: 'WS_ERR_NOT_OPEN' });
      assert.throws(() => client.ping(), { code: 'WS_ERR_NOT_OPEN' });
      assert.throws(() => client.close(1005), RangeError);
      client.close();
      await assert.rejects(client.opened, { code: 'WS_ERR_HANDSHAKE_ABORTED' });
      assert.deepEqual(await client.closed, { code: 1006, reason: '', wasClean: false });
      const other = connect(server.url());
      other.terminate();
      await assert.rejects(other.opened, { code: 'WS_ERR_HANDSHAKE_ABORTED' });
    } finally {
      await server.close();
    }
  });
});

describe('redirects', () => {
  test('are not followed unless asked: WS_ERR_HANDSHAKE_REDIRECT with the Location', async () => {
    const server = await rawServer(async (peer) => {
      await peer.readHead();
      peer.socket.end('HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n');
    });
    try {
      const error = await connect(server.url('/start')).opened.catch((e: unknown) => e);
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_REDIRECT');
      assert.equal(error.status, 302);
      assert.equal(error.headers['location'], '/elsewhere');
    } finally {
      await server.close();
    }
  });

  test('with followRedirects, go to the Location (http: read as ws:); credentials stay with their host', async () => {
    const target = await rawServer(async (peer) => {
      await peer.accept();
    });
    const heads: string[] = [];
    const first = await rawServer(async (peer) => {
      heads.push(await peer.readHead());
      const location = heads.length === 1 ? '/second?q=1' : `http://localhost:${target.port}/third`;
      peer.socket.end(`HTTP/1.1 307 Temporary Redirect\r\nLocation: ${location}\r\nContent-Length: 0\r\n\r\n`);
    });
    try {
      const client = connect(first.url('/first'), {}, { followRedirects: true, headers: { Authorization: 'secret', 'X-Keep': '1' }, compression: false });
      await client.opened;
      assert.equal(client.url, `ws://localhost:${target.port}/third`);
      assert.match(heads[0]!, /^GET \/first HTTP\/1\.1\r\n[^]*\r\nAuthorization: secret\r\n/);
      assert.match(heads[1]!, /^GET \/second\?q=1 HTTP\/1\.1\r\n[^]*\r\nAuthorization: secret\r\n/);
      await target.peer();
      assert.equal(client.request.url, '/third');
      assert.equal(client.request.headers['authorization'], undefined);
      assert.equal(client.request.headers['x-keep'], '1');
      assert.equal(client.request.headers['host'], `localhost:${target.port}`);
      client.terminate();
      await client.closed;
    } finally {
      await first.close();
      await target.close();
    }
  });

  test('at most maxRedirects are followed', async () => {
    const server = await rawServer(async (peer) => {
      await peer.readHead();
      peer.socket.end('HTTP/1.1 301 Moved Permanently\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n');
    });
    try {
      const error = await connect(server.url(), {}, { followRedirects: true, maxRedirects: 2 }).opened.catch((e: unknown) => e);
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_REDIRECT');
      assert.equal(error.message, 'more than 2 redirects');
      assert.equal(server.peers.length, 3);
    } finally {
      await server.close();
    }
  });

  test('a Location that is no WebSocket URL is not followed', async () => {
    const server = await rawServer(async (peer) => {
      await peer.readHead();
      const location = server.peers.length === 1 ? 'ftp://example.com/' : 'http://[bad';
      peer.socket.end(`HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\n\r\n`);
    });
    try {
      await assert.rejects(connect(server.url(), {}, { followRedirects: true }).opened, { code: 'WS_ERR_HANDSHAKE_REDIRECT' });
      await assert.rejects(connect(server.url(), {}, { followRedirects: true }).opened, { code: 'WS_ERR_HANDSHAKE_REDIRECT' });
      assert.equal(server.peers.length, 2);
    } finally {
      await server.close();
    }
  });
});

describe('frames after the 101 and the closing handshake (§7.1.1)', () => {
  test('frames written with the 101 in one write are read', async () => {
    const server = await rawServer(async (peer) => {
      const head = await peer.readHead();
      peer.socket.write(Buffer.concat([Buffer.from(response101(RawPeer.keyOf(head))), Buffer.from([0x81, 0x02, 0x68, 0x69])]));
    });
    try {
      const client = connect(server.url(), {}, { compression: false });
      const first = await client[Symbol.asyncIterator]().next();
      assert.deepEqual(first, { done: false, value: { type: 'text', data: 'hi' } });
      client.terminate();
    } finally {
      await server.close();
    }
  });

  test('the server closes: the client answers with the same code and waits for the server to close TCP', async () => {
    const { hooks, calls } = recorder();
    const { server, client, peer } = await openPair(hooks, { closeTimeout: 60_000 });
    try {
      peer.sendFrame(Opcode.Close, closePayload(CloseCode.GoingAway, 'bye'));
      const reply = await peer.readFrame();
      assert.deepEqual([reply.masked, reply.opcode], [true, Opcode.Close]);
      assert.deepEqual(reply.payload, closePayload(CloseCode.GoingAway));
      for (let i = 0; i < 10; i++) await tick();
      assert.equal(peer.ended, false, 'the client must not close TCP first');
      assert.equal(client.isDefunct(), true);
      assert.equal(calls.some((call) => call[0] === 'onClose'), false);
      peer.socket.end();
      assert.deepEqual(await client.closed, { code: 1001, reason: 'bye', wasClean: true });
      assert.deepEqual(calls, [['onOpen'], ['onClose', 1001, 'bye']]);
    } finally {
      await server.close();
    }
  });

  test('a server that does not close TCP after the closing handshake: the client closes it after closeTimeout', async () => {
    const { server, client, peer } = await openPair({}, { closeTimeout: 50 });
    try {
      // The server closes; the client's close timer starts once the closing handshake is complete.
      peer.sendFrame(Opcode.Close, closePayload(CloseCode.Normal, 'done'));
      const reply = await peer.readFrame();
      assert.deepEqual([reply.opcode, reply.payload], [Opcode.Close, closePayload(CloseCode.Normal)]);
      // The server keeps its side open; the client's close timer ends the connection.
      await peer.endedOrClosed();
      assert.deepEqual(await client.closed, { code: 1000, reason: 'done', wasClean: true });
    } finally {
      await server.close();
    }
  });

  test('a server that never answers the Close: closed after closeTimeout with 1006, not clean; the iterator throws', async () => {
    const { server, client, peer } = await openPair({}, { closeTimeout: 50 });
    try {
      client.close();
      await peer.endedOrClosed();
      assert.deepEqual(await client.closed, { code: 1006, reason: '', wasClean: false });
      const error = await client[Symbol.asyncIterator]().next().catch((e: unknown) => e);
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, 'WS_ERR_ABNORMAL_CLOSURE');
    } finally {
      await server.close();
    }
  });
});

describe('the async iterator', () => {
  test('pauses reading while more than highWaterMark bytes wait, then hands out every message in order', async () => {
    const COUNT = 200;
    const server = await rawServer(() => {});
    try {
      const inFrames: string[] = [];
      const client = connect(server.url(), {}, {
        compression: false,
        heartbeatInterval: 0,
        highWaterMark: 1000,
        trace: (line) => {
          if (line.includes(' in text ')) inFrames.push(line);
        },
      });
      const peer = await server.peer();
      await peer.accept();
      await client.opened;
      // One write of every message: what the client reads in one go is limited by its queue only.
      const frames: Buffer[] = [];
      for (let i = 0; i < COUNT; i++) frames.push(Buffer.from([0x81, 126, 0x02, 0x58]), Buffer.alloc(600, 48 + (i % 10)));
      peer.socket.write(Buffer.concat(frames));
      await new Promise<void>((resolve) => {
        const check = (): void => (inFrames.length >= 2 ? resolve() : void setImmediate(check));
        check();
      });
      for (let i = 0; i < 10; i++) await tick();
      // 600 + 600 > 1000: the second message paused reading. What the read in hand holds is parsed
      // (at most 64 KiB of frames), the rest waits in the kernel.
      const socket = client.request.socket;
      assert.equal(socket.isPaused(), true);
      assert.ok(inFrames.length < COUNT, `${inFrames.length} frames read`);
      let received = 0;
      for await (const { data, type } of client) {
        assert.equal(type, 'text');
        assert.equal(data, String(received % 10).repeat(600));
        if (++received === COUNT) break;
      }
      assert.equal(inFrames.length, COUNT);
      assert.equal(socket.isPaused(), false);
      // Leaving the loop leaves the connection open; the next loop goes on.
      assert.equal(client.isDefunct(), false);
      peer.sendFrame(Opcode.Binary, Buffer.from([1, 2, 3]));
      peer.sendFrame(Opcode.Close, closePayload(CloseCode.Normal));
      await peer.readFrame();
      peer.socket.end();
      const rest = [];
      for await (const message of client) rest.push(message);
      assert.deepEqual(rest, [{ type: 'binary', data: Buffer.from([1, 2, 3]) }]);
      assert.deepEqual(await client.closed, { code: 1000, reason: '', wasClean: true });
    } finally {
      await server.close();
    }
  });

  test('a waiting next() gets the message as it arrives; with onMessage there is no iterator', async () => {
    const server = await rawServer(() => {});
    try {
      const client = connect(server.url(), {}, { compression: false, heartbeatInterval: 0 });
      const iterator = client[Symbol.asyncIterator]();
      assert.equal(iterator[Symbol.asyncIterator](), iterator);
      const pending = iterator.next();
      const peer = await server.peer();
      await peer.accept();
      peer.sendFrame(Opcode.Text, 'first');
      assert.deepEqual(await pending, { done: false, value: { type: 'text', data: 'first' } });
      assert.deepEqual(await iterator.return!(), { done: true, value: undefined });
      const waiting = iterator.next();
      peer.socket.destroy();
      await assert.rejects(waiting, { code: 'WS_ERR_ABNORMAL_CLOSURE' });
      assert.throws(() => connect(server.url(), { onMessage() {} })[Symbol.asyncIterator](), TypeError);
    } finally {
      await server.close();
    }
  });

  test('pause() and resume() hold messages for onMessage', async () => {
    const server = await rawServer(() => {});
    try {
      const messages: string[] = [];
      const client = connect(server.url(), { onMessage: (m) => void messages.push(String(m)) }, { compression: false, heartbeatInterval: 0 });
      client.pause();
      const peer = await server.peer();
      await peer.accept();
      await client.opened;
      peer.sendFrame(Opcode.Text, 'a');
      peer.sendFrame(Opcode.Text, 'b');
      peer.sendFrame(Opcode.Ping, 'p');
      for (let i = 0; i < 10; i++) await tick();
      assert.deepEqual(messages, []);
      client.resume();
      const pong = await peer.readFrame();
      assert.deepEqual([pong.opcode, pong.payload.toString()], [Opcode.Pong, 'p']);
      assert.deepEqual(messages, ['a', 'b']);
      client.terminate();
      assert.equal((await client.closed).code, 1006);
      await once(peer.socket, 'close');
    } finally {
      await server.close();
    }
  });
});

// The opening handshake over a real node:http server (RFC 6455 §4.2): the exact 101 response, the
// 'upgrade' event's head bytes, when onOpen runs, and the HTTP refusals with their sockets ended.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode } from '../../src/protocol/constants.js';
import { Harness } from './harness.js';
import { RawClient, SAMPLE_ACCEPT, clientFrame, upgradeRequest } from '../helpers/net.js';
import { once } from 'node:events';

describe('4.2.2 the 101 response', () => {
  test('a valid request is answered with exactly the 101 status line, Upgrade, Connection and Sec-WebSocket-Accept', async () => {
    const harness = await Harness.start();
    const { client, response } = await RawClient.open(harness.port);
    assert.equal(
      response,
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        '\r\n',
    );
    const session = await harness.session();
    await session.waitFor('onOpen');
    assert.equal(session.ws.protocol, '');
    assert.equal(session.ws.extensions, '');
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('a subprotocol chosen by selectProtocol is named in the 101 response', async () => {
    const harness = await Harness.start({
      options: { selectProtocol: (offered) => (offered.includes('chat') ? 'chat' : null) },
    });
    const { client, response } = await RawClient.open(harness.port, { headers: { 'Sec-WebSocket-Protocol': 'superchat, chat' } });
    assert.equal(
      response,
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        'Sec-WebSocket-Protocol: chat\r\n' +
        '\r\n',
    );
    const session = await harness.session();
    assert.equal(session.ws.protocol, 'chat');
    client.destroy();
    await session.closed();
    await harness.close();
  });
});

describe('head bytes and onOpen', () => {
  test('frames sent in the same packet as the upgrade request are delivered, after onOpen', async () => {
    const harness = await Harness.start();
    const head = Buffer.concat([clientFrame(Opcode.Text, 'first'), clientFrame(Opcode.Binary, Buffer.from([1, 2, 3]))]);
    const { client } = await RawClient.open(harness.port, { head });
    const session = await harness.session();
    // The bytes really came as the 'upgrade' event's head, not as a later read.
    assert.deepEqual(session.head, head);
    await session.waitFor('onMessage', 2);
    assert.deepEqual(session.sequence, ['onOpen', 'onMessage', 'onMessage']);
    assert.deepEqual(session.callsOf('onMessage'), [
      ['first', 'text'],
      [Buffer.from([1, 2, 3]), 'binary'],
    ]);
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('onOpen runs once the 101 response has been written and flushed, before any onMessage', async () => {
    let writesAtOpen = -1;
    let bufferedAtOpen = -1;
    const harness = await Harness.start({
      hooks: (session) => ({
        onOpen() {
          writesAtOpen = session.writes;
          bufferedAtOpen = session.socket.writableLength;
        },
      }),
    });
    const { client } = await RawClient.open(harness.port, { head: clientFrame(Opcode.Text, 'x') });
    const session = await harness.session();
    await session.waitFor('onMessage');
    assert.equal(writesAtOpen, 1);
    assert.equal(bufferedAtOpen, 0);
    assert.deepEqual(session.sequence, ['onOpen', 'onMessage']);
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('a message sent from onOpen follows the 101 response on the wire', async () => {
    const harness = await Harness.start({ hooks: (session) => ({ onOpen: () => void session.ws.send('welcome') }) });
    const { client } = await RawClient.open(harness.port);
    assert.deepEqual(await client.readBytes(9), Buffer.from('8107' + Buffer.from('welcome').toString('hex'), 'hex'));
    const session = await harness.session();
    client.destroy();
    await session.closed();
    await harness.close();
  });
});

describe('4.2.1 refused handshakes over HTTP', () => {
  async function refused(options: Parameters<typeof RawClient.open>[1]): Promise<{ response: string; body: Buffer; harness: Harness }> {
    const harness = await Harness.start();
    const { client, response } = await RawClient.open(harness.port, options);
    // The socket is ended after the response: the body is all that follows.
    const body = await client.readToEnd();
    await client.waitClosed();
    return { response, body, harness };
  }

  test('a POST is refused with 405 and Allow: GET, and the socket is ended', async () => {
    const { response, body, harness } = await refused({ method: 'POST' });
    assert.equal(
      response,
      'HTTP/1.1 405 Method Not Allowed\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 31\r\n' +
        'Allow: GET\r\n' +
        '\r\n',
    );
    assert.equal(body.toString('utf8'), 'WebSocket upgrade requires GET\n');
    assert.equal(harness.sessions.length, 0);
    await harness.close();
  });

  test('an unsupported Sec-WebSocket-Version is refused with 426 and Sec-WebSocket-Version: 13', async () => {
    const { response, body, harness } = await refused({ headers: { 'Sec-WebSocket-Version': '8' } });
    assert.equal(
      response,
      'HTTP/1.1 426 Upgrade Required\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 57\r\n' +
        'Sec-WebSocket-Version: 13\r\n' +
        '\r\n',
    );
    assert.equal(body.toString('utf8'), 'unsupported Sec-WebSocket-Version; this server speaks 13\n');
    assert.equal(harness.sessions.length, 0);
    await harness.close();
  });

  test('a Sec-WebSocket-Key that is not base64 of 16 bytes is refused with 400 and a one-line body', async () => {
    const { response, body, harness } = await refused({ key: 'c2hvcnQ=' });
    assert.equal(
      response,
      'HTTP/1.1 400 Bad Request\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 45\r\n' +
        '\r\n',
    );
    assert.equal(body.toString('utf8'), 'Sec-WebSocket-Key must be base64 of 16 bytes\n');
    assert.equal(harness.sessions.length, 0);
    await harness.close();
  });

  test('a refused request whose socket is already gone is dropped without an error', async () => {
    let socketClosed: Promise<unknown> | null = null;
    const harness = await Harness.start({
      beforeAccept: (socket) => {
        socketClosed = once(socket, 'close');
        socket.destroy();
      },
    });
    const client = await RawClient.connect(harness.port);
    client.write(upgradeRequest(harness.port, { key: 'bad' }));
    await client.waitClosed();
    await socketClosed;
    assert.equal(harness.sessions.length, 0);
    await harness.close();
  });

  test('a request without Sec-WebSocket-Key is refused with 400', async () => {
    const { response, body, harness } = await refused({ headers: { 'Sec-WebSocket-Key': null } });
    assert.match(response, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(body.toString('utf8'), 'Sec-WebSocket-Key must be base64 of 16 bytes\n');
    await harness.close();
  });
});

describe('regressions in the handshake', () => {
  // Root cause: acceptWebSocket called selectProtocol without a guard, so what it threw left the
  // 'upgrade' listener as an uncaught exception (the whole server process went down) and the
  // socket was left without an answer.
  test('a selectProtocol that throws took the process down; now it is answered with 500 and logged', async () => {
    const logged: unknown[][] = [];
    const thrown = new Error('no protocols today');
    const harness = await Harness.start({
      options: {
        logger: { error: (...args: unknown[]) => void logged.push(args) },
        selectProtocol: () => {
          throw thrown;
        },
      },
    });
    const { client, response } = await RawClient.open(harness.port, { headers: { 'Sec-WebSocket-Protocol': 'chat' } });
    assert.equal(
      response,
      'HTTP/1.1 500 Internal Server Error\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 29\r\n' +
        '\r\n',
    );
    assert.equal((await client.readToEnd()).toString('utf8'), 'subprotocol selection failed\n');
    await client.waitClosed();
    assert.deepEqual(logged, [['pef-front-websocket: selectProtocol threw', thrown]]);
    assert.equal(harness.sessions.length, 0);
    await harness.close();
  });
});

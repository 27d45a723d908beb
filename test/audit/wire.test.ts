// The audit's raw connection (src/audit/wire.ts) against a real server on loopback: the request it
// writes, the 101 it checks, frames both ways in the wire log, and the end of TCP.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acceptWebSocket, type WebSocketConnection } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { encodeClosePayload } from '../../src/protocol/frame.js';
import { RawConnection, TolerantFrameReader, checkAccept, encodeFrameSpec, upgradeRequest } from '../../src/audit/wire.js';

let server: Server;
let url: string;

before(async () => {
  server = createServer();
  server.on('upgrade', (request, socket, head) => {
    const ws: WebSocketConnection | null = acceptWebSocket(request, socket, head, { onMessage: (m, t) => void ws!.send(m, t) }, { closeTimeout: 2000 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/chat?room=1`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('encodeFrameSpec', () => {
  test('writes the exact bytes asked for, including a non-minimal length and an unmasked frame', () => {
    const mask = Buffer.from([1, 2, 3, 4]);
    assert.equal(encodeFrameSpec({ opcode: Opcode.Text, payload: 'Hi', mask }).bytes.toString('hex'), '8182' + '01020304' + (0x48 ^ 1).toString(16) + (0x69 ^ 2).toString(16).padStart(2, '0'));
    assert.equal(encodeFrameSpec({ opcode: Opcode.Binary, payload: 'a', mask: null, lengthForm: 16, fin: false, rsv: 0x20 }).bytes.toString('hex'), '22' + '7e0001' + '61');
    const lying = encodeFrameSpec({ opcode: Opcode.Text, payload: 'ab', mask: null, length: 5 });
    assert.equal(lying.bytes.toString('hex'), '81056162');
    assert.deepEqual(lying.frame.problems, ['header announces 5 bytes, 2 written']);
  });

  test('a fresh masking key for every frame', () => {
    const a = encodeFrameSpec({ opcode: Opcode.Text, payload: 'x' }).bytes.subarray(2, 6);
    const b = encodeFrameSpec({ opcode: Opcode.Text, payload: 'x' }).bytes.subarray(2, 6);
    assert.notDeepEqual(a, b);
  });
});

describe('TolerantFrameReader', () => {
  test('describes a masked server frame and a non-minimal length, split at every byte', () => {
    const bytes = Buffer.concat([
      encodeFrameSpec({ opcode: Opcode.Text, payload: 'masked', mask: Buffer.from([9, 8, 7, 6]) }).bytes,
      encodeFrameSpec({ opcode: Opcode.Binary, payload: 'xy', mask: null, lengthForm: 64 }).bytes,
    ]);
    const reader = new TolerantFrameReader();
    const frames = [...bytes].flatMap((b) => reader.push(Buffer.of(b)));
    assert.deepEqual(frames.map((f) => [f.opcode, f.masked, f.payload.toString(), f.problems]), [
      [Opcode.Text, true, 'masked', []],
      [Opcode.Binary, false, 'xy', ['length 2 in the 64-bit form (§5.2: the shortest form is required)']],
    ]);
  });
});

describe('RawConnection', () => {
  test('the request carries a fresh 16-byte key, the path and query, and Host with the port', () => {
    const { bytes, key } = upgradeRequest(url, { headers: { Origin: 'http://example.com', Connection: 'keep-alive, Upgrade' } });
    assert.equal(Buffer.from(key, 'base64').length, 16);
    const port = new URL(url).port;
    assert.equal(
      bytes.toString('latin1'),
      `GET /chat?room=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n`,
    );
  });

  test('handshake, an echo of a frame written in 1-byte pieces, and the closing handshake, all in the log', async () => {
    const connection = await RawConnection.open(url);
    const { response, problem } = await connection.handshake(url, 5000);
    assert.equal(problem, null);
    assert.equal(response!.status, 101);
    await connection.send({ opcode: Opcode.Text, payload: 'hello' }, { chunkSize: 1 });
    assert.equal(await connection.waitFor((c) => c.received.length === 1, 5000), true);
    await connection.send({ opcode: Opcode.Close, payload: encodeClosePayload(1000) });
    const end = await connection.waitForEnd(5000);
    assert.equal(end?.how, 'fin');
    assert.deepEqual(
      connection.log.map((e) => `${e.direction} ${e.type}${e.type === 'frame' ? ` ${e.frame.opcode} ${e.frame.payload.toString('hex')}` : ''}`),
      [
        'sent handshake',
        'received handshake',
        `sent frame 1 ${Buffer.from('hello').toString('hex')}`,
        `received frame 1 ${Buffer.from('hello').toString('hex')}`,
        'sent frame 8 03e8',
        'received frame 8 03e8',
        'received fin',
      ],
    );
    assert.ok(connection.log.every((e, i) => i === 0 || e.at >= connection.log[i - 1]!.at), 'timestamps ascend');
    connection.destroy();
  });

  test('an interim 100 Continue is recorded and the final response read after it', async () => {
    const connection = await RawConnection.open(url);
    const request = upgradeRequest(url, { headers: { Expect: '100-continue' } });
    await connection.sendRequest(request.bytes);
    const response = await connection.readResponse(5000);
    assert.equal(response!.status, 101);
    assert.deepEqual(response!.interim, [100]);
    assert.equal(checkAccept(response!, request.key), null);
    connection.destroy();
  });

  test('checkAccept names a wrong Sec-WebSocket-Accept and a refusal reads its body', async () => {
    const connection = await RawConnection.open(url);
    await connection.sendRequest(upgradeRequest(url, { headers: { 'Sec-WebSocket-Version': '8' } }).bytes);
    const response = await connection.readResponse(5000);
    assert.equal(response!.status, 426);
    assert.equal(response!.headers['sec-websocket-version'], '13');
    assert.equal(response!.body.toString(), 'unsupported Sec-WebSocket-Version; this server speaks 13\n');
    connection.destroy();
    const fake = { status: 101, reason: '', httpVersion: 'HTTP/1.1', head: '', body: Buffer.alloc(0), interim: [], headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': 'x' } };
    assert.equal(checkAccept(fake, 'dGhlIHNhbXBsZSBub25jZQ=='), 'Sec-WebSocket-Accept is "x", expected "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (§4.1 item 4)');
  });

  test('an unreachable port is a ConnectError with the socket code', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(RawConnection.open(`ws://127.0.0.1:${port}/`), { code: 'ECONNREFUSED' });
  });
});

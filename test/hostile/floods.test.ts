// Input floods and abrupt ends: 100,000 empty continuation frames, 100,000 one-byte fragments, a
// frame announcing 2^63-1 bytes, and TCP resets in the middle of a frame and of the closing
// handshake. Memory stays flat, the answer comes at once, and nothing is left behind.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, clientFrame } from '../helpers/net.js';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { MiB, assertNoLeaks, assertProtocolError, bystander, cleanup, handles, memory, startEchoServer, trackTimers } from './helpers.js';

/** The header of a masked binary frame announcing `length` bytes (64-bit form), with a zero mask. */
function hugeHeader(length: bigint): Buffer {
  const header = Buffer.alloc(2 + 8 + 4);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(length, 2);
  return header;
}

describe('Floods and abrupt ends', () => {
  afterEach(cleanup);

  test('100,000 empty continuation frames cost no memory beyond their bytes and the message echoes whole', async () => {
    const before = handles();
    const timers = trackTimers();
    const echo = await startEchoServer();
    const { client } = await RawClient.open(echo.port);
    const heap = memory();
    const empty = clientFrame(Opcode.Continuation, Buffer.alloc(0), { fin: false });
    const flood = Buffer.concat([
      clientFrame(Opcode.Text, 'a', { fin: false }),
      Buffer.concat(Array.from({ length: 100_000 }, () => empty)),
      clientFrame(Opcode.Continuation, 'b', { fin: true }),
    ]);
    client.write(flood);
    const reply = await client.readFrame();
    assert.deepEqual([reply.fin, reply.opcode, reply.payload.toString()], [true, Opcode.Text, 'ab']);
    assert.ok(memory() - heap < 4 * MiB, 'heap growth under 4 MiB');
    client.sendFrame(Opcode.Close, Buffer.from([0x03, 0xe8]));
    await client.waitClosed();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  test('100,000 one-byte fragments of a text message with multi-byte characters echo byte-exact', async () => {
    const echo = await startEchoServer();
    const { client } = await RawClient.open(echo.port);
    const text = 'κόσμε 😀 '.repeat(6250); // 16 bytes each: 100,000 bytes
    const bytes = Buffer.from(text);
    const frames: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) {
      frames.push(clientFrame(i === 0 ? Opcode.Text : Opcode.Continuation, bytes.subarray(i, i + 1), { fin: i === bytes.length - 1 }));
    }
    assert.ok(frames.length >= 100_000);
    client.write(Buffer.concat(frames));
    const reply = await client.readFrame();
    assert.equal(reply.opcode, Opcode.Text);
    assert.equal(reply.payload.toString(), text);
    client.destroy();
    await echo.close();
  });

  test('a frame announcing 2^63-1 bytes fails at once with 1009, before any payload and without allocating it', async () => {
    const before = handles();
    const timers = trackTimers();
    const echo = await startEchoServer();
    const { client } = await RawClient.open(echo.port);
    const heap = memory();
    client.write(hugeHeader(2n ** 63n - 1n));
    const close = await client.readFrame();
    assert.equal(close.opcode, Opcode.Close);
    assert.equal(close.payload.readUInt16BE(0), CloseCode.MessageTooBig);
    await client.expectEnd();
    const [ended] = await echo.waitEnded(1);
    assert.equal(ended!.code, CloseCode.MessageTooBig);
    assertProtocolError(ended!.errors[0], 'WS_ERR_PAYLOAD_TOO_BIG', CloseCode.MessageTooBig);
    assert.ok(memory() - heap < MiB, 'nothing of the announced size was allocated');
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  test('a frame announcing 2^32 bytes is refused from its header with 1009 and the limit in the reason', async () => {
    const echo = await startEchoServer();
    const { client } = await RawClient.open(echo.port);
    client.write(hugeHeader(2n ** 32n));
    const close = await client.readFrame();
    assert.equal(close.payload.readUInt16BE(0), CloseCode.MessageTooBig);
    assert.equal(close.payload.subarray(2).toString(), 'message over the limit of 1048576 bytes');
    await client.expectEnd();
    await echo.close();
  });

  test('50 resets in the middle of a frame and 50 in the middle of the closing handshake end cleanly with 1006', async () => {
    const before = handles();
    const timers = trackTimers();
    const heap = memory();
    const echo = await startEchoServer();
    const midFrame = async () => {
      const { client } = await RawClient.open(echo.port);
      const frame = clientFrame(Opcode.Binary, Buffer.alloc(1000, 1));
      client.write(frame.subarray(0, 500));
      await new Promise((resolve) => setImmediate(resolve));
      client.socket.resetAndDestroy();
    };
    const midClose = async (serverFirst: boolean) => {
      const { client } = await RawClient.open(echo.port);
      if (serverFirst) {
        // The server starts the closing handshake; the client resets instead of answering.
        await new Promise((resolve) => setImmediate(resolve));
        for (const ws of echo.open) if (ws.request.socket.remotePort === client.socket.localPort) ws.close(CloseCode.GoingAway, 'bye');
      } else {
        client.sendFrame(Opcode.Close, Buffer.from([0x03, 0xe8]));
      }
      const close = await client.readFrame();
      assert.equal(close.opcode, Opcode.Close);
      client.socket.resetAndDestroy();
    };
    const attacks = [
      ...Array.from({ length: 50 }, midFrame),
      ...Array.from({ length: 25 }, () => midClose(true)),
      ...Array.from({ length: 25 }, () => midClose(false)),
    ];
    const [, echoed] = await Promise.all([Promise.all(attacks), Promise.all([41, 42].map((seed) => bystander(echo.port, seed, 100)))]);
    assert.deepEqual(echoed, [100, 100]);
    const ended = await echo.waitEnded(102);
    const counts: Record<number, number> = {};
    for (const e of ended) counts[e.code] = (counts[e.code] ?? 0) + 1;
    // Mid-frame and server-first close: no Close from the peer (1006). Client-first: its Close arrived (1000).
    assert.deepEqual(counts, { [CloseCode.Normal]: 25 + 2, [CloseCode.Abnormal]: 75 });
    for (const e of ended) {
      for (const error of e.errors) assert.equal((error as NodeJS.ErrnoException).code, 'ECONNRESET');
    }
    assert.equal(echo.open.size, 0);
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
    assert.ok(memory() - heap < 16 * MiB, 'heap growth under 16 MiB');
  });
});

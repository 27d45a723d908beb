// Peers that do not read: a client that sends continuously and never reads, and a ping flood from
// a client that never reads. Under either policy the server's outgoing buffer stays within
// maxBufferedAmount plus one message (or one read's worth of Pongs); 'close' fails the connection
// with 1008, 'drop' keeps it. A single large echo into an empty buffer always goes out.
// No test here depends on timing or on the kernel's buffer sizes: the server's socket is corked
// (holdWrites), so what it writes stays in its own buffer as if the peer's were full, and the tests
// wait for what the server decided (its pef-ws:backpressure messages, onClose), never for a lull.

import { test, describe, afterEach } from 'node:test';
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { FrameMessage } from '../../src/node/trace.js';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { RawClient, clientFrame } from '../helpers/net.js';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import {
  MiB,
  assertNoLeaks,
  assertProtocolError,
  bystander,
  cleanup,
  handles,
  holdWrites,
  memory,
  startEchoServer,
  trackTimers,
  watchBackpressure,
  type EchoServer,
} from './helpers.js';

/** The server side of the only connection open on `echo`. */
function only(echo: EchoServer) {
  assert.equal(echo.open.size, 1);
  return [...echo.open][0]!;
}

/** Waits for 'drain' or 'close', whichever comes first, without leaving listeners behind. */
function drainOrClose(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Writes frames made by `frame(i)` until the socket closes or `limit` bytes are written. */
async function flood(socket: Socket, frame: (i: number) => Buffer, limit: number): Promise<{ frames: number; bytes: number }> {
  let frames = 0;
  let bytes = 0;
  while (!socket.destroyed && bytes < limit) {
    const data = frame(frames);
    frames++;
    bytes += data.length;
    if (!socket.write(data)) await drainOrClose(socket);
  }
  return { frames, bytes };
}

/**
 * Writes frames made by `frame(i)` until `done()` (the server decided something: an event) or the
 * socket closes; returns how many frames were written. No timing: only the server's decision ends it.
 */
async function writeUntil(socket: Socket, frame: (i: number) => Buffer, done: Promise<unknown>): Promise<number> {
  let finished = false;
  void done.then(() => (finished = true));
  const ended = done.then(() => undefined);
  let frames = 0;
  while (!finished && !socket.destroyed) {
    if (!socket.write(frame(frames++))) await Promise.race([drainOrClose(socket), ended]);
  }
  return frames;
}

const PING_PAYLOAD = 125;
function pingFrame(i: number): Buffer {
  const payload = Buffer.alloc(PING_PAYLOAD, 0x70);
  payload.writeUInt32BE(i, 0);
  return clientFrame(Opcode.Ping, payload);
}

const MESSAGE = Buffer.alloc(64 * 1024, 0x5a);
const messageFrame = clientFrame(Opcode.Binary, MESSAGE);
/** A 64 KiB binary message numbered `i` in its first four bytes. */
function numbered(i: number): Buffer {
  const payload = Buffer.alloc(64 * 1024, 0x5a);
  payload.writeUInt32BE(i, 0);
  return clientFrame(Opcode.Binary, payload);
}

describe('Slow consumers and floods from peers that do not read', () => {
  afterEach(cleanup);

  test("a client that sends continuously and never reads is failed with 1008 once the buffer passes maxBufferedAmount ('close')", async () => {
    const before = handles();
    const timers = trackTimers();
    const heap = memory();
    const max = MiB;
    const echo = await startEchoServer({ maxBufferedAmount: max });
    const { client } = await RawClient.open(echo.port);
    client.socket.pause(); // never reads again
    holdWrites(only(echo));
    const [sent, echoed] = await Promise.all([
      flood(client.socket, () => messageFrame, 256 * MiB),
      Promise.all([21, 22].map((seed) => bystander(echo.port, seed, 100))),
    ]);
    // The bound plus one message, and the server's read buffers: far below the limit.
    assert.ok(sent.bytes < 64 * MiB, `the server ended the flood after ${sent.bytes} bytes`);
    assert.deepEqual(echoed, [100, 100]);
    const ended = await echo.waitEnded(3);
    const attacker = ended.find((e) => e.code !== CloseCode.Normal)!;
    assert.equal(attacker.code, CloseCode.PolicyViolation);
    assert.equal(attacker.reason, `peer does not read: over ${max} bytes wait to be written`);
    assert.equal(attacker.errors.length, 1);
    assertProtocolError(attacker.errors[0], 'WS_ERR_SLOW_CONSUMER', CloseCode.PolicyViolation);
    // Bound: what was waiting when the last echo was accepted, plus that echo (64 KiB and its header).
    assert.ok(echo.peakBuffered <= max + MESSAGE.length + 14, `peak ${echo.peakBuffered} within the bound`);
    assert.ok(echo.peakBuffered > max, 'the flood did reach the bound');
    client.destroy();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
    assert.ok(memory() - heap < 24 * MiB, 'heap growth under 24 MiB');
  });

  test("under 'drop' the same client keeps its connection, echoes past the bound are dropped, and the buffer stays bounded", async () => {
    const before = handles();
    const timers = trackTimers();
    const watch = watchBackpressure();
    const max = MiB;
    // No heartbeat: its Ping would come between the echoes read below.
    const echo = await startEchoServer({ maxBufferedAmount: max, slowConsumer: 'drop', heartbeatInterval: 0 });
    const { client } = await RawClient.open(echo.port);
    client.socket.pause();
    const release = holdWrites(only(echo));
    // Flood until the server drops an echo.
    const frames = await writeUntil(client.socket, numbered, watch.first('drop'));
    const drop = await watch.first('drop');
    assert.ok(drop.bufferedAmount > max && drop.bufferedAmount <= max + MESSAGE.length + 14, `dropped at ${drop.bufferedAmount} bytes`);
    assert.equal(echo.open.size, 1, 'the connection is still open');
    assert.equal(echo.ended.length, 0);
    // Reading again: the echoes that were kept arrive whole and in order (numbers rising, some
    // missing), then the reply to our Close, which the server reads after every frame we wrote.
    release();
    client.socket.resume();
    client.sendFrame(Opcode.Close, Buffer.from([0x03, 0xe8]));
    let last = -1;
    let kept = 0;
    for (let frame = await client.readFrame(); frame.opcode !== Opcode.Close; frame = await client.readFrame()) {
      assert.equal(frame.opcode, Opcode.Binary);
      assert.equal(frame.payload.length, MESSAGE.length);
      assert.ok(frame.payload.subarray(4).equals(MESSAGE.subarray(4)));
      const number = frame.payload.readUInt32BE(0);
      assert.ok(number > last, `echo ${number} after ${last}`);
      last = number;
      kept++;
    }
    const drops = watch.messages.filter((m) => m.action === 'drop').length;
    assert.equal(kept + drops, frames, `${kept} echoes kept and ${drops} dropped of ${frames}`);
    assert.ok(echo.peakBuffered <= max + MESSAGE.length + 14, `peak ${echo.peakBuffered} within the bound`);
    const ended = await echo.waitEnded(1);
    assert.equal(ended[0]!.code, CloseCode.Normal);
    assert.deepEqual(ended[0]!.errors, []);
    watch.stop();
    client.destroy();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  // Root cause of a flaky failure ('the flood did reach the bound', peak 0): a 1 ms sampler raced a
  // 300 ms heartbeat deadline, and the kernel (tcp_rmem up to 32 MiB) could absorb the whole flood
  // first. Now the server's writes are held, the pause is the server's own message, and the
  // heartbeat runs on a mocked clock, advanced only once the pause is seen.
  test("a ping flood from a client that never reads pauses reading at the bound, and the heartbeat then reaps it (default 'close')", async (t) => {
    const before = handles();
    const timers = trackTimers();
    const watch = watchBackpressure();
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const max = 256 * 1024;
    const echo = await startEchoServer({ maxBufferedAmount: max, heartbeatInterval: 200, heartbeatTimeout: 300 });
    const { client } = await RawClient.open(echo.port);
    client.socket.pause();
    holdWrites(only(echo));
    await writeUntil(client.socket, pingFrame, watch.first('pause'));
    const pause = await watch.first('pause');
    // Bound: the read that found the buffer past the bound still writes its Pongs (the core queued
    // them), as did the read before it: two reads of at most 64 KiB of Pings.
    assert.ok(pause.bufferedAmount > max && pause.bufferedAmount <= max + 128 * 1024, `paused at ${pause.bufferedAmount} bytes`);
    assert.equal(echo.ended.length, 0);
    // The heartbeat's Ping (after the first half of the interval, at a point of the second) waits
    // behind the Pongs, unread: its deadline passes.
    t.mock.timers.tick(100);
    t.mock.timers.tick(100);
    t.mock.timers.tick(300);
    const ended = await echo.waitEnded(1);
    t.mock.timers.reset();
    assert.equal(ended[0]!.code, CloseCode.InternalError);
    assertProtocolError(ended[0]!.errors[0], 'WS_ERR_HEARTBEAT_TIMEOUT', CloseCode.InternalError);
    assert.deepEqual(watch.messages.map((m) => m.action), ['pause'], 'reading never resumed');
    watch.stop();
    client.destroy();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  test("under 'drop' a ping flood pauses reading until the peer reads, and then every Pong arrives in order", async () => {
    const before = handles();
    const timers = trackTimers();
    const watch = watchBackpressure();
    const max = 256 * 1024;
    const lines: string[] = [];
    const echo = await startEchoServer({ maxBufferedAmount: max, slowConsumer: 'drop', heartbeatInterval: 0, trace: (line) => void lines.push(line) });
    const { client } = await RawClient.open(echo.port);
    client.socket.pause();
    const release = holdWrites(only(echo));
    const pings = await writeUntil(client.socket, pingFrame, watch.first('pause'));
    const pause = await watch.first('pause');
    assert.ok(pause.bufferedAmount > max && pause.bufferedAmount <= max + 128 * 1024, `paused at ${pause.bufferedAmount} bytes`);
    assert.equal(echo.open.size, 1, 'the connection is still open');
    // Now read: reading resumes on the server, and each Ping gets its Pong, in order.
    release();
    client.socket.resume();
    for (let i = 0; i < pings; i++) {
      const frame = await client.readFrame();
      assert.equal(frame.opcode, Opcode.Pong);
      assert.equal(frame.payload.length, PING_PAYLOAD);
      assert.equal(frame.payload.readUInt32BE(0), i);
    }
    assert.equal(client.pending, 0);
    assert.ok(watch.seen('resume'), 'reading resumed once the buffer drained');
    // The trace shows the same decisions.
    const traced = lines.filter((line) => line.includes(' backpressure '));
    assert.equal(traced[0], `#${pause.id} backpressure pause buffered=${pause.bufferedAmount}`);
    assert.match(traced[1]!, new RegExp(`^#${pause.id} backpressure resume buffered=\\d+$`));
    client.sendFrame(Opcode.Close, Buffer.from([0x03, 0xe8]));
    const close = await client.readFrame();
    assert.deepEqual([close.opcode, close.payload], [Opcode.Close, Buffer.from([0x03, 0xe8])]);
    await client.waitClosed();
    const ended = await echo.waitEnded(1);
    assert.equal(ended[0]!.code, CloseCode.Normal);
    watch.stop();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  // Root cause of a vacuous check: the Ping was sent after a 50 ms sleep and the assertion only
  // read a peak recorded before it. Now the server's own pause message says the Pong was queued
  // while the echo still waited in the buffer, past the default bound.
  test('a client that pings while it is slow to read a 16 MiB echo is not closed: its Pong waits behind the echo', async () => {
    const before = handles();
    const watch = watchBackpressure();
    // The echo, queued by the server: the Ping goes once it waits in the buffer (were they read
    // together, the Pong would simply follow the echo in the same write).
    let echoed: () => void = () => {};
    const echoQueued = new Promise<void>((resolve) => (echoed = resolve));
    const onFrame = (m: unknown): void => {
      const frame = m as FrameMessage;
      if (frame.direction === 'out' && frame.opcode === Opcode.Binary) echoed();
    };
    subscribe('pef-ws:frame', onFrame);
    const echo = await startEchoServer({ maxPayload: 64 * MiB, heartbeatInterval: 0 });
    const { client } = await RawClient.open(echo.port);
    const message = randomBytes(16 * MiB);
    client.socket.pause(); // slow to read: the echo piles up in the server's buffer
    const release = holdWrites(only(echo));
    client.write(clientFrame(Opcode.Binary, message));
    await echoQueued;
    unsubscribe('pef-ws:frame', onFrame);
    client.sendFrame(Opcode.Ping, 'are you there');
    const pause = await watch.first('pause');
    assert.ok(pause.bufferedAmount > 16 * MiB, `the Pong was queued behind the echo (${pause.bufferedAmount} bytes waiting)`);
    assert.equal(echo.ended.length, 0, 'not closed');
    release();
    client.socket.resume();
    const reply = await client.readFrame();
    assert.equal(reply.opcode, Opcode.Binary);
    assert.ok(reply.payload.equals(message));
    const pong = await client.readFrame();
    assert.deepEqual([pong.opcode, pong.payload.toString()], [Opcode.Pong, 'are you there']);
    assert.equal(echo.open.size, 1);
    client.sendFrame(Opcode.Close, Buffer.from([0x03, 0xe8]));
    await client.waitClosed();
    const ended = await echo.waitEnded(1);
    assert.deepEqual(ended, [{ code: CloseCode.Normal, reason: '', errors: [] }]);
    watch.stop();
    await echo.close();
    await assertNoLeaks(before);
  });

  test('a 16 MiB message is echoed with the default bound: one send into an empty buffer always goes out', async () => {
    const before = handles();
    const timers = trackTimers();
    const echo = await startEchoServer({ maxPayload: 64 * MiB });
    // Without compression, so the 16 MiB go through the buffer as they are.
    const ws = new WebSocket(`ws://127.0.0.1:${echo.port}/`, { maxPayload: 64 * MiB, perMessageDeflate: false });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const message = randomBytes(16 * MiB);
    const reply = new Promise<Buffer>((resolve) => ws.once('message', (data: Buffer) => resolve(data)));
    ws.send(message);
    assert.ok((await reply).equals(message));
    assert.ok(echo.peakBuffered > 4 * MiB, 'the echo went past the default maxBufferedAmount in one send');
    await new Promise((resolve) => ws.once('close', resolve).close(1000));
    const ended = await echo.waitEnded(1);
    assert.deepEqual(ended, [{ code: CloseCode.Normal, reason: '', errors: [] }]);
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });
});

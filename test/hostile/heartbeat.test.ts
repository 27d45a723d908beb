// Dead and idle peers: a client that vanishes without a FIN (it never answers a Ping) is reaped by
// the heartbeat; a live one stays and reports its latency; unsolicited Pongs do not count; an idle
// connection is closed with 1001 when idleTimeout is set. Intervals are shortened to milliseconds.

import { test, describe, afterEach, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RawClient, parseFrame, type ReadFrame } from '../helpers/net.js';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { DestroyTimer, Heartbeat, IdleTimer, PING_PAYLOAD_BYTES } from '../../src/node/heartbeat.js';
import type { Socket } from 'node:net';
import type { FrameMessage } from '../../src/node/trace.js';
import { resolveOptions } from '../../src/node/options.js';
import { assertNoLeaks, assertProtocolError, bystander, cleanup, handles, startEchoServer, trackTimers } from './helpers.js';

function framesOf(bytes: Buffer): ReadFrame[] {
  const frames: ReadFrame[] = [];
  for (let frame = parseFrame(bytes); frame !== null; frame = parseFrame(bytes)) {
    frames.push(frame);
    bytes = bytes.subarray(frame.bytes.length);
  }
  return frames;
}

describe('Heartbeat on a live server', () => {
  afterEach(cleanup);

  // The deadline is generous (2 s) because the bystander must answer in time however busy the
  // machine is; only the silent client can miss it.
  test('a client that never answers a Ping is failed with 1011 and destroyed, while a bystander echoes on', async () => {
    const before = handles();
    const timers = trackTimers();
    const echo = await startEchoServer({ heartbeatInterval: 100, heartbeatTimeout: 2000 });
    const { client } = await RawClient.open(echo.port);
    const [rest, echoed] = await Promise.all([client.readToEnd(), bystander(echo.port, 31, 100)]);
    assert.equal(echoed, 100);
    // What the silent client saw: one Ping with 8 random bytes, then Close 1011.
    const frames = framesOf(rest);
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.payload.length]),
      [
        [Opcode.Ping, PING_PAYLOAD_BYTES],
        [Opcode.Close, 2],
      ],
    );
    assert.equal(frames[1]!.payload.toString('hex'), '03f3');
    const ended = await echo.waitEnded(2);
    const silent = ended.find((e) => e.code !== CloseCode.Normal)!;
    assert.equal(silent.code, CloseCode.InternalError);
    assert.equal(silent.errors.length, 1);
    assertProtocolError(silent.errors[0], 'WS_ERR_HEARTBEAT_TIMEOUT', CloseCode.InternalError);
    assert.equal(silent.errors[0]!.message, 'no Pong within 2000 ms');
    await client.waitClosed();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  test('a client that vanished (reads nothing, answers nothing) is reaped', async () => {
    const before = handles();
    const timers = trackTimers();
    const echo = await startEchoServer({ heartbeatInterval: 50, heartbeatTimeout: 100 });
    const { client } = await RawClient.open(echo.port);
    client.socket.pause();
    const [ended] = await echo.waitEnded(1);
    assert.equal(ended!.code, CloseCode.InternalError);
    assertProtocolError(ended!.errors[0], 'WS_ERR_HEARTBEAT_TIMEOUT', CloseCode.InternalError);
    client.destroy();
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no timer outlives its connection');
  });

  test('unsolicited Pongs from a peer do not keep it alive: only the Pong of the last Ping counts', async () => {
    const echo = await startEchoServer({ heartbeatInterval: 50, heartbeatTimeout: 100 });
    const { client } = await RawClient.open(echo.port);
    const pong = setInterval(() => client.sendFrame(Opcode.Pong, Buffer.from([0, 0, 0, 1])), 10);
    const [ended] = await echo.waitEnded(1);
    clearInterval(pong);
    assert.equal(ended!.code, CloseCode.InternalError);
    assertProtocolError(ended!.errors[0], 'WS_ERR_HEARTBEAT_TIMEOUT', CloseCode.InternalError);
    client.destroy();
    await echo.close();
  });

  // Root cause: Ping payloads were a counter from 0, so a peer that never reads answered each Ping
  // it could not see with the next number and lived forever. The clock is mocked and each Pong is
  // sent just after its Ping and read before the next tick, the attacker's best case.
  test('a blind Ponger (Pongs 0, 1, 2, … sent without reading) kept itself alive against counter payloads; now it is reaped', async (t) => {
    let read: () => void = () => {};
    const onFrame = (m: unknown): void => {
      const frame = m as FrameMessage;
      if (frame.direction === 'in' && frame.opcode === Opcode.Pong) read();
    };
    subscribe('pef-ws:frame', onFrame);
    mockClock(t);
    const echo = await startEchoServer({ heartbeatInterval: 1000, heartbeatTimeout: 1000 });
    const { client } = await RawClient.open(echo.port);
    client.socket.pause(); // never reads
    const over = echo.waitEnded(1);
    for (let i = 0; i < 3 && echo.ended.length === 0; i++) {
      t.mock.timers.tick(1000); // Ping i is out (or its deadline has passed)
      if (echo.open.size === 0) break;
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(i, 0);
      const pongRead = new Promise<void>((resolve) => (read = resolve));
      client.sendFrame(Opcode.Pong, payload);
      await Promise.race([pongRead, over]);
    }
    assert.equal(echo.open.size, 0, 'the blind Ponger was reaped');
    const [ended] = await over;
    t.mock.timers.reset();
    unsubscribe('pef-ws:frame', onFrame);
    assert.equal(ended!.code, CloseCode.InternalError);
    assertProtocolError(ended!.errors[0], 'WS_ERR_HEARTBEAT_TIMEOUT', CloseCode.InternalError);
    client.destroy();
    await echo.close();
  });

  test('a client that answers Pings stays open across many intervals and its latency is known', async () => {
    // A 30 s deadline: a live client must never miss it, however busy the machine.
    const echo = await startEchoServer({ heartbeatInterval: 20, heartbeatTimeout: 30_000 });
    const ws = new WebSocket(`ws://127.0.0.1:${echo.port}/`);
    let pings = 0;
    ws.on('ping', () => pings++);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const [server] = [...echo.open];
    assert.equal(server!.latency, undefined, 'no round trip before the first Pong');
    while (pings < 5) await new Promise((resolve) => ws.once('ping', resolve));
    // Ping n+1 goes out only once the Pong of Ping n was read: the latency is known by now.
    assert.equal(echo.open.size, 1);
    assert.equal(typeof server!.latency, 'number');
    assert.ok(server!.latency! >= 0);
    await new Promise((resolve) => ws.once('close', resolve).close(1000));
    const ended = await echo.waitEnded(1);
    assert.deepEqual(ended, [{ code: CloseCode.Normal, reason: '', errors: [] }]);
    await echo.close();
  });

  // On a mocked clock (timers and performance.now): with real time a stall of the machine longer
  // than the timeout between two chatter messages closed the busy connection too.
  test('idleTimeout closes a connection with no messages with 1001, and messages keep another open', async (t) => {
    let now = performance.now();
    t.mock.method(performance, 'now', () => now);
    mockClock(t);
    const echo = await startEchoServer({ idleTimeout: 1000, heartbeatInterval: 0 });
    const idle = await RawClient.open(echo.port);
    const busy = new WebSocket(`ws://127.0.0.1:${echo.port}/`);
    await new Promise((resolve, reject) => busy.once('open', resolve).once('error', reject));
    now += 600;
    t.mock.timers.tick(600);
    busy.send('still here'); // activity at 600 ms, and its echo
    await new Promise((resolve) => busy.once('message', resolve));
    now += 400;
    t.mock.timers.tick(400); // 1000 ms: the idle one is closed, the busy one has been idle 400 ms
    const close = await idle.client.readFrame();
    assert.equal(close.opcode, Opcode.Close);
    assert.equal(close.payload.readUInt16BE(0), CloseCode.GoingAway);
    assert.equal(close.payload.subarray(2).toString(), 'idle timeout');
    idle.client.sendFrame(Opcode.Close, close.payload.subarray(0, 2));
    await idle.client.waitClosed();
    const [ended] = await echo.waitEnded(1);
    assert.deepEqual(ended, { code: CloseCode.GoingAway, reason: '', errors: [] });
    assert.equal(echo.open.size, 1, 'the busy connection is still open');
    t.mock.timers.reset();
    await new Promise((resolve) => busy.once('close', resolve).close(1000));
    await echo.close();
  });
});

describe('timeouts of the HTTP server', () => {
  // upgrade.ts clears a socket timeout only when the HTTP server set one (server.timeout, 0 by
  // default): this is the case where it did.
  test('an idle timeout the HTTP server set on its sockets does not reach an upgraded connection', async () => {
    const echo = await startEchoServer({ heartbeatInterval: 0 });
    echo.server.setTimeout(50); // node:http's sockets time out after 50 ms idle
    let timeouts = 0;
    echo.server.on('upgrade', (_request, socket: Socket) => socket.on('timeout', () => void timeouts++));
    const { client } = await RawClient.open(echo.port);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(timeouts, 0, 'no socket timeout after the upgrade');
    assert.equal(echo.open.size, 1, 'the connection is still open');
    client.sendFrame(Opcode.Text, 'still here');
    const frame = await client.readFrame();
    assert.deepEqual([frame.opcode, frame.payload.toString()], [Opcode.Text, 'still here']);
    client.destroy();
    await echo.close();
  });
});

/**
 * Mocked timers, and performance.now() following them: deadlines are kept as due times on that
 * clock (heartbeat.ts DueList), so both must move together.
 */
function mockClock(t: TestContext): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  t.mock.method(performance, 'now', () => Date.now());
}

/** A Heartbeat whose Pings and timeouts go to `actions`. */
function heartbeatWith(interval: number, timeout: number, actions: { ping(payload: Buffer): void; timedOut(): void }): Heartbeat {
  return new (class extends Heartbeat {
    protected ping(payload: Buffer): void {
      actions.ping(payload);
    }
    protected timedOut(): void {
      actions.timedOut();
    }
  })(interval, timeout);
}

/** Resolves once this turn's I/O has run (setImmediate is not mocked). */
function afterReads(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('Heartbeat timing (mocked clock)', () => {
  test('the first Ping goes out at a random point of the second half of the interval, then its deadline runs', async (t) => {
    mockClock(t);
    t.mock.method(Math, 'random', () => 0.5);
    const pings: string[] = [];
    let timedOut = 0;
    const heartbeat = heartbeatWith(1000, 400, { ping: (p) => void pings.push(p.toString('hex')), timedOut: () => void timedOut++ });
    heartbeat.start();
    t.mock.timers.tick(500); // the first half of the interval: then the point in the second half is drawn
    t.mock.timers.tick(249);
    assert.equal(pings.length, 0);
    t.mock.timers.tick(1); // 500 + 0.5 * 500
    assert.equal(pings.length, 1);
    assert.equal(pings[0]!.length, 2 * PING_PAYLOAD_BYTES);
    t.mock.timers.tick(399);
    assert.equal(timedOut, 0);
    t.mock.timers.tick(1);
    await afterReads(); // the verdict waits for this turn's reads
    assert.equal(timedOut, 1);
    heartbeat.stop();
  });

  // Found by a review helper: the point in the second half was drawn when the first half's timer
  // fired, so a loop stalled across that moment pushed the first Ping up to half an interval late.
  test('a first half that ran late (a stalled loop) is taken off the second, so the first Ping stays within the interval', (t) => {
    mockClock(t);
    let stall = 0;
    t.mock.method(performance, 'now', () => Date.now() + stall);
    t.mock.method(Math, 'random', () => 0.5);
    const pings: Buffer[] = [];
    const heartbeat = heartbeatWith(1000, 400, { ping: (p) => void pings.push(p), timedOut: () => {} });
    heartbeat.start();
    stall = 200; // the first half's timer runs 200 ms late: 20 of the 25 steps drawn are gone
    t.mock.timers.tick(500);
    assert.equal(pings.length, 0);
    t.mock.timers.tick(50); // 5 steps of 10 ms
    assert.equal(pings.length, 1);
    stall = 0;
    const late = heartbeatWith(1000, 400, { ping: (p) => void pings.push(p), timedOut: () => {} });
    late.start();
    stall = 300; // later than every step drawn: the Ping goes at once
    t.mock.timers.tick(500);
    assert.equal(pings.length, 2);
    heartbeat.stop();
    late.stop();
  });

  // Root cause: timers run before reads in a turn of the event loop, so after a stall (a long
  // synchronous task) the deadline fired while the Pong that came in time sat unread in the socket.
  test('a Pong read in the same turn as the deadline, after a stall, still counts', async (t) => {
    mockClock(t);
    t.mock.method(Math, 'random', () => 0);
    const pings: Buffer[] = [];
    let timedOut = 0;
    const heartbeat = heartbeatWith(1000, 400, { ping: (p) => void pings.push(p), timedOut: () => void timedOut++ });
    heartbeat.start();
    t.mock.timers.tick(500);
    t.mock.timers.tick(400); // the deadline's timer runs first...
    heartbeat.pong(pings[0]!); // ...then the read that carries the Pong
    await afterReads();
    assert.equal(timedOut, 0);
    assert.equal(typeof heartbeat.latency, 'number');
    t.mock.timers.tick(1000);
    assert.equal(pings.length, 2, 'the next Ping follows an interval later');
    heartbeat.stop();
  });

  test('a matching Pong sets latency and schedules the next Ping an interval later; other Pongs are ignored', (t) => {
    mockClock(t);
    t.mock.method(Math, 'random', () => 0);
    const pings: string[] = [];
    let timedOut = 0;
    const heartbeat = heartbeatWith(1000, 400, { ping: (p) => void pings.push(p.toString('hex')), timedOut: () => void timedOut++ });
    heartbeat.start();
    t.mock.timers.tick(500);
    assert.equal(pings.length, 1);
    const first = pings[0]!;
    heartbeat.pong(Buffer.from('00000000', 'hex')); // what a counter would have sent: not ours
    heartbeat.pong(Buffer.from(first, 'hex').subarray(0, 4)); // a prefix: not ours
    assert.equal(heartbeat.latency, undefined);
    heartbeat.pong(Buffer.from(first, 'hex'));
    assert.equal(typeof heartbeat.latency, 'number');
    t.mock.timers.tick(999);
    assert.deepEqual(pings, [first]);
    t.mock.timers.tick(1);
    assert.equal(pings.length, 2);
    assert.notEqual(pings[1], first, 'each Ping has its own random payload');
    assert.equal(timedOut, 0);
    heartbeat.stop();
    t.mock.timers.tick(10_000);
    assert.equal(timedOut, 0, 'a stopped heartbeat never fires');
  });

  test('with heartbeatTimeout 0 Pings go on every interval and nothing times out', (t) => {
    mockClock(t);
    t.mock.method(Math, 'random', () => 1);
    let pings = 0;
    let timedOut = 0;
    const heartbeat = heartbeatWith(100, 0, { ping: () => void pings++, timedOut: () => void timedOut++ });
    heartbeat.start();
    t.mock.timers.tick(50); // the first half of the interval
    for (let i = 0; i < 10; i++) t.mock.timers.tick(100);
    assert.equal(pings, 10);
    assert.equal(timedOut, 0);
    heartbeat.stop();
  });

  test('IdleTimer fires only after the timeout has passed with no touch', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    t.mock.method(performance, 'now', () => now);
    let idle = 0;
    const timer = new IdleTimer(1000, () => void idle++);
    timer.start();
    now = 600;
    t.mock.timers.tick(600);
    timer.touch();
    now = 1000;
    t.mock.timers.tick(400); // first check: only 400 ms idle, re-armed for 600
    assert.equal(idle, 0);
    now = 1600;
    t.mock.timers.tick(600);
    assert.equal(idle, 1);
    timer.stop();
  });

  // Before, each first Ping was timed on one of 51 lists (a point of the second half), each with its
  // Node timer: a connection that closed before its first Ping had often set and cleared a Node
  // timer of its own, its list holding no other connection (measured on the upgrade benchmark).
  test('heartbeats started at any time share one Node timer until the first half of their interval has passed', async () => {
    const timers = trackTimers();
    const open: Heartbeat[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        const heartbeat = heartbeatWith(1000, 400, { ping: () => {}, timedOut: () => {} });
        heartbeat.start();
        if (i % 2 === 1) heartbeat.stop(); // half of them close at once, half stay open
        else open.push(heartbeat);
      }
      assert.equal(timers.created(), 1, 'the one timer of the first half');
    } finally {
      for (const heartbeat of open) heartbeat.stop();
      await timers.stop();
    }
  });

  test('a DestroyTimer destroys its socket when due, not when stopped; closing sockets share one Node timer', async (t) => {
    const timers = trackTimers();
    const waiting = Array.from({ length: 10 }, () => new DestroyTimer({ destroy: () => assert.fail('destroyed after stop()') }));
    for (const timer of waiting) timer.start(60_000);
    for (const timer of waiting) timer.stop();
    assert.equal(timers.created(), 1, 'one Node timer for the ten');
    await timers.stop();

    mockClock(t);
    const destroyed: number[] = [];
    const closing = Array.from({ length: 10 }, (_, i) => new DestroyTimer({ destroy: () => void destroyed.push(i) }));
    for (const timer of closing) timer.start(200);
    closing[3]!.stop();
    t.mock.timers.tick(199);
    assert.deepEqual(destroyed, []);
    t.mock.timers.tick(1);
    assert.deepEqual(destroyed, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
  });

  test('the defaults are a Ping every 30 s, a 30 s deadline and no idle timeout', () => {
    const options = resolveOptions();
    assert.deepEqual([options.heartbeatInterval, options.heartbeatTimeout, options.idleTimeout], [30_000, 30_000, 0]);
    assert.throws(() => resolveOptions({ heartbeatInterval: -1 }), {
      name: 'RangeError',
      message: 'heartbeatInterval must be a number of milliseconds (0 turns it off)',
    });
  });
});

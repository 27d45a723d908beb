// Shared by the adversarial suite: a real echo server on 127.0.0.1 built on acceptWebSocket, raw
// attack sockets, well-behaved bystanders (the ws client, an independent implementation), and the
// checks every attack ends with: no socket or timer left behind, heap growth under a cap.

import { createServer, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHook } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { BackpressureMessage } from '../../src/node/trace.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { acceptWebSocket } from '../../src/node/upgrade.js';
import type { WebSocketConnection } from '../../src/node/transport.js';
import type { WebSocketOptions } from '../../src/node/options.js';
import { ProtocolError } from '../../src/protocol/errors.js';

/** What one server-side connection ended with. */
export interface Ended {
  code: number;
  reason: string;
  errors: Error[];
}

/** An echo server: every message goes back with its own type; every connection's end is recorded. */
export interface EchoServer {
  readonly server: Server;
  readonly port: number;
  /** Live connections. */
  readonly open: Set<WebSocketConnection>;
  /** Connections that have ended, in the order they ended. */
  readonly ended: Ended[];
  /** Handshakes refused (acceptWebSocket returned null). */
  refused: number;
  /** The most bytes any connection had waiting to be written, seen right after each echo's send(). */
  peakBuffered: number;
  /** Resolves once `count` connections have ended in all. */
  waitEnded(count: number): Promise<Ended[]>;
  /** Closes the listener and destroys what is left; resolves when the server has closed. */
  close(): Promise<void>;
}

/** Servers started and not yet closed: cleanup() closes them when a test failed half-way. */
const running = new Set<EchoServer>();

/** Closes every echo server a failed test left running, so the process still exits (use in afterEach). */
export async function cleanup(): Promise<void> {
  await Promise.all([...running].map((echo) => echo.close()));
}

export async function startEchoServer(options: WebSocketOptions = {}, serverOptions: ServerOptions = {}): Promise<EchoServer> {
  const server = createServer(serverOptions, (_req, res) => res.writeHead(426).end());
  const open = new Set<WebSocketConnection>();
  const ended: Ended[] = [];
  let waiters: { count: number; resolve: (value: Ended[]) => void }[] = [];
  const sockets = new Set<import('node:stream').Duplex>();
  const state: EchoServer = {
    server,
    port: 0,
    open,
    ended,
    refused: 0,
    peakBuffered: 0,
    waitEnded(count) {
      if (ended.length >= count) return Promise.resolve(ended.slice());
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close() {
      running.delete(state);
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  server.on('upgrade', (request, socket, head) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const errors: Error[] = [];
    const ws: WebSocketConnection | null = acceptWebSocket(
      request,
      socket,
      head,
      {
        onMessage: (message, type) => {
          ws!.send(message, type);
          state.peakBuffered = Math.max(state.peakBuffered, ws!.bufferedAmount);
        },
        onError: (error) => void errors.push(error),
        onClose: (code, reason) => {
          open.delete(ws!);
          ended.push({ code, reason, errors });
          const ready = waiters.filter((w) => ended.length >= w.count);
          waiters = waiters.filter((w) => ended.length < w.count);
          for (const w of ready) w.resolve(ended.slice());
        },
      },
      options,
    );
    if (ws) open.add(ws);
    else state.refused++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (state as { port: number }).port = (server.address() as AddressInfo).port;
  running.add(state);
  return state;
}

// ------------------------------------------------------------------ peers that do not read

/**
 * Holds everything the server writes to this connection in its own socket buffer (the socket is
 * corked), as if the peer's receive buffer and the kernel's were full, whatever their size on
 * this machine (tcp_rmem may let a non-reading peer absorb 32 MiB). Returns the release (uncork).
 */
export function holdWrites(ws: WebSocketConnection): () => void {
  const socket = ws.request.socket;
  socket.cork();
  return () => socket.uncork();
}

/** The pef-ws:backpressure messages published from now on: what the server decided, and when. */
export interface BackpressureWatch {
  readonly messages: BackpressureMessage[];
  /** The first message with this action (already seen, or the next one). */
  first(action: BackpressureMessage['action']): Promise<BackpressureMessage>;
  /** Whether a message with this action has been seen. */
  seen(action: BackpressureMessage['action']): boolean;
  stop(): void;
}

export function watchBackpressure(): BackpressureWatch {
  const messages: BackpressureMessage[] = [];
  let waiters: { action: BackpressureMessage['action']; resolve: (m: BackpressureMessage) => void }[] = [];
  const listener = (message: unknown): void => {
    const m = message as BackpressureMessage;
    messages.push(m);
    const ready = waiters.filter((w) => w.action === m.action);
    waiters = waiters.filter((w) => w.action !== m.action);
    for (const w of ready) w.resolve(m);
  };
  subscribe('pef-ws:backpressure', listener);
  return {
    messages,
    first(action) {
      const found = messages.find((m) => m.action === action);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ action, resolve }));
    },
    seen: (action) => messages.some((m) => m.action === action),
    stop: () => void unsubscribe('pef-ws:backpressure', listener),
  };
}

// ------------------------------------------------------------------ leaks and memory

const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate', 'TCPWRAP', 'PipeWrap']);

/** Active handles of the kinds an attack could leak (sockets, servers, referenced timers), by kind. */
export function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) if (WATCHED.has(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/**
 * Waits until no more handles of each kind are active than `before`, then asserts it. The wait
 * ends as soon as they are gone; its 15 s cap is only a guard for a machine under load.
 */
export async function assertNoLeaks(before: Record<string, number>): Promise<void> {
  const exceeds = (now: Record<string, number>) => Object.entries(now).some(([kind, n]) => n > (before[kind] ?? 0));
  for (let i = 0; i < 300 && exceeds(handles()); i++) await new Promise((r) => setTimeout(r, 50));
  const now = handles();
  for (const [kind, n] of Object.entries(now)) {
    assert.ok(n <= (before[kind] ?? 0), `${n} ${kind} active after the attack, ${before[kind] ?? 0} before`);
  }
}

/**
 * Counts timers created from now on that are still pending, unref'd ones included (which
 * getActiveResourcesInfo() does not list): heartbeat, idle and close timers must all go with their
 * connections. created() is how many were made so far, pending or not; stop() disables the tracking
 * and returns how many are left.
 */
export function trackTimers(): { created(): number; stop(): Promise<number> } {
  const pending = new Set<number>();
  let created = 0;
  const hook = createHook({
    init(id, type) {
      if (type !== 'Timeout') return;
      pending.add(id);
      created++;
    },
    destroy(id) {
      pending.delete(id);
    },
  }).enable();
  return {
    created: () => created,
    async stop() {
      // destroy hooks run asynchronously after a timer is cleared: give them a few turns.
      for (let i = 0; i < 20 && pending.size !== 0; i++) await new Promise((resolve) => setImmediate(resolve));
      hook.disable();
      return pending.size;
    },
  };
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and Buffer memory after a full collection, in bytes. */
export function memory(): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

export const MiB = 1024 * 1024;

// ------------------------------------------------------------------ bystanders

/** A deterministic generator (xorshift32), so every run sends the same bytes. */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const TEXT_PIECES = ['a', 'z', ' ', 'é', 'ß', '€', '日本', '😀', '\u0000', '\uffff'];

/** A message of mixed kind and size: text with multi-byte characters, or binary. */
export function makeMessage(next: () => number, maxBytes: number): { data: string | Buffer; binary: boolean } {
  const size = Math.floor(next() ** 3 * maxBytes);
  if (next() < 0.5) {
    let text = '';
    while (Buffer.byteLength(text) < size) text += TEXT_PIECES[Math.floor(next() * TEXT_PIECES.length)]!;
    return { data: text, binary: false };
  }
  const data = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) data[i] = Math.floor(next() * 256);
  return { data, binary: true };
}

/**
 * A well-behaved client running beside an attack: sends `count` messages (some fragmented),
 * keeps at most `window` in flight, and checks every echo byte-exact and in order.
 */
export async function bystander(port: number, seed: number, count = 100, window = 8, maxBytes = 8192): Promise<number> {
  const next = random(seed);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const expected: { data: string | Buffer; binary: boolean }[] = [];
  let sent = 0;
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent < count && sent - received < window) {
        const message = makeMessage(next, maxBytes);
        expected.push(message);
        sent++;
        if (next() < 0.25 && Buffer.byteLength(message.data) > 2) {
          // Fragmented: the first half, then the rest as a continuation frame.
          const bytes = typeof message.data === 'string' ? Buffer.from(message.data) : message.data;
          const half = bytes.length >> 1;
          ws.send(bytes.subarray(0, half), { binary: message.binary, fin: false });
          ws.send(bytes.subarray(half), { binary: message.binary, fin: true });
        } else {
          ws.send(message.data, { binary: message.binary });
        }
      }
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const want = expected[received]!;
      try {
        assert.equal(isBinary, want.binary, `message ${received}: type`);
        if (want.binary) assert.ok(Buffer.compare(data, want.data as Buffer) === 0, `message ${received}: bytes differ`);
        else assert.equal(data.toString('utf8'), want.data, `message ${received}: text differs`);
      } catch (error) {
        reject(error);
        return;
      }
      received++;
      if (received === count) resolve();
      else pump();
    });
    ws.once('close', (code) => reject(new Error(`bystander closed with ${code} after ${received} echoes`)));
    ws.once('error', reject);
    pump();
  });
  ws.removeAllListeners('close');
  await new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    ws.close(1000);
  });
  return received;
}

/** Asserts that an error is a ProtocolError with this code and close code. */
export function assertProtocolError(error: unknown, code: string, closeCode: number): void {
  assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.equal(error.closeCode, closeCode);
}

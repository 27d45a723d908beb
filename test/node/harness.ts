// A real node:http server on 127.0.0.1, port 0, whose 'upgrade' event goes to acceptWebSocket.
// Every hook call of every connection is recorded in order, so tests can wait for one and assert
// the sequence; the server-side socket's writes are counted.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptWebSocket } from '../../src/node/upgrade.js';
import type { WebSocketConnection } from '../../src/node/transport.js';
import type { WebSocketOptions } from '../../src/node/options.js';
import type { WebSocketHooks } from '../../src/node/types.js';

export type HookName = keyof WebSocketHooks;

export interface HookCall {
  hook: HookName;
  args: unknown[];
}

/** One accepted connection: its WebSocketConnection, its server-side socket, and what its hooks saw. */
export class Session {
  readonly socket: Duplex;
  readonly request: IncomingMessage;
  /** A copy of the 'upgrade' event's head bytes (the transport unmasks the original in place). */
  readonly head: Buffer;
  ws!: WebSocketConnection;
  readonly calls: HookCall[] = [];
  /** socket.write calls made on the server side (the 101 response is the first). */
  writes = 0;
  /** Bytes handed to socket.write. */
  bytesWritten = 0;
  /**
   * Writes that reach the socket's handle: calls of the stream's `_write` and `_writev` (the
   * Writable implementer's API), where corked socket.write calls arrive together as one writev.
   */
  handleWrites = 0;
  #waiters: { hook: HookName; count: number; resolve: (args: unknown[]) => void }[] = [];

  constructor(socket: Duplex, request: IncomingMessage, head: Buffer) {
    this.socket = socket;
    this.request = request;
    this.head = Buffer.from(head);
    const write = socket.write;
    socket.write = ((chunk: Uint8Array | string, ...rest: unknown[]) => {
      this.writes++;
      this.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      return (write as (...args: unknown[]) => boolean).call(socket, chunk, ...rest);
    }) as Duplex['write'];
    const impl = socket as Duplex & { _writev?: (...args: unknown[]) => void };
    const _write = impl._write;
    impl._write = (...args: Parameters<Duplex['_write']>) => {
      this.handleWrites++;
      _write.apply(socket, args);
    };
    const _writev = impl._writev;
    if (_writev) {
      impl._writev = (...args: unknown[]) => {
        this.handleWrites++;
        _writev.apply(socket, args);
      };
    }
  }

  /** The names of the hooks called so far, in order. */
  get sequence(): HookName[] {
    return this.calls.map((call) => call.hook);
  }

  /** Calls of one hook. */
  callsOf(hook: HookName): unknown[][] {
    return this.calls.filter((call) => call.hook === hook).map((call) => call.args);
  }

  /** Waits until `hook` has been called `count` times in all; resolves with that call's arguments. */
  waitFor(hook: HookName, count = 1): Promise<unknown[]> {
    const seen = this.callsOf(hook);
    if (seen.length >= count) return Promise.resolve(seen[count - 1]!);
    return new Promise((resolve) => this.#waiters.push({ hook, count, resolve }));
  }

  /** Waits for onClose and returns its code and reason. */
  async closed(): Promise<[number, string]> {
    const [code, reason] = await this.waitFor('onClose');
    return [code as number, reason as string];
  }

  record(hook: HookName, args: unknown[]): void {
    this.calls.push({ hook, args });
    const count = this.callsOf(hook).length;
    const ready = this.#waiters.filter((w) => w.hook === hook && w.count <= count);
    this.#waiters = this.#waiters.filter((w) => !ready.includes(w));
    for (const waiter of ready) waiter.resolve(this.callsOf(hook)[waiter.count - 1]!);
  }
}

export interface HarnessOptions {
  /** The test's own hooks, called after the call is recorded; what they return is returned. */
  hooks?: (session: Session) => WebSocketHooks;
  options?: WebSocketOptions;
  /** Runs in the 'upgrade' listener before acceptWebSocket (to break the socket first, say). */
  beforeAccept?: (socket: Duplex) => void;
}

export class Harness {
  readonly server: Server;
  readonly sessions: Session[] = [];
  port = 0;
  #waiters: ((session: Session) => void)[] = [];

  private constructor(options: HarnessOptions) {
    this.server = createServer((_req, res) => {
      res.writeHead(426).end();
    });
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const session = new Session(socket, request, head);
      const own = options.hooks?.(session) ?? {};
      const hooks: WebSocketHooks = {};
      for (const name of ['onOpen', 'onMessage', 'onDrain', 'onError', 'onClose'] as const) {
        // Every hook is present (so the transport's "is there an onDrain" paths are exercised the same way).
        (hooks as Record<string, unknown>)[name] = (...args: unknown[]) => {
          session.record(name, args);
          const hook = own[name] as ((...a: unknown[]) => unknown) | undefined;
          return hook?.apply(own, args);
        };
      }
      options.beforeAccept?.(socket);
      const ws = acceptWebSocket(request, socket, head, hooks, options.options);
      if (ws === null) return;
      session.ws = ws;
      this.sessions.push(session);
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake(session);
    });
  }

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const harness = new Harness(options);
    await new Promise<void>((resolve) => harness.server.listen(0, '127.0.0.1', resolve));
    harness.port = (harness.server.address() as AddressInfo).port;
    return harness;
  }

  /** The session of the `index`-th accepted connection (0-based), once it is accepted. */
  session(index = 0): Promise<Session> {
    const existing = this.sessions[index];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const check = (): void => {
        const found = this.sessions[index];
        if (found) resolve(found);
        else this.#waiters.push(check);
      };
      this.#waiters.push(check);
    });
  }

  /** Destroys every upgraded socket and closes the server. */
  async close(): Promise<void> {
    for (const session of this.sessions) session.socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Resolves after the current I/O phase: lets pending socket events and callbacks run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// Shared helpers of the framework tests: a router on a real node:http server on 127.0.0.1 port 0,
// `ws` clients, and promises for what a client sees (a message, the close, an HTTP refusal).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { WebSocketRouter } from '../../src/index.js';

export interface Listening {
  /** ws://127.0.0.1:<port> without a trailing slash. */
  readonly base: string;
  readonly port: number;
  readonly server: Server;
  /** Closes the router gracefully, then the server. */
  close(): Promise<void>;
}

/** Attaches `router` to a fresh node:http server listening on 127.0.0.1, port 0. */
export async function listen(router: WebSocketRouter, server: Server = createServer((_req, res) => res.end('plain http\n'))): Promise<Listening> {
  router.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `ws://127.0.0.1:${port}`,
    port,
    server,
    async close() {
      await router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A promise with its resolve function outside. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Opens a `ws` client and resolves once it is open. */
export function connect(url: string, protocols?: string | string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

export interface Received {
  readonly data: string | Buffer;
  readonly isBinary: boolean;
}

/** The next message a client receives: text as a string, binary as a Buffer. */
export function nextMessage(ws: WebSocket): Promise<Received> {
  return new Promise((resolve) => {
    ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data: isBinary ? data : data.toString('utf8'), isBinary }));
  });
}

/** The next `count` messages, in order. */
export function messages(ws: WebSocket, count: number): Promise<Received[]> {
  return new Promise((resolve) => {
    const received: Received[] = [];
    const onMessage = (data: Buffer, isBinary: boolean): void => {
      received.push({ data: isBinary ? data : data.toString('utf8'), isBinary });
      if (received.length === count) {
        ws.off('message', onMessage);
        resolve(received);
      }
    };
    ws.on('message', onMessage);
  });
}

/** The close code and reason a client sees. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed');
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') })));
}

/** Attempts a handshake that the server refuses: its HTTP status, and body. */
export function refused(url: string, protocols?: string | string[], origin?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, origin === undefined ? {} : { origin });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the handshake was accepted'));
    });
    ws.once('error', () => {}); // ws reports the refusal as an error too, after unexpected-response
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        ws.terminate();
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
  });
}

/** A logger that keeps what it is given, for the errors the framework reports. */
export function memoryLogger(): { error(...args: unknown[]): void; calls: unknown[][] } {
  const calls: unknown[][] = [];
  return { calls, error: (...args: unknown[]) => void calls.push(args) };
}

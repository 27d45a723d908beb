// Admission limits checked before a handshake is accepted: how many header fields a request may
// carry, how many connections a router holds, and how many one address may hold. Each refusal is a
// HandshakeError, answered like any other with its status and a one-line reason.

import type { IncomingMessage } from 'node:http';
import { HandshakeError } from '../protocol/errors.js';
import type { WebSocketOptions } from './options.js';

/**
 * A request with more header fields than `max` gets 431. node:http caps the head's size (16 KiB,
 * 431) but not the number of fields: past `maxHeadersCount` (2000) it silently drops the rest, so a
 * request is refused whole rather than judged on a truncated head.
 */
export function checkHeaderCount(request: IncomingMessage, max: number): HandshakeError | null {
  const count = request.rawHeaders.length >>> 1;
  if (count <= max) return null;
  return new HandshakeError('WS_ERR_HANDSHAKE_HEADERS', 431, `too many header fields (at most ${max})`);
}

/** The header fields the opening handshake and the Origin check read (RFC 6455 §4.2.1, §10.2). */
const HANDSHAKE_FIELDS = new Set([
  'host',
  'upgrade',
  'connection',
  'origin',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/**
 * The handshake's header fields, read from `rawHeaders` as node:http would present them (names in
 * lower case; a repeated Host keeps its first value, other repeated fields are joined with ', ').
 * Reading `request.headers` instead would make node:http build its headers object (it does so on
 * first access) and keep it with the request for the life of the connection; this way it is built
 * only if the application asks for it.
 */
export function handshakeHeaders(request: IncomingMessage): Record<string, string> {
  const raw = request.rawHeaders;
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HANDSHAKE_FIELDS.has(name)) continue;
    const value = raw[i + 1]!;
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (name !== 'host') headers[name] = `${seen}, ${value}`;
  }
  return headers;
}

/**
 * Counts live connections, in all and per remote address. admit() refuses with 503 when `max`
 * are open and with 429 when the request's address already holds `maxPerIp` (0: no limit). The
 * per-address count is off by default: behind a proxy every client has the proxy's address.
 */
export class ConnectionLimiter {
  #open = 0;
  readonly #perIp = new Map<string, number>();

  /** Live connections admitted and not yet released. */
  get size(): number {
    return this.#open;
  }

  /** Takes a slot: returns the address it was counted under (null: addresses are not counted), or the refusal. */
  admit(request: IncomingMessage, max: number, maxPerIp: number): string | null | HandshakeError {
    if (max > 0 && this.#open >= max) {
      return new HandshakeError('WS_ERR_HANDSHAKE_FULL', 503, 'server full: too many WebSocket connections', { 'Retry-After': '5' });
    }
    let ip: string | null = null;
    if (maxPerIp > 0) {
      ip = request.socket?.remoteAddress ?? '';
      const held = this.#perIp.get(ip) ?? 0;
      if (held >= maxPerIp) {
        return new HandshakeError('WS_ERR_HANDSHAKE_IP_LIMIT', 429, `too many WebSocket connections from one address (at most ${maxPerIp})`);
      }
      this.#perIp.set(ip, held + 1);
    }
    this.#open++;
    return ip;
  }

  /** Gives back a slot that admit() counted under `ip`. */
  release(ip: string | null): void {
    this.#open--;
    if (ip !== null) {
      const held = this.#perIp.get(ip)! - 1;
      if (held === 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, held);
    }
  }
}

/**
 * What an admitted connection holds until it is over: its place in the router's counts and, when
 * its class sets limits of its own, in the class's. One small object, no closures: a router holds
 * one per live connection.
 */
export class AdmissionSlot {
  readonly #outer: ConnectionLimiter;
  readonly #outerIp: string | null;
  readonly #inner: ConnectionLimiter | null;
  readonly #innerIp: string | null;
  #released = false;

  constructor(outer: ConnectionLimiter, outerIp: string | null, inner: ConnectionLimiter | null, innerIp: string | null) {
    this.#outer = outer;
    this.#outerIp = outerIp;
    this.#inner = inner;
    this.#innerIp = innerIp;
  }

  /** Gives the slot back; calls after the first do nothing. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#inner?.release(this.#innerIp);
    this.#outer.release(this.#outerIp);
  }
}

/**
 * A router's admission: its own maxConnections and maxConnectionsPerIp over all its routes, then a
 * class's own when the class's `static options` set them (counted over that class's connections).
 */
export class Admission {
  readonly #all = new ConnectionLimiter();
  readonly #perClass = new WeakMap<object, ConnectionLimiter>();
  readonly #max: number;
  readonly #maxPerIp: number;

  constructor(routerOptions: Required<Pick<WebSocketOptions, 'maxConnections' | 'maxConnectionsPerIp'>>) {
    this.#max = routerOptions.maxConnections;
    this.#maxPerIp = routerOptions.maxConnectionsPerIp;
  }

  /** Takes a slot for `request` on the route of `key` (a class); its own limits, if any, in `classOptions`. */
  admit(request: IncomingMessage, key: object, classOptions: WebSocketOptions | undefined): AdmissionSlot | HandshakeError {
    const outerIp = this.#all.admit(request, this.#max, this.#maxPerIp);
    if (outerIp instanceof HandshakeError) return outerIp;
    const max = classOptions?.maxConnections;
    const maxPerIp = classOptions?.maxConnectionsPerIp;
    if (max === undefined && maxPerIp === undefined) return new AdmissionSlot(this.#all, outerIp, null, null);
    let limiter = this.#perClass.get(key);
    if (limiter === undefined) this.#perClass.set(key, (limiter = new ConnectionLimiter()));
    const innerIp = limiter.admit(request, max ?? 0, maxPerIp ?? 0);
    if (innerIp instanceof HandshakeError) {
      this.#all.release(outerIp);
      return innerIp;
    }
    return new AdmissionSlot(this.#all, outerIp, limiter, innerIp);
  }
}

// The lowest-level entry point: take the socket of node:http's 'upgrade' event, run the opening
// handshake, and either answer with an HTTP error or bind a WebSocketConnection to the socket.

import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Connection } from '../protocol/connection.js';
import { HandshakeError } from '../protocol/errors.js';
import { acceptHandshake, rejectResponse } from '../protocol/handshake.js';
import { ACCEPT_FIELDS, checkHeaderFields } from '../protocol/http.js';
import { withCompression } from '../protocol/deflate.js';
import { resolveOptions, type ResolvedOptions, type WebSocketOptions } from './options.js';
import { checkHeaderCount } from './limits.js';
import { checkOrigin, reportRefusedOrigin } from './origin.js';
import { UpgradeRequest } from './request.js';
import { ConnectionTrace } from './trace.js';
import { type ConnectionOwner, WebSocketConnection } from './transport.js';
import type { Logger, WebSocketHooks } from './types.js';
import { holdUpgrade, type PendingUpgrade, type UpgradeHook } from './upgrade-hook.js';

const ignore = (): void => {};

// A WebSocketHandler (src/framework/handler.ts) passed as `hooks` carries this brand and finds its
// connection under the second key. Named through Symbol.for: node/ does not import the framework.
const HANDLER_BRAND = Symbol.for('pef-front-websocket.handler');
const HANDLER_CONNECTION = Symbol.for('pef-front-websocket.connection');

/** What an options object held when it was last resolved, and what that gave (see sharedOptions). */
interface Resolution {
  /** The object's own enumerable keys and their values, in order, at the time. */
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
  readonly resolved: ResolvedOptions;
}

/** The resolution last made from each options object. */
const resolvedFor = new WeakMap<WebSocketOptions, Resolution>();
let resolvedDefaults: ResolvedOptions | null = null;

/**
 * The options resolved for one connection, which keeps them. A change to the options object
 * applies to the next connection: while the object holds the same values as when it was last
 * resolved, that resolution is returned (connections accepted with the same options share one
 * object instead of holding about 170 bytes each, and the upgrade skips the checks); otherwise it
 * is resolved and checked again (resolveOptions), and still shares the earlier object when the
 * result is the same. Values are compared by identity, so the headers are checked again here (an
 * object changed in place), as resolveOptions checks them.
 */
function sharedOptions(options: WebSocketOptions | undefined): ResolvedOptions {
  if (options === undefined) return (resolvedDefaults ??= resolveOptions());
  const last = resolvedFor.get(options);
  if (last !== undefined && holdsSame(options, last)) {
    // The one option that is checked and can change in place: a bad field throws at the call, as
    // when resolveOptions ran, not later (with an upgrade hook, as a rejected promise; found by a
    // review helper).
    checkHeaderFields(last.resolved.headers, ACCEPT_FIELDS);
    return last.resolved;
  }
  // Each value is read once, and what is resolved is what is recorded: a getter may answer
  // differently on a second read (found by a review helper). fromEntries, not assignment: a key
  // named __proto__ stays a key.
  const keys = Object.keys(options);
  const values = keys.map((key) => (options as Record<string, unknown>)[key]);
  let resolved = resolveOptions(Object.fromEntries(keys.map((key, i) => [key, values[i]])) as WebSocketOptions);
  if (last !== undefined && sameOptions(last.resolved, resolved)) resolved = last.resolved;
  resolvedFor.set(options, { keys, values, resolved });
  return resolved;
}

function holdsSame(options: WebSocketOptions, last: Resolution): boolean {
  let count = 0;
  for (const key in options) {
    if (!Object.prototype.hasOwnProperty.call(options, key)) continue;
    if (last.keys[count] !== key || last.values[count] !== (options as Record<string, unknown>)[key]) return false;
    count++;
  }
  return count === last.keys.length;
}

function sameOptions(a: ResolvedOptions, b: ResolvedOptions): boolean {
  const keys = Object.keys(a) as (keyof ResolvedOptions)[];
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}

/** A WebSocketHandler passed as hooks (to acceptWebSocket or connect) gets its connection, so `this.send` works. */
export function bindHandler(hooks: WebSocketHooks, ws: WebSocketConnection): void {
  if (HANDLER_BRAND in hooks) (hooks as Record<symbol, unknown>)[HANDLER_CONNECTION] = ws;
}

/**
 * Answers an upgrade request that will not become a WebSocket: the status, its headers and a
 * one-line body, then the socket is ended (and destroyed once the response is out). The response
 * is checked before anything is written (see rejectResponse): RangeError
 * `ERR_HTTP_INVALID_STATUS_CODE` for a status outside 300-599, TypeError (`code`
 * `ERR_INVALID_HTTP_TOKEN`, `ERR_INVALID_CHAR`, `ERR_HANDSHAKE_FIELD` or `ERR_REQUIRED_FIELD`) for
 * a header that cannot be written or a field the status requires and lacks (405 Allow, 426 Upgrade).
 */
export function rejectUpgrade(
  socket: Duplex,
  error: Pick<HandshakeError, 'status' | 'message' | 'headers'>,
): void {
  const response = rejectResponse(error);
  socket.on('error', ignore);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(response);
}

/**
 * Calls the user's selectProtocol. What it throws must not leave the 'upgrade' listener (an
 * uncaught exception there takes the server down): it is logged and the request gets a 500.
 */
function guardedSelect(
  select: NonNullable<WebSocketOptions['selectProtocol']>,
  offered: readonly string[],
  request: IncomingMessage,
  logger: Logger,
): ReturnType<NonNullable<WebSocketOptions['selectProtocol']>> {
  try {
    return select(offered, request);
  } catch (error) {
    logger.error('pef-front-websocket: selectProtocol threw', error);
    return new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 500, 'subprotocol selection failed');
  }
}

/**
 * Options of acceptWebSocket: the connection's options and an upgrade hook.
 * @template Data What the hook returns, the connection's `data`.
 */
export interface AcceptOptions<Data = unknown> extends WebSocketOptions {
  /**
   * Decides the request before the 101 (a cookie or token check) and gives the connection its
   * `data`; see UpgradeHook. With it, acceptWebSocket returns a promise. Default none: accepted
   * at once, data undefined.
   */
  upgrade?: UpgradeHook<Data> | undefined;
}

/**
 * Runs the opening handshake on an upgrade request (RFC 6455 §4.2) and, if it is valid, binds
 * `hooks` to the new connection: onOpen once the 101 response is flushed, then the `head` bytes
 * and everything read after them. Returns the connection, or null when the request was refused
 * with an HTTP error (400, 403, 405 or 426 with a one-line reason).
 *
 * With an `upgrade` hook in the options, returns a promise instead: the hook runs once the
 * request has passed the handshake and Origin checks, and the connection (with the hook's result
 * as `connection.data`) or null (refused, or the client left) comes when it has decided.
 */
export function acceptWebSocket<Data>(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  hooks: WebSocketHooks,
  options: AcceptOptions<Data> & { upgrade: UpgradeHook<Data> },
): Promise<WebSocketConnection | null>;
export function acceptWebSocket(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  hooks: WebSocketHooks,
  options?: WebSocketOptions,
): WebSocketConnection | null;
export function acceptWebSocket(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  hooks: WebSocketHooks,
  options?: AcceptOptions,
): WebSocketConnection | null | Promise<WebSocketConnection | null> {
  const resolved = sharedOptions(options);
  const hook = options?.upgrade;
  const target = { hook, label: 'the upgrade hook', makeHooks: () => hooks };
  if (hook === undefined) {
    let connection: WebSocketConnection | null = null;
    upgradeWith(request, socket, head, resolved, { ...target, done: (opened) => (connection = opened) });
    return connection;
  }
  return new Promise((resolve) => upgradeWith(request, socket, head, resolved, { ...target, done: resolve }));
}

/** How upgradeWith opens a connection. @internal */
export interface UpgradeTarget {
  /** Runs after the handshake checks pass, before the 101; none: accept at once with data undefined. */
  readonly hook: UpgradeHook | undefined;
  /** Names the hook in the log. */
  readonly label: string;
  /** The hooks of the new connection; null when it answered the request itself (a constructor threw). */
  makeHooks(): WebSocketHooks | null;
  /** The connection, or null when the request was refused or the client left. Called once. */
  done(connection: WebSocketConnection | null): void;
  /** Told when the connection is over (a router); none for acceptWebSocket. */
  readonly owner?: ConnectionOwner | undefined;
}

/**
 * acceptWebSocket's work, shared with the router: the handshake and Origin checks, the upgrade
 * hook, then the 101 and the connection. Returns the running hook, or null when it is decided.
 * @internal
 */
export function upgradeWith(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  resolved: ResolvedOptions,
  target: UpgradeTarget,
): PendingUpgrade | null {
  const selectProtocol = resolved.selectProtocol;
  // Admission first, before any user code runs: too many header fields (431), then cross-site
  // WebSocket hijacking (RFC 6455 §10.2: a browser page from another host, 403).
  let refused = resolved.maxHeaders > 0 ? checkHeaderCount(request, resolved.maxHeaders) : null;
  if (refused === null) {
    refused = checkOrigin(request, resolved.origins);
    if (refused !== null) reportRefusedOrigin(request, resolved.logger);
  }
  const handshake = refused ?? acceptHandshake(request, {
    selectProtocol: selectProtocol && ((offered) => guardedSelect(selectProtocol, offered, request, resolved.logger)),
    extensions: withCompression(resolved.extensions, resolved.compression),
    headers: resolved.headers,
  });
  // What the connection keeps of the request (not node:http's IncomingMessage: docs/benchmarks.md).
  const kept = UpgradeRequest.from(request);
  const trace = new ConnectionTrace(kept, resolved.trace);
  const refuse = (error: HandshakeError): void => {
    trace.handshake(error.status, '', '', error);
    rejectUpgrade(socket, error);
    target.done(null);
  };
  if (handshake instanceof HandshakeError) {
    refuse(handshake);
    return null;
  }
  const accepted = handshake;
  const open = (data: unknown, head: Buffer): void => {
    const hooks = target.makeHooks();
    if (hooks === null) return target.done(null);
    trace.handshake(101, accepted.protocol, accepted.extensions);
    const net = socket as Duplex & { setNoDelay?: (noDelay: boolean) => void; setTimeout?: (ms: number) => void; timeout?: number };
    // Small frames leave at once (no Nagle delay); no idle timeout is inherited from the HTTP server
    // (a net.Socket's `timeout` is undefined or 0 when it set none, node:http's default: nothing to
    // clear then; another Duplex, a wrapper, may forward setTimeout without showing `timeout`).
    net.setNoDelay?.(true);
    if (net.timeout || !(socket instanceof Socket)) net.setTimeout?.(0);
    const conn = new Connection({
      maxPayload: resolved.maxPayload,
      extension: accepted.extension,
      onFrame: trace.onFrame,
      decodeText: resolved.decodeText,
    });
    const ws = new WebSocketConnection(socket, conn, hooks, kept, accepted.protocol, accepted.extensions, resolved, trace, target.owner ?? null);
    trace.connection = ws;
    ws.data = data;
    bindHandler(hooks, ws);
    ws.start(accepted.response, head);
    target.done(ws);
  };
  if (target.hook === undefined) {
    open(undefined, head);
    return null;
  }
  const hold = { timeout: resolved.upgradeTimeout, logger: resolved.logger, label: target.label };
  return holdUpgrade(request, socket, head, target.hook, hold, open, refuse, () => target.done(null));
}

// The upgrade hook: user code that decides, before the 101 is written, whether an upgrade request
// becomes a WebSocket (a cookie or token check) and what data the connection carries. While an
// async hook runs the socket is held: read, so that a client that hangs up is noticed at once
// (the hook's signal aborts, nothing else runs), and its early bytes kept for the connection.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeError } from '../protocol/errors.js';
import { InvalidHeaderError } from '../protocol/http.js';
import type { Logger, MaybePromise } from './types.js';

/** What an upgrade hook gets besides the request. */
export interface UpgradeContext {
  /**
   * Aborted when the answer is no longer wanted: the client hung up, the deadline
   * (`upgradeTimeout`) passed, or the router is closing. Pass it on to `fetch` or a database call.
   */
  readonly signal: AbortSignal;
}

/**
 * Decides an upgrade request before the 101 response: returns (or resolves with) the data the
 * connection will carry (`this.data` in a handler, `connection.data`), or refuses with
 * {@link refuseUpgrade} (returned or thrown). Runs after the handshake and Origin checks passed.
 * Anything else it throws is logged and answered 500 without details; past `upgradeTimeout`
 * (default 10 s) the request gets 503.
 */
export type UpgradeHook<Data = unknown> = (request: IncomingMessage, context: UpgradeContext) => MaybePromise<Data | HandshakeError>;

/**
 * The refusal an upgrade hook returns (or throws): the request is answered with `status`, the
 * header fields `headers` and `message` (default 'the WebSocket upgrade was refused') as a one-line
 * body, and the connection closes. A HandshakeError with code `WS_ERR_HANDSHAKE_REFUSED`.
 *
 * @example
 * ```ts
 * refuseUpgrade(401, 'log in first', { 'WWW-Authenticate': 'Bearer realm="chat"' });
 * refuseUpgrade(429, 'slow down', { 'Retry-After': '30' });
 * ```
 *
 * Checked at the call as every refusal is checked (checkRefusal), never writing a bad byte:
 * `RangeError` (code `ERR_HTTP_INVALID_STATUS_CODE`) for a status outside 300-599; `TypeError`
 * (an InvalidHeaderError) with code `ERR_INVALID_HTTP_TOKEN` for a header name that is not a
 * token, `ERR_INVALID_CHAR` for a value with CR, LF or NUL (or a message that is not one line),
 * `ERR_HANDSHAKE_FIELD` for a field the response writes itself (Connection, Content-Length,
 * Content-Type, Transfer-Encoding), `ERR_REQUIRED_FIELD` for a field the status requires and
 * lacks (401 WWW-Authenticate, RFC 9110 §15.5.2; 405 Allow; a redirect's Location; 426 Upgrade).
 */
export function refuseUpgrade(status: number, message?: string, headers: Readonly<Record<string, string>> = {}): HandshakeError {
  const text = message ?? 'the WebSocket upgrade was refused';
  if (/[\r\n]/.test(text)) throw new InvalidHeaderError('ERR_INVALID_CHAR', 'the refusal message must be one line');
  return new HandshakeError('WS_ERR_HANDSHAKE_REFUSED', status, text, { ...headers }); // checkRefusal runs in there
}

/** The most bytes a client may send before its 101 while the hook runs; more and it is dropped. */
export const MAX_EARLY_BYTES = 64 * 1024;

/** What holdUpgrade needs to know besides the hook. */
export interface HoldOptions {
  /** The deadline in ms; 0: none. */
  readonly timeout: number;
  readonly logger: Logger;
  /** Names the hook in the log: 'the upgrade hook of Chat (/wsChat)'. */
  readonly label: string;
}

/** A hook still running: the router cancels it on close. */
export interface PendingUpgrade {
  /** Answers the request with `error` now; the hook's result is ignored when it comes. */
  cancel(error: HandshakeError): void;
}

const ignore = (): void => {};

/**
 * Runs `hook` for an upgrade request whose handshake is valid. On data, calls `proceed(data, head)`
 * with `head` plus whatever the client sent meanwhile (the socket paused); on a refusal, a throw
 * or the deadline, calls `refuse(error)` to answer it; when the client left, calls `gone()` and
 * nothing else (the socket is destroyed). A synchronous hook is decided at once and returns null;
 * an async one returns a handle to cancel it.
 */
export function holdUpgrade(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  hook: UpgradeHook,
  options: HoldOptions,
  proceed: (data: unknown, head: Buffer) => void,
  refuse: (error: HandshakeError) => void,
  gone: () => void,
): PendingUpgrade | null {
  const controller = new AbortController();
  const failed = (error: unknown): HandshakeError => {
    if (error instanceof HandshakeError) return error;
    options.logger.error(`pef-front-websocket: ${options.label} threw`, error);
    return new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 500, 'the upgrade was not accepted: internal error');
  };
  let result: unknown;
  try {
    result = hook(request, { signal: controller.signal });
  } catch (error) {
    refuse(failed(error));
    return null;
  }
  if (!(result instanceof Promise)) {
    if (result instanceof HandshakeError) refuse(result);
    else proceed(result, head);
    return null;
  }

  if (socket.destroyed) {
    // The client left before the hook was even called: nothing will come of it.
    controller.abort(new Error('the client closed the connection'));
    gone();
    return null;
  }
  const early: Buffer[] = [head];
  let earlyBytes = head.length;
  let done = false;
  const finish = (): boolean => {
    if (done) return false;
    done = true;
    if (timer !== null) clearTimeout(timer);
    socket.pause();
    socket.off('data', onData);
    socket.off('end', onLeave);
    socket.off('close', onLeave);
    return true;
  };
  const abandon = (reason: string): void => {
    if (!finish()) return;
    controller.abort(new Error(reason));
    socket.destroy();
    gone();
  };
  function onData(chunk: Buffer): void {
    early.push(chunk);
    earlyBytes += chunk.length;
    // RFC 6455 §4.1: a client sends no frame before the 101. A few are kept; a flood is not.
    if (earlyBytes > MAX_EARLY_BYTES) abandon('the client sent too much before the handshake completed');
  }
  function onLeave(): void {
    abandon('the client closed the connection');
  }
  const answer = (error: HandshakeError): void => {
    if (!finish()) return;
    controller.abort(new Error(error.message));
    refuse(error);
  };
  const timer =
    options.timeout > 0
      ? setTimeout(() => {
          options.logger.error(`pef-front-websocket: ${options.label} did not finish within ${options.timeout} ms`);
          answer(new HandshakeError('WS_ERR_HANDSHAKE_UPGRADE_TIMEOUT', 503, 'the upgrade was not decided in time'));
        }, options.timeout)
      : null;
  socket.on('error', ignore); // 'close' follows
  socket.on('data', onData);
  socket.on('end', onLeave);
  socket.on('close', onLeave);
  socket.resume();
  result.then(
    (value: unknown) => {
      if (value instanceof HandshakeError) return answer(value);
      if (!finish()) return;
      proceed(value, early.length === 1 ? head : Buffer.concat(early, earlyBytes));
    },
    (error: unknown) => {
      if (!done) answer(failed(error));
    },
  );
  return done ? null : { cancel: answer };
}

// The Origin check against cross-site WebSocket hijacking. Browsers attach cookies to a WebSocket
// upgrade from any page and the same-origin policy does not apply to WebSockets (RFC 6455 §10.2),
// so a server that trusts cookies must look at Origin itself. Secure by default: a browser request
// from another host is refused with 403 unless the `origins` option allows it.

import type { IncomingMessage } from 'node:http';
import { HandshakeError } from '../protocol/errors.js';
import type { Logger } from './types.js';

/**
 * Which cross-origin pages may open WebSockets: `'*'` for any; a list of exact origins
 * (`'https://app.example.com'`, compared without regard to case); or a function that decides.
 * Same-host requests and requests without an Origin header (non-browser clients) always pass.
 */
export type OriginPolicy = '*' | readonly string[] | ((origin: string, request: IncomingMessage) => boolean);

/** Ports a Host header may name without changing what it means to a browser's origin. */
function stripDefaultPort(host: string): string {
  if (host.endsWith(':80')) return host.slice(0, -3);
  if (host.endsWith(':443')) return host.slice(0, -4);
  return host;
}

/**
 * Whether the Origin names the host the request was sent to. The scheme is not compared: behind a
 * TLS-terminating proxy the server cannot know it; the host and a non-default port are what a
 * hijacking page cannot forge, because browsers set Origin themselves.
 */
export function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  let originHost: string;
  try {
    // URL drops the scheme's default port: 'https://a.example:443' has host 'a.example'.
    originHost = new URL(origin).host;
  } catch {
    return false; // 'null' (sandboxed frames, file: pages) and malformed values are never the same host
  }
  if (originHost === '') return false;
  return stripDefaultPort(originHost.toLowerCase()) === stripDefaultPort(host.trim().toLowerCase());
}

/** The 403 for a request whose Origin the policy refuses, or null when it may proceed. */
export function checkOrigin(
  request: IncomingMessage,
  policy: OriginPolicy | undefined,
  headers: Readonly<Record<string, string | string[] | undefined>> = request.headers,
): HandshakeError | null {
  // node:http joins repeated Origin fields into one string (and so does handshakeHeaders).
  const origin = headers.origin as string | undefined;
  if (origin === undefined) return null; // not a browser: Origin protects browsers' cookies only
  if (policy === '*') return null;
  if (isSameOrigin(origin, headers.host as string | undefined)) return null;
  if (typeof policy === 'function') {
    if (policy(origin, request)) return null;
  } else if (policy !== undefined) {
    const wanted = origin.toLowerCase();
    for (const allowed of policy) if (allowed.toLowerCase() === wanted) return null;
  }
  return new HandshakeError('WS_ERR_HANDSHAKE_ORIGIN', 403, `origin ${JSON.stringify(origin).slice(0, 200)} is not allowed`);
}

/** At most this many refused origins are logged per window, each origin and path once. */
export const ORIGIN_LOG_LIMIT = 10;
/** The window of ORIGIN_LOG_LIMIT, in ms. */
export const ORIGIN_LOG_WINDOW = 60_000;

interface OriginLog {
  windowStart: number;
  seen: Set<string>;
  /** Refusals not logged in this window because the limit was reached. */
  suppressed: number;
}

/** Per logger, so that two routers with their own loggers do not share a budget. */
const originLogs = new WeakMap<object, OriginLog>();

/** A header value as it may appear in a log line: printable, one line, bounded. */
function printable(value: string): string {
  const short = value.length > 200 ? `${value.slice(0, 200)}...` : value;
  return /^[\x21-\x7e]+$/.test(short) ? short : JSON.stringify(short);
}

/**
 * Logs a request refused by the Origin check, with the reason and the fix, so that a developer
 * whose page runs on another port sees why instead of a bare 403 in the browser. Rate-limited:
 * each origin and path once, and at most ORIGIN_LOG_LIMIT lines per ORIGIN_LOG_WINDOW per
 * logger (the headers are the client's to choose; they must not flood the log).
 */
export function reportRefusedOrigin(request: IncomingMessage, logger: Logger, now: number = Date.now()): void {
  let log = originLogs.get(logger);
  if (log === undefined || now - log.windowStart >= ORIGIN_LOG_WINDOW) {
    const suppressed = log?.suppressed ?? 0;
    log = { windowStart: now, seen: new Set(), suppressed: 0 };
    originLogs.set(logger, log);
    if (suppressed > 0) warn(logger, `pef-front-websocket: ${suppressed} more refused origins were not logged (at most ${ORIGIN_LOG_LIMIT} a minute)`);
  }
  const origin = printable(String(request.headers.origin));
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  const path = printable(query === -1 ? url : url.slice(0, query));
  const key = `${origin} ${path}`;
  if (log.seen.has(key)) return;
  if (log.seen.size >= ORIGIN_LOG_LIMIT) {
    log.suppressed++;
    return;
  }
  log.seen.add(key);
  const host = printable(String(request.headers.host ?? ''));
  warn(
    logger,
    `pef-front-websocket: origin ${origin} refused at ${path} (the page is not from ${host}, the host it connected to): ` +
      `allow it with --origin ${origin} or the origins option`,
  );
}

function warn(logger: Logger, line: string): void {
  if (logger.warn !== undefined) logger.warn(line);
  else logger.error(line);
}

// The Origin check against cross-site WebSocket hijacking. Browsers attach cookies to a WebSocket
// upgrade from any page and the same-origin policy does not apply to WebSockets (RFC 6455 §10.2),
// so a server that trusts cookies must look at Origin itself. Secure by default: a browser request
// from another host is refused with 403 unless the `origins` option allows it.

import type { IncomingMessage } from 'node:http';
import { HandshakeError } from '../protocol/errors.js';

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

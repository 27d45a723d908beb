// The server's side of the opening handshake, RFC 6455 §4.2.1-§4.2.2: check an upgrade request,
// choose a subprotocol and extensions, and write the 101 response (or the refusal) by hand.
// Works on plain values (method, version, headers) so it needs no HTTP server.

import { createHash } from 'node:crypto';
import { WEBSOCKET_GUID, WEBSOCKET_VERSION } from './constants.js';
import { HandshakeError } from './errors.js';
import { isToken } from './extensions.js';
import type { MessageExtension } from './connection.js';

/** The parts of an HTTP request the handshake reads; node:http's IncomingMessage fits. */
export interface UpgradeRequest {
  /** 'GET' for a WebSocket upgrade. */
  readonly method?: string | undefined;
  /** '1.1' for HTTP/1.1. */
  readonly httpVersion?: string | undefined;
  /** Header names in lower case; repeated headers joined with ', ' (as node:http does). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** An extension that can be negotiated through Sec-WebSocket-Extensions (§9.1). */
export interface ExtensionNegotiator {
  /** The extension token, e.g. 'permessage-deflate'. */
  readonly name: string;
  /**
   * Looks at the client's Sec-WebSocket-Extensions header (may be empty) and, if it accepts an
   * offer, returns the response element and the extension to run. Never throws on bad input.
   */
  negotiate(header: string): { response: string; extension: MessageExtension } | null;
}

/** What the server accepts in an opening handshake. */
export interface HandshakeOptions {
  /**
   * Chooses the subprotocol from those the client offered, in the client's order (§4.2.2 /subprotocol/).
   * Return the chosen one, null for none, or a HandshakeError to refuse the request. Default: none is chosen.
   */
  selectProtocol?: ((offered: readonly string[]) => string | null | undefined | HandshakeError) | undefined;
  /** Extensions the server supports, in order of preference. Default none. */
  extensions?: readonly ExtensionNegotiator[] | undefined;
  /** Extra headers for the 101 response. Default none. */
  headers?: Readonly<Record<string, string>> | undefined;
}

/** A handshake the server accepts: the response to write and what was negotiated. */
export interface AcceptedHandshake {
  /** The client's Sec-WebSocket-Key. */
  readonly key: string;
  /** The chosen subprotocol, or '' for none. */
  readonly protocol: string;
  /** The Sec-WebSocket-Extensions response value, or '' for none. */
  readonly extensions: string;
  /** The negotiated extension, to pass to the Connection; null for none. */
  readonly extension: MessageExtension | null;
  /** The whole 101 response, status line to the blank line. */
  readonly response: Buffer;
}

/** Sec-WebSocket-Accept for a key (§4.2.2 step 5.4): base64 of SHA-1 of the key and the GUID. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/** Whether a comma-separated header value lists `token`, compared without regard to case (§4.2.1). */
export function headerHasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = token.toLowerCase();
  for (const part of value.split(',')) {
    if (part.trim().toLowerCase() === wanted) return true;
  }
  return false;
}

/** 16 bytes in base64: 22 characters of the alphabet and the '==' padding (§4.2.1 item 5). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * The subprotocols a client offers in Sec-WebSocket-Protocol, in order; elements that are not
 * tokens are dropped. Linear in the header's length (no backtracking pattern, cf. CVE-2021-32640).
 */
export function parseProtocolHeader(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  // A Set, not Array.includes: with many distinct names the latter made this quadratic.
  const protocols = new Set<string>();
  for (const part of value.split(',')) {
    const name = part.trim();
    if (isToken(name)) protocols.add(name);
  }
  return [...protocols];
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Checks an upgrade request against RFC 6455 §4.2.1 and negotiates what it offers. Returns the
 * accepted handshake, or the HandshakeError to answer with (see rejectResponse).
 */
export function acceptHandshake(request: UpgradeRequest, options: HandshakeOptions = {}): AcceptedHandshake | HandshakeError {
  const headers = request.headers;
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
  if (request.method !== undefined && request.method !== 'GET') {
    return new HandshakeError('WS_ERR_HANDSHAKE_METHOD', 405, 'WebSocket upgrade requires GET', { Allow: 'GET' });
  }
  if (request.httpVersion !== undefined) {
    const [major = 0, minor = 0] = request.httpVersion.split('.').map(Number);
    if (!(major > 1 || (major === 1 && minor >= 1))) {
      return new HandshakeError('WS_ERR_HANDSHAKE_HTTP_VERSION', 400, 'WebSocket upgrade requires HTTP/1.1 or later');
    }
  }
  // §4.2.1 item 2: a Host header field.
  const host = single(headers['host']);
  if (host === undefined || host.trim() === '') {
    return new HandshakeError('WS_ERR_HANDSHAKE_HOST', 400, 'missing Host header');
  }
  // §4.2.1 items 3-4: Upgrade containing "websocket", Connection containing "Upgrade".
  if (!headerHasToken(single(headers['upgrade']), 'websocket')) {
    return new HandshakeError('WS_ERR_HANDSHAKE_UPGRADE', 400, 'Upgrade header must include "websocket"');
  }
  if (!headerHasToken(single(headers['connection']), 'upgrade')) {
    return new HandshakeError('WS_ERR_HANDSHAKE_CONNECTION', 400, 'Connection header must include "Upgrade"');
  }
  // §4.2.1 item 6, §4.4: any other version gets 426 and the version we speak.
  const version = single(headers['sec-websocket-version']);
  if (version === undefined || version.trim() !== WEBSOCKET_VERSION) {
    return new HandshakeError('WS_ERR_HANDSHAKE_VERSION', 426, 'unsupported Sec-WebSocket-Version; this server speaks 13', {
      'Sec-WebSocket-Version': WEBSOCKET_VERSION,
    });
  }
  // §4.2.1 item 5: a key that is base64 of 16 bytes.
  const key = single(headers['sec-websocket-key'])?.trim();
  if (key === undefined || !KEY.test(key)) {
    return new HandshakeError('WS_ERR_HANDSHAKE_KEY', 400, 'Sec-WebSocket-Key must be base64 of 16 bytes');
  }

  let protocol = '';
  if (options.selectProtocol) {
    const offered = parseProtocolHeader(single(headers['sec-websocket-protocol']));
    const chosen = options.selectProtocol(offered);
    if (chosen instanceof HandshakeError) return chosen;
    // §4.2.2: the value MUST be one the client offered (a client fails the connection otherwise);
    // this also keeps whatever the hook returned (a CR LF, say) out of the response head.
    if (chosen && !offered.includes(chosen)) {
      return new HandshakeError('WS_ERR_HANDSHAKE_PROTOCOL', 500, 'the selected subprotocol was not one the client offered');
    }
    if (chosen) protocol = chosen;
  }

  // §9.1: extensions are negotiated from the client's offers, in our order of preference.
  let extensions = '';
  let extension: MessageExtension | null = null;
  const offered = single(headers['sec-websocket-extensions']);
  if (offered !== undefined && offered.trim() !== '' && options.extensions) {
    for (const negotiator of options.extensions) {
      const agreed = negotiator.negotiate(offered);
      if (agreed !== null) {
        extensions = agreed.response;
        extension = agreed.extension;
        break;
      }
    }
  }

  return { key, protocol, extensions, extension, response: acceptResponse(key, protocol, extensions, options.headers) };
}

/** The 101 Switching Protocols response (§4.2.2 step 5). */
export function acceptResponse(
  key: string,
  protocol = '',
  extensions = '',
  headers: Readonly<Record<string, string>> = {},
): Buffer {
  let head =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
  if (protocol !== '') head += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  if (extensions !== '') head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return Buffer.from(head + '\r\n', 'latin1');
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The HTTP response refusing a handshake: its status, headers and a one-line body; the connection closes. */
export function rejectResponse(error: Pick<HandshakeError, 'status' | 'message' | 'headers'>): Buffer {
  const body = Buffer.from(`${error.message}\n`, 'utf8');
  let head =
    `HTTP/1.1 ${error.status} ${REASONS[error.status] ?? 'Error'}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n`;
  for (const [name, value] of Object.entries(error.headers)) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]);
}

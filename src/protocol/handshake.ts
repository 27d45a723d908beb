// The server's side of the opening handshake, RFC 6455 §4.2.1-§4.2.2: check an upgrade request,
// choose a subprotocol and extensions, and write the 101 response (or the refusal) by hand.
// Works on plain values (method, version, headers) so it needs no HTTP server.

import { hash } from 'node:crypto';
import { WEBSOCKET_GUID, WEBSOCKET_VERSION } from './constants.js';
import { HandshakeError } from './errors.js';
import { isToken } from './extensions.js';
import { ACCEPT_FIELDS, checkHeaderFields, checkRefusal, headerHasToken, responseHead } from './http.js';

export { headerHasToken };
import type { MessageExtension } from './connection.js';

/** The parts of an HTTP request the handshake reads; node:http's IncomingMessage fits. */
export interface UpgradeRequest {
  /** 'GET' for a WebSocket upgrade. */
  readonly method?: string | undefined;
  /** '1.1' for HTTP/1.1. */
  readonly httpVersion?: string | undefined;
  /** Header names in lower case; repeated headers joined with ', ' (as node:http does). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The fields as received, name and value alternating (node:http's `rawHeaders`): where a field
   * sent twice is seen even when `headers` kept only one (Host). Optional.
   */
  readonly rawHeaders?: readonly string[] | undefined;
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
  /** Extra headers for the 101 response, checked by checkHeaderFields with ACCEPT_FIELDS owned. Default none. */
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
  /**
   * The whole 101 response, status line to the blank line; after an interim
   * `HTTP/1.1 100 Continue` when the request had `Expect: 100-continue` (RFC 9110 §7.8).
   */
  readonly response: Buffer;
}

/** Sec-WebSocket-Accept for a key (§4.2.2 step 5.4): base64 of SHA-1 of the key and the GUID. */
export function acceptKey(key: string): string {
  // crypto.hash, one call (Node 20.12 and later): a third of createHash().update().digest()'s time.
  return hash('sha1', key + WEBSOCKET_GUID, 'base64');
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
  // §4.2.1 item 2: a Host header field; RFC 9112 §3.2: a request with more than one gets 400
  // (node:http keeps the first in `headers`, so they are counted in rawHeaders).
  const host = single(headers['host']);
  if (host === undefined || host.trim() === '') {
    return new HandshakeError('WS_ERR_HANDSHAKE_HOST', 400, 'missing Host header');
  }
  if (request.rawHeaders !== undefined && countFields(request.rawHeaders, 'host') > 1) {
    return new HandshakeError('WS_ERR_HANDSHAKE_HOST_DUPLICATE', 400, 'more than one Host header');
  }
  // RFC 9110 §7.8: the client may use the new protocol only once it has sent the whole request,
  // so what follows the head must be frames. A request with content (RFC 9112 §6.1-§6.3) is
  // refused before any of it is read: parsed as frames, it would be a message nobody sent as one
  // (behind a proxy that forwards content, a smuggling vector).
  const length = single(headers['content-length']);
  if (headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0')) {
    return new HandshakeError('WS_ERR_HANDSHAKE_CONTENT', 400, 'an upgrade request cannot carry content');
  }
  // RFC 9110 §10.1.1: 100-continue is the only expectation defined; others may get 417. §7.8: a
  // server that receives both Upgrade and 100-continue sends 100 before 101 (see below).
  const expect = single(headers['expect']);
  let interim = false;
  if (expect !== undefined) {
    for (const part of expect.split(',')) {
      const element = part.trim().toLowerCase();
      if (element === '100-continue') interim = true;
      else if (element !== '') return new HandshakeError('WS_ERR_HANDSHAKE_EXPECT', 417, 'the only expectation supported is 100-continue');
    }
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
      Upgrade: 'websocket',
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

  const accept = acceptResponse(key, protocol, extensions, options.headers);
  const response = interim ? Buffer.concat([CONTINUE, accept]) : accept;
  return { key, protocol, extensions, extension, response };
}

/** The interim response owed to `Expect: 100-continue` before the 101 (RFC 9110 §7.8, §15.2.1). */
const CONTINUE = Buffer.from(responseHead(100, {}), 'latin1');

/** How many fields named `name` (lower case) a rawHeaders list holds. */
function countFields(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}

/**
 * The 101 Switching Protocols response (§4.2.2 step 5). `headers` are the application's extra
 * fields: InvalidHeaderError (a TypeError) for a name that is not a token, a value with CR, LF or
 * NUL, or a field the handshake writes itself (ACCEPT_FIELDS).
 */
export function acceptResponse(
  key: string,
  protocol = '',
  extensions = '',
  headers: Readonly<Record<string, string>> = {},
): Buffer {
  checkHeaderFields(headers, ACCEPT_FIELDS);
  const fields: Record<string, string> = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Accept': acceptKey(key),
  };
  if (protocol !== '') fields['Sec-WebSocket-Protocol'] = protocol;
  if (extensions !== '') fields['Sec-WebSocket-Extensions'] = extensions;
  return Buffer.from(responseHead(101, Object.assign(fields, headers)), 'latin1');
}

/**
 * The HTTP response refusing a handshake: its status, headers and a one-line body; the connection
 * closes. The one path every refusal takes: checkRefusal runs first, so a bad status (RangeError
 * `ERR_HTTP_INVALID_STATUS_CODE`), a bad or owned field, or a field the status requires and lacks
 * (TypeError, see InvalidHeaderError) throws here, before a byte is written. A refusal carrying
 * Upgrade (a 426) lists "upgrade" in Connection too (RFC 9110 §7.8).
 */
export function rejectResponse(error: Pick<HandshakeError, 'status' | 'message' | 'headers'>): Buffer {
  checkRefusal(error.status, error.headers);
  const body = Buffer.from(`${error.message}\n`, 'utf8');
  const upgrade = Object.keys(error.headers).some((name) => name.toLowerCase() === 'upgrade');
  const fields: Record<string, string> = {
    Connection: upgrade ? 'Upgrade, close' : 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(body.length),
  };
  return Buffer.concat([Buffer.from(responseHead(error.status, Object.assign(fields, error.headers)), 'latin1'), body]);
}

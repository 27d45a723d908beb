// The client's side of the opening handshake, RFC 6455 §4.1: the upgrade request written by hand
// with a fresh key, the server's response head parsed by hand, and the 101 checked to the letter
// (§4.1 items 1-6 of the client's checks, §4.2.2). Pure functions on bytes and plain values: the
// binding in node/client.ts owns the socket, the timers and redirects.

import { randomBytes } from 'node:crypto';
import { WEBSOCKET_VERSION } from './constants.js';
import { HandshakeError } from './errors.js';
import { isToken, parseExtensionsHeader } from './extensions.js';
import { acceptKey, headerHasToken } from './handshake.js';
import type { MessageExtension } from './connection.js';
import type { PerMessageDeflateOffer } from './deflate.js';

/** What goes into a client's upgrade request. */
export interface ClientRequest {
  /** The Host header value: host and, unless it is the scheme's default, `:port` (an IPv6 address in brackets). */
  readonly host: string;
  /** The request target: the path and the query, beginning with '/'. */
  readonly path: string;
  /** The Sec-WebSocket-Key, from generateKey(). */
  readonly key: string;
  /** Subprotocols offered, in order of preference (§4.1 item 10). Default none. */
  readonly protocols?: readonly string[] | undefined;
  /** The Sec-WebSocket-Extensions offer (§4.1 item 11), or ''. Default ''. */
  readonly extensions?: string | undefined;
  /** The Origin header (§4.1 item 8, sent by browsers), or undefined for none. Default none. */
  readonly origin?: string | undefined;
  /** More header fields, checked by the caller with checkHeaderFields. Default none. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** A fresh Sec-WebSocket-Key (§4.1 item 7): 16 bytes from the CSPRNG, in base64. */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

/** The upgrade request's bytes (§4.1 items 1-12), the status line to the blank line. */
export function clientRequestBytes(request: ClientRequest): Buffer {
  let head =
    `GET ${request.path} HTTP/1.1\r\n` +
    `Host: ${request.host}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${request.key}\r\n` +
    `Sec-WebSocket-Version: ${WEBSOCKET_VERSION}\r\n`;
  if (request.protocols !== undefined && request.protocols.length !== 0) head += `Sec-WebSocket-Protocol: ${request.protocols.join(', ')}\r\n`;
  if (request.extensions) head += `Sec-WebSocket-Extensions: ${request.extensions}\r\n`;
  if (request.origin !== undefined) head += `Origin: ${request.origin}\r\n`;
  for (const [name, value] of Object.entries(request.headers ?? {})) head += `${name}: ${value}\r\n`;
  return Buffer.from(head + '\r\n', 'latin1');
}

/** A response head as it was read: its status and its header fields. */
export interface HandshakeResponse {
  /** The status code, e.g. 101. */
  readonly status: number;
  /** The reason phrase, e.g. 'Switching Protocols'. */
  readonly statusText: string;
  /** Header fields with names in lower case; a repeated field's values joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The largest response head read, in bytes (node:http's default limit for a head). */
export const MAX_RESPONSE_HEAD = 16 * 1024;
/** The most header fields a response head may have. */
export const MAX_RESPONSE_FIELDS = 100;

const STATUS_LINE = /^HTTP\/1\.([0-9]) ([0-9]{3})(?: ([^\r\n]*))?$/;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

function malformed(message: string, head: Buffer): HandshakeError {
  return new HandshakeError('WS_ERR_HANDSHAKE_RESPONSE', 0, `malformed response: ${message}`, {}, head.subarray(0, 512));
}

/**
 * Parses the response head at the start of `data` (RFC 9112 §4, §5): the status line, then header
 * fields up to the blank line. Returns null while the head is incomplete, the response and the
 * head's length in bytes once it is whole, or a WS_ERR_HANDSHAKE_RESPONSE error for a head that
 * breaks the grammar (no HTTP/1.x status line, a field line without a token name and a colon, white
 * space before the colon, an obsolete line fold, a CR, LF or NUL inside a line) or is too large.
 */
export function parseResponseHead(data: Buffer): { response: HandshakeResponse; headLength: number } | HandshakeError | null {
  const end = data.indexOf(CRLFCRLF);
  if (end === -1) {
    if (data.length > MAX_RESPONSE_HEAD) return malformed(`the head is over ${MAX_RESPONSE_HEAD} bytes`, data);
    return null;
  }
  if (end + 4 > MAX_RESPONSE_HEAD) return malformed(`the head is over ${MAX_RESPONSE_HEAD} bytes`, data);
  const lines = data.toString('latin1', 0, end).split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  if (status === null) return malformed(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 100))}`, data);
  if (lines.length - 1 > MAX_RESPONSE_FIELDS) return malformed(`more than ${MAX_RESPONSE_FIELDS} header fields`, data);
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // RFC 9112 §5.1: no white space between the name and the colon; §5.2: obs-fold is rejected.
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (!isToken(name)) return malformed(`not a header field line: ${JSON.stringify(line.slice(0, 100))}`, data);
    const value = line.slice(colon + 1).trim();
    if (/[\r\n\0]/.test(value)) return malformed(`a CR, LF or NUL in the value of ${name}`, data);
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return { response: { status: Number(status[2]), statusText: status[3] ?? '', headers }, headLength: end + 4 };
}

/** What the client offered, to check the response against. */
export interface ClientOffer {
  /** The Sec-WebSocket-Key sent. */
  readonly key: string;
  /** The subprotocols offered. Default none. */
  readonly protocols?: readonly string[] | undefined;
  /** The permessage-deflate offer, or null when none was made. Default none. */
  readonly deflate?: PerMessageDeflateOffer | null | undefined;
}

/** A 101 the client accepts: what was negotiated. */
export interface AcceptedResponse {
  /** The subprotocol the server chose, or ''. */
  readonly protocol: string;
  /** The Sec-WebSocket-Extensions response value, or ''. */
  readonly extensions: string;
  /** The extension to pass to the client's Connection; null for none. */
  readonly extension: MessageExtension | null;
}

/** Whether a status is a redirect the client could follow: 301, 302, 303, 307 or 308 with a Location. */
export function isRedirect(response: HandshakeResponse): boolean {
  const status = response.status;
  return (status === 301 || status === 302 || status === 303 || status === 307 || status === 308) && response.headers['location'] !== undefined;
}

/**
 * Checks the server's response to the upgrade request as RFC 6455 §4.1 asks of a client, in the
 * order of its items: the status is 101 (1), Upgrade is "websocket" (2), Connection has "Upgrade"
 * (3), Sec-WebSocket-Accept is the key's (4), every extension answered was offered, once, with
 * parameters the offer allows (5, RFC 7692 §7.1), and the subprotocol, if any, is one offered (6).
 * Returns what was negotiated, or the HandshakeError to fail the connection with: its `status`
 * is the response's, its `headers` the response's fields, its `body` the `body` given.
 */
export function checkResponse(response: HandshakeResponse, offer: ClientOffer, body: Buffer = Buffer.alloc(0)): AcceptedResponse | HandshakeError {
  const { status, headers } = response;
  const fail = (code: ConstructorParameters<typeof HandshakeError>[0], message: string): HandshakeError =>
    new HandshakeError(code, status, message, { ...headers }, body.subarray(0, 512));
  // Item 1: anything but 101 is handled as HTTP; here, a redirect or a refusal.
  if (status !== 101) {
    if (isRedirect(response)) return fail('WS_ERR_HANDSHAKE_REDIRECT', `the server redirects (${status}) to ${headers['location']}`);
    return fail('WS_ERR_HANDSHAKE_STATUS', `the server answered ${status} ${response.statusText}`.trimEnd());
  }
  // Item 2: Upgrade is "websocket", compared without regard to case.
  if (headers['upgrade']?.toLowerCase() !== 'websocket') return fail('WS_ERR_HANDSHAKE_UPGRADE', 'the 101 response has no "Upgrade: websocket"');
  // Item 3: Connection holds the token "Upgrade".
  if (!headerHasToken(headers['connection'], 'upgrade')) return fail('WS_ERR_HANDSHAKE_CONNECTION', 'the 101 response has no "Connection: Upgrade"');
  // Item 4: Sec-WebSocket-Accept is base64(SHA-1(key + GUID)), white space around it trimmed.
  const accept = headers['sec-websocket-accept'];
  if (accept === undefined) return fail('WS_ERR_HANDSHAKE_ACCEPT', 'the 101 response has no Sec-WebSocket-Accept');
  if (accept !== acceptKey(offer.key)) return fail('WS_ERR_HANDSHAKE_ACCEPT', `Sec-WebSocket-Accept ${JSON.stringify(accept)} does not match the key sent`);

  // Item 5: every extension in use was offered; permessage-deflate's parameters per RFC 7692 §7.1.
  const extensions = headers['sec-websocket-extensions'] ?? '';
  let extension: MessageExtension | null = null;
  if (extensions.trim() !== '') {
    const elements = parseExtensionsHeader(extensions);
    if (elements === null) return fail('WS_ERR_HANDSHAKE_EXTENSION', `Sec-WebSocket-Extensions is malformed: ${JSON.stringify(extensions)}`);
    for (const element of elements) {
      if (element.name !== 'permessage-deflate' || !offer.deflate) {
        return fail('WS_ERR_HANDSHAKE_EXTENSION', `the server uses the extension ${element.name}, which was not offered`);
      }
      // RFC 7692 §7.1: "the client MUST Fail ... if the response includes multiple elements" of it.
      if (extension !== null) return fail('WS_ERR_HANDSHAKE_EXTENSION', 'permessage-deflate is answered twice');
      const accepted = offer.deflate.accept(element.params);
      if (typeof accepted === 'string') return fail('WS_ERR_HANDSHAKE_EXTENSION', `permessage-deflate answered wrongly: ${accepted}`);
      extension = accepted;
    }
  }

  // Item 6: a subprotocol is one of those offered (one value; none at all is allowed).
  const protocol = headers['sec-websocket-protocol'];
  if (protocol !== undefined && !(offer.protocols ?? []).includes(protocol)) {
    return fail('WS_ERR_HANDSHAKE_PROTOCOL', `the server chose the subprotocol ${JSON.stringify(protocol)}, which was not offered`);
  }
  return { protocol: protocol ?? '', extensions: extension === null ? '' : extensions, extension };
}

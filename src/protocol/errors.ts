// The two error types of the protocol core. Every failure of a connection is a ProtocolError
// carrying the close code it is failed with and a stable string `code` that programs can match;
// every refused opening handshake is a HandshakeError carrying its HTTP status.

import { CloseCode } from './constants.js';
import { checkRefusal } from './http.js';

/** Stable codes of protocol failures. Their text never changes once released. */
export type ProtocolErrorCode =
  | 'WS_ERR_UNMASKED_FRAME'
  | 'WS_ERR_MASKED_FRAME'
  | 'WS_ERR_UNEXPECTED_RSV_1'
  | 'WS_ERR_UNEXPECTED_RSV_2_3'
  | 'WS_ERR_INVALID_OPCODE'
  | 'WS_ERR_FRAGMENTED_CONTROL_FRAME'
  | 'WS_ERR_CONTROL_FRAME_TOO_LONG'
  | 'WS_ERR_INVALID_PAYLOAD_LENGTH'
  | 'WS_ERR_UNEXPECTED_CONTINUATION'
  | 'WS_ERR_EXPECTED_CONTINUATION'
  | 'WS_ERR_PAYLOAD_TOO_BIG'
  | 'WS_ERR_INVALID_UTF8'
  | 'WS_ERR_INVALID_CLOSE_PAYLOAD'
  | 'WS_ERR_INVALID_CLOSE_CODE'
  | 'WS_ERR_INVALID_CLOSE_REASON'
  | 'WS_ERR_INFLATE_FAILED'
  | 'WS_ERR_POLICY'
  | 'WS_ERR_SLOW_CONSUMER'
  | 'WS_ERR_HEARTBEAT_TIMEOUT'
  | 'WS_ERR_HANDLER'
  | 'WS_ERR_INTERNAL'
  | 'WS_ERR_ABNORMAL_CLOSURE';

/** A violation that fails the connection (RFC 6455 §7.1.7) with `closeCode`. */
export class ProtocolError extends Error {
  /** Always 'ProtocolError'. */
  override readonly name = 'ProtocolError';
  /** A stable, matchable identifier, e.g. `WS_ERR_UNMASKED_FRAME`. */
  readonly code: ProtocolErrorCode;
  /** The close code the connection is failed with: 1002, 1007, 1008, 1009 or 1011. */
  readonly closeCode: number;

  constructor(code: ProtocolErrorCode, closeCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** Builds the ProtocolError of a §5 framing violation: close code 1002. */
export function protocolViolation(code: ProtocolErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, CloseCode.ProtocolError, message);
}

const EMPTY_BODY = Buffer.alloc(0);

/** Stable codes of refused opening handshakes. */
export type HandshakeErrorCode =
  | 'WS_ERR_HANDSHAKE_METHOD'
  | 'WS_ERR_HANDSHAKE_HTTP_VERSION'
  | 'WS_ERR_HANDSHAKE_HOST'
  | 'WS_ERR_HANDSHAKE_HOST_DUPLICATE'
  | 'WS_ERR_HANDSHAKE_CONTENT'
  | 'WS_ERR_HANDSHAKE_EXPECT'
  | 'WS_ERR_HANDSHAKE_UPGRADE'
  | 'WS_ERR_HANDSHAKE_CONNECTION'
  | 'WS_ERR_HANDSHAKE_KEY'
  | 'WS_ERR_HANDSHAKE_VERSION'
  | 'WS_ERR_HANDSHAKE_PROTOCOL'
  | 'WS_ERR_HANDSHAKE_ORIGIN'
  | 'WS_ERR_HANDSHAKE_NOT_FOUND'
  | 'WS_ERR_HANDSHAKE_FULL'
  | 'WS_ERR_HANDSHAKE_IP_LIMIT'
  | 'WS_ERR_HANDSHAKE_HEADERS'
  | 'WS_ERR_HANDSHAKE_REJECTED'
  // The client's side (RFC 6455 §4.1, §4.2.2): the server's response was not a valid 101.
  | 'WS_ERR_HANDSHAKE_RESPONSE'
  | 'WS_ERR_HANDSHAKE_STATUS'
  | 'WS_ERR_HANDSHAKE_REDIRECT'
  | 'WS_ERR_HANDSHAKE_ACCEPT'
  | 'WS_ERR_HANDSHAKE_EXTENSION'
  | 'WS_ERR_HANDSHAKE_TIMEOUT'
  | 'WS_ERR_HANDSHAKE_CLOSED'
  | 'WS_ERR_HANDSHAKE_ABORTED';

/** The codes of a client's failed handshake: the server's response, never written by us. */
const CLIENT_CODES: ReadonlySet<HandshakeErrorCode> = new Set<HandshakeErrorCode>([
  'WS_ERR_HANDSHAKE_RESPONSE',
  'WS_ERR_HANDSHAKE_STATUS',
  'WS_ERR_HANDSHAKE_REDIRECT',
  'WS_ERR_HANDSHAKE_ACCEPT',
  'WS_ERR_HANDSHAKE_EXTENSION',
  'WS_ERR_HANDSHAKE_TIMEOUT',
  'WS_ERR_HANDSHAKE_CLOSED',
  'WS_ERR_HANDSHAKE_ABORTED',
]);

/**
 * A failed opening handshake.
 * - On a server (RFC 6455 §4.2.1) it is a refusal, answered with `status`, `headers` and `message` as
 *   the body. The constructor checks what will be written (see checkRefusal in protocol/http.ts):
 *   RangeError `ERR_HTTP_INVALID_STATUS_CODE` for a status outside 300-599; TypeError
 *   (InvalidHeaderError) with `code` `ERR_INVALID_HTTP_TOKEN`, `ERR_INVALID_CHAR`, `ERR_HANDSHAKE_FIELD`
 *   (Connection, Content-Length, Content-Type, Transfer-Encoding, Sec-WebSocket-Accept) or
 *   `ERR_REQUIRED_FIELD` (e.g. a 405 without Allow, a 401 without WWW-Authenticate, a 426 without Upgrade).
 * - On a client (§4.1), with one of the client's codes, it says why the server's response is not a
 *   valid 101: `status` is the response's status (0 when none arrived), `headers` its header fields
 *   (names in lower case) and `body` the first bytes of its body. Nothing is checked: it is never written.
 */
export class HandshakeError extends Error {
  /** Always 'HandshakeError'. */
  override readonly name = 'HandshakeError';
  /** A stable, matchable identifier, e.g. `WS_ERR_HANDSHAKE_VERSION`. */
  readonly code: HandshakeErrorCode;
  /** The HTTP status of the response, e.g. 400, 405 or 426. */
  readonly status: number;
  /** Extra response headers, e.g. `Allow: GET` with 405 or `Sec-WebSocket-Version: 13` with 426. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Client side: the first bytes (at most 512) of the response's body, or, when the server closed
   * the connection inside the response head (WS_ERR_HANDSHAKE_CLOSED), of what it sent. Empty on a server.
   */
  readonly body: Buffer;

  constructor(code: HandshakeErrorCode, status: number, message: string, headers: Record<string, string> = {}, body: Buffer = EMPTY_BODY) {
    if (!CLIENT_CODES.has(code)) checkRefusal(status, headers);
    super(message);
    this.code = code;
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
}

// HTTP fields that we write by hand (the 101, every refusal, the client's upgrade request) are
// checked here as node:http's setHeader checks them (RFC 9110 §5.1, §5.5): a name is a token, a
// value holds no CR, LF or NUL. A bad field is a TypeError at the call, never a bad byte on the wire.

import { isToken } from './extensions.js';

/** The fields the opening handshake itself writes (RFC 6455 §4.1, §4.2.2); no caller may set them. */
export const HANDSHAKE_FIELDS: readonly string[] = [
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
];

/** A TypeError with a stable `code`, thrown for a header field that cannot be written. */
export class InvalidHeaderError extends TypeError {
  /** 'ERR_INVALID_HTTP_TOKEN' (a bad name), 'ERR_INVALID_CHAR' (a bad value) or 'ERR_HANDSHAKE_FIELD'. */
  readonly code: 'ERR_INVALID_HTTP_TOKEN' | 'ERR_INVALID_CHAR' | 'ERR_HANDSHAKE_FIELD';

  constructor(code: InvalidHeaderError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Whether a field value can be written as it is: no CR, LF or NUL (RFC 9110 §5.5). */
export function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0x00 || c > 0xff) return false;
  }
  return true;
}

/**
 * Checks header fields supplied by an application before they are written by hand.
 * Throws InvalidHeaderError (a TypeError): `ERR_INVALID_HTTP_TOKEN` for a name that is not a
 * token, `ERR_INVALID_CHAR` for a value with CR, LF, NUL or a character above U+00FF, and
 * `ERR_HANDSHAKE_FIELD` for a name in `owned` (compared without regard to case).
 */
export function checkHeaderFields(
  headers: Readonly<Record<string, string>>,
  owned: readonly string[] = HANDSHAKE_FIELDS,
): void {
  for (const [name, value] of Object.entries(headers)) {
    if (!isToken(name)) throw new InvalidHeaderError('ERR_INVALID_HTTP_TOKEN', `header name must be a token: ${JSON.stringify(name)}`);
    if (typeof value !== 'string' || !isFieldValue(value)) {
      throw new InvalidHeaderError('ERR_INVALID_CHAR', `invalid character in the value of header "${name}"`);
    }
    if (owned.includes(name.toLowerCase())) {
      throw new InvalidHeaderError('ERR_HANDSHAKE_FIELD', `header "${name}" is written by the WebSocket handshake and cannot be set`);
    }
  }
}

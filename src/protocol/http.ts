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
  /**
   * 'ERR_INVALID_HTTP_TOKEN' (a bad name), 'ERR_INVALID_CHAR' (a bad value), 'ERR_HANDSHAKE_FIELD'
   * (a field we write ourselves) or 'ERR_REQUIRED_FIELD' (a field the status requires is missing).
   */
  readonly code: 'ERR_INVALID_HTTP_TOKEN' | 'ERR_INVALID_CHAR' | 'ERR_HANDSHAKE_FIELD' | 'ERR_REQUIRED_FIELD';

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
  if (typeof headers !== 'object' || headers === null) throw new TypeError('headers must be an object of field names to string values');
  for (const [name, value] of Object.entries(headers)) {
    if (!isToken(name)) throw new InvalidHeaderError('ERR_INVALID_HTTP_TOKEN', `header name must be a token: ${JSON.stringify(name)}`);
    if (typeof value !== 'string' || !isFieldValue(value)) {
      throw new InvalidHeaderError('ERR_INVALID_CHAR', `invalid character in the value of header "${name}"`);
    }
    if (owned.includes(name.toLowerCase())) {
      throw new InvalidHeaderError('ERR_HANDSHAKE_FIELD', `header "${name}" is written by the server itself and cannot be set`);
    }
  }
}

/** Fields a refusal writes itself (its framing, RFC 9112 §6, and its end); its headers cannot set them. */
export const REFUSAL_FIELDS: readonly string[] = ['connection', 'content-length', 'content-type', 'transfer-encoding', 'sec-websocket-accept'];

/**
 * Fields the 101 writes itself: the handshake's (RFC 6455 §4.2.2), and no framing of content,
 * which a 1xx response never has (RFC 9110 §8.6, RFC 9112 §6.1).
 */
export const ACCEPT_FIELDS: readonly string[] = [...HANDSHAKE_FIELDS, 'content-length', 'transfer-encoding'];

/**
 * The fields the RFCs require on each status this server may send, checked whenever a response
 * head is built: field name (lower case) -> a token its value must list, or null for any
 * non-empty value. A status not listed requires none. docs/protocol.md has the same table.
 */
export const REQUIRED_FIELDS: Readonly<Record<number, Readonly<Record<string, string | null>>>> = {
  // RFC 9110 §15.2.2, §7.8 (Upgrade names the protocol, Connection lists "upgrade"); RFC 6455 §4.2.2 step 5.
  101: { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-accept': null },
  // RFC 9110 §15.4.2-§15.4.9: a redirect names where to go (SHOULD; without it a redirect is useless).
  301: { location: null },
  302: { location: null },
  303: { location: null },
  307: { location: null },
  308: { location: null },
  // RFC 9110 §15.5.2: "MUST send a WWW-Authenticate header field".
  401: { 'www-authenticate': null },
  // RFC 9110 §15.5.6: "MUST generate an Allow header field".
  405: { allow: null },
  // RFC 9110 §15.5.8: "MUST send a Proxy-Authenticate header field".
  407: { 'proxy-authenticate': null },
  // RFC 9110 §15.5.22: "MUST send an Upgrade header field"; RFC 6455 §4.2.2 /version/: the versions we speak.
  426: { upgrade: 'websocket', 'sec-websocket-version': '13' },
};

/** Reason phrases of the statuses we send (RFC 9110 §15); any other gets 'Error'. */
const REASONS: Readonly<Record<number, string>> = {
  100: 'Continue',
  101: 'Switching Protocols',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  413: 'Content Too Large',
  417: 'Expectation Failed',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** Whether a comma-separated header value lists `token`, compared without regard to case (RFC 6455 §4.2.1). */
export function headerHasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = token.toLowerCase();
  for (const part of value.split(',')) {
    if (part.trim().toLowerCase() === wanted) return true;
  }
  return false;
}

/**
 * Checks that `headers` carry what REQUIRED_FIELDS asks of `status`. Throws InvalidHeaderError
 * `ERR_REQUIRED_FIELD` naming the first missing field (or the token its value lacks).
 */
export function checkRequiredFields(status: number, headers: Readonly<Record<string, string>>): void {
  const required = REQUIRED_FIELDS[status];
  if (required === undefined) return;
  for (const name of Object.keys(required)) {
    const token = required[name]!;
    const value = fieldValue(headers, name);
    if (value === undefined || isEmptyList(value)) {
      throw new InvalidHeaderError('ERR_REQUIRED_FIELD', `a ${status} response requires the ${name} header field`);
    }
    if (token !== null && !headerHasToken(value, token)) {
      throw new InvalidHeaderError('ERR_REQUIRED_FIELD', `a ${status} response requires ${name} to list "${token}"`);
    }
  }
}

/**
 * Whether a field value holds nothing but empty list elements (RFC 9110 §5.6.1: recipients ignore
 * them): '', ' ', ' , ', and what two empty fields of one name join into.
 */
function isEmptyList(value: string): boolean {
  for (const part of value.split(',')) if (part.trim() !== '') return false;
  return true;
}

/** The value of the field `name` (lower case) in `headers`, names compared without regard to case; repeated ones joined with ', '. */
function fieldValue(headers: Readonly<Record<string, string>>, name: string): string | undefined {
  let value: string | undefined;
  for (const field of Object.keys(headers)) {
    if (field.length !== name.length || field.toLowerCase() !== name) continue;
    value = value === undefined ? headers[field]! : `${value}, ${headers[field]!}`;
  }
  return value;
}

/** A RangeError with node:http's code for a status that cannot be sent. */
export class InvalidStatusError extends RangeError {
  /** Always 'ERR_HTTP_INVALID_STATUS_CODE'. */
  readonly code = 'ERR_HTTP_INVALID_STATUS_CODE';
}

/**
 * Checks a refusal of an upgrade request before anything is written: `status` a whole number from
 * 300 to 599 (else InvalidStatusError, a RangeError), `headers` as checkHeaderFields checks them
 * with REFUSAL_FIELDS owned, and the fields REQUIRED_FIELDS asks of the status (InvalidHeaderError).
 */
export function checkRefusal(status: number, headers: Readonly<Record<string, string>>): void {
  if (!Number.isInteger(status) || status < 300 || status > 599) {
    throw new InvalidStatusError(`a refusal's status must be a whole number from 300 to 599, not ${String(status)}`);
  }
  checkHeaderFields(headers, REFUSAL_FIELDS);
  checkRequiredFields(status, headers);
}

/**
 * The head of a response, status line to the blank line, in latin1 as it goes on the wire; the
 * fields in order. Checks REQUIRED_FIELDS for `status` (the fields' names and values are checked
 * by the caller: ours are constants, an application's went through checkHeaderFields).
 */
export function responseHead(status: number, fields: Readonly<Record<string, string>>): string {
  checkRequiredFields(status, fields);
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(fields)) head += `${name}: ${value}\r\n`;
  return head + '\r\n';
}

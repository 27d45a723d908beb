// Options of a WebSocket connection, with their defaults. Set on the router, overridden per
// handler class through `static options`, or passed to acceptWebSocket.

import { DEFAULT_MAX_PAYLOAD } from '../protocol/constants.js';
import type { HandshakeError } from '../protocol/errors.js';
import type { ExtensionNegotiator } from '../protocol/handshake.js';
import { compressionNegotiator, type PerMessageDeflateOptions } from '../protocol/deflate.js';
import { ACCEPT_FIELDS, checkHeaderFields } from '../protocol/http.js';
import type { IncomingMessage } from 'node:http';
import type { OriginPolicy } from './origin.js';
import type { TraceOption } from './trace.js';
import type { Logger } from './types.js';

/** Options of a WebSocket connection; every one is optional and its default is given. */
export interface WebSocketOptions {
  /** The largest message accepted, reassembled, in bytes; a larger one fails with 1009. Default 1 MiB. */
  maxPayload?: number;
  /** How long to wait for the peer's Close, and then for TCP to close, before destroying the socket, in ms. Default 10,000. */
  closeTimeout?: number;
  /** `send` returns false once more than this many bytes wait to be written. Default 64 KiB. */
  highWaterMark?: number;
  /**
   * Chooses a subprotocol from those the client offered (in its order): return one, null for none,
   * or a HandshakeError to refuse the request. Default: none is chosen (no Sec-WebSocket-Protocol).
   */
  selectProtocol?: (offered: readonly string[], request: IncomingMessage) => string | null | undefined | HandshakeError;
  /** Extensions offered to clients, in order of preference. Default none. */
  extensions?: readonly ExtensionNegotiator[];
  /**
   * permessage-deflate (RFC 7692), negotiated whenever a client offers it: `true` with the defaults
   * of docs/compression.md, `false` off, or its settings. Default true.
   */
  compression?: boolean | PerMessageDeflateOptions;
  /**
   * Extra headers on the 101 response. Checked when the options are resolved (acceptWebSocket,
   * new WebSocketRouter, route()): a TypeError with `code` `ERR_INVALID_HTTP_TOKEN` (a name that
   * is not a token), `ERR_INVALID_CHAR` (CR, LF or NUL in a value) or `ERR_HANDSHAKE_FIELD`
   * (Upgrade, Connection, Sec-WebSocket-*, Content-Length, Transfer-Encoding: the handshake's own).
   * Default none.
   */
  headers?: Readonly<Record<string, string>>;
  /** Where errors thrown by onError and onClose are reported. Default `console`. */
  logger?: Logger;
  /**
   * Prints a line per handshake and per frame: `true` to stderr, or to a function; `false` turns it
   * off. Default: on (through util.debuglog) when NODE_DEBUG includes `pef-ws`, else off.
   */
  trace?: TraceOption;
  /**
   * How a text message reaches onMessage: `true`, as a string (decoded from UTF-8); `false`, as a
   * Buffer of its UTF-8 bytes, checked (RFC 6455 §8.1) but not decoded, with type `'text'`, as ws
   * hands out text. Sending that Buffer back with type 'text' sends the same bytes. For relays and
   * for text parsed from bytes (JSON.parse takes a string; a Buffer's toString decodes it then):
   * decoding non-ASCII UTF-8 costs more than the rest of an echo (docs/benchmarks.md). Default true.
   */
  decodeText?: boolean;

  // Defences against hostile peers; each default and its reason is in docs/security.md.
  /**
   * Cross-origin pages that may connect: '*', a list of exact origins, or a function. A browser
   * request whose Origin names another host than its Host is refused with 403 unless allowed here;
   * requests without Origin pass. Default: same host only.
   */
  origins?: OriginPolicy;
  /** A Ping every this many ms (the first at a random point of the first interval); 0 turns it off. Default 30,000. */
  heartbeatInterval?: number;
  /** A connection whose Pong does not come back within this many ms is failed (1011) and destroyed; 0: no deadline. Default 30,000. */
  heartbeatTimeout?: number;
  /** Close (1001) a connection that exchanged no message in either direction for this many ms; 0 turns it off. Default 0. */
  idleTimeout?: number;
  /** When `send` finds more than this many bytes already waiting to be written, `slowConsumer` applies. Default 4 MiB. */
  maxBufferedAmount?: number;
  /** 'close': fail with 1008 (WS_ERR_SLOW_CONSUMER) and free the buffer; 'drop': drop the message (send returns false). Default 'close'. */
  slowConsumer?: 'close' | 'drop';
  /** A request with more header fields than this is refused with 431 (node:http caps only their size). Default 100. */
  maxHeaders?: number;
  /** WebSocketRouter: at most this many live connections; more are refused with 503. 0: no limit. Default 10,000. */
  maxConnections?: number;
  /** How long an upgrade hook (`static upgrade`, or acceptWebSocket's `upgrade`) may take, in ms; past it the request gets 503. 0: no deadline. Default 10,000. */
  upgradeTimeout?: number;
  /** WebSocketRouter: at most this many live connections per remote address; more get 429. 0: off (the default: proxies share one address). */
  maxConnectionsPerIp?: number;
}

export interface ResolvedOptions {
  maxPayload: number;
  closeTimeout: number;
  highWaterMark: number;
  selectProtocol: WebSocketOptions['selectProtocol'];
  extensions: readonly ExtensionNegotiator[];
  compression: boolean | PerMessageDeflateOptions;
  headers: Readonly<Record<string, string>>;
  logger: Logger;
  trace: TraceOption | undefined;
  decodeText: boolean;
  origins: OriginPolicy | undefined;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  idleTimeout: number;
  maxBufferedAmount: number;
  slowConsumer: 'close' | 'drop';
  maxHeaders: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  upgradeTimeout: number;
}

export const DEFAULT_OPTIONS: ResolvedOptions = {
  maxPayload: DEFAULT_MAX_PAYLOAD,
  closeTimeout: 10_000,
  highWaterMark: 64 * 1024,
  selectProtocol: undefined,
  extensions: [],
  compression: true,
  headers: {},
  logger: console,
  trace: undefined,
  decodeText: true,
  origins: undefined,
  heartbeatInterval: 30_000,
  heartbeatTimeout: 30_000,
  idleTimeout: 0,
  maxBufferedAmount: 4 * 1024 * 1024,
  slowConsumer: 'close',
  maxHeaders: 100,
  maxConnections: 10_000,
  maxConnectionsPerIp: 0,
  upgradeTimeout: 10_000,
};

/** Merges option layers (later wins; undefined values are skipped) over the defaults. */
export function resolveOptions(...layers: (WebSocketOptions | undefined)[]): ResolvedOptions {
  const resolved: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) resolved[key] = value;
    }
  }
  const options = resolved as unknown as ResolvedOptions;
  if (!(options.maxPayload > 0)) throw new RangeError('maxPayload must be a positive number');
  if (!(options.closeTimeout >= 0)) throw new RangeError('closeTimeout must be a number of milliseconds');
  if (!(options.highWaterMark >= 0)) throw new RangeError('highWaterMark must be a number of bytes');
  compressionNegotiator(options.compression); // throws for settings out of range (made once per settings object)
  for (const name of ['heartbeatInterval', 'heartbeatTimeout', 'idleTimeout', 'upgradeTimeout'] as const) {
    if (!(options[name] >= 0 && options[name] < 2 ** 31)) throw new RangeError(`${name} must be a number of milliseconds (0 turns it off)`);
  }
  if (!(options.maxBufferedAmount >= 0)) throw new RangeError('maxBufferedAmount must be a number of bytes');
  for (const name of ['maxHeaders', 'maxConnections', 'maxConnectionsPerIp'] as const) {
    if (!Number.isInteger(options[name]) || options[name] < 0) throw new RangeError(`${name} must be a whole number (0: no limit)`);
  }
  // RFC 9110 §5.1, §5.5: a bad field is a TypeError here, never a bad byte in the 101 (response splitting).
  checkHeaderFields(options.headers, ACCEPT_FIELDS);
  if (typeof options.decodeText !== 'boolean') throw new TypeError('decodeText must be true or false');
  if (options.slowConsumer !== 'close' && options.slowConsumer !== 'drop') throw new RangeError("slowConsumer must be 'close' or 'drop'");
  const origins: unknown = options.origins;
  if (!(origins === undefined || origins === '*' || typeof origins === 'function' || Array.isArray(origins))) {
    throw new TypeError("origins must be '*', a list of origins or a function");
  }
  return options;
}

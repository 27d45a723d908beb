// The client: connect(url, hooks, options) opens a WebSocket to a server over node:net or node:tls,
// runs the opening handshake of RFC 6455 §4.1 (the pure checks are protocol/client-handshake.ts),
// then binds the same WebSocketConnection and hooks as the server side, with the core in the
// client's role (every frame masked with a fresh key, §5.3). On top: promises and an iterator.

import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { CloseCode } from '../protocol/constants.js';
import { Connection } from '../protocol/connection.js';
import { compressionOffer, type PerMessageDeflateOffer, type PerMessageDeflateOptions } from '../protocol/deflate.js';
import { HandshakeError, ProtocolError } from '../protocol/errors.js';
import { encodeClosePayload } from '../protocol/frame.js';
import { isToken } from '../protocol/extensions.js';
import { HANDSHAKE_FIELDS, checkHeaderFields } from '../protocol/http.js';
import {
  checkResponse,
  clientRequestBytes,
  generateKey,
  isRedirect,
  parseResponseHead,
  type HandshakeResponse,
} from '../protocol/client-handshake.js';
import { resolveOptions, type ResolvedOptions, type WebSocketOptions } from './options.js';
import { UpgradeRequest } from './request.js';
import { ConnectionTrace } from './trace.js';
import { WebSocketConnection, type SendOptions } from './transport.js';
import { bindHandler } from './upgrade.js';
import type { MessageType, SendData, WebSocketHooks } from './types.js';

/** Options of `connect`; every one is optional and its default is given. */
export interface ConnectOptions
  extends Pick<
    WebSocketOptions,
    | 'maxPayload'
    | 'closeTimeout'
    | 'highWaterMark'
    | 'logger'
    | 'trace'
    | 'heartbeatInterval'
    | 'heartbeatTimeout'
    | 'idleTimeout'
    | 'maxBufferedAmount'
    | 'slowConsumer'
  > {
  /** Subprotocols to offer, in order of preference (RFC 6455 §4.1 item 10); each a token, no repeats. Default none. */
  protocols?: string | readonly string[];
  /**
   * More header fields for the upgrade request. Checked at the call (TypeError with `code`
   * ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR or ERR_HANDSHAKE_FIELD): no CR, LF or NUL, and no field
   * the handshake writes itself (Host, Origin, Upgrade, Connection, Sec-WebSocket-*). Default none.
   */
  headers?: Readonly<Record<string, string>>;
  /** The Origin header to send (§4.1 item 8; browsers send their page's origin). Default none. */
  origin?: string;
  /**
   * permessage-deflate (RFC 7692): `true` offers it with the defaults of docs/compression.md, `false`
   * offers nothing, or the same settings object a server takes (`serverMaxWindowBits` is then the
   * window asked of the server, `clientMaxWindowBits` our own). What the server answers is checked
   * and applied (§7.1). Default true.
   */
  compression?: boolean | PerMessageDeflateOptions;
  /** The whole opening handshake (connect, TLS, the response head) must be done within this many ms. Default 10,000. */
  handshakeTimeout?: number;
  /**
   * Follow a redirect (301, 302, 303, 307, 308 with a Location) to another ws:, wss:, http: or https:
   * URL; Authorization, Cookie and Proxy-Authorization are dropped when it leads to another host or
   * from wss: to ws:. Default false: a redirect fails with WS_ERR_HANDSHAKE_REDIRECT.
   */
  followRedirects?: boolean;
  /** With followRedirects, at most this many redirects are followed. Default 10. */
  maxRedirects?: number;
  /** wss: trusted CA certificates (PEM), as node:tls takes them. Default: Node's bundled CAs. */
  ca?: TlsConnectionOptions['ca'];
  /** wss: a client certificate (PEM). Default none. */
  cert?: TlsConnectionOptions['cert'];
  /** wss: the client certificate's private key (PEM). Default none. */
  key?: TlsConnectionOptions['key'];
  /** wss: false accepts a server certificate that does not verify. Default true. */
  rejectUnauthorized?: boolean;
  /** wss: the TLS server name (SNI) and the name the certificate is checked against. Default: the URL's host, unless it is an IP address. */
  servername?: string;
}

/** How a client's connection ended: what `client.closed` resolves with. */
export interface CloseInfo {
  /** The close code: the server's, 1005 (its Close had no code) or 1006 (no Close at all). */
  readonly code: number;
  /** The close reason, or ''. */
  readonly reason: string;
  /** Whether the closing handshake completed: a Close went each way (RFC 6455 §7.1.4). */
  readonly wasClean: boolean;
}

/** A message from the client's async iterator: text as a string, binary as a Buffer. */
export type ReceivedMessage = { readonly type: 'text'; readonly data: string } | { readonly type: 'binary'; readonly data: Buffer };

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
const DEFAULT_MAX_REDIRECTS = 10;
/** How much of a refusal's body a HandshakeError carries. */
const BODY_BYTES = 512;
/** The iterator pauses reading once this many messages wait to be taken, whatever their size. */
const QUEUE_MAX_MESSAGES = 1024;
/** Fields a redirect to another host does not carry on (they are the first host's credentials). */
const CREDENTIALS = ['authorization', 'cookie', 'proxy-authorization'];

const EMPTY: Buffer = Buffer.alloc(0);
const ignore = (): void => {};

type State = 'connecting' | 'open' | 'closed';

interface Waiter {
  resolve(result: IteratorResult<ReceivedMessage>): void;
  reject(error: Error): void;
}

function settings(options: ConnectOptions): WebSocketOptions {
  const {
    maxPayload,
    closeTimeout,
    highWaterMark,
    logger,
    trace,
    heartbeatInterval,
    heartbeatTimeout,
    idleTimeout,
    maxBufferedAmount,
    slowConsumer,
    compression,
  } = options;
  return { maxPayload, closeTimeout, highWaterMark, logger, trace, heartbeatInterval, heartbeatTimeout, idleTimeout, maxBufferedAmount, slowConsumer, compression };
}

/** ws: and wss: as they are; http: and https: as the WebSocket URLs they stand for; anything else is refused. */
function webSocketUrl(url: URL): URL | null {
  if (url.protocol === 'ws:' || url.protocol === 'wss:') return url;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const mapped = new URL(url.href);
  mapped.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  return mapped;
}

function parseUrl(input: string | URL): URL {
  const url = webSocketUrl(new URL(input)); // TypeError ERR_INVALID_URL for what is not a URL
  if (url === null) throw new TypeError(`a WebSocket URL is ws:// or wss:// (or http:// or https://), not ${JSON.stringify(String(input))}`);
  // RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket URIs".
  if (url.hash !== '') throw new TypeError('a WebSocket URL has no fragment (#...): RFC 6455 §3');
  return url;
}

function protocolList(protocols: ConnectOptions['protocols']): string[] {
  if (protocols === undefined) return [];
  const list = typeof protocols === 'string' ? [protocols] : [...protocols];
  // §4.1 item 10: tokens, each unique.
  for (const protocol of list) {
    if (typeof protocol !== 'string' || !isToken(protocol)) throw new TypeError(`a subprotocol is a token: ${JSON.stringify(protocol)}`);
  }
  if (new Set(list).size !== list.length) throw new TypeError('subprotocols offered must be unique (RFC 6455 §4.1)');
  return list;
}

/**
 * Opens a WebSocket connection to `url` (`ws://` or `wss://`, IPv6 as `ws://[::1]:8080/`, with a
 * path and a query) and returns at once; the opening handshake of RFC 6455 §4.1 runs meanwhile.
 * `hooks` are the server side's (onOpen, onMessage, onDrain, onError, onClose), called with `this`
 * the hooks object; without onMessage, messages are read through the client's async iterator.
 *
 * A failed handshake calls onError with the error, then onClose(1006, ''), and rejects
 * `client.opened` with it: a HandshakeError (`code` WS_ERR_HANDSHAKE_STATUS, _REDIRECT, _RESPONSE,
 * _UPGRADE, _CONNECTION, _ACCEPT, _EXTENSION, _PROTOCOL, _TIMEOUT, _CLOSED or _ABORTED; `status`,
 * `headers` and `body` of the response), or the socket's own error (ECONNREFUSED, a TLS error).
 *
 * Throws at the call: TypeError for a URL that is not ws:, wss:, http: or https:, a URL with a
 * fragment, a subprotocol that is not a token or is repeated, or a bad header field (see
 * `headers`); RangeError for an option out of range.
 */
export function connect(url: string | URL, hooks: WebSocketHooks = {}, options: ConnectOptions = {}): WebSocketClient {
  return new WebSocketClient(url, hooks, options);
}

/**
 * A WebSocket client connection, from `connect()`. It has the methods of the server side's
 * WebSocketConnection (send, ping, close, terminate, isDefunct, bufferedAmount, pause, resume),
 * so code moves between the two, and what a script wants besides: `await client.opened`,
 * `await client.closed`, and `for await (const { data, type } of client)`.
 */
export class WebSocketClient implements AsyncIterable<ReceivedMessage> {
  /**
   * Resolves once the connection is open (just after onOpen is called); rejects with the error that
   * failed the handshake. Never an unhandled rejection: nothing happens if it is not awaited.
   */
  readonly opened: Promise<void>;
  /** Resolves once the connection is over (just after onClose is called), whatever ended it; never rejects. */
  readonly closed: Promise<CloseInfo>;

  readonly #hooks: WebSocketHooks;
  readonly #options: ConnectOptions;
  readonly #resolved: ResolvedOptions;
  readonly #protocols: string[];
  readonly #headers: Readonly<Record<string, string>>;
  readonly #deflate: PerMessageDeflateOffer | null;
  readonly #handshakeTimeout: number;
  readonly #maxRedirects: number;

  #url: URL;
  #state: State = 'connecting';
  #request: UpgradeRequest | null = null;
  #abortHandshake: ((error: Error) => void) | null = null;
  #response: HandshakeResponse | null = null;
  #ws: WebSocketConnection | null = null;
  #conn: Connection | null = null;
  #resolveOpened!: () => void;
  #rejectOpened!: (error: Error) => void;
  #resolveClosed!: (info: CloseInfo) => void;
  /** The first error reported (onError), which ends the iterator if the connection does not close cleanly. */
  #error: Error | null = null;
  /** Set once the connection is over: null when it closed cleanly, else the error the iterator throws. */
  #end: Error | null | undefined = undefined;

  // The async iterator's queue (used when hooks has no onMessage).
  readonly #queue: ReceivedMessage[] = [];
  #queueBytes = 0;
  readonly #waiters: Waiter[] = [];
  #userPaused = false;
  #queuePaused = false;

  /** @internal Use connect(). */
  constructor(url: string | URL, hooks: WebSocketHooks, options: ConnectOptions) {
    this.#url = parseUrl(url);
    this.#hooks = hooks;
    this.#options = options;
    this.#resolved = resolveOptions(settings(options));
    this.#protocols = protocolList(options.protocols);
    const headers = options.headers ?? {};
    checkHeaderFields(headers, [...HANDSHAKE_FIELDS, 'host', 'origin']);
    this.#headers = headers;
    if (options.origin !== undefined) checkHeaderFields({ Origin: options.origin }, []);
    this.#deflate = compressionOffer(options.compression ?? true);
    this.#handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    if (!(this.#handshakeTimeout > 0 && this.#handshakeTimeout < 2 ** 31)) throw new RangeError('handshakeTimeout must be a number of milliseconds');
    this.#maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    if (!Number.isInteger(this.#maxRedirects) || this.#maxRedirects < 0) throw new RangeError('maxRedirects must be a whole number');
    this.opened = new Promise<void>((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.opened.catch(ignore); // a script that never awaits it must not die of an unhandled rejection
    this.closed = new Promise<CloseInfo>((resolve) => (this.#resolveClosed = resolve));
    this.#attempt(this.#url, 0, this.#headers);
  }

  /** The URL connected to (after redirects, the last one), as a string. */
  get url(): string {
    return this.#url.href;
  }

  /** 'connecting' during the opening handshake, then 'open', then 'closed'. */
  get readyState(): 'connecting' | 'open' | 'closed' {
    return this.#state;
  }

  /** The upgrade request as sent: `url` the path and query, `headers` in lower case. */
  get request(): UpgradeRequest {
    return this.#request!;
  }

  /** The server's 101 response (status, headers), once open; null before. */
  get response(): HandshakeResponse | null {
    return this.#response;
  }

  /** The subprotocol the server chose, or ''. */
  get protocol(): string {
    return this.#ws?.protocol ?? '';
  }

  /** The server's Sec-WebSocket-Extensions response, or ''. */
  get extensions(): string {
    return this.#ws?.extensions ?? '';
  }

  /** Bytes waiting to be written: queued frames plus what the socket holds. 0 before open. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** The round trip of the last heartbeat Ping in ms; undefined before the first Pong. */
  get latency(): number | undefined {
    return this.#ws?.latency;
  }

  /** True once closing, closed or failed (a failed handshake too); false while connecting and open. */
  isDefunct(): boolean {
    if (this.#ws !== null) return this.#ws.isDefunct();
    return this.#state === 'closed';
  }

  /**
   * Sends a message, masked with a fresh key (§5.3), as WebSocketConnection.send does: returns false
   * once more than highWaterMark bytes are buffered (wait for onDrain), or when defunct. Throws an
   * Error with `code` 'WS_ERR_NOT_OPEN' while the handshake is running (await `opened` first).
   */
  send(data: SendData, type: MessageType = 'text', options?: SendOptions): boolean {
    return this.#connection('send')?.send(data, type, options) ?? false;
  }

  /** Sends a Ping (at most 125 bytes). Throws WS_ERR_NOT_OPEN while the handshake is running. */
  ping(data?: SendData): boolean {
    const ws = this.#connection('ping');
    if (ws === null) return false;
    return data === undefined ? ws.ping() : ws.ping(data);
  }

  /**
   * Starts the closing handshake (§7.1.2): sends Close(code, reason), waits up to closeTimeout for the
   * server's Close and then for the server to close TCP (§7.1.1), and closes it itself after that.
   * During the handshake it gives up on the connection (WS_ERR_HANDSHAKE_ABORTED). RangeError for a
   * code that may not be sent or a reason over 123 bytes.
   */
  close(code: number = CloseCode.Normal, reason = ''): void {
    encodeClosePayload(code, reason); // RangeError now, whatever the state
    if (this.#ws !== null) return this.#ws.close(code, reason);
    this.#abortHandshake?.(HandshakeError.fromResponse('WS_ERR_HANDSHAKE_ABORTED', 0, 'close() was called during the opening handshake'));
  }

  /** Ends the connection at once, without a closing handshake (onClose gets 1006). */
  terminate(): void {
    if (this.#ws !== null) return this.#ws.terminate();
    this.#abortHandshake?.(HandshakeError.fromResponse('WS_ERR_HANDSHAKE_ABORTED', 0, 'terminate() was called during the opening handshake'));
  }

  /** Stops reading from the server until resume() (see WebSocketConnection.pause). */
  pause(): void {
    this.#userPaused = true;
    this.#ws?.pause();
  }

  /** Reads again after pause(). */
  resume(): void {
    this.#userPaused = false;
    if (!this.#queuePaused) this.#ws?.resume();
  }

  /**
   * The messages, in order, for clients connected without an onMessage hook:
   * `for await (const { data, type } of client)`. Messages are queued from the moment the
   * connection opens, so none is lost before the loop starts; while more than highWaterMark bytes
   * (or 1024 messages) wait, reading pauses and TCP holds the server back. The loop ends when the
   * connection closes cleanly, and throws the error that ended it otherwise (a ProtocolError, a
   * HandshakeError, a socket error, or WS_ERR_ABNORMAL_CLOSURE when TCP closed without a Close).
   * Leaving the loop early (break) leaves the connection open; a later loop goes on from there
   * (meanwhile reading pauses once the queue is full, and the server's Pings wait too).
   * TypeError when hooks has onMessage: the messages go there.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedMessage> {
    if (this.#hooks.onMessage !== undefined) throw new TypeError('this client hands messages to hooks.onMessage; connect without onMessage to iterate');
    const iterator: AsyncIterableIterator<ReceivedMessage> = {
      next: () => this.#next(),
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  // ------------------------------------------------------------------ the opening handshake

  /** One connection attempt to `url`: the first, or one after a redirect. */
  #attempt(url: URL, redirects: number, headers: Readonly<Record<string, string>>): void {
    this.#url = url;
    const options = this.#options;
    const secure = url.protocol === 'wss:';
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
    let socket: Socket;
    if (secure) {
      const tls: TlsConnectionOptions = { host: hostname, port, ALPNProtocols: ['http/1.1'] };
      const servername = options.servername ?? (isIP(hostname) === 0 ? hostname : undefined);
      if (servername !== undefined) tls.servername = servername;
      if (options.ca !== undefined) tls.ca = options.ca;
      if (options.cert !== undefined) tls.cert = options.cert;
      if (options.key !== undefined) tls.key = options.key;
      if (options.rejectUnauthorized !== undefined) tls.rejectUnauthorized = options.rejectUnauthorized;
      socket = tlsConnect(tls);
    } else {
      socket = netConnect({ host: hostname, port });
    }
    socket.setNoDelay(true);

    const key = generateKey();
    const path = (url.pathname === '' ? '/' : url.pathname) + url.search;
    const bytes = clientRequestBytes({
      host: url.host,
      path,
      key,
      protocols: this.#protocols,
      extensions: this.#deflate?.header ?? '',
      origin: options.origin,
      headers,
    });
    const request = new UpgradeRequest(
      'GET',
      path,
      '1.1',
      Object.fromEntries(
        bytes
          .toString('latin1')
          .split('\r\n')
          .slice(1, -2)
          .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 2)]),
      ),
      socket,
    );
    this.#request = request;
    const trace = new ConnectionTrace(request, this.#resolved.trace);
    socket.write(bytes);

    let received: Buffer = EMPTY;
    let response: HandshakeResponse | null = null;
    let headLength = 0;

    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      this.#abortHandshake = null;
    };
    const fail = (error: Error): void => {
      cleanup();
      socket.on('error', ignore);
      socket.destroy();
      if (error instanceof HandshakeError) trace.handshake(error.status, '', '', error);
      else trace.error(error);
      this.#handshakeFailed(error);
    };
    const body = (): Buffer => received.subarray(headLength, headLength + BODY_BYTES);
    /** A response other than 101, its body read (up to BODY_BYTES): follow it or fail. */
    const refused = (): void => {
      const answer = response!;
      if (isRedirect(answer) && options.followRedirects) {
        const next = redirectTarget(url, answer.headers['location']!);
        if (next === null) return fail(checkResponse(answer, { key }, body()) as HandshakeError);
        if (redirects >= this.#maxRedirects) {
          return fail(HandshakeError.fromResponse('WS_ERR_HANDSHAKE_REDIRECT', answer.status, `more than ${this.#maxRedirects} redirects`, { ...answer.headers }, body()));
        }
        cleanup();
        socket.on('error', ignore);
        socket.destroy();
        // Credentials for one host are not handed to another, nor sent in the clear after TLS.
        const keep = next.host === url.host && (next.protocol === 'wss:' || url.protocol === 'ws:');
        const carried = keep ? headers : Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIALS.includes(name.toLowerCase())));
        return this.#attempt(next, redirects + 1, carried);
      }
      fail(checkResponse(answer, { key }, body()) as HandshakeError);
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (response === null) {
        const parsed = parseResponseHead(received);
        if (parsed === null) return;
        if (parsed instanceof HandshakeError) return fail(parsed);
        response = parsed.response;
        headLength = parsed.headLength;
        if (response.status === 101) return open();
      }
      // A refusal: its body is read as far as the first BODY_BYTES, or its Content-Length, or its end.
      const length = Number(response.headers['content-length']);
      const have = received.length - headLength;
      if (have >= BODY_BYTES || (Number.isInteger(length) && have >= length)) refused();
    };
    const onClose = (): void => {
      if (response !== null) return refused();
      fail(HandshakeError.fromResponse('WS_ERR_HANDSHAKE_CLOSED', 0, 'the server closed the connection before the end of its response head', {}, received.subarray(0, BODY_BYTES)));
    };
    const onError = (error: Error): void => {
      if (response !== null) return refused();
      fail(error);
    };
    const open = (): void => {
      const answer = response!;
      const accepted = checkResponse(answer, { key, protocols: this.#protocols, deflate: this.#deflate });
      if (accepted instanceof HandshakeError) return fail(accepted);
      cleanup();
      this.#response = answer;
      trace.handshake(101, accepted.protocol, accepted.extensions);
      const resolved = this.#resolved;
      const conn = new Connection({ role: 'client', maxPayload: resolved.maxPayload, extension: accepted.extension, onFrame: trace.onFrame });
      const ws = new WebSocketConnection(socket, conn, this.#bindHooks(), request, accepted.protocol, accepted.extensions, resolved, trace);
      trace.connection = ws;
      bindHandler(this.#hooks, ws); // a WebSocketHandler as hooks: this.send() works as on a server
      this.#conn = conn;
      this.#ws = ws;
      this.#state = 'open';
      if (this.#userPaused || this.#queuePaused) ws.pause();
      ws.start(null, received.subarray(headLength));
    };
    // A timer, not socket.setTimeout: the deadline covers the whole handshake, however the server trickles it.
    const timer = setTimeout(() => {
      if (response !== null) return refused(); // a refusal whose body never ends: what came of it
      fail(HandshakeError.fromResponse('WS_ERR_HANDSHAKE_TIMEOUT', 0, `no complete response within ${this.#handshakeTimeout} ms`, {}, received.subarray(0, BODY_BYTES)));
    }, this.#handshakeTimeout);
    this.#abortHandshake = fail;
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  }

  /** The handshake failed: onError, onClose(1006), `opened` rejected, `closed` resolved, the iterator ended. */
  #handshakeFailed(error: Error): void {
    this.#state = 'closed';
    this.#error = error;
    this.#rejectOpened(error);
    this.#callUserHook('onError', error);
    this.#finish(CloseCode.Abnormal, '', false);
  }

  #callUserHook(name: 'onError' | 'onClose', ...args: unknown[]): void {
    const hook = this.#hooks[name] as ((...a: unknown[]) => unknown) | undefined;
    if (hook === undefined) return;
    const logger = this.#resolved.logger;
    try {
      const result = hook.apply(this.#hooks, args);
      if (result instanceof Promise) result.catch((error: unknown) => logger.error(`pef-front-websocket: ${name} rejected`, error));
    } catch (error) {
      logger.error(`pef-front-websocket: ${name} threw`, error);
    }
  }

  // ------------------------------------------------------------------ the open connection

  /** The open connection; null once a failed handshake ended it; WS_ERR_NOT_OPEN while connecting. */
  #connection(method: string): WebSocketConnection | null {
    if (this.#ws !== null || this.#state === 'closed') return this.#ws;
    throw Object.assign(new Error(`${method}() before the connection is open: await client.opened first`), { code: 'WS_ERR_NOT_OPEN' });
  }

  /** The hooks the WebSocketConnection calls: the user's, with `this` the user's object, plus the client's own bookkeeping. */
  #bindHooks(): WebSocketHooks {
    const user = this.#hooks;
    const onMessage = user.onMessage;
    const onDrain = user.onDrain;
    const hooks: WebSocketHooks = {
      onOpen: () => {
        this.#resolveOpened();
        return user.onOpen?.call(user);
      },
      onMessage: onMessage !== undefined ? (message, type) => onMessage.call(user, message, type) : (message, type) => this.#enqueue(message, type),
      onError: (error) => {
        this.#error ??= error;
        return user.onError?.call(user, error);
      },
      onClose: (code, reason) => {
        this.#state = 'closed';
        const conn = this.#conn!;
        // §7.1.4: closed cleanly when the closing handshake completed (a Close each way).
        const wasClean = conn.closeSent && conn.closeReceived;
        try {
          return user.onClose?.call(user, code, reason);
        } finally {
          this.#finish(code, reason, wasClean);
        }
      },
    };
    if (onDrain !== undefined) hooks.onDrain = () => onDrain.call(user);
    return hooks;
  }

  #finish(code: number, reason: string, wasClean: boolean): void {
    this.#end = wasClean ? null : (this.#error ?? new ProtocolError('WS_ERR_ABNORMAL_CLOSURE', CloseCode.Abnormal, `the connection closed without a closing handshake (${code})`));
    if (this.#ws === null) this.#callUserHook('onClose', code, reason);
    this.#resolveClosed({ code, reason, wasClean });
    for (const waiter of this.#waiters.splice(0)) {
      if (this.#end === null) waiter.resolve({ done: true, value: undefined });
      else waiter.reject(this.#end);
    }
  }

  #enqueue(data: string | Buffer, type: MessageType): void {
    const message = (type === 'text' ? { type, data } : { type, data }) as ReceivedMessage;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) return waiter.resolve({ done: false, value: message });
    this.#queue.push(message);
    this.#queueBytes += data.length;
    if (!this.#queuePaused && (this.#queueBytes > this.#resolved.highWaterMark || this.#queue.length >= QUEUE_MAX_MESSAGES)) {
      this.#queuePaused = true;
      this.#ws?.pause();
    }
  }

  #next(): Promise<IteratorResult<ReceivedMessage>> {
    const message = this.#queue.shift();
    if (message !== undefined) {
      this.#queueBytes -= message.data.length;
      if (this.#queuePaused && this.#queue.length === 0) {
        this.#queuePaused = false;
        if (!this.#userPaused) this.#ws?.resume();
      }
      return Promise.resolve({ done: false, value: message });
    }
    if (this.#end === null) return Promise.resolve({ done: true, value: undefined });
    if (this.#end !== undefined) return Promise.reject(this.#end);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}

/** Where a redirect leads, as a WebSocket URL; null for a Location that is not one. */
function redirectTarget(from: URL, location: string): URL | null {
  try {
    const url = webSocketUrl(new URL(location, from));
    if (url !== null) url.hash = ''; // meaningless in a WebSocket URL (§3)
    return url;
  } catch {
    return null;
  }
}

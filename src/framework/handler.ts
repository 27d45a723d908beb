// The WebSocketHandler base class: PEF::Front::WebSocket::Base for Node. A handler class extends it
// (or gets it put into its prototype chain when loaded) and overrides the hooks it needs; one
// instance serves one connection, and its fields are that connection's state.

import type { IncomingMessage } from 'node:http';
import type { HandshakeError } from '../protocol/errors.js';
import type { WebSocketOptions } from '../node/options.js';
import type { UpgradeRequest } from '../node/request.js';
import type { SendOptions, WebSocketConnection } from '../node/transport.js';
import type { MaybePromise, MessageType, SendData } from '../node/types.js';
import type { UpgradeContext } from '../node/upgrade-hook.js';
import type { PublishOptions, QueueError } from '../pubsub/broker.js';
import { FORWARDS_QUEUE, HandlerQueue, type QueueSource } from './queue.js';

/**
 * Where a handler instance keeps its connection. `Symbol.for`, so that two copies of this package
 * (say one from `src/` under tsx and one from `dist/`) still agree on it.
 * @internal
 */
export const CONNECTION: unique symbol = Symbol.for('pef-front-websocket.connection') as never;
/** Where a handler instance keeps its queue (subscriptions to the router's broker). @internal */
export const QUEUE: unique symbol = Symbol.for('pef-front-websocket.queue') as never;

/** The shape of a handler instance once dispatch has bound it to its connection. @internal */
export interface BoundHandler {
  [CONNECTION]?: WebSocketConnection;
  [URL_CACHE]?: URL;
  /** Its queue once used; until then the route it came from (see queueOf). */
  [QUEUE]?: HandlerQueue | QueueSource;
}

/** Where `this.url` is kept once parsed. */
const URL_CACHE: unique symbol = Symbol('pef-front-websocket.url') as never;

function boundConnection(handler: object, what: string): WebSocketConnection {
  const connection = (handler as BoundHandler)[CONNECTION];
  if (connection === undefined) {
    throw new Error(`this handler is not bound to a connection yet: read this.${what} from onOpen on`);
  }
  return connection;
}

/**
 * The handler's queue, made on first use from the route it came from. A duck test, not instanceof:
 * two copies of this package (see CONNECTION) each have their own HandlerQueue class. @internal
 */
export function queueOf(handler: WebSocketHandler<unknown>): HandlerQueue {
  const bound = handler as BoundHandler;
  const queue = bound[QUEUE];
  if (queue === undefined) throw new Error('this handler is not bound to a connection yet: use the queue from onOpen on');
  if (!('broker' in queue)) return queue;
  const ownOnError = handler.onError !== WebSocketHandler.prototype.onError;
  return (bound[QUEUE] = new HandlerQueue(handler, bound[CONNECTION]!, queue.broker, queue.options.logger, ownOnError));
}

/**
 * The base class of every WebSocket handler, as `PEF::Front::Websocket::Base` was in Perl.
 *
 * Override the hooks you need; each is a no-op here and may return a promise (a rejection is
 * handled like a throw). One instance is created per connection, with no constructor arguments,
 * before the handshake completes: keep per-connection state in fields and do the work of
 * starting in {@link WebSocketHandler.onOpen}, where {@link WebSocketHandler.request} is
 * available.
 *
 * @example
 * ```ts
 * import { WebSocketHandler, type MessageType } from 'pef-front-websocket';
 *
 * export default class Echo extends WebSocketHandler {
 *   override onMessage(message: string | Buffer, type: MessageType) {
 *     this.send(message, type);
 *   }
 * }
 * ```
 *
 * A class loaded by {@link WebSocketRouter.fromDirectory} or registered with
 * {@link WebSocketRouter.route} need not extend this class: the base is put into its prototype
 * chain on load, as PEF unshifted its Base onto `@ISA`. To type such a class, merge an interface
 * of the same name into it:
 *
 * ```ts
 * import type { WebSocketHandler } from 'pef-front-websocket';
 *
 * export default class Plain {
 *   onMessage(message: string | Buffer) {
 *     this.send(message); // typed through the interface below
 *   }
 * }
 * // Declaration merging: `Plain` instances have every member of WebSocketHandler.
 * export default interface Plain extends WebSocketHandler {}
 * ```
 *
 * If a hook throws or rejects, the error goes to {@link WebSocketHandler.onError} and the
 * connection is closed with 1011 (Internal Error); other connections are untouched. What
 * `onError` or `onClose` throw themselves is reported to the logger (`console` unless the
 * `logger` option says otherwise) and goes no further. A class that does not override `onError`
 * has errors thrown by its other hooks reported to that logger, so they are never lost silently.
 *
 * @template Data The type of {@link WebSocketHandler.data}: what the class's `static upgrade`
 * hook returns. Default undefined.
 */
export class WebSocketHandler<Data = undefined> {
  /**
   * The connection is open: the 101 response has been flushed to the socket. Called once,
   * before any {@link WebSocketHandler.onMessage}.
   */
  onOpen(): MaybePromise<void> {}

  /**
   * A whole message arrived (fragments already joined). Messages arrive in the order the peer
   * sent them: `string` for `'text'` (a `Buffer` of its checked UTF-8 bytes with the option
   * `decodeText: false`), `Buffer` for `'binary'`. The next message is not held back
   * while a returned promise is pending.
   */
  onMessage(message: string | Buffer, type: MessageType): MaybePromise<void> {}

  /**
   * The outgoing buffer became empty after sends: everything sent so far has been handed to the
   * kernel. Coalesced: called once each time the buffer empties, not once per send. The moment
   * to resume sending after {@link WebSocketHandler.send} returned `false`.
   */
  onDrain(): MaybePromise<void> {}

  /**
   * Something went wrong on this connection: a protocol error from the peer (a `ProtocolError`
   * with its `code` and `closeCode`), a socket error, or what another hook threw or rejected
   * with (that exact value, wrapped in an `Error` if it was not one). The connection is closing
   * or closed by then; {@link WebSocketHandler.onClose} follows.
   */
  onError(error: Error): MaybePromise<void> {}

  /**
   * The connection is over, whatever ended it; called exactly once per connection (if onOpen ran).
   * `code` is the close code (1005 when the peer's Close carried none, 1006 when the connection
   * dropped without a Close) and `reason` its reason text.
   */
  onClose(code: number, reason: string): MaybePromise<void> {}

  /**
   * Sends a message. `'text'` (the default) sends a string, or a Buffer that must be valid UTF-8
   * (else `TypeError`); `'binary'` sends bytes, or a string as its UTF-8 bytes. Any other type is
   * a `TypeError`.
   *
   * Returns `false` without sending when the connection is defunct (closing, closed or failed),
   * as PEF did. Otherwise the message is queued and the result says whether buffered output is
   * still at or below the high-water mark: on `false`, wait for {@link WebSocketHandler.onDrain}.
   * `{ compress: false }` sends this one message uncompressed when permessage-deflate is on.
   *
   * A Buffer of 4 KiB or more goes to the socket as it is, not copied (as socket.write takes it):
   * change it only once it is written (onDrain), or send a copy. Text is checked at the call; bytes
   * changed after it are not checked again.
   */
  send(data: SendData, type: MessageType = 'text', options?: SendOptions): boolean {
    const connection = (this as BoundHandler)[CONNECTION];
    if (connection === undefined) {
      if (type !== 'text' && type !== 'binary') throw new TypeError(`unknown message type ${String(type)}: 'text' or 'binary'`);
      return false;
    }
    return connection.send(data, type, options);
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2): sends Close with `code` and `reason` and
   * waits for the peer's Close up to the close timeout, then the socket is destroyed. Does
   * nothing when already closing. `RangeError` for a code that may not be sent (1005, 1006,
   * 1015, or outside 1000-4999) or a reason over 123 bytes.
   */
  close(code = 1000, reason = ''): void {
    (this as BoundHandler)[CONNECTION]?.close(code, reason);
  }

  /** True once the connection is closing, closed or failed (and before it is bound): sends do nothing then. */
  isDefunct(): boolean {
    const connection = (this as BoundHandler)[CONNECTION];
    return connection === undefined || connection.isDefunct();
  }

  /** Sends a Ping with up to 125 bytes of `data`; returns whether it was queued. */
  ping(data?: SendData): boolean {
    const connection = (this as BoundHandler)[CONNECTION];
    if (connection === undefined) return false;
    return data === undefined ? connection.ping() : connection.ping(data);
  }

  /**
   * The upgrade request (`$self->{_request}` in PEF): its URL with the query string, its headers.
   * Available from {@link WebSocketHandler.onOpen} on; reading it in the constructor throws.
   */
  get request(): UpgradeRequest {
    return boundConnection(this, 'request').request;
  }

  /**
   * What the class's `static upgrade(request)` hook returned for this connection (say the user
   * its cookie names), typed by the class's type argument: `class Chat extends
   * WebSocketHandler<{ user: string }>`. Undefined without a hook. Available from onOpen on.
   */
  get data(): Data {
    return boundConnection(this, 'data').data as Data;
  }

  /**
   * The request target as a URL, parsed once: `this.url.searchParams.get('room')` for
   * `/wsChat?room=a`. Its origin is `ws://` (or `wss://` over TLS) and the Host header, or
   * `ws://localhost` when that is not a valid host. Available from onOpen on.
   */
  get url(): URL {
    const self = this as BoundHandler;
    const cached = self[URL_CACHE];
    if (cached !== undefined) return cached;
    const request = boundConnection(this, 'url').request;
    const scheme = (request.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'wss' : 'ws';
    let url: URL;
    try {
      url = new URL(request.url ?? '/', `${scheme}://${request.headers.host ?? 'localhost'}`);
    } catch {
      url = new URL(request.url ?? '/', `${scheme}://localhost`);
    }
    return (self[URL_CACHE] = url);
  }

  /**
   * Ends the connection at once, without a closing handshake: the socket is destroyed and
   * onClose gets 1006. For a peer that is gone or hostile; {@link WebSocketHandler.close} otherwise.
   * Does nothing before the handler is bound.
   */
  terminate(): void {
    (this as BoundHandler)[CONNECTION]?.terminate();
  }

  /** The subprotocol chosen in the handshake (see `static protocols`), or `''` for none. */
  get protocol(): string {
    return (this as BoundHandler)[CONNECTION]?.protocol ?? '';
  }

  /** Bytes queued and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return (this as BoundHandler)[CONNECTION]?.bufferedAmount ?? 0;
  }

  /** The round trip of the last heartbeat Ping in milliseconds (see `heartbeatInterval`); undefined before the first Pong. */
  get latency(): number | undefined {
    return (this as BoundHandler)[CONNECTION]?.latency;
  }

  // PEF's queue (docs/pubsub.md): topics with ids and replay, through the router's broker.

  /**
   * Subscribes this connection to `topic` (1 to 256 characters); its messages come to
   * {@link WebSocketHandler.onQueue} in id order. With `lastId` (the last id this client saw),
   * the stored messages after it come first, preceded by {@link WebSocketHandler.onQueueGap}
   * when history no longer reaches back to it. Subscribing again replaces the subscription. The
   * promise resolves once the replay was delivered. Subscriptions end with the connection.
   * Throws QueueError WS_ERR_QUEUE_TOPIC, WS_ERR_QUEUE_ID (lastId not an integer >= 0).
   */
  subscribe(topic: string, lastId?: number): Promise<void> {
    return queueOf(this).subscribe(topic, lastId);
  }

  /** Ends this connection's subscription to `topic`; none of its messages arrive afterwards. */
  unsubscribe(topic: string): void {
    queueOf(this).unsubscribe(topic);
  }

  /**
   * Publishes `message` (a string: text; a Buffer: binary) to every subscriber of `topic`, in
   * every process the broker reaches. Resolves with its id: the topic's last id + 1, or
   * `options.id`, which must be greater than the last (else QueueError WS_ERR_QUEUE_ID_ORDER);
   * `{ store: false }` delivers without storing, id 0. Rejects with QueueError (see Broker.publish);
   * a rejection nobody awaits is dropped, never an unhandled rejection.
   */
  publish(topic: string, message: string | Buffer, options?: PublishOptions): Promise<number> {
    return queueOf(this).publish(topic, message, options);
  }

  /**
   * A message of a subscribed topic (PEF's on_queue), in id order; `id` is 0 for one published
   * with `store: false`. By default it is sent on to the client as it is (text or binary), framed
   * once for every subscriber of this process; override it to send something else (the id, say).
   */
  onQueue(topic: string, message: string | Buffer, id: number): MaybePromise<void> {
    this.send(message, typeof message === 'string' ? 'text' : 'binary');
  }

  /**
   * Replay could not reach back to the lastId given to {@link WebSocketHandler.subscribe}: the
   * messages from `firstId` on follow, those between are gone (PEF's reload message). Tell the
   * client to reload its state.
   */
  onQueueGap(topic: string, firstId: number): MaybePromise<void> {}

  /**
   * The broker lost its backend (Redis down, the cluster primary gone): messages stop until it is
   * back, then every subscription resumes from the last id it delivered. The connection stays open.
   */
  onQueueError(error: QueueError): MaybePromise<void> {}
}

/** Marks WebSocketHandler.prototype so that a second copy of this package recognises its subclasses. */
export const HANDLER_BRAND: unique symbol = Symbol.for('pef-front-websocket.handler') as never;
Object.defineProperty(WebSocketHandler.prototype, HANDLER_BRAND, { value: true });
Object.defineProperty(WebSocketHandler.prototype.onQueue, FORWARDS_QUEUE, { value: true });

/**
 * A handler class as the router takes it: constructible with no arguments, with optional
 * static fields that configure its route. The class need not extend {@link WebSocketHandler}.
 */
export interface HandlerClass {
  new (): object;
  /** The route, overriding `/ws` + the file's base name. Must start with `/`. */
  readonly path?: string | undefined;
  /**
   * Subprotocols this class speaks, in order of preference. The first of them that the client
   * offered is chosen (`this.protocol`); a client that offers protocols but none of these is
   * refused with 400 naming them; a client that offers none is accepted with protocol `''`.
   */
  readonly protocols?: readonly string[] | undefined;
  /** Options for this class's connections, over the router's options. */
  readonly options?: WebSocketOptions | undefined;
  /**
   * The upgrade hook: decides a request before the 101 response, after the handshake and Origin
   * checks. Return (or resolve with) the connection's data, `this.data` in the handler; or refuse
   * with `refuseUpgrade(status, message?, headers?)`, returned or thrown. Another throw is logged
   * and answered 500; past `upgradeTimeout` (default 10 s) the request gets 503. While it runs
   * the socket is read: a client that leaves aborts `context.signal` and reaches no hook.
   */
  upgrade?(request: IncomingMessage, context: UpgradeContext): unknown;
  /**
   * Chooses the subprotocol instead of `protocols`: return one of `offered`, null for none, or a
   * HandshakeError to refuse the request.
   */
  selectProtocol?(offered: readonly string[], request: IncomingMessage): string | null | undefined | HandshakeError;
}

/** Whether `value` is WebSocketHandler or a class whose prototype chain holds it (any copy of this package). */
export function extendsHandler(value: HandlerClass): boolean {
  const prototype: unknown = value.prototype;
  return typeof prototype === 'object' && prototype !== null && HANDLER_BRAND in prototype;
}

/**
 * Puts WebSocketHandler.prototype into a plain class's prototype chain, as PEF unshifted its Base
 * onto `@ISA`: at the root of the chain, so the class and any parents of its own keep their
 * methods. The constructor chain gets the same treatment, so statics are inherited too. A class
 * whose chain ends in a built-in (Array, Map, ...) is refused: changing a built-in would change it
 * for the whole process.
 */
export function adoptHandler(Class: HandlerClass): void {
  if (extendsHandler(Class)) return;
  const prototype: unknown = Class.prototype;
  if (typeof Class !== 'function' || typeof prototype !== 'object' || prototype === null) {
    throw new TypeError('a handler must be a class');
  }
  let root = prototype;
  for (;;) {
    const parent: unknown = Object.getPrototypeOf(root);
    if (parent === Object.prototype || parent === null) break;
    root = parent as object;
  }
  const rootConstructor: unknown = Object.getOwnPropertyDescriptor(root, 'constructor')?.value;
  if (typeof rootConstructor === 'function' && Function.prototype.toString.call(rootConstructor).includes('[native code]')) {
    throw new TypeError(
      `the class extends the built-in ${rootConstructor.name}; extend WebSocketHandler instead, or wrap the built-in in a field`,
    );
  }
  Object.setPrototypeOf(root, WebSocketHandler.prototype);
  if (typeof rootConstructor === 'function' && Object.getPrototypeOf(rootConstructor) === Function.prototype) {
    Object.setPrototypeOf(rootConstructor, WebSocketHandler);
  }
}

// Binds one protocol Connection to one socket: bytes from 'data' go in, events become hook calls,
// queued frames go out in one write per read, 'drain' and write completion become onDrain, and the
// timers the Sans-I/O core cannot own (the close timeout) live here.

import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import { Connection, ConnectionState, type ConnectionEvent, ownedForWaiting } from '../protocol/connection.js';
import { ProtocolError } from '../protocol/errors.js';
import { DestroyTimer, Heartbeat, IdleTimer } from './heartbeat.js';
import type { ResolvedOptions } from './options.js';
import type { PreparedMessage } from './prepared.js';
import type { UpgradeRequest } from './request.js';
import { type ConnectionTrace, lateTrace } from './trace.js';
import type { MessageType, SendData, WebSocketHooks } from './types.js';

/**
 * Buffers queued in one turn and smaller than this are joined into one (a copy is cheaper than a
 * write call each); larger ones, payload views the core did not copy, are written as they are.
 */
const JOIN_PIECE_MAX = 4 * 1024;

/**
 * `output[start..end)`, `bytes` in all, as one Buffer: the one buffer itself, else a copy (a run of
 * small frames already comes from the core as one view, see Connection's open run). With `own`, a
 * buffer of its own size (see #flush: what waits in a stalled socket pins nothing more).
 */
function joinRun(output: readonly Buffer[], start: number, end: number, bytes: number, own: boolean): Buffer {
  if (end - start === 1) return own ? ownedForWaiting(output[start]!) : output[start]!;
  if (own) {
    const joined = Buffer.allocUnsafeSlow(bytes);
    for (let i = start, at = 0; i < end; i++) at += output[i]!.copy(joined, at);
    return joined;
  }
  return Buffer.concat(start === 0 && end === output.length ? output : output.slice(start, end), bytes);
}

/** What #flush writes when the core has queued nothing, or only one buffer (taken apart). */
const NO_OUTPUT: readonly Buffer[] = [];

/** The first `count` of `frames` as one Buffer, or null when one is large (they go corked, as they are). */
function joinFrames(frames: readonly Buffer[], count: number, bytes: number): Buffer | null {
  for (let i = 0; i < count; i++) if (frames[i]!.length >= JOIN_PIECE_MAX) return null;
  return count === 1 ? frames[0]! : Buffer.concat(count === frames.length ? frames : frames.slice(0, count), bytes);
}

/**
 * Prepared frames sent in one turn, in order, to many connections: a burst of publishes. The
 * connections that get the same frames follow one list, so the next frame is a comparison and a
 * count per connection, not a push into a list of its own, and the list is joined once for all of
 * them. Once a connection has flushed it, it takes no more frames (a later one starts a new burst).
 */
class Burst {
  readonly frames: Buffer[];
  closed = false;
  /** The last list that connections parted to from this one, after `branchAt` frames: the next to part the same way follow it. */
  branch: Burst | null = null;
  branchAt = 0;
  /** All the frames joined, made by the first flush that took them all (null: one is large). */
  #joined: Buffer | null | undefined = undefined;

  constructor(frames: Buffer[]) {
    this.frames = frames;
  }

  /** The first `count` frames (of `bytes` bytes) as one Buffer, or null when one is large; closes the burst. */
  join(count: number, bytes: number): Buffer | null {
    this.closed = true;
    if (currentBurst === this) currentBurst = null; // nothing stays after the turn but what connections hold
    if (count !== this.frames.length) return joinFrames(this.frames, count, bytes);
    if (this.#joined === undefined) this.#joined = joinFrames(this.frames, count, bytes);
    return this.#joined;
  }
}

/** The burst that a connection receiving its first prepared frame of the turn may follow. */
let currentBurst: Burst | null = null;

/** The error given to onError when a hook throws: its `cause` is what the hook threw. */
function handlerError(cause: unknown): ProtocolError {
  return new ProtocolError('WS_ERR_HANDLER', CloseCode.InternalError, 'a handler hook threw', { cause });
}

function toBytes(data: SendData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('send() takes a string, a Buffer, a typed array or an ArrayBuffer');
}

/** The socket's link to its connection, for the listeners all connections share. */
const CONNECTION = Symbol('pef-front-websocket.transport');
type BoundSocket = Duplex & { [CONNECTION]?: WebSocketConnection };

/** Per-message options of `send`. */
export interface SendOptions {
  /** false: send this message uncompressed even when permessage-deflate is on. Default true. */
  compress?: boolean;
}

/** @internal Told when a connection is over: a router, for its counts and its list of live connections. */
export interface ConnectionOwner {
  /** The connection's socket closed; onClose (if it opened) has run. */
  connectionEnded(connection: WebSocketConnection): void;
}

/** One open WebSocket on a socket: the methods a handler calls (send, close, ping, ...). */
export class WebSocketConnection {
  /** The upgrade request: its URL, its header fields, its socket (what is kept of it, see UpgradeRequest). */
  readonly request: UpgradeRequest;
  /** The negotiated subprotocol, or ''. */
  readonly protocol: string;
  /** The negotiated Sec-WebSocket-Extensions response, or ''. */
  readonly extensions: string;
  /** What the upgrade hook returned for this connection (see UpgradeHook); undefined without one. */
  data: unknown = undefined;

  readonly #socket: Duplex;
  readonly #conn: Connection;
  readonly #hooks: WebSocketHooks;
  readonly #options: ResolvedOptions;
  /** Null while nobody traces it (see #traced). */
  #trace: ConnectionTrace | null;
  readonly #owner: ConnectionOwner | null;

  #opened = false;
  #closed = false;
  /** onClose has run: no hook is called after it. */
  #finished = false;
  #ended = false;
  #dispatching = false;
  #flushScheduled = false;
  #drainWanted = false;
  #socketError = false;
  #closeTimer: DestroyTimer | null = null;
  #afterWriteCallback: ((error?: Error | null) => void) | undefined = undefined;
  // Defences (docs/security.md): heartbeat, idle timer, reading paused while Pongs drain.
  #heartbeat: Heartbeat | null = null;
  #idle: IdleTimer | null = null;
  #readPaused = false;
  // Graceful shutdown: promises returned by hooks and not yet settled; reading held while they settle.
  #pending = 0;
  #onSettled: (() => void) | null = null;
  #holdReading = false;
  /** pause() holds reading until resume(). */
  #userPaused = false;
  // Prepared frames (sendPrepared) waiting for the flush: the first #burstCount frames of #burst,
  // of #preparedBytes bytes. A burst of publishes goes out in one write per socket.
  #burst: Burst | null = null;
  #burstCount = 0;
  #preparedBytes = 0;
  /** What the socket and the core held when the burst's first frame came (its bytes not counted). */
  #preparedBase = 0;

  /** @internal Connections come from acceptWebSocket (or a router), which runs the handshake first. */
  constructor(
    socket: Duplex,
    conn: Connection,
    hooks: WebSocketHooks,
    request: UpgradeRequest,
    protocol: string,
    extensions: string,
    options: ResolvedOptions,
    trace: ConnectionTrace | null = null,
    owner: ConnectionOwner | null = null,
  ) {
    this.#socket = socket;
    this.#conn = conn;
    this.#hooks = hooks;
    this.#options = options;
    // The trace stays only if someone watches (an idle connection holds none otherwise; see #traced).
    this.#trace = trace !== null && trace.needed ? trace : null;
    this.#owner = owner;
    this.request = request;
    this.protocol = protocol;
    this.extensions = extensions;
  }

  /**
   * Writes the 101 response; once it is flushed, opens: onOpen, then the head bytes, then reading.
   * A client, whose handshake is over when it starts, passes null and opens at once.
   */
  start(response: Buffer | null, head: Buffer): void {
    const socket = this.#socket;
    socket.pause(); // nothing is read until onOpen has run
    // The listeners are shared by every connection and find theirs on the socket: no closures per connection.
    (socket as BoundSocket)[CONNECTION] = this;
    socket.on('error', WebSocketConnection.#socketErrorEvent);
    socket.on('close', WebSocketConnection.#socketClose);
    if (response === null) return this.#open(head);
    socket.write(response, (error) => {
      if (error || this.#closed) return; // the peer vanished during the handshake: no hooks run
      this.#open(head);
    });
  }

  #open(head: Buffer): void {
    const socket = this.#socket;
    this.#opened = true;
    this.#traced()?.open();
    this.#callHook('onOpen');
    if (head.length !== 0) this.#onData(head);
    if (this.#closed) return;
    socket.on('data', WebSocketConnection.#socketData);
    socket.on('end', WebSocketConnection.#socketEnd);
    socket.on('drain', WebSocketConnection.#socketDrain);
    if (!this.#userPaused) socket.resume();
    this.#startTimers();
  }

  /**
   * Stops reading from the peer until resume(): no onMessage runs meanwhile (called from onMessage,
   * the next message waits) and TCP flow control holds the peer back. Pings are answered once
   * reading resumes; the heartbeat's deadline still runs. A connection that ends while paused
   * hands out what it had received before onClose.
   */
  pause(): void {
    if (this.#userPaused) return;
    this.#userPaused = true;
    this.#socket.pause();
  }

  /** Reads again after pause(). */
  resume(): void {
    if (!this.#userPaused) return;
    this.#userPaused = false;
    if (!this.#opened || this.#closed) return;
    if (!this.#readPaused && !this.#holdReading) this.#socket.resume();
    // What was received before pause() and not yet handed out.
    if (!this.#dispatching) this.#dispatch();
  }

  /** The round trip of the last heartbeat Ping in milliseconds; undefined before the first Pong. */
  get latency(): number | undefined {
    return this.#heartbeat?.latency;
  }

  /** Bytes waiting to be written: queued frames plus what the socket holds. */
  get bufferedAmount(): number {
    return this.#conn.outputBytes + this.#preparedBytes + this.#socket.writableLength;
  }

  /** True once closing, closed or failed: sends do nothing from then on. */
  isDefunct(): boolean {
    return this.#closed || this.#conn.state !== ConnectionState.Open;
  }

  /**
   * Sends a message: 'text' (a string, or a Buffer that must be valid UTF-8) or 'binary' (a string
   * goes as its UTF-8 bytes). Does nothing and returns false on a defunct connection; otherwise
   * returns false when more than the high-water mark is buffered: wait for onDrain. When more than
   * maxBufferedAmount is already waiting, the slowConsumer policy applies (docs/security.md).
   * `{ compress: false }` sends this message uncompressed even with permessage-deflate on.
   * A Buffer of 4 KiB or more is written as it is, not copied (as socket.write takes it): change it
   * only once it is written (onDrain), or send a copy; text is checked at the call, not again.
   */
  send(data: SendData, type: MessageType = 'text', options?: SendOptions): boolean {
    if (type !== 'text' && type !== 'binary') throw new TypeError(`unknown message type ${String(type)}: 'text' or 'binary'`);
    if (this.isDefunct()) {
      // Even a defunct connection refuses what could never be sent.
      if (type === 'text' && typeof data !== 'string') toBytes(data);
      return false;
    }
    // Slow consumer: a buffer already past the bound takes nothing more. A single large message
    // into an emptier buffer still goes out, so the bound is maxBufferedAmount plus one message.
    const conn = this.#conn;
    const buffered = this.bufferedAmount;
    if (buffered > this.#options.maxBufferedAmount) return this.#slowConsumer();
    this.#idle?.touch();
    const compress = options?.compress !== false;
    const queued = conn.outputBytes;
    if (type === 'text') {
      if (typeof data === 'string') conn.sendText(data, compress);
      else conn.sendTextBytes(toBytes(data), compress);
    } else {
      conn.sendBinary(typeof data === 'string' ? Buffer.from(data, 'utf8') : toBytes(data), compress);
    }
    this.#afterSend();
    // Nothing was written since `buffered` was read (writes wait for the end of the dispatch): only the core's queue grew.
    return buffered + (conn.outputBytes - queued) <= this.#options.highWaterMark;
  }

  /**
   * Sends a message framed once for many connections (pub/sub fan-out): the prepared frame's bytes
   * go to this socket as they are, under the same rules as {@link WebSocketConnection.send}
   * (false when defunct or above the high-water mark; the slowConsumer policy past
   * maxBufferedAmount). A client connection (which masks every frame, RFC 6455 §5.1), a
   * connection with permessage-deflate, or one whose frames are traced, sends `message.data`
   * through `send` instead: its masking keys, its compressor's context (RFC 7692 §7.2.3) and its
   * trace are its own.
   */
  sendPrepared(message: PreparedMessage): boolean {
    const burst = this.#burst;
    if (burst !== null && this.#conn.outputBytes === 0 && !this.isDefunct()) {
      // The next message of a burst: nothing was written since its first, whose checks hold, and
      // its flush is scheduled. What is buffered is what the socket held then plus the burst.
      const buffered = this.#preparedBase + this.#preparedBytes;
      if (buffered > this.#options.maxBufferedAmount) return this.#slowConsumer();
      const frame = message.frame;
      const count = this.#burstCount;
      const frames = burst.frames;
      if (frames[count] !== frame) {
        if (count === frames.length && !burst.closed) {
          frames.push(frame); // the first to get it: the others follow
        } else {
          // This connection's frames part from the others' (another topic's message came between):
          // it follows the branch that others took at the same point with the same frame, or starts one.
          const branch = burst.branch;
          if (branch !== null && burst.branchAt === count && branch.frames[count] === frame && !branch.closed) {
            this.#burst = branch;
          } else {
            const own = frames.slice(0, count);
            own.push(frame);
            this.#burst = burst.branch = new Burst(own);
            burst.branchAt = count;
          }
        }
      }
      this.#burstCount = count + 1;
      this.#preparedBytes += frame.length;
      return buffered + frame.length <= this.#options.highWaterMark;
    }
    // A prepared frame is a server's: unmasked. A client masks every frame it sends (RFC 6455 §5.1),
    // each with a key of its own, so it cannot share one; a connection whose frames are watched
    // frames its own, so that its frames are observed.
    if (this.extensions !== '' || this.#trace?.onFrame != null || this.#conn.role === 'client') return this.send(message.data, message.type);
    if (this.isDefunct()) return false;
    let buffered = this.bufferedAmount;
    if (buffered > this.#options.maxBufferedAmount) return this.#slowConsumer();
    this.#idle?.touch();
    if (this.#conn.outputBytes !== 0) {
      this.#flush(); // what the core queued before goes first
      buffered = this.bufferedAmount;
    }
    // The first of a burst (a flush above, or none pending, left no prepared frames): it follows
    // the burst of this turn when that began with this very frame.
    const frame = message.frame;
    let current = currentBurst;
    if (current === null || current.closed || current.frames[0] !== frame) currentBurst = current = new Burst([frame]);
    this.#burst = current;
    this.#burstCount = 1;
    this.#preparedBytes = frame.length;
    this.#preparedBase = buffered;
    this.#afterSend();
    return buffered + frame.length <= this.#options.highWaterMark;
  }

  /** Sends a Ping (at most 125 bytes). */
  ping(data: SendData = Buffer.alloc(0)): boolean {
    if (this.#closed) return false;
    const sent = this.#conn.ping(typeof data === 'string' ? Buffer.from(data, 'utf8') : toBytes(data));
    if (sent) this.#afterSend();
    return sent;
  }

  /**
   * Starts the closing handshake: sends Close(code, reason) and waits for the peer's Close up to
   * closeTimeout, then destroys the socket. RangeError for a code that may not be sent.
   */
  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.#closed) return;
    if (this.#conn.close(code, reason)) {
      this.#armCloseTimer();
      this.#afterSend();
    }
  }

  /**
   * Shuts down gracefully (what router.close() does): stops reading, lets the promises that hooks
   * returned settle (up to closeTimeout) so every message already handed to onMessage has its
   * reply queued, then starts the closing handshake with `code` and `reason` and reads on for the
   * peer's Close.
   */
  shutdown(code: number = CloseCode.GoingAway, reason = ''): void {
    if (this.#closed || this.#holdReading) return;
    if (!this.#opened || this.#pending === 0) return this.close(code, reason);
    this.#holdReading = true;
    this.#socket.pause();
    const finish = (): void => {
      clearTimeout(timer);
      this.#onSettled = null;
      this.#holdReading = false;
      this.close(code, reason);
      if (!this.#readPaused && !this.#userPaused && !this.#closed) this.#socket.resume();
    };
    const timer = setTimeout(finish, this.#options.closeTimeout);
    timer.unref();
    this.#onSettled = finish;
  }

  /** Ends the connection at once, without a closing handshake (onClose gets 1006). */
  terminate(): void {
    // "At once": input read but not yet handed out goes with the socket, not to onMessage.
    this.#conn.receiveEof();
    this.#conn.takeEvents();
    this.#socket.destroy();
  }

  /** Fails the connection with a ProtocolError: Close with its code, then end. */
  fail(error: ProtocolError): void {
    if (this.#closed) return;
    this.#conn.fail(error);
    // Called from a hook, the running dispatch hands the error to onError once that hook returns.
    if (!this.#dispatching) this.#dispatch();
  }

  // ------------------------------------------------------------------ socket events

  // The socket's listeners, one function each for all connections (`this` is the socket).
  static #socketData(this: Duplex, chunk: Buffer): void {
    (this as BoundSocket)[CONNECTION]!.#onData(chunk);
  }
  static #socketEnd(this: Duplex): void {
    (this as BoundSocket)[CONNECTION]!.#onEnd();
  }
  static #socketDrain(this: Duplex): void {
    (this as BoundSocket)[CONNECTION]!.#onDrainEvent();
  }
  static #socketErrorEvent(this: Duplex, error: Error): void {
    (this as BoundSocket)[CONNECTION]!.#onSocketError(error);
  }
  static #socketClose(this: Duplex): void {
    (this as BoundSocket)[CONNECTION]!.#onSocketClose();
  }

  /** Connections whose sends (outside a dispatch) wait for the one microtask that flushes them all. */
  static #flushQueue: WebSocketConnection[] = [];
  static #flushAll(): void {
    const queue = WebSocketConnection.#flushQueue;
    WebSocketConnection.#flushQueue = [];
    for (let i = 0; i < queue.length; i++) queue[i]!.#flushLater();
  }

  #onData(chunk: Buffer): void {
    this.#conn.receiveData(chunk);
    this.#dispatch();
  }

  #onEnd(): void {
    this.#conn.receiveEof();
    this.#dispatch();
  }

  #onDrainEvent(): void {
    if (this.#readPaused) {
      this.#readPaused = false;
      this.#traced()?.backpressure('resume', this.bufferedAmount);
      if (!this.#holdReading && !this.#userPaused) this.#socket.resume();
    }
    this.#maybeDrained();
  }

  #afterWrite(error?: Error | null): void {
    if (!error) this.#maybeDrained();
  }

  #onSocketError(error: Error): void {
    // Reported once. Once the end is decided (closing handshake done, connection failed, or the
    // peer's EOF) a reset is no news: onClose already has its code, and a failure had its onError.
    if (this.#socketError || !this.#opened) return;
    this.#socketError = true;
    if (this.#conn.state === ConnectionState.Closed) return;
    this.#traced()?.error(error);
    this.#callHook('onError', error);
  }

  /** The trace, made now if the connection opened unwatched and a pef-ws channel has subscribers since. */
  #traced(): ConnectionTrace | null {
    return this.#trace ?? (this.#trace = lateTrace(this));
  }

  #onSocketClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeTimer?.stop();
    this.#heartbeat?.stop();
    this.#idle?.stop();
    this.#onSettled?.(); // a shutdown() still waiting for hooks: its timer goes
    this.#conn.receiveEof();
    this.#conn.takeOutput();
    this.#burst = null;
    this.#burstCount = 0;
    this.#preparedBytes = 0;
    if (!this.#opened) return this.#owner?.connectionEnded(this);
    try {
      this.#dispatchEvents(this.#conn.takeEvents());
      this.#traced()?.close(this.#conn.closeCode, this.#conn.closeReason);
      this.#finished = true;
      this.#callFinalHook('onClose', this.#conn.closeCode, this.#conn.closeReason);
    } finally {
      // Even when a custom logger threw: the owner's count of live connections stays true.
      this.#owner?.connectionEnded(this);
    }
  }

  #flushLater(): void {
    this.#flushScheduled = false;
    this.#flush();
  }

  // ------------------------------------------------------------------ dispatch

  /** Hands each event to its hook in order, parsing on only after it, then writes what was queued. */
  #dispatch(): void {
    const conn = this.#conn;
    this.#dispatching = true;
    try {
      let event: ConnectionEvent | undefined;
      // pause() stops the loop between messages: the rest waits in the core until resume().
      while (!this.#userPaused && (event = conn.nextEvent()) !== undefined) this.#dispatchEvent(event);
    } finally {
      this.#dispatching = false;
      // The read is handled: the last text's bytes (kept so that an echo reuses them) are let go.
      conn.forgetReceived();
    }
    // Pongs the core queued by itself, going into a buffer already past the bound: a ping flood
    // from a peer that never reads meets the same bound as send() (handler sends were checked there).
    if (conn.outputBytes !== 0 && conn.state === ConnectionState.Open && this.#socket.writableLength > this.#options.maxBufferedAmount) {
      this.#pauseReading();
    }
    this.#flush();
  }

  #dispatchEvents(events: ConnectionEvent[]): void {
    for (let i = 0; i < events.length; i++) this.#dispatchEvent(events[i]!);
  }

  #dispatchEvent(event: ConnectionEvent): void {
    switch (event.type) {
      case 'text':
      case 'binary':
        this.#idle?.touch();
        this.#callHook('onMessage', event.data, event.type);
        break;
      case 'textBytes': // decodeText: false
        this.#idle?.touch();
        this.#callHook('onMessage', event.data, 'text');
        break;
      case 'pong':
        this.#heartbeat?.pong(event.data);
        break;
      case 'error':
        this.#traced()?.error(event.error);
        // A hook's own failure was reported to onError already, as what it threw.
        if (event.error.code !== 'WS_ERR_HANDLER') this.#callHook('onError', event.error);
        break;
      case 'close':
        // The closing handshake is complete. A server ends TCP now; a client waits for the server
        // to, and ends it itself after closeTimeout (§7.1.1).
        this.#armCloseTimer();
        break;
      default:
        // ping (the core queued the pong); onClose follows when the socket closes
        break;
    }
  }

  /** A send by the handler: onDrain is due once the buffer empties. */
  #afterSend(): void {
    this.#drainWanted = true;
    this.#scheduleFlush();
  }

  /** Writes what was queued at the end of this dispatch, or in a microtask when none is running. */
  #scheduleFlush(): void {
    if (this.#dispatching || this.#flushScheduled) return;
    this.#flushScheduled = true;
    if (WebSocketConnection.#flushQueue.push(this) === 1) queueMicrotask(WebSocketConnection.#flushAll);
  }

  /** Writes what the connection queued: one write when small, corked writes when large. */
  #flush(): void {
    const socket = this.#socket;
    // Not takeOutput: while reading is held (pause(), a shutdown), input still unparsed must not be
    // answered yet (a Close behind a held message would overtake its reply).
    // What goes out as one Buffer (most flushes: a burst's join, or one frame), else null and `output`.
    let single = this.#conn.takeQueuedBuffer();
    let output: readonly Buffer[] = single === null ? this.#conn.takeQueuedOutput() : NO_OUTPUT;
    /** A burst's frames joined once for every connection that follows it (see Burst): not copied per connection. */
    let shared: Buffer | null = null;
    const burst = this.#burst;
    if (burst !== null) {
      // Prepared frames were queued before anything the core holds now (sendPrepared flushes the core first).
      if (single !== null) {
        output = [single];
        single = null;
      }
      const count = this.#burstCount;
      const joined = burst.join(count, this.#preparedBytes);
      if (joined !== null && output.length === 0) single = shared = joined;
      else {
        const prepared = joined !== null ? [joined] : burst.frames.slice(0, count);
        output = output.length === 0 ? prepared : prepared.concat(output);
        single = null;
      }
      this.#burst = null;
      this.#burstCount = 0;
      this.#preparedBytes = 0;
    }
    const count = output.length;
    if ((single !== null || count !== 0) && !this.#closed && socket.writable) {
      // Made on the first write of a connection whose hooks have onDrain (an idle one holds none).
      const callback = this.#hooks.onDrain ? (this.#afterWriteCallback ??= (error) => this.#afterWrite(error)) : undefined;
      // A socket with bytes still waiting (a peer that reads slowly, or not at all) keeps what is
      // written now until it drains: small frames, and runs of them, are views of a 16 KiB slab
      // (and payloads may be views of a 64 KiB read), so each goes out as a buffer of its own size
      // (ownedForWaiting). Otherwise a peer that stops reading and sends Pings made each 127-byte
      // Pong hold 16 KiB, beyond what maxBufferedAmount counts (found by a review helper: 2.6 MB
      // buffered held 309 MiB). A burst's join, one buffer for all its connections, goes as it is.
      const own = socket.writableLength !== 0;
      if (single !== null) {
        socket.write(own && single !== shared ? ownedForWaiting(single) : single, callback);
      } else {
        let total = 0;
        let large = false;
        for (let i = 0; i < count; i++) {
          const length = output[i]!.length;
          total += length;
          if (length >= JOIN_PIECE_MAX) large = true;
        }
        if (!large) {
          socket.write(joinRun(output, 0, count, total, own), callback);
        } else {
          // Runs of small buffers joined, large ones as they are: under cork, one writev for all.
          socket.cork();
          let start = 0;
          let bytes = 0;
          for (let i = 0; i < count; i++) {
            const length = output[i]!.length;
            if (length < JOIN_PIECE_MAX) {
              bytes += length;
              continue;
            }
            if (i > start) socket.write(joinRun(output, start, i, bytes, own));
            socket.write(own ? ownedForWaiting(output[i]!) : output[i]!, i === count - 1 ? callback : undefined);
            start = i + 1;
            bytes = 0;
          }
          if (start < count) socket.write(joinRun(output, start, count, bytes, own), callback);
          socket.uncork();
        }
      }
    }
    if (this.#conn.endTransport && !this.#ended) {
      // §7.1.1: the server closes TCP first; the peer gets closeTimeout to close its side.
      this.#ended = true;
      socket.end();
      this.#armCloseTimer();
    }
  }

  #maybeDrained(): void {
    if (!this.#drainWanted || this.#closed || this.#socket.writableLength !== 0 || this.#conn.outputBytes !== 0 || this.#burst !== null) return;
    this.#drainWanted = false;
    this.#callHook('onDrain');
  }

  // ------------------------------------------------------------------ defences (docs/security.md)

  #startTimers(): void {
    if (this.#closed) return;
    const options = this.#options;
    if (options.heartbeatInterval > 0) {
      this.#heartbeat = new WebSocketConnection.#Heartbeat(this, options.heartbeatInterval, options.heartbeatTimeout);
      this.#heartbeat.start();
    }
    if (options.idleTimeout > 0) {
      this.#idle = new IdleTimer(options.idleTimeout, () => this.close(CloseCode.GoingAway, 'idle timeout'));
      this.#idle.start();
    }
  }

  /** A connection's heartbeat: what it does to the connection, in one object with no closures. */
  static readonly #Heartbeat = class extends Heartbeat {
    readonly #ws: WebSocketConnection;
    constructor(ws: WebSocketConnection, interval: number, timeout: number) {
      super(interval, timeout);
      this.#ws = ws;
    }
    protected ping(payload: Buffer): void {
      // Not a send of the handler's: a heartbeat Ping owes it no onDrain.
      if (this.#ws.#conn.ping(payload)) this.#ws.#scheduleFlush();
    }
    protected timedOut(): void {
      const timeout = this.#ws.#options.heartbeatTimeout;
      this.#ws.#abort(new ProtocolError('WS_ERR_HEARTBEAT_TIMEOUT', CloseCode.InternalError, `no Pong within ${timeout} ms`));
    }
  };

  /** send() found the buffer past maxBufferedAmount: 'close' fails the connection, 'drop' drops the message. */
  #slowConsumer(): false {
    if (this.#options.slowConsumer === 'close') {
      this.#abort(
        new ProtocolError(
          'WS_ERR_SLOW_CONSUMER',
          CloseCode.PolicyViolation,
          `peer does not read: over ${this.#options.maxBufferedAmount} bytes wait to be written`,
        ),
      );
    } else {
      this.#traced()?.backpressure('drop', this.bufferedAmount);
    }
    return false;
  }

  /**
   * Automatic replies (Pongs) went into a buffer already past the bound. They cannot be unqueued,
   * and closing would punish a client that pings while it downloads a large message; so, under
   * either policy, reading waits for 'drain' and TCP flow control holds the peer back. A peer that
   * never reads again is then reaped by the heartbeat (its Pong cannot be read).
   */
  #pauseReading(): void {
    // Without a pending 'drain' (a bound below the socket's own high-water mark) nothing would resume it.
    if (this.#readPaused || !this.#socket.writableNeedDrain) return;
    this.#readPaused = true;
    this.#socket.pause();
    this.#traced()?.backpressure('pause', this.bufferedAmount);
  }

  /**
   * Fails the connection and destroys the socket at once, freeing what waits to be written: the
   * peer is not reading it, so waiting for its Close would only hold the memory. onError gets the
   * error; onClose follows with its close code.
   */
  #abort(error: ProtocolError): void {
    if (this.#closed) return;
    this.#conn.fail(error);
    // Inside a dispatch the running loop hands the error to onError; otherwise do it now.
    if (!this.#dispatching) this.#dispatch();
    this.#socket.destroy();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== null || this.#closed) return;
    this.#closeTimer = new DestroyTimer(this.#socket);
    this.#closeTimer.start(this.#options.closeTimeout);
  }

  // ------------------------------------------------------------------ hooks

  #callHook(name: 'onOpen' | 'onDrain'): void;
  #callHook(name: 'onMessage', message: string | Buffer, type: MessageType): void;
  #callHook(name: 'onError', error: Error): void;
  #callHook(name: keyof WebSocketHooks, a?: unknown, b?: unknown): void {
    const hooks = this.#hooks;
    // onMessage, called once per message, by a named load: a lookup by a varying key goes megamorphic.
    const hook = (name === 'onMessage' ? hooks.onMessage : hooks[name]) as ((a?: unknown, b?: unknown) => unknown) | undefined;
    if (hook === undefined) return;
    let result: unknown;
    try {
      result = hook.call(this.#hooks, a, b);
    } catch (error) {
      return this.#hookFailed(name, error);
    }
    if (result !== undefined && typeof (result as PromiseLike<unknown>).then === 'function') {
      this.#pending++;
      (result as PromiseLike<unknown>).then(() => this.#hookSettled(), (error: unknown) => {
        this.#hookSettled();
        this.#hookFailed(name, error);
      });
    }
  }

  /** A promise a hook returned has settled; the last one lets a waiting shutdown() go on. */
  #hookSettled(): void {
    if (--this.#pending === 0 && this.#onSettled !== null) this.#onSettled();
  }

  /** A hook threw or rejected: onError gets what it threw (unless onError itself threw), then close 1011. */
  #hookFailed(name: keyof WebSocketHooks, error: unknown): void {
    // A promise settling after onClose: onClose is the last hook, so only the logger hears of it.
    if (this.#finished) return this.#options.logger.error(`pef-front-websocket: ${name} failed after onClose`, error);
    if (name === 'onError') {
      this.#options.logger.error('pef-front-websocket: onError threw', error);
    } else {
      const reported = error instanceof Error ? error : new Error(String(error));
      this.#callHook('onError', reported);
    }
    // A socket already destroyed (an error, terminate) ends with 1006: no 1011 can go on the wire.
    if (this.#closed || this.#socket.destroyed) return;
    this.#conn.fail(handlerError(error));
    if (!this.#dispatching) this.#dispatch();
  }

  /** onClose: what it throws or rejects with is logged and goes no further. */
  #callFinalHook(name: 'onClose', code: number, reason: string): void {
    const hook = this.#hooks[name];
    if (hook === undefined) return;
    const logger = this.#options.logger;
    try {
      const result: unknown = hook.call(this.#hooks, code, reason);
      if (result !== undefined && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (error: unknown) => logger.error(`pef-front-websocket: ${name} rejected`, error));
      }
    } catch (error) {
      logger.error(`pef-front-websocket: ${name} threw`, error);
    }
  }
}

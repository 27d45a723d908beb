// Watching the wire: one trace line per handshake and per frame (NODE_DEBUG=pef-ws, or the `trace`
// option), and the node:diagnostics_channel channels pef-ws:open, pef-ws:close, pef-ws:error,
// pef-ws:frame and pef-ws:backpressure. Nothing is formatted, copied or published unless someone is watching.

import { channel } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { debuglog } from 'node:util';
import { Opcode } from '../protocol/constants.js';
import type { FrameObserver } from '../protocol/connection.js';
import type { HandshakeError } from '../protocol/errors.js';
import { UpgradeRequest } from './request.js';
import type { WebSocketConnection } from './transport.js';

/**
 * Where trace lines go: `true` writes them to stderr, a function receives each line (without a
 * newline), `false` turns tracing off even under NODE_DEBUG. Unset: NODE_DEBUG=pef-ws decides.
 */
export type TraceOption = boolean | ((line: string) => void);

/** The message of `pef-ws:open`: a connection is open (its 101 response was flushed), just before onOpen. */
export interface OpenMessage {
  /** The connection's number in this process, as in the trace lines (`#1`). */
  readonly id: number;
  /** The connection, as hooks see it through `this`. */
  readonly connection: WebSocketConnection;
  /** The upgrade request, as the connection keeps it. */
  readonly request: UpgradeRequest;
  /** The negotiated subprotocol, or ''. */
  readonly protocol: string;
  /** The negotiated Sec-WebSocket-Extensions response, or ''. */
  readonly extensions: string;
}

/** The message of `pef-ws:close`: a connection is over, just before onClose. */
export interface CloseMessage {
  /** The connection's number, as in pef-ws:open. */
  readonly id: number;
  /** The connection that ended. */
  readonly connection: WebSocketConnection;
  /** The code onClose receives: the peer's, 1005 (a Close without a code) or 1006 (no Close at all). */
  readonly code: number;
  /** The reason onClose receives: the peer's, or the one we failed the connection with. */
  readonly reason: string;
}

/**
 * The message of `pef-ws:error`: a refused handshake (`connection` null, `error` a HandshakeError),
 * a protocol failure (a ProtocolError), or a socket error.
 */
export interface ErrorMessage {
  /** The connection's number (a refused handshake has one too). */
  readonly id: number;
  /** The connection, or null when the handshake was refused. */
  readonly connection: WebSocketConnection | null;
  /** The upgrade request (for a refused one, what a connection would have kept of it). */
  readonly request: UpgradeRequest;
  /** A HandshakeError, a ProtocolError (with `code` and `closeCode`) or the socket's error. */
  readonly error: Error;
}

/** The message of `pef-ws:frame`: one frame received or queued for sending. */
export interface FrameMessage {
  /** The connection's number, as in pef-ws:open. */
  readonly id: number;
  /** The connection the frame belongs to. */
  readonly connection: WebSocketConnection | null;
  /** 'in' from the peer, 'out' to it. */
  readonly direction: 'in' | 'out';
  /** Whether this is the last frame of its message. */
  readonly fin: boolean;
  /** The RSV bits in place: 0x40 is RSV1 (a compressed message), 0x20 RSV2, 0x10 RSV3. */
  readonly rsv: number;
  /** The opcode, see `Opcode`. */
  readonly opcode: number;
  /** Whether the payload was masked on the wire: frames from a client are, frames from a server are not. */
  readonly masked: boolean;
  /** The payload length announced in the header; NaN for a frame failed before its 16- or 64-bit length was read. */
  readonly length: number;
  /** A copy of the first payload bytes, unmasked: at most 125, so a control frame is whole. */
  readonly head: Buffer;
}

/**
 * The message of `pef-ws:backpressure`: the server acted on a peer that does not read
 * (docs/security.md). 'pause': Pongs were queued into a buffer past maxBufferedAmount, so reading
 * stops until 'drain'; 'resume': reading goes on; 'drop': under slowConsumer 'drop', a send() was
 * dropped. (Under 'close' the failure is a pef-ws:error with WS_ERR_SLOW_CONSUMER.)
 */
export interface BackpressureMessage {
  /** The connection's number, as in pef-ws:open. */
  readonly id: number;
  /** The connection. */
  readonly connection: WebSocketConnection;
  /** What the server did. */
  readonly action: 'pause' | 'resume' | 'drop';
  /** Bytes waiting to be written at that moment (the connection's bufferedAmount). */
  readonly bufferedAmount: number;
}

const openChannel = channel('pef-ws:open');
const backpressureChannel = channel('pef-ws:backpressure');
const closeChannel = channel('pef-ws:close');
const errorChannel = channel('pef-ws:error');
const frameChannel = channel('pef-ws:frame');

const debug = debuglog('pef-ws');

/** How many payload bytes a frame line shows in hex. */
const HEX_BYTES = 16;

const OPCODE_NAMES: Readonly<Record<number, string>> = {
  [Opcode.Continuation]: 'continuation',
  [Opcode.Text]: 'text',
  [Opcode.Binary]: 'binary',
  [Opcode.Close]: 'close',
  [Opcode.Ping]: 'ping',
  [Opcode.Pong]: 'pong',
};

let nextId = 1;

/** Whether anyone subscribes to a pef-ws channel now. */
function subscribed(): boolean {
  return (
    openChannel.hasSubscribers || closeChannel.hasSubscribers || errorChannel.hasSubscribers || backpressureChannel.hasSubscribers || frameChannel.hasSubscribers
  );
}

/**
 * The trace of an open connection that nobody watched when it opened: made when a pef-ws channel
 * has subscribers (it takes the next number then), null while none does. An idle connection that
 * nobody traces holds no trace object.
 */
export function lateTrace(connection: WebSocketConnection): ConnectionTrace | null {
  if (!subscribed()) return null;
  const trace = new ConnectionTrace(connection.request, false, true);
  trace.connection = connection;
  return trace;
}

function printerFor(option: TraceOption | undefined): ((line: string) => void) | null {
  if (typeof option === 'function') return option;
  if (option === true) return (line) => void process.stderr.write(`${line}\n`);
  if (option === false || !debug.enabled) return null;
  // '%s': a reason or URL holding '%' is printed as it is, not as a format.
  return (line) => debug('%s', line);
}

/** RSV1, RSV2, RSV3 as three digits, e.g. 100 for a compressed message. */
function rsvBits(rsv: number): string {
  return `${(rsv >> 6) & 1}${(rsv >> 5) & 1}${(rsv >> 4) & 1}`;
}

/**
 * One trace line for a frame, e.g.
 * `#1 in text fin=1 rsv=000 masked=1 len=5 hex=68656c6c6f`; a Close frame adds its code and reason.
 */
export function formatFrame(
  id: number,
  direction: 'in' | 'out',
  fin: boolean,
  rsv: number,
  opcode: number,
  masked: boolean,
  length: number,
  head: Buffer,
): string {
  const name = OPCODE_NAMES[opcode] ?? `opcode-${opcode}`;
  // A frame failed before its 16- or 64-bit length was read has length NaN: len=?.
  let line = `#${id} ${direction} ${name} fin=${fin ? 1 : 0} rsv=${rsvBits(rsv)} masked=${masked ? 1 : 0} len=${Number.isNaN(length) ? '?' : length}`;
  if (opcode === Opcode.Close) {
    if (head.length >= 2) line += ` code=${head.readUInt16BE(0)} reason=${JSON.stringify(head.toString('utf8', 2))}`;
    else if (head.length === 0) line += ' code=none';
    else line += ' code=invalid';
  }
  if (length > 0) {
    line += ` hex=${head.toString('hex', 0, Math.min(head.length, HEX_BYTES))}`;
    if (length > HEX_BYTES) line += '...';
  }
  return line;
}

function errorLabel(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}

/**
 * Traces an upgrade request refused before any handshake ran (a router's 404, its connection
 * limits): the handshake line and a pef-ws:error message, as for a refused handshake.
 */
export function traceRefusal(request: IncomingMessage, option: TraceOption | undefined, error: HandshakeError): void {
  new ConnectionTrace(UpgradeRequest.from(request), option).handshake(error.status, '', '', error);
}

/**
 * The watcher of one connection, from its handshake to its end. Created for every upgrade request;
 * each method returns at once when no one is tracing and no one subscribes to its channel.
 */
export class ConnectionTrace {
  /** This connection's number in the process. */
  readonly id = nextId++;
  readonly #request: UpgradeRequest;
  readonly #print: ((line: string) => void) | null;
  /** The observer to give the protocol Connection, or null when frames are not watched. */
  readonly onFrame: FrameObserver | null;
  /** Set once the connection object exists. */
  connection: WebSocketConnection | null = null;

  /** `late`: made for a connection already open (lateTrace), whose frames are not watched. */
  constructor(request: UpgradeRequest, option: TraceOption | undefined, late = false) {
    this.#request = request;
    this.#print = printerFor(option);
    // Whether frames are watched is decided once per connection: pef-ws:frame subscribers see the
    // connections opened while they are subscribed.
    this.onFrame = !late && (this.#print !== null || frameChannel.hasSubscribers) ? this.#frameObserver() : null;
  }

  /** Whether the open connection must keep this trace: it prints, watches frames, or a pef-ws channel has subscribers. */
  get needed(): boolean {
    return this.#print !== null || this.onFrame !== null || subscribed();
  }

  /** The opening handshake was answered: 101 with what was negotiated, or the refusal. */
  handshake(status: number, protocol: string, extensions: string, error?: HandshakeError): void {
    const print = this.#print;
    if (print !== null) {
      const url = JSON.stringify(this.#request.url);
      if (error === undefined) {
        print(`#${this.id} handshake ${status} url=${url} protocol=${JSON.stringify(protocol)} extensions=${JSON.stringify(extensions)}`);
      } else {
        print(`#${this.id} handshake ${status} url=${url} ${error.code} ${JSON.stringify(error.message)}`);
      }
    }
    if (error !== undefined && errorChannel.hasSubscribers) {
      errorChannel.publish({ id: this.id, connection: null, request: this.#request, error } satisfies ErrorMessage);
    }
  }

  /** The connection is open (101 flushed), before onOpen. */
  open(): void {
    if (openChannel.hasSubscribers && this.connection !== null) {
      const connection = this.connection;
      openChannel.publish({
        id: this.id,
        connection,
        request: this.#request,
        protocol: connection.protocol,
        extensions: connection.extensions,
      } satisfies OpenMessage);
    }
  }

  /** A protocol failure, a handler failure (WS_ERR_HANDLER) or a socket error. */
  error(error: Error): void {
    const print = this.#print;
    if (print !== null) {
      const closeCode = (error as { closeCode?: unknown }).closeCode;
      const close = typeof closeCode === 'number' ? ` close=${closeCode}` : '';
      print(`#${this.id} error ${errorLabel(error)}${close} ${JSON.stringify(error.message)}`);
    }
    if (errorChannel.hasSubscribers) {
      errorChannel.publish({ id: this.id, connection: this.connection, request: this.#request, error } satisfies ErrorMessage);
    }
  }

  /** The connection is over, before onClose: the code and reason onClose receives. */
  close(code: number, reason: string): void {
    const print = this.#print;
    if (print !== null) print(`#${this.id} closed code=${code} reason=${JSON.stringify(reason)}`);
    if (closeChannel.hasSubscribers && this.connection !== null) {
      closeChannel.publish({ id: this.id, connection: this.connection, code, reason } satisfies CloseMessage);
    }
  }

  /** Reading paused or resumed, or a message dropped, because the peer does not read. */
  backpressure(action: BackpressureMessage['action'], bufferedAmount: number): void {
    const print = this.#print;
    if (print !== null) print(`#${this.id} backpressure ${action} buffered=${bufferedAmount}`);
    if (backpressureChannel.hasSubscribers && this.connection !== null) {
      backpressureChannel.publish({ id: this.id, connection: this.connection, action, bufferedAmount } satisfies BackpressureMessage);
    }
  }

  /** Made only for a watched connection: an idle unwatched one holds no observer. */
  #frameObserver(): FrameObserver {
    return (direction, fin, rsv, opcode, masked, length, head) => this.#frame(direction, fin, rsv, opcode, masked, length, head);
  }

  #frame(direction: 'in' | 'out', fin: boolean, rsv: number, opcode: number, masked: boolean, length: number, head: Buffer): void {
    const print = this.#print;
    if (print !== null) print(formatFrame(this.id, direction, fin, rsv, opcode, masked, length, head));
    if (frameChannel.hasSubscribers) {
      frameChannel.publish({
        id: this.id,
        connection: this.connection,
        direction,
        fin,
        rsv,
        opcode,
        masked,
        length,
        head: Buffer.from(head),
      } satisfies FrameMessage);
    }
  }

}

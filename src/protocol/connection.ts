// The WebSocket connection of RFC 6455 after the opening handshake, as a Sans-I/O state machine:
// bytes go in through receiveData()/receiveEof(), events and bytes to send come out through
// takeEvents()/takeOutput(). No socket, no timer and no user code lives here: the I/O layer
// decides when to write, when to end the transport, and how long to wait for the peer.

import {
  CloseCode,
  MAX_CLOSE_REASON_BYTES,
  MAX_CONTROL_PAYLOAD,
  DEFAULT_MAX_PAYLOAD,
  Opcode,
  isValidCloseCode,
} from './constants.js';
import { ProtocolError, protocolViolation } from './errors.js';
import { encodeClosePayload, frameHeaderLength, parseClosePayload, truncateUtf8, writeFrameHeader } from './frame.js';
import { applyMask, maskInto } from './mask.js';
import { FastBuffer, FrameParser, type FrameSink } from './parser.js';
import { Utf8Validator, decodeUtf8, decodeUtf8Pieces, isValidUtf8 } from './utf8.js';
import { randomFillSync } from 'node:crypto';

/** What the connection reports to the I/O layer, in the order it happened. */
export type ConnectionEvent =
  | { readonly type: 'text'; readonly data: string }
  /** A text message when `decodeText` is false: its bytes, checked as UTF-8 (§8.1), not decoded. */
  | { readonly type: 'textBytes'; readonly data: Buffer }
  | { readonly type: 'binary'; readonly data: Buffer }
  | { readonly type: 'ping'; readonly data: Buffer }
  | { readonly type: 'pong'; readonly data: Buffer }
  /** The peer's Close frame arrived (code 1005 when it carried none). */
  | { readonly type: 'close'; readonly code: number; readonly reason: string }
  /** The connection failed (§7.1.7): a Close with `error.closeCode` was queued and input is discarded from now on. */
  | { readonly type: 'error'; readonly error: ProtocolError };

/**
 * A per-message extension such as permessage-deflate (RFC 6455 §9, RFC 7692). Synchronous, so the
 * core stays free of I/O. It claims `rsv` bits; a message whose first frame has them set is
 * passed through decode() whole.
 */
export interface MessageExtension {
  /** The RSV bits the extension uses, in place (RSV1 = 0x40). */
  readonly rsv: number;
  /** Decodes a received message; the result may not exceed `maxPayload` bytes. */
  decode(data: Buffer, maxPayload: number): Buffer | ProtocolError;
  /** Encodes an outgoing message, or returns null to send it as it is. */
  encode(data: Uint8Array): Buffer | null;
  /** Frees what the extension holds (the connection is over). */
  dispose?(): void;
}

/**
 * Watches every frame that crosses the connection, for tracing (the I/O layer formats and prints).
 * `direction` 'in' is reported once the frame's payload is complete (or when the connection fails
 * inside it), 'out' when the frame is queued. `rsv` holds the RSV bits in place (0x40 = RSV1).
 * `head` is the first bytes of the unmasked payload, at most 125 (a control frame whole): a view
 * that is valid only during the call.
 */
export type FrameObserver = (
  direction: 'in' | 'out',
  fin: boolean,
  rsv: number,
  opcode: number,
  masked: boolean,
  length: number,
  head: Buffer,
) => void;

/** How a Connection behaves; every option is optional. */
export interface ConnectionOptions {
  /** Which end we are; a server expects masked frames and sends unmasked ones (§5.1). Default 'server'. */
  role?: 'server' | 'client';
  /** The largest message accepted, reassembled (and decompressed), in bytes. Default 1 MiB. */
  maxPayload?: number;
  /** A negotiated per-message extension. Default none. */
  extension?: MessageExtension | null;
  /** Called for every frame received and sent. Default none: frames are not observed at all. */
  onFrame?: FrameObserver | null;
  /**
   * Whether a text message is decoded to a string ('text' events). false reports it as its bytes
   * ('textBytes' events), checked as UTF-8 (RFC 6455 §8.1) but never decoded. Default true.
   */
  decodeText?: boolean;
}

/** Connection states (python-websockets' names): open, closing once a Close was sent or received, closed. */
export const ConnectionState = { Open: 1, Closing: 2, Closed: 3 } as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/**
 * Text up to this many UTF-16 code units is encoded in one pass into a scratch buffer sized for the
 * worst case (3 bytes a unit) and copied out behind its header; longer text is measured first
 * (Buffer.byteLength, a second pass) so that no scratch of more than 3 times this stays allocated.
 * Measured on x64 at 16 KiB: byteLength alone costs as much as the encoding (4 µs ASCII, 14 µs with
 * accents), the copy out 0.5 µs.
 */
const SCRATCH_TEXT_MAX = 256 * 1024;
/**
 * Frames with a small payload are cut from a slab shared by every connection, each right behind the
 * one before: the frames a connection queues in one turn lie side by side in one ArrayBuffer, and
 * go out as one view of them all (Connection's open run), with no view made per frame and no joined
 * copy (Node's own pool aligns each slice to 8 bytes, which leaves gaps). Nothing in a slab is
 * written twice: a full slab is replaced, and lives on while a frame cut from it waits in a socket.
 * 16 KiB: what one such frame can pin.
 */
const SLAB_SIZE = 16 * 1024;
/** Frames up to this many bytes are cut from the slab; larger ones get a buffer of their own. */
const SLAB_FRAME_MAX = SLAB_SIZE >>> 2;
let slab = Buffer.allocUnsafeSlow(0);
let slabUsed = 0;

/** Room for the longest server frame header (10 bytes) before the text in the scratch buffer. */
const SCRATCH_HEADER = 10;
let textScratch = Buffer.allocUnsafeSlow(0);
/**
 * Binary payloads from this size on follow their header as a view, not copied: from 4 KiB a copy
 * needs a buffer of its own outside Node's pool (measured: a 16 KiB echo went from 15 to 9-11 µs
 * of server CPU per message).
 */
const VIEW_PAYLOAD_MIN = 4 * 1024;
/**
 * Text messages from this size that arrived in several pieces are decoded piece by piece and kept as
 * those pieces, never joined: the string does not need contiguous bytes, and sending it back writes
 * the pieces as they are (measured: joining 1 MiB costs about as much as decoding it as ASCII).
 */
const TEXT_PIECES_MIN = 64 * 1024;
/** A message in assembly keeps at most this many pieces as views before it copies them together. */
const MAX_VIEW_PIECES = 64;
/**
 * A view pins the whole read it came from. A piece kept once its read has been parsed stays a view
 * only while that read (its backing ArrayBuffer) is at most VIEW_PIN_FACTOR times the piece, or at
 * most VIEW_PIN_SLACK bytes larger; otherwise it is copied out. Sixty 1-byte fragments, each at
 * the start of its own 64 KiB read, pinned 3.75 MiB for a 60-byte message.
 */
const VIEW_PIN_FACTOR = 4;
const VIEW_PIN_SLACK = 1024;

/**
 * The piece itself, or a copy with a backing of its own size when it would pin a much larger buffer
 * (a read it came from, a slab it was cut from): see VIEW_PIN_FACTOR. @internal
 */
export function unpinned(piece: Buffer): Buffer {
  const backing = piece.buffer.byteLength;
  if (backing <= VIEW_PIN_FACTOR * piece.length || backing - piece.length <= VIEW_PIN_SLACK) return piece;
  const copy = Buffer.allocUnsafeSlow(piece.length);
  piece.copy(copy);
  return copy;
}

/**
 * `piece` as a socket that already holds bytes should keep it (they wait there until it drains): a
 * copy of its own size when it is a view of at most SLAB_SIZE bytes (a run of frames cut from the
 * slab, a small payload), else unpinned(piece). A run may fill most of a slab, which unpinned's
 * 4-to-1 rule would let it keep whole; the copy is made only while the socket is stalled. @internal
 */
export function ownedForWaiting(piece: Buffer): Buffer {
  if (piece.length > SLAB_SIZE) return unpinned(piece);
  if (piece.buffer.byteLength === piece.length) return piece;
  const copy = Buffer.allocUnsafeSlow(piece.length);
  piece.copy(copy);
  return copy;
}

/**
 * Pieces of a message (or control frame) in assembly. Holds views while they are few; beyond
 * MAX_VIEW_PIECES it copies into one growing buffer, so memory stays within twice the message's
 * bytes however many frames (even empty ones) carry it. Views kept past the end of their read are
 * copied out when they would pin far more than themselves (unpin).
 */
class PieceBuffer {
  pieces: Buffer[] = [];
  bytes = 0;
  #grow: Buffer | null = null;
  #growUsed = 0;
  /** The masking key of a reserved frame (see reserve), else null. */
  #mask: Uint8Array | null = null;

  /** The input has been parsed to its end: views that would pin a much larger read are copied out. */
  unpin(): void {
    const pieces = this.pieces;
    for (let i = 0; i < pieces.length; i++) pieces[i] = unpinned(pieces[i]!);
  }

  /** Bytes of memory held: each backing ArrayBuffer of a view once, and the growing buffer. */
  get retainedBytes(): number {
    const backings = new Set<ArrayBufferLike>();
    let bytes = this.#grow === null ? 0 : this.#grow.length;
    for (const piece of this.pieces) {
      if (backings.has(piece.buffer)) continue;
      backings.add(piece.buffer);
      bytes += piece.buffer.byteLength;
    }
    return bytes;
  }

  /**
   * Makes room for a whole frame of `length` bytes whose payload arrives masked with `mask`: each
   * piece pushed from now on is unmasked straight into it (nothing may have been pushed before).
   * The buffer is address space until bytes arrive: its pages become resident as they are written.
   * Returns false, and leaves the buffer as it was, if that much memory cannot be had.
   */
  reserve(length: number, mask: Uint8Array): boolean {
    try {
      this.#grow = Buffer.allocUnsafe(length);
    } catch {
      return false; // RangeError: the allocation failed (an address space limit, strict overcommit)
    }
    this.#growUsed = 0;
    this.#mask = mask;
    return true;
  }

  /** Adds `piece`; returns its bytes as kept (unmasked, in the reserved buffer, after reserve). */
  push(piece: Buffer): Buffer {
    if (piece.length === 0) return piece;
    this.bytes += piece.length;
    if (this.#mask !== null) {
      const grow = this.#grow!;
      const start = this.#growUsed;
      maskInto(grow, start, piece, this.#mask, start & 3);
      this.#growUsed = start + piece.length;
      return new FastBuffer(grow.buffer, grow.byteOffset + start, piece.length);
    }
    if (this.#grow !== null) {
      this.#append(piece);
      return piece;
    }
    this.pieces.push(piece);
    if (this.pieces.length > MAX_VIEW_PIECES) {
      const pieces = this.pieces;
      this.pieces = [];
      this.#grow = Buffer.allocUnsafe(Math.max(this.bytes * 2, 4096));
      this.#growUsed = 0;
      for (const p of pieces) this.#append(p);
    }
    return piece;
  }

  /** The pieces as views, when there are several and no copy was made yet; else null (use take()). */
  takePieces(): Buffer[] | null {
    if (this.#grow !== null || this.pieces.length < 2) return null;
    const pieces = this.pieces;
    this.pieces = [];
    this.bytes = 0;
    return pieces;
  }

  /** The whole, as one buffer (a view of the only piece when there is one). */
  take(): Buffer {
    let result: Buffer;
    if (this.#grow !== null) result = this.#grow.subarray(0, this.#growUsed);
    else if (this.pieces.length === 1) result = this.pieces.pop()!; // the array stays for the next message
    else if (this.pieces.length === 0) result = EMPTY;
    else result = Buffer.concat(this.pieces, this.bytes);
    this.clear();
    return result;
  }

  clear(): void {
    if (this.pieces.length !== 0) this.pieces = [];
    this.bytes = 0;
    this.#grow = null;
    this.#growUsed = 0;
    this.#mask = null;
  }

  #append(piece: Buffer): void {
    let grow = this.#grow!;
    if (this.#growUsed + piece.length > grow.length) {
      const bigger = Buffer.allocUnsafe(Math.max(grow.length * 2, this.#growUsed + piece.length));
      grow.copy(bigger, 0, 0, this.#growUsed);
      this.#grow = grow = bigger;
    }
    piece.copy(grow, this.#growUsed);
    this.#growUsed += piece.length;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The reason the Close of a failure carries: the message cut to fit, except with 1011 (or a code
 * that may not be sent), which says only that something went wrong inside: details stay here.
 */
function failureReason(error: ProtocolError): string {
  if (error.closeCode === CloseCode.InternalError || !isValidCloseCode(error.closeCode)) return '';
  return truncateUtf8(error.message, MAX_CLOSE_REASON_BYTES);
}

/** How much of a payload a FrameObserver sees: enough for a whole control frame (§5.5). */
const OBSERVED_HEAD_BYTES = MAX_CONTROL_PAYLOAD;

/** Masking keys for the client role, drawn from the CSPRNG in bulk (§5.3 requires unpredictable keys). */
const maskPool = Buffer.allocUnsafe(4096);
let maskPoolOffset = maskPool.length;
function nextMaskKey(): Buffer {
  if (maskPoolOffset === maskPool.length) {
    randomFillSync(maskPool);
    maskPoolOffset = 0;
  }
  const key = maskPool.subarray(maskPoolOffset, maskPoolOffset + 4);
  maskPoolOffset += 4;
  return key;
}

/**
 * One WebSocket connection after the opening handshake, Sans-I/O: feed it bytes with receiveData(),
 * take events with nextEvent() and bytes to write with takeOutput().
 */
export class Connection implements FrameSink {
  readonly #parser: FrameParser;
  readonly #client: boolean;
  readonly #maxPayload: number;
  readonly #extension: MessageExtension | null;
  readonly #onFrame: FrameObserver | null;
  readonly #decodeText: boolean;

  #state: ConnectionState = ConnectionState.Open;
  #events: ConnectionEvent[] = [];
  #output: Buffer[] = [];
  #outputBytes = 0;
  /**
   * The open run: frames queued since the last output was taken that were cut from the slab one
   * right behind the other, bytes [#runStart, #runEnd) of #runSlab. It joins #output as one view
   * when something else is queued or the output is taken (#closeRun). Null when none is open.
   */
  #runSlab: Buffer | null = null;
  #runStart = 0;
  #runEnd = 0;
  /** Where the frame #room made room for starts in the buffer it returned. */
  #roomStart = 0;
  #endTransport = false;

  /** The peer's Close, once received. */
  #closeReceived: { code: number; reason: string } | null = null;
  /** Our Close, once sent. */
  #closeSent: { code: number; reason: string } | null = null;
  #failure: ProtocolError | null = null;

  // The frame being received.
  #frameOpcode = 0;
  #frameFin = false;
  // The data message being received (§5.4: its frames may be interleaved with control frames).
  #messageOpen = false;
  #messageBinary = false;
  #messageEncoded = false;
  /**
   * The masking key of a large message in one frame, left masked by the parser (see onFrameHeader)
   * until its first piece decides where it is unmasked; else null.
   */
  #messageMask: Uint8Array | null = null;
  /** The payload length of a message in one frame (FIN set on its first frame), else -1. */
  #messageLength = -1;
  /**
   * A message in one frame whose payload came in one piece: that piece, from onFrameData to the
   * onFrameEnd that follows it at once, which hands it out with no assembly; else null.
   */
  #whole: Buffer | null = null;
  /** Its payload in assembly; made with the first data message (an idle connection holds none). */
  #message: PieceBuffer | null = null;
  /** A control frame's payload in assembly; made on the first control frame with a payload (idle connections hold none). */
  #control: PieceBuffer | null = null;
  #utf8: Utf8Validator | null = null;
  /**
   * The last text message handed out and its bytes, already checked as UTF-8: sendText() of that very
   * string (an echo, a relay, a broadcast of what came in) sends these bytes again instead of encoding
   * the string. Kept until forgetReceived() (the I/O layer calls it once the read is handled), so an
   * idle connection pins no input.
   */
  #lastText: string | null = null;
  /** Its bytes: one buffer, or the pieces it arrived in (see TEXT_PIECES_MIN). */
  #lastTextBytes: Buffer | Buffer[] = EMPTY;
  // The received frame being observed (only when onFrame is set).
  #observedPending = false;
  #observedRsv = 0;
  #observedLength = 0;
  #observedHead: Buffer = EMPTY;

  constructor(options: ConnectionOptions = {}) {
    this.#client = options.role === 'client';
    this.#maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.#extension = options.extension ?? null;
    this.#onFrame = options.onFrame ?? null;
    this.#decodeText = options.decodeText ?? true;
    this.#parser = new FrameParser(this, {
      role: this.#client ? 'client' : 'server',
      allowedRsv: this.#extension?.rsv ?? 0,
    });
  }

  /** 'client' (frames sent are masked, §5.1) or 'server'. */
  get role(): 'client' | 'server' {
    return this.#client ? 'client' : 'server';
  }

  /** Open, Closing (a Close was sent or received) or Closed. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** True once the I/O layer should end the transport (§7.1.1: the server closes TCP first). */
  get endTransport(): boolean {
    return this.#endTransport;
  }

  /**
   * Bytes of memory held for input in progress: the pieces of a message (or control frame) still
   * in assembly, counted by the buffers that back them (a view counts its whole read, once), and
   * the buffer a many-piece message is copied into. At most about twice the message's bytes
   * (docs/security.md); 0 between messages.
   */
  get retainedBytes(): number {
    return (this.#message === null ? 0 : this.#message.retainedBytes) + (this.#control === null ? 0 : this.#control.retainedBytes);
  }

  /** Bytes queued by the connection and not yet taken by takeOutput(). */
  get outputBytes(): number {
    return this.#outputBytes;
  }

  /** The failure that ended the connection, if one did. */
  get failure(): ProtocolError | null {
    return this.#failure;
  }

  /** Whether we have sent a Close frame (nothing may follow it, §5.5.1). */
  get closeSent(): boolean {
    return this.#closeSent !== null;
  }

  /** Whether the peer's Close frame has arrived. */
  get closeReceived(): boolean {
    return this.#closeReceived !== null;
  }

  /**
   * The code and reason to report when the connection is over (RFC 6455 §7.1.5-§7.1.6): the
   * peer's Close (1005 if it had no code), else our failure's code, else 1006.
   */
  get closeCode(): number {
    if (this.#closeReceived) return this.#closeReceived.code;
    if (this.#failure) return this.#failure.closeCode;
    return CloseCode.Abnormal;
  }

  /** The reason that goes with closeCode: the peer's, our failure's, or ''. */
  get closeReason(): string {
    if (this.#closeReceived) return this.#closeReceived.reason;
    // The failure's own reason (what fail() sends with its code), not that of a Close we sent before it.
    if (this.#failure) return failureReason(this.#failure);
    return '';
  }

  // ---------------------------------------------------------------- input

  /**
   * Feeds bytes from the transport. Masked payload is unmasked in place: the connection owns `data`.
   * Parsing is lazy: it stops after each event and goes on when the event has been taken, so
   * whatever the application sends in answer to one message is queued before any frame the
   * protocol itself writes in answer to later input (a Pong, the Close reply, a failure's Close).
   */
  receiveData(data: Buffer): void {
    this.#parser.push(data);
  }

  /** The transport has ended: the peer sent EOF or the connection dropped. Input before it is parsed first. */
  receiveEof(): void {
    this.#parseAll();
    // Nothing is decoded or encoded after the transport ends: the extension frees its state (RFC 7692 windows).
    this.#extension?.dispose?.();
    if (this.#state === ConnectionState.Closed) return;
    this.#parser.stop();
    this.#releaseMessage();
    this.#state = ConnectionState.Closed;
    this.#endTransport = true;
  }

  /**
   * The next event, parsing on as far as it needs; undefined when the input so far holds no more.
   * The I/O layer handles each event (and lets the application answer it) before taking the next.
   */
  nextEvent(): ConnectionEvent | undefined {
    if (this.#events.length === 0) {
      if (!this.#parser.pending) return undefined;
      this.#parser.resume();
    }
    const events = this.#events;
    // One event at a time is the common case: pop() leaves the array as it was, where shift() moves it.
    return events.length === 1 ? events.pop() : events.shift();
  }

  /**
   * Forgets the last text message's bytes (see sendText): the I/O layer calls it when it has handled
   * a read, so that what was read is not kept alive by an idle connection.
   */
  forgetReceived(): void {
    this.#lastText = null;
    this.#lastTextBytes = EMPTY;
  }

  /** All events the input so far holds, oldest first (parses everything pending). */
  takeEvents(): ConnectionEvent[] {
    this.#parseAll();
    const events = this.#events;
    if (events.length !== 0) this.#events = [];
    return events;
  }

  /**
   * Bytes to write since the last call, in order (parses everything pending first). One Buffer may
   * hold several frames: small frames queued one after another come as one view of the slab.
   */
  takeOutput(): Buffer[] {
    this.#parseAll();
    return this.takeQueuedOutput();
  }

  /**
   * Bytes to write since the last call, in order, without parsing on: input not parsed yet stays
   * so. For an I/O layer whose application holds reading (a handler's pause()): a Close behind a
   * message not handed out yet is answered only after that message, since no data frame may follow
   * our Close (RFC 6455 §5.5.1), and a Ping behind it gets its Pong after it, as it came.
   */
  takeQueuedOutput(): Buffer[] {
    if (this.#runSlab !== null) this.#closeRun();
    const output = this.#output;
    if (output.length !== 0) {
      this.#output = [];
      this.#outputBytes = 0;
    }
    return output;
  }

  /**
   * Like takeQueuedOutput, for the common case of one buffer queued (a run of small frames, or one
   * frame): takes it and returns it, without a list. Returns null, taking nothing, when nothing or
   * more than one buffer is queued.
   */
  takeQueuedBuffer(): Buffer | null {
    const output = this.#output;
    if (this.#runSlab !== null) {
      if (output.length !== 0) return null;
      this.#outputBytes = 0;
      return this.#takeRun();
    }
    if (output.length !== 1) return null;
    this.#outputBytes = 0;
    return output.pop()!;
  }

  // ---------------------------------------------------------------- output

  /**
   * Queues a text message. `compress` false skips the extension for this message. Returns false if
   * nothing was queued. The string last handed out in a text event is sent as the bytes it came in
   * (they are valid UTF-8 and encode exactly that string), without encoding it again.
   */
  sendText(text: string, compress = true): boolean {
    if (this.#state !== ConnectionState.Open) return false;
    if (text === this.#lastText) {
      const bytes = this.#lastTextBytes;
      if (Array.isArray(bytes)) {
        if (this.#extension !== null && compress) return this.#sendEncoded(Opcode.Text, Buffer.concat(bytes));
        this.#queuePieces(Opcode.Text, bytes);
      } else {
        if (this.#extension !== null && compress) return this.#sendEncoded(Opcode.Text, bytes);
        this.#queueFrame(Opcode.Text, 0, bytes);
      }
      return true;
    }
    if (this.#extension !== null && compress) return this.#sendEncoded(Opcode.Text, Buffer.from(text, 'utf8'));
    // A watched frame goes the common way too: the observer sees it before it is queued, as every
    // other frame (a send from inside the observer comes first, a throw queues nothing).
    if (this.#client || text.length > SCRATCH_TEXT_MAX || this.#onFrame !== null) {
      this.#queueFrame(Opcode.Text, 0, Buffer.from(text, 'utf8'));
      return true;
    }
    // One pass: encode into the scratch behind room for the header, then copy the frame out.
    const room = SCRATCH_HEADER + text.length * 3;
    if (textScratch.length < room) textScratch = Buffer.allocUnsafeSlow(Math.max(room, 4096));
    const length = textScratch.write(text, SCRATCH_HEADER, 'utf8');
    const headerLength = frameHeaderLength(length, false);
    const frame = this.#room(headerLength + length);
    const at = this.#roomStart;
    writeFrameHeader(frame, at, Opcode.Text, length, true, 0);
    textScratch.copy(frame, at + headerLength, SCRATCH_HEADER, SCRATCH_HEADER + length);
    return true;
  }

  /** Queues a text message from UTF-8 bytes, checked (RFC 6455 §5.6): invalid UTF-8 is a TypeError. */
  sendTextBytes(data: Uint8Array, compress = true): boolean {
    if (!isValidUtf8(data)) throw new TypeError('a text message must be valid UTF-8');
    if (this.#state !== ConnectionState.Open) return false;
    if (this.#extension !== null && compress) return this.#sendEncoded(Opcode.Text, data);
    this.#queueFrame(Opcode.Text, 0, data);
    return true;
  }

  /** Queues a binary message. Returns false if nothing was queued. */
  sendBinary(data: Uint8Array, compress = true): boolean {
    if (this.#state !== ConnectionState.Open) return false;
    if (this.#extension !== null && compress) return this.#sendEncoded(Opcode.Binary, data);
    this.#queueFrame(Opcode.Binary, 0, data);
    return true;
  }

  /** Queues a Ping (§5.5.2); at most 125 bytes of payload. */
  ping(data: Uint8Array = EMPTY): boolean {
    return this.#sendControl(Opcode.Ping, data);
  }

  /** Queues an unsolicited Pong (§5.5.3, a unidirectional heartbeat). */
  pong(data: Uint8Array = EMPTY): boolean {
    return this.#sendControl(Opcode.Pong, data);
  }

  /**
   * Starts the closing handshake (§7.1.2): queues a Close frame; nothing is sent after it. The I/O
   * layer then waits for the peer's Close, up to its close timeout. Throws RangeError for a code
   * that may not be sent or a reason over 123 bytes. Returns false if a Close was already sent.
   */
  close(code: number = CloseCode.Normal, reason = ''): boolean {
    const payload = encodeClosePayload(code, reason);
    if (this.#closeSent !== null || this.#state === ConnectionState.Closed) return false;
    this.#sendClose(payload, code, reason);
    this.#state = ConnectionState.Closing;
    return true;
  }

  /**
   * Fails the connection (§7.1.7): queues a Close with the error's code when none was sent yet,
   * discards all further input, asks the I/O layer to end the transport, and reports the error
   * once. The one failure path of the protocol core; later failures are ignored.
   */
  fail(error: ProtocolError): void {
    if (this.#failure !== null || this.#state === ConnectionState.Closed) return;
    // The frame that broke a rule is reported before the Close that answers it.
    if (this.#observedPending) this.#reportObserved();
    this.#failure = error;
    this.#parser.stop();
    this.#releaseMessage();
    if (this.#closeSent === null) {
      // Only a code that may go on the wire is sent (§7.4.1): any other goes out as 1011, so the
      // failure path never throws half-way.
      const code = isValidCloseCode(error.closeCode) ? error.closeCode : CloseCode.InternalError;
      const reason = failureReason(error);
      this.#sendClose(encodeClosePayload(code, reason), code, reason);
    }
    this.#state = ConnectionState.Closed;
    this.#endTransport = true;
    this.#events.push({ type: 'error', error });
  }

  #parseAll(): void {
    while (this.#parser.pending) this.#parser.resume();
  }

  #sendClose(payload: Buffer, code: number, reason: string): void {
    this.#closeSent = { code, reason };
    this.#queueFrame(Opcode.Close, 0, payload);
  }

  #sendControl(opcode: number, data: Uint8Array): boolean {
    if (data.length > MAX_CONTROL_PAYLOAD) throw new RangeError('a control frame payload is at most 125 bytes (RFC 6455 §5.5)');
    if (this.#closeSent !== null || this.#state === ConnectionState.Closed) return false;
    this.#queueFrame(opcode, 0, data);
    return true;
  }

  #sendEncoded(opcode: number, data: Uint8Array): boolean {
    const encoded = this.#extension!.encode(data);
    if (encoded === null) this.#queueFrame(opcode, 0, data);
    else this.#queueFrame(opcode, this.#extension!.rsv, encoded);
    return true;
  }

  /** Queues one final frame: small payloads are copied behind their header, large ones follow it as views. */
  #queueFrame(opcode: number, rsv: number, payload: Uint8Array): void {
    const length = payload.length;
    const mask = this.#client ? nextMaskKey() : undefined;
    const headerLength = frameHeaderLength(length, mask !== undefined);
    if (this.#onFrame !== null) {
      const head = Buffer.from(payload.buffer, payload.byteOffset, Math.min(length, OBSERVED_HEAD_BYTES));
      this.#onFrame('out', true, rsv, opcode, mask !== undefined, length, head);
    }
    if (length < VIEW_PAYLOAD_MIN || mask !== undefined) {
      const frame = this.#room(headerLength + length);
      const at = this.#roomStart;
      writeFrameHeader(frame, at, opcode, length, true, rsv, mask);
      frame.set(payload, at + headerLength);
      if (mask !== undefined) applyMask(frame.subarray(at + headerLength, at + headerLength + length), mask, 0);
    } else {
      writeFrameHeader(this.#room(headerLength), this.#roomStart, opcode, length, true, rsv);
      this.#queue(Buffer.from(payload.buffer, payload.byteOffset, length));
    }
  }

  /** Queues one final unmasked frame whose payload is `pieces`, each written as it is behind the header. */
  #queuePieces(opcode: number, pieces: readonly Buffer[]): void {
    let length = 0;
    for (const piece of pieces) length += piece.length;
    if (this.#client) return this.#queueFrame(opcode, 0, Buffer.concat(pieces, length));
    if (this.#onFrame !== null) {
      const first = pieces[0]!;
      const head = first.length >= OBSERVED_HEAD_BYTES ? first.subarray(0, OBSERVED_HEAD_BYTES) : Buffer.concat(pieces, Math.min(length, OBSERVED_HEAD_BYTES));
      this.#onFrame('out', true, 0, opcode, false, length, head);
    }
    writeFrameHeader(this.#room(frameHeaderLength(length, false)), this.#roomStart, opcode, length, true, 0);
    for (const piece of pieces) this.#queue(piece);
  }

  #queue(data: Buffer): void {
    if (this.#runSlab !== null) this.#closeRun();
    this.#output.push(data);
    this.#outputBytes += data.length;
  }

  /**
   * Queues room for one frame of `size` bytes and returns the buffer to write it into, from byte
   * #roomStart: a small frame is cut from the slab, and extends the open run when it lies right
   * behind it (no view is made for it); a larger one gets a buffer of its own.
   */
  #room(size: number): Buffer {
    if (size > SLAB_FRAME_MAX) {
      const own = Buffer.allocUnsafe(size);
      this.#queue(own);
      this.#roomStart = 0;
      return own;
    }
    if (slabUsed + size > slab.length) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabUsed = 0;
    }
    const start = slabUsed;
    slabUsed = start + size;
    if (this.#runSlab !== slab || this.#runEnd !== start) {
      if (this.#runSlab !== null) this.#closeRun();
      this.#runSlab = slab;
      this.#runStart = start;
    }
    this.#runEnd = start + size;
    this.#outputBytes += size;
    this.#roomStart = start;
    return slab;
  }

  /** The open run joins the output, as one view of its frames. */
  #closeRun(): void {
    this.#output.push(this.#takeRun());
  }

  /** The open run, closed, as one view of its frames. */
  #takeRun(): Buffer {
    const run = this.#runSlab!;
    this.#runSlab = null;
    return new FastBuffer(run.buffer, run.byteOffset + this.#runStart, this.#runEnd - this.#runStart);
  }

  // ---------------------------------------------------------------- FrameSink

  /** @internal The rules of the frame sequence, from the first two header bytes. */
  onFrameStart(fin: boolean, rsv: number, opcode: number, length: number): boolean {
    this.#frameOpcode = opcode;
    this.#frameFin = fin;
    if (this.#onFrame !== null) {
      // Observed from here, so that a frame failed on these rules (or on its length) is reported
      // before the Close that answers it; onFrameHeader gives it its full length.
      this.#observedPending = true;
      this.#observedRsv = rsv;
      this.#observedLength = length;
      this.#observedHead = EMPTY;
    }
    if (opcode >= Opcode.Close) {
      // RFC 7692 §6: an extension's RSV bit is never set on a control frame.
      if (rsv !== 0) return this.#reject(protocolViolation('WS_ERR_UNEXPECTED_RSV_1', 'RSV1 must be clear on control frames'));
      return true;
    }
    if (opcode === Opcode.Continuation) {
      // §5.4: a continuation frame belongs to a message begun by a text or binary frame.
      if (!this.#messageOpen) {
        return this.#reject(protocolViolation('WS_ERR_UNEXPECTED_CONTINUATION', 'continuation frame without a message to continue'));
      }
      // RFC 7692 §6.1: RSV1 is set on the first frame of a compressed message only.
      if (rsv !== 0) return this.#reject(protocolViolation('WS_ERR_UNEXPECTED_RSV_1', 'RSV1 must be clear on continuation frames'));
      return true;
    }
    // §5.4: the frames of a fragmented message are not interleaved with another data message.
    if (this.#messageOpen) {
      return this.#reject(protocolViolation('WS_ERR_EXPECTED_CONTINUATION', 'new data frame while a fragmented message is open'));
    }
    return true;
  }

  /** @internal */
  onFrameHeader(fin: boolean, rsv: number, opcode: number, length: number): boolean {
    // onFrameStart has taken the opcode and FIN, begun observing, and checked the frame against the sequence.
    if (this.#onFrame !== null) this.#observedLength = length;
    if (opcode >= Opcode.Close) return true;
    if (opcode !== Opcode.Continuation) {
      this.#messageOpen = true;
      this.#message ??= new PieceBuffer();
      this.#messageBinary = opcode === Opcode.Binary;
      this.#messageEncoded = rsv !== 0;
      // A large message in one frame is left masked by the parser: when it spans reads, its pieces
      // are unmasked straight into a buffer of its size (onFrameData), one copy in all, made as each
      // read comes in. Unmasking each read in place and joining the pieces at the end took a pass
      // more and kept every read alive until the end (measured: docs/benchmarks.md, 1 MiB). Traced
      // frames are unmasked as they come (the observer shows their first bytes); compressed ones
      // are inflated from their pieces; text of TEXT_PIECES_MIN and more that is decoded stays in
      // its pieces (decoding them needs no joined copy: measured at 256 KiB ASCII, 170 µs joined
      // against 120-160 µs in pieces, in process).
      this.#messageLength = fin ? length : -1;
      const pieces = !this.#messageBinary && this.#decodeText && length >= TEXT_PIECES_MIN;
      if (fin && rsv === 0 && length >= VIEW_PAYLOAD_MIN && this.#onFrame === null && !pieces) {
        this.#messageMask = this.#parser.leaveMasked();
      }
      if (!this.#messageBinary && !this.#messageEncoded) {
        if (this.#utf8 === null) this.#utf8 = new Utf8Validator();
        else this.#utf8.reset();
      }
    }
    // §10.4: the size limit is checked from the header, before a byte of payload is buffered.
    if (length > this.#maxPayload - this.#message!.bytes) {
      return this.#reject(
        new ProtocolError(
          'WS_ERR_PAYLOAD_TOO_BIG',
          CloseCode.MessageTooBig,
          `message over the limit of ${this.#maxPayload} bytes`,
        ),
      );
    }
    return true;
  }

  /** @internal */
  onFrameData(data: Buffer): boolean {
    if (this.#onFrame !== null && this.#observedHead.length < OBSERVED_HEAD_BYTES) this.#observeData(data);
    if (this.#frameOpcode >= Opcode.Close) {
      (this.#control ??= new PieceBuffer()).push(data);
      return true;
    }
    const message = this.#message!;
    const mask = this.#messageMask;
    if (mask !== null) {
      this.#messageMask = null;
      // The first piece: the whole frame is in this read (unmasked in place, a view as ever), or
      // the rest is to come (unmasked into a buffer of the frame's size, unless none can be had).
      if (data.length === this.#messageLength || !message.reserve(this.#messageLength, mask)) {
        this.#parser.unmaskFirstPiece(data);
      }
    }
    // The whole payload of a message in one frame, in one piece: no assembly (see #whole).
    const bytes = data.length === this.#messageLength ? (this.#whole = data) : message.push(data);
    // §8.1: text is checked as it arrives, so invalid UTF-8 fails at the first bad piece.
    if (!this.#messageBinary && !this.#messageEncoded && !this.#utf8!.write(bytes)) {
      return this.#reject(new ProtocolError('WS_ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in a text message'));
    }
    return true;
  }

  /** @internal */
  onFrameEnd(): boolean {
    if (this.#observedPending) this.#reportObserved();
    const opcode = this.#frameOpcode;
    if (opcode >= Opcode.Close) return this.#controlFrame(opcode, this.#control === null ? EMPTY : this.#control.take());
    if (!this.#frameFin) return true;
    this.#messageOpen = false;
    if (!this.#messageBinary && !this.#messageEncoded) {
      if (!this.#utf8!.end()) {
        return this.#reject(new ProtocolError('WS_ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence'));
      }
      if (!this.#decodeText) {
        this.#events.push({ type: 'textBytes', data: this.#takeMessage() });
        return false; // pause: the message is handled before the next frame is parsed
      }
      // Large text that came in several reads stays in those pieces (TEXT_PIECES_MIN).
      const message = this.#message!;
      const pieces = message.bytes >= TEXT_PIECES_MIN ? message.takePieces() : null;
      if (pieces !== null) this.#textEvent(decodeUtf8Pieces(pieces), pieces);
      else {
        const data = this.#takeMessage();
        this.#textEvent(decodeUtf8(data), data);
      }
      return false; // pause: the message is handled before the next frame is parsed
    }
    let data = this.#takeMessage();
    if (this.#messageEncoded) {
      const decoded = this.#extension!.decode(data, this.#maxPayload);
      if (decoded instanceof ProtocolError) return this.#reject(decoded);
      data = decoded;
      if (!this.#messageBinary && !isValidUtf8(data)) {
        return this.#reject(new ProtocolError('WS_ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in a text message'));
      }
    }
    if (this.#messageBinary) this.#events.push({ type: 'binary', data });
    else if (!this.#decodeText) this.#events.push({ type: 'textBytes', data });
    else this.#textEvent(decodeUtf8(data), data);
    return false; // pause: the message is handled before the next frame is parsed
  }

  /** The message received: the piece it came whole in (#whole), or what its assembly holds. */
  #takeMessage(): Buffer {
    const whole = this.#whole;
    if (whole === null) return this.#message!.take();
    this.#whole = null;
    return whole;
  }

  /** Hands out a text message, remembering its bytes for a sendText of the same string. */
  #textEvent(text: string, bytes: Buffer | Buffer[]): void {
    this.#lastText = text;
    this.#lastTextBytes = bytes;
    this.#events.push({ type: 'text', data: text });
  }

  /** @internal */
  onFrameError(error: ProtocolError): void {
    this.fail(error);
  }

  /** @internal */
  onInputEnd(): void {
    // Pieces kept past their read are copied out when they would pin it (the read itself, 64 KiB,
    // for a 1-byte fragment): the message, and a control frame split across reads.
    if (this.#message !== null && this.#message.pieces.length !== 0) this.#message.unpin();
    if (this.#control !== null && this.#control.pieces.length !== 0) this.#control.unpin();
  }

  #controlFrame(opcode: number, data: Buffer): boolean {
    if (opcode === Opcode.Ping) {
      // §5.5.2: a Ping is answered with a Pong carrying the same payload, unless a Close was sent.
      if (this.#closeSent === null) this.#queueFrame(Opcode.Pong, 0, data);
      this.#events.push({ type: 'ping', data });
      return false;
    }
    if (opcode === Opcode.Pong) {
      // §5.5.3: a Pong may be unsolicited; it is reported and needs no answer.
      this.#events.push({ type: 'pong', data });
      return false;
    }
    const parsed = parseClosePayload(data);
    if (parsed instanceof ProtocolError) return this.#reject(parsed);
    this.#closeReceived = parsed;
    // §5.5.1: answer a Close with a Close, echoing its code, unless ours was already sent.
    if (this.#closeSent === null) {
      const code = parsed.code === CloseCode.NoStatusReceived ? undefined : parsed.code;
      this.#sendClose(encodeClosePayload(code), code ?? CloseCode.NoStatusReceived, '');
    }
    // §7.1.1: the closing handshake is complete; the server ends TCP first, a client waits for it.
    this.#state = ConnectionState.Closed;
    this.#endTransport = !this.#client;
    this.#releaseMessage();
    this.#events.push({ type: 'close', code: parsed.code, reason: parsed.reason });
    // §5.5.1: nothing the peer sends after its Close is processed.
    this.#parser.stop();
    return false;
  }

  /** Keeps the first payload bytes of the received frame for the observer (copied: the input is handed on). */
  #observeData(data: Buffer): void {
    const head = this.#observedHead;
    const piece = data.subarray(0, OBSERVED_HEAD_BYTES - head.length);
    this.#observedHead = head.length === 0 ? Buffer.from(piece) : Buffer.concat([head, piece]);
  }

  #reportObserved(): void {
    this.#observedPending = false;
    const head = this.#observedHead;
    this.#observedHead = EMPTY;
    this.#onFrame!('in', this.#frameFin, this.#observedRsv, this.#frameOpcode, !this.#client, this.#observedLength, head);
  }

  #reject(error: ProtocolError): false {
    this.fail(error);
    return false;
  }

  #releaseMessage(): void {
    this.forgetReceived();
    this.#messageOpen = false;
    this.#messageMask = null;
    this.#whole = null;
    this.#message?.clear();
    this.#control?.clear();
  }
}

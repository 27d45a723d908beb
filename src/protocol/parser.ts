// The incremental frame parser of RFC 6455 §5.2. Input may be split anywhere: each named state
// first checks that the bytes it needs have arrived, and a header that straddles two reads is
// gathered in a 14-byte stash, never lost. Payload bytes are not copied: each piece is unmasked in
// place and handed on as a view into the input. The parser checks what a single frame header can
// tell (§5.2, §5.3, §5.5); message-level rules belong to its FrameSink (the Connection).

import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, RSV1 } from './constants.js';
import { ProtocolError, protocolViolation } from './errors.js';
import { applyMask } from './mask.js';

/** Receives what the parser finds. onFrameHeader or onFrameData returning false stops the parser for good. */
export interface FrameSink {
  /**
   * The first two header bytes broke none of the frame's own rules: rules that depend on earlier
   * frames (§5.4, RFC 7692 §6.1) can fail it now, before its length and masking key arrive.
   * `length` is the payload length when the 7-bit field holds it, NaN when a 16- or 64-bit length
   * follows (not read yet). Return false to fail it. Optional.
   */
  onFrameStart?(fin: boolean, rsv: number, opcode: number, length: number): boolean;
  /** A frame header is complete. `rsv` holds the RSV bits in place (0x40 = RSV1). */
  onFrameHeader(fin: boolean, rsv: number, opcode: number, length: number): boolean;
  /** A piece of the frame's payload, unmasked: a view into the input, owned by the sink from now on. */
  onFrameData(data: Buffer): boolean;
  /**
   * The frame's payload is complete (called right after the header for an empty payload). Return
   * false to pause: the parser keeps the rest of the input until resume(). (To stop, call stop().)
   */
  onFrameEnd(): boolean;
  /** The input broke a framing rule; the parser has stopped. */
  onFrameError(error: ProtocolError): void;
  /**
   * Every byte pushed so far has been parsed (the parser needs more input). Views of the input the
   * sink still keeps (a frame or message in progress) would pin it from here on. Optional.
   */
  onInputEnd?(): void;
}

/** How a FrameParser reads frames. */
export interface FrameParserOptions {
  /** Which end we are: a server requires masked frames, a client unmasked ones (§5.1). Default 'server'. */
  role?: 'server' | 'client';
  /** RSV bits an extension has negotiated, e.g. RSV1 for permessage-deflate (§5.2). Default none. */
  allowedRsv?: number;
}

// Named states: each reads a fixed number of bytes, or (DATA) what there is of the payload.
const INFO = 0; // FIN, RSV, opcode, MASK, 7-bit length: 2 bytes
const LENGTH_16 = 1; // 16-bit extended length: 2 bytes
const LENGTH_64 = 2; // 64-bit extended length: 8 bytes
const MASK_KEY = 3; // masking key: 4 bytes
const DATA = 4; // payload
const STOPPED = 5; // after an error or when the sink said stop: input is discarded

const TWO_POW_32 = 0x100000000;
/** Node's Buffer class itself: a view built with it directly skips subarray()'s species lookup (ws does the same). */
export const FastBuffer = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species] as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer;

/** The incremental frame parser of RFC 6455 §5.2: push bytes in, its FrameSink receives headers, payload and errors. */
export class FrameParser {
  readonly #sink: FrameSink;
  readonly #expectMasked: boolean;
  #allowedRsv: number;

  #state = INFO;
  /** The input being parsed, where parsing goes on, and input pushed behind it while paused. */
  #chunk: Buffer | null = null;
  #pos = 0;
  #queue: Buffer[] = [];
  /**
   * Header bytes that arrived without the rest of their field; then, from the masking key on, the
   * frame's masking key in bytes 0-3 (the header is over, the stash is free). Made on the first
   * masked frame or split field: an idle connection holds none.
   */
  #stash: Buffer | null = null;
  #stashed = 0;

  // The frame in progress.
  #fin = false;
  #rsv = 0;
  #opcode = 0;
  #masked = false;
  /** The sink takes this frame's payload masked and unmasks it itself (leaveMasked). */
  #leaveMasked = false;
  #remaining = 0;
  #maskPhase = 0;

  constructor(sink: FrameSink, options: FrameParserOptions = {}) {
    this.#sink = sink;
    this.#expectMasked = (options.role ?? 'server') === 'server';
    this.#allowedRsv = options.allowedRsv ?? 0;
  }

  /** Changes the RSV bits accepted from now on (when an extension is negotiated). */
  setAllowedRsv(rsv: number): void {
    this.#allowedRsv = rsv;
  }

  /**
   * Called by the sink from onFrameHeader: this frame's payload reaches onFrameData still masked, and
   * the sink unmasks it (RFC 6455 §5.3), a piece's mask phase being its offset in the payload modulo
   * 4. Returns the frame's 4-byte masking key, valid until the next frame's header is read, or null
   * for an unmasked frame (nothing to leave).
   */
  leaveMasked(): Uint8Array | null {
    if (!this.#masked) return null;
    this.#leaveMasked = true;
    return this.#stash!.subarray(0, 4);
  }

  /**
   * Undoes leaveMasked from the frame's first piece on: `piece`, that first piece as onFrameData got
   * it, is unmasked in place, and the parser unmasks the rest of the frame as usual.
   */
  unmaskFirstPiece(piece: Buffer): void {
    this.#leaveMasked = false;
    this.#maskPhase = applyMask(piece, this.#stash!, 0);
  }

  /** Whether the parser has stopped: after a framing error, or when the sink asked it to. */
  get stopped(): boolean {
    return this.#state === STOPPED;
  }

  /** Stops parsing for good: input kept and everything pushed from now on is discarded. */
  stop(): void {
    this.#state = STOPPED;
    this.#chunk = null;
    if (this.#queue.length !== 0) this.#queue = [];
  }

  /**
   * Parses `chunk` as far as the sink lets it: when onFrameEnd returns false the parser pauses
   * there, keeping the rest of the input for resume(). A chunk pushed while the parser is paused
   * waits behind that input: nothing is parsed until resume(). Masked payload is unmasked in place,
   * so the parser takes ownership of the bytes: pass a copy if the caller still needs them as they
   * were.
   */
  push(chunk: Buffer): void {
    if (this.#state === STOPPED || chunk.length === 0) return;
    if (this.#chunk !== null) {
      this.#queue.push(chunk);
      return;
    }
    this.#chunk = chunk;
    this.#pos = 0;
    this.resume();
  }

  /** Whether input is waiting to be parsed (the parser paused on it). */
  get pending(): boolean {
    return this.#chunk !== null;
  }

  /** Continues parsing the input kept when the parser paused, up to the next pause. */
  resume(): void {
    while (this.#chunk !== null) {
      // Paused: #pos marks where to go on. A pause at the chunk's very end (a read that ended with
      // a message, the common case) leaves nothing to parse in it.
      if (this.#pos !== this.#chunk.length && this.#parse(this.#chunk, this.#pos)) return;
      this.#chunk = this.#queue.length === 0 ? null : this.#queue.shift()!;
      this.#pos = 0;
    }
    if (this.#state !== STOPPED) this.#sink.onInputEnd?.();
  }

  /** Parses `chunk` from `pos`. Returns true when the sink paused the parser before the chunk's end. */
  #parse(chunk: Buffer, pos: number): boolean {
    const end = chunk.length;
    for (;;) {
      switch (this.#state) {
        case INFO: {
          let b0: number;
          let b1: number;
          if (this.#stashed === 0 && end - pos >= 2) {
            b0 = chunk[pos]!;
            b1 = chunk[pos + 1]!;
            pos += 2;
          } else {
            pos = this.#fill(chunk, pos, end, 2);
            if (this.#stashed < 2) return false;
            b0 = this.#stash![0]!;
            b1 = this.#stash![1]!;
            this.#stashed = 0;
          }
          if (!this.#readInfo(b0, b1)) return this.#halted(pos);
          break;
        }
        case LENGTH_16: {
          let length: number;
          if (this.#stashed === 0 && end - pos >= 2) {
            length = (chunk[pos]! << 8) | chunk[pos + 1]!;
            pos += 2;
          } else {
            pos = this.#fill(chunk, pos, end, 2);
            if (this.#stashed < 2) return false;
            length = (this.#stash![0]! << 8) | this.#stash![1]!;
            this.#stashed = 0;
          }
          this.#remaining = length;
          if (!this.#afterLength()) return this.#halted(pos);
          break;
        }
        case LENGTH_64: {
          let high: number;
          let low: number;
          if (this.#stashed === 0 && end - pos >= 8) {
            high = chunk.readUInt32BE(pos);
            low = chunk.readUInt32BE(pos + 4);
            pos += 8;
          } else {
            pos = this.#fill(chunk, pos, end, 8);
            if (this.#stashed < 8) return false;
            high = this.#stash!.readUInt32BE(0);
            low = this.#stash!.readUInt32BE(4);
            this.#stashed = 0;
          }
          // §5.2: "the most significant bit MUST be 0".
          if (high >= 0x80000000) {
            this.#fail(
              protocolViolation('WS_ERR_INVALID_PAYLOAD_LENGTH', 'the most significant bit of a 64-bit payload length is set'),
            );
            return false;
          }
          // Beyond 2^53 a JS number loses precision; no limit can allow such a frame.
          if (high >= 0x200000) {
            this.#fail(
              new ProtocolError('WS_ERR_PAYLOAD_TOO_BIG', CloseCode.MessageTooBig, 'frame payload length over 2^53 bytes'),
            );
            return false;
          }
          this.#remaining = high * TWO_POW_32 + low;
          if (!this.#afterLength()) return this.#halted(pos);
          break;
        }
        case MASK_KEY: {
          if (this.#stashed === 0 && end - pos >= 4) {
            const mask = this.#stash ?? (this.#stash = Buffer.allocUnsafe(8));
            mask[0] = chunk[pos]!;
            mask[1] = chunk[pos + 1]!;
            mask[2] = chunk[pos + 2]!;
            mask[3] = chunk[pos + 3]!;
            pos += 4;
          } else {
            pos = this.#fill(chunk, pos, end, 4); // the key lands in stash bytes 0-3, where it stays
            if (this.#stashed < 4) return false;
            this.#stashed = 0;
          }
          this.#maskPhase = 0;
          if (!this.#headerDone()) return this.#halted(pos);
          break;
        }
        case DATA: {
          const available = end - pos;
          if (available === 0) return false;
          const n = available < this.#remaining ? available : this.#remaining;
          const piece = pos === 0 && n === end ? chunk : new FastBuffer(chunk.buffer, chunk.byteOffset + pos, n);
          if (this.#masked && !this.#leaveMasked) this.#maskPhase = applyMask(piece, this.#stash!, this.#maskPhase);
          pos += n;
          this.#remaining -= n;
          if (!this.#sink.onFrameData(piece)) {
            this.stop();
            return false;
          }
          if (this.#remaining === 0 && !this.#frameEnd()) return this.#halted(pos);
          break;
        }
        default: // STOPPED
          return false;
      }
      if (pos === end) return false;
    }
  }

  /** Copies up to `need` header bytes into the stash; returns the new input position. */
  #fill(chunk: Buffer, pos: number, end: number, need: number): number {
    const take = Math.min(need - this.#stashed, end - pos);
    chunk.copy(this.#stash ?? (this.#stash = Buffer.allocUnsafe(8)), this.#stashed, pos, pos + take);
    this.#stashed += take;
    return pos + take;
  }

  /** The first two header bytes: every rule a frame breaks on its own is checked here (§5.2, §5.5). */
  #readInfo(b0: number, b1: number): boolean {
    const fin = (b0 & 0x80) !== 0;
    const rsv = b0 & 0x70;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const length7 = b1 & 0x7f;

    // §5.2: RSV bits MUST be 0 unless an extension defining them was negotiated.
    if ((rsv & ~this.#allowedRsv) !== 0) {
      return this.#fail(
        (rsv & ~this.#allowedRsv & RSV1) !== 0
          ? protocolViolation('WS_ERR_UNEXPECTED_RSV_1', 'RSV1 must be clear')
          : protocolViolation('WS_ERR_UNEXPECTED_RSV_2_3', 'RSV2 and RSV3 must be clear'),
      );
    }
    const control = (opcode & 0x8) !== 0;
    // §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved; receiving one MUST fail the connection.
    if (control ? opcode > Opcode.Pong : opcode > Opcode.Binary) {
      return this.#fail(protocolViolation('WS_ERR_INVALID_OPCODE', `invalid opcode ${opcode}`));
    }
    if (control) {
      // §5.5: control frames MUST NOT be fragmented and MUST have a payload of 125 bytes or less.
      if (!fin) return this.#fail(protocolViolation('WS_ERR_FRAGMENTED_CONTROL_FRAME', 'FIN must be set on control frames'));
      if (length7 > MAX_CONTROL_PAYLOAD) {
        return this.#fail(protocolViolation('WS_ERR_CONTROL_FRAME_TOO_LONG', 'control frame payload over 125 bytes'));
      }
    }
    // §5.1: a server MUST close on an unmasked client frame; a client on a masked server frame.
    if (masked !== this.#expectMasked) {
      return this.#fail(
        masked
          ? protocolViolation('WS_ERR_MASKED_FRAME', 'MASK must be clear on frames from a server')
          : protocolViolation('WS_ERR_UNMASKED_FRAME', 'MASK must be set on frames from a client'),
      );
    }
    // The rules of the frame sequence, as soon as the opcode is known: a continuation that continues
    // nothing fails here, not after a 64-bit length over any limit (which would say 1009, not 1002).
    if (this.#sink.onFrameStart !== undefined && !this.#sink.onFrameStart(fin, rsv, opcode, length7 < 126 ? length7 : NaN)) {
      this.stop();
      return false;
    }
    this.#fin = fin;
    this.#rsv = rsv;
    this.#opcode = opcode;
    this.#masked = masked;
    this.#leaveMasked = false;
    if (length7 === 126) {
      this.#state = LENGTH_16;
      return true;
    }
    if (length7 === 127) {
      this.#state = LENGTH_64;
      return true;
    }
    this.#remaining = length7;
    return this.#afterLength();
  }

  #afterLength(): boolean {
    if (this.#masked) {
      this.#state = MASK_KEY;
      return true;
    }
    return this.#headerDone();
  }

  #headerDone(): boolean {
    if (!this.#sink.onFrameHeader(this.#fin, this.#rsv, this.#opcode, this.#remaining)) {
      this.stop();
      return false;
    }
    if (this.#remaining === 0) return this.#frameEnd();
    this.#state = DATA;
    return true;
  }

  /** The frame is complete: the next one starts; false when the sink paused or stopped the parser. */
  #frameEnd(): boolean {
    this.#state = INFO;
    return this.#sink.onFrameEnd();
  }

  /** After a step returned false: stopped for good, or paused with `pos` as the place to go on. */
  #halted(pos: number): boolean {
    if (this.#state === STOPPED) return false;
    this.#pos = pos;
    return true;
  }

  #fail(error: ProtocolError): false {
    this.#state = STOPPED;
    this.#sink.onFrameError(error);
    return false;
  }
}

// UTF-8 validation (RFC 3629), as RFC 6455 §8.1 requires of text messages and close reasons.
// Incremental: a text message arriving in fragments, and each fragment in pieces, is checked piece
// by piece and fails at the first piece that cannot be the start of valid UTF-8 ("fail fast"),
// not when the message ends. The bulk of each piece goes through Node's native `isUtf8`; only the
// up to three bytes of a code point split across pieces go through the byte state machine below.

import { isAscii, isUtf8 } from 'node:buffer';
import { instantiateWasm } from './wasm.js';

/** Whether `data` is, as a whole, valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
export function isValidUtf8(data: Uint8Array): boolean {
  return data.length === 0 || isUtf8(data);
}

/**
 * Where the last code point of `data[start..]` that is complete ends: data.length, or the offset of
 * a lead byte whose sequence runs past the end (at most 3 bytes back).
 */
function completeEnd(data: Uint8Array, start: number): number {
  const end = data.length;
  for (let i = end - 1; i >= start && i >= end - 3; i--) {
    const c = data[i]!;
    if ((c & 0xc0) !== 0x80) return i + sequenceLength(c) > end ? i : end;
  }
  return end;
}

/** The length of the UTF-8 sequence a lead byte starts (1 for ASCII and for bytes that cannot lead). */
function sequenceLength(lead: number): number {
  return lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
}

/** Checks UTF-8 fed in arbitrary pieces. `write` returns false from the first invalid byte on. */
export class Utf8Validator {
  /** Continuation bytes still expected by the current code point. */
  #need = 0;
  /** The range the next continuation byte must fall in (narrower after E0, ED, F0, F4). */
  #lo = 0x80;
  #hi = 0xbf;
  #failed = false;

  /** Whether everything written so far could begin a valid UTF-8 string. */
  write(data: Uint8Array): boolean {
    if (this.#failed) return false;
    const end = data.length;
    let start = 0;
    // Finish a code point left open by the previous piece.
    while (this.#need !== 0 && start < end) {
      if (!this.#step(data[start]!)) return false;
      start++;
    }
    if (start === end) return true;
    // Hold back a trailing code point that is not complete yet; the native check takes the rest.
    const bulkEnd = completeEnd(data, start);
    if (bulkEnd > start && !isUtf8(data.subarray(start, bulkEnd))) {
      this.#failed = true;
      return false;
    }
    for (let i = bulkEnd; i < end; i++) {
      if (!this.#step(data[i]!)) return false;
    }
    return true;
  }

  /** Whether the text ended on a code point boundary, with nothing invalid before. */
  end(): boolean {
    return !this.#failed && this.#need === 0;
  }

  /** Forgets everything, for the next message. */
  reset(): void {
    this.#need = 0;
    this.#lo = 0x80;
    this.#hi = 0xbf;
    this.#failed = false;
  }

  #step(b: number): boolean {
    if (this.#need === 0) {
      if (b < 0x80) return true;
      if (b >= 0xc2 && b <= 0xdf) this.#begin(1, 0x80, 0xbf);
      else if (b === 0xe0) this.#begin(2, 0xa0, 0xbf); // no overlong 3-byte forms
      else if (b === 0xed) this.#begin(2, 0x80, 0x9f); // no surrogates U+D800-U+DFFF
      else if (b >= 0xe1 && b <= 0xef) this.#begin(2, 0x80, 0xbf);
      else if (b === 0xf0) this.#begin(3, 0x90, 0xbf); // no overlong 4-byte forms
      else if (b >= 0xf1 && b <= 0xf3) this.#begin(3, 0x80, 0xbf);
      else if (b === 0xf4) this.#begin(3, 0x80, 0x8f); // nothing above U+10FFFF
      else return this.#fail();
      return true;
    }
    if (b < this.#lo || b > this.#hi) return this.#fail();
    this.#lo = 0x80;
    this.#hi = 0xbf;
    this.#need--;
    return true;
  }

  #begin(need: number, lo: number, hi: number): void {
    this.#need = need;
    this.#lo = lo;
    this.#hi = hi;
  }

  #fail(): false {
    this.#failed = true;
    return false;
  }
}

// ---------------------------------------------------------------- decoding

/**
 * Text up to this many bytes is decoded by V8 (Buffer#toString): for short strings its call is
 * cheaper than a copy into WebAssembly (measured on x64: 0.25 against 0.45 µs at 32 B).
 */
const SMALL_TEXT_MAX = 256;
/**
 * Text is decoded in pieces of at most this many bytes, joined with `+`. Each piece's string stays
 * below V8's large-object size (about 128 KiB), so it is made in the young generation instead of
 * pages of its own (measured on x64: a 256 KiB ASCII string by toString 354 µs, as 32 KiB pieces 106
 * µs); the result is a V8 rope that flattens itself if the application indexes into it.
 */
const TEXT_PIECE = 32 * 1024;
/** Where the WebAssembly decoder writes UTF-16: behind the TEXT_PIECE bytes of input. */
const UTF16_OFFSET = TEXT_PIECE;

/**
 * The UTF-8 to UTF-16 decoder, in WebAssembly (two 64 KiB pages of memory, exported as "m", and one
 * function d(src, end, dst) that decodes memory[src, end) to UTF-16LE at dst and returns the bytes
 * written). Its input is valid UTF-8, already checked by isUtf8, so it only splits bytes. 16 bytes at
 * a time are widened with SIMD; when one of them is not ASCII, the ASCII bytes before it are kept
 * (the count of trailing zeros of the block's sign bits) and the code points from it on are decoded
 * one at a time, up to the next ASCII byte. Node 20's own decoder (V8's, behind toString and
 * TextDecoder alike) is scalar and about 3 times slower on text that is not all ASCII (16 KiB of
 * the bench's text with accents and a check mark: 38 µs against 12). Keeping the ASCII bytes before
 * a non-ASCII one, where the whole block used to go one code point at a time, made this decoder 1.7
 * times faster on that text and 1.8 times on Cyrillic, with all-ASCII blocks as fast as before
 * (measured on x64). Assembled from the text below with wabt (`wat2wasm --enable-simd`);
 * test/protocol/utf8-decode.test.ts checks that the bytes are that text's.
 *
 * WAT begin
 * (module
 *   (memory (export "m") 2)
 *   (func (export "d") (param $src i32) (param $end i32) (param $dst i32) (result i32)
 *     (local $c i32) (local $v v128) (local $start i32) (local $ascii i32)
 *     (local.set $start (local.get $dst))
 *     (block $done
 *       (loop $top
 *         (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
 *         (if (i32.le_u (i32.add (local.get $src) (i32.const 16)) (local.get $end))
 *           (then
 *             (local.set $v (v128.load align=1 (local.get $src)))
 *             (v128.store align=1 (local.get $dst) (i16x8.extend_low_i8x16_u (local.get $v)))
 *             (v128.store offset=16 align=1 (local.get $dst) (i16x8.extend_high_i8x16_u (local.get $v)))
 *             ;; $ascii: first the block's sign bits, then how many ASCII bytes come before the first set one
 *             (local.set $ascii (i8x16.bitmask (local.get $v)))
 *             (if (i32.eqz (local.get $ascii))
 *               (then
 *                 (local.set $src (i32.add (local.get $src) (i32.const 16)))
 *                 (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
 *                 (br $top)))
 *             (local.set $ascii (i32.ctz (local.get $ascii)))
 *             (local.set $src (i32.add (local.get $src) (local.get $ascii)))
 *             (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $ascii) (i32.const 1))))))
 *         (loop $code_point
 *           (local.set $c (i32.load8_u (local.get $src)))
 *           (if (i32.lt_u (local.get $c) (i32.const 0x80))
 *             (then
 *               (i32.store16 align=1 (local.get $dst) (local.get $c))
 *               (local.set $src (i32.add (local.get $src) (i32.const 1)))
 *               (local.set $dst (i32.add (local.get $dst) (i32.const 2)))
 *               (br $top)))
 *           (if (i32.lt_u (local.get $c) (i32.const 0xe0))
 *             (then
 *               (i32.store16 align=1 (local.get $dst)
 *                 (i32.or (i32.shl (i32.and (local.get $c) (i32.const 0x1f)) (i32.const 6))
 *                         (i32.and (i32.load8_u offset=1 (local.get $src)) (i32.const 0x3f))))
 *               (local.set $src (i32.add (local.get $src) (i32.const 2)))
 *               (local.set $dst (i32.add (local.get $dst) (i32.const 2))))
 *             (else
 *               (if (i32.lt_u (local.get $c) (i32.const 0xf0))
 *                 (then
 *                   (i32.store16 align=1 (local.get $dst)
 *                     (i32.or (i32.or (i32.shl (i32.and (local.get $c) (i32.const 0x0f)) (i32.const 12))
 *                                     (i32.shl (i32.and (i32.load8_u offset=1 (local.get $src)) (i32.const 0x3f)) (i32.const 6)))
 *                             (i32.and (i32.load8_u offset=2 (local.get $src)) (i32.const 0x3f))))
 *                   (local.set $src (i32.add (local.get $src) (i32.const 3)))
 *                   (local.set $dst (i32.add (local.get $dst) (i32.const 2))))
 *                 (else
 *                   (local.set $c (i32.sub
 *                     (i32.or (i32.or (i32.or
 *                       (i32.shl (i32.and (local.get $c) (i32.const 0x07)) (i32.const 18))
 *                       (i32.shl (i32.and (i32.load8_u offset=1 (local.get $src)) (i32.const 0x3f)) (i32.const 12)))
 *                       (i32.shl (i32.and (i32.load8_u offset=2 (local.get $src)) (i32.const 0x3f)) (i32.const 6)))
 *                       (i32.and (i32.load8_u offset=3 (local.get $src)) (i32.const 0x3f)))
 *                     (i32.const 0x10000)))
 *                   (i32.store16 align=1 (local.get $dst) (i32.or (i32.const 0xd800) (i32.shr_u (local.get $c) (i32.const 10))))
 *                   (i32.store16 offset=2 align=1 (local.get $dst) (i32.or (i32.const 0xdc00) (i32.and (local.get $c) (i32.const 0x3ff))))
 *                   (local.set $src (i32.add (local.get $src) (i32.const 4)))
 *                   (local.set $dst (i32.add (local.get $dst) (i32.const 4)))))))
 *           (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
 *           (br_if $code_point (i32.ge_u (i32.load8_u (local.get $src)) (i32.const 0x80)))
 *           (br $top))))
 *     (i32.sub (local.get $dst) (local.get $start))))
 * WAT end
 */
const DECODER_WASM = 'AGFzbQEAAAABCAFgA39/fwF/AwIBAAUDAQACBwkCAW0CAAFkAAAK/wIB/AIDAX8BewJ/IAIhBQJAA0AgACABTw0BIABBEGogAU0EQCAA/QAAACEEIAIgBP2JAf0LAAAgAiAE/YoB/QsAECAE/WQhBiAGRQRAIABBEGohACACQSBqIQIMAgsgBmghBiAAIAZqIQAgAiAGQQF0aiECCwNAIAAtAAAhAyADQYABSQRAIAIgAzsAACAAQQFqIQAgAkECaiECDAILIANB4AFJBEAgAiADQR9xQQZ0IAAtAAFBP3FyOwAAIABBAmohACACQQJqIQIFIANB8AFJBEAgAiADQQ9xQQx0IAAtAAFBP3FBBnRyIAAtAAJBP3FyOwAAIABBA2ohACACQQJqIQIFIANBB3FBEnQgAC0AAUE/cUEMdHIgAC0AAkE/cUEGdHIgAC0AA0E/cXJBgIAEayEDIAJBgLADIANBCnZyOwAAIAJBgLgDIANB/wdxcjsAAiAAQQRqIQAgAkEEaiECCwsgACABTw0CIAAtAABBgAFPDQAMAQsLCyACIAVrCw==';

interface Decoder {
  decode: (src: number, end: number, dst: number) => number;
  memory: Uint8Array;
  memoryBuffer: Buffer;
}

/** The instantiated decoder, null when this engine cannot run it; undefined until first needed. */
let decoder: Decoder | null | undefined;

function loadDecoder(): Decoder | null {
  const exports = instantiateWasm<{ d: Decoder['decode']; m: { buffer: ArrayBuffer } }>(Buffer.from(DECODER_WASM, 'base64'));
  if (exports === null) return null;
  return { decode: exports.d, memory: new Uint8Array(exports.m.buffer), memoryBuffer: Buffer.from(exports.m.buffer) };
}

/** Which implementation decodes text that is not all ASCII: 'wasm-simd', or 'v8' where SIMD is unavailable. */
export function utf8DecoderImplementation(): 'wasm-simd' | 'v8' {
  if (decoder === undefined) decoder = loadDecoder();
  return decoder === null ? 'v8' : 'wasm-simd';
}

/**
 * Decodes `data`, which must be valid UTF-8 (isValidUtf8 or a Utf8Validator said so), to a string:
 * the same string as `data.toString('utf8')`, made faster (see TEXT_PIECE and DECODER_WASM). Invalid
 * input gives an unspecified string, never an exception.
 */
export function decodeUtf8(data: Buffer): string {
  const length = data.length;
  if (length <= SMALL_TEXT_MAX) return data.toString('utf8');
  if (length <= TEXT_PIECE) return decodePiece(data, 0, length);
  let text = '';
  let start = 0;
  while (start < length) {
    let end = start + TEXT_PIECE;
    if (end >= length) end = length;
    else while (end > start && (data[end]! & 0xc0) === 0x80) end--; // a piece ends before a code point, not inside one
    text += decodePiece(data, start, end);
    start = end;
  }
  return text;
}

/**
 * Decodes a message that is valid UTF-8 as a whole but arrived as `pieces` (views of the reads that
 * carried it), without joining them first: each piece is decoded up to its last complete code point,
 * and a code point cut between pieces is decoded from its few bytes. The same string as
 * decodeUtf8(Buffer.concat(pieces)).
 */
export function decodeUtf8Pieces(pieces: readonly Buffer[]): string {
  let text = '';
  let carry: Buffer | null = null; // the start of a code point cut at the end of the previous piece
  for (const piece of pieces) {
    let start = 0;
    if (carry !== null) {
      const need = sequenceLength(carry[0]!) - carry.length;
      if (piece.length < need) {
        carry = Buffer.concat([carry, piece]);
        continue;
      }
      text += Buffer.concat([carry, piece.subarray(0, need)]).toString('utf8');
      carry = null;
      start = need;
    }
    const end = completeEnd(piece, start);
    if (end > start) text += decodeUtf8(start === 0 && end === piece.length ? piece : piece.subarray(start, end));
    if (end < piece.length) carry = piece.subarray(end);
  }
  return text;
}

function decodePiece(data: Buffer, start: number, end: number): string {
  // ASCII stays a one-byte string, decoded by V8's own ASCII path.
  if (isAscii(start === 0 && end === data.length ? data : data.subarray(start, end))) return data.toString('latin1', start, end);
  if (decoder === undefined) decoder = loadDecoder();
  if (decoder === null) return data.toString('utf8', start, end);
  decoder.memory.set(start === 0 && end === data.length ? data : data.subarray(start, end), 0);
  const bytes = decoder.decode(0, end - start, UTF16_OFFSET);
  return decoder.memoryBuffer.toString('utf16le', UTF16_OFFSET, UTF16_OFFSET + bytes);
}

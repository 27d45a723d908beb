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
 * Where the decoder's table is (see DECODER_WASM, whose WAT has it as `i32.const 0x1f000`): the
 * last 4 KiB of its 128 KiB memory, behind the UTF-16 it writes (at most twice TEXT_PIECE, and 32
 * bytes past it).
 */
const TABLE_OFFSET = 0x1f000;

/**
 * The UTF-8 to UTF-16 decoder, in WebAssembly (two 64 KiB pages of memory, exported as "m", and one
 * function d(src, end, dst) that decodes memory[src, end) to UTF-16LE at dst and returns the bytes
 * written). Its input is valid UTF-8, already checked by isUtf8, so it only splits bytes.
 * - ASCII: 16 bytes at a time are widened with SIMD. When one of them is not ASCII, the ASCII bytes
 *   before it are kept (the count of trailing zeros of the block's sign bits).
 * - Code points of 1 to 3 bytes: 8 bytes at a time. The code points that start in the first 8 bytes
 *   of a 16-byte block are gathered into 16-bit lanes by a swizzle whose indices come from a table
 *   (writeDecoderTable), indexed by which of those 8 bytes are continuation bytes; their code units
 *   are then made from the first, second and third bytes of each lane without a branch. This goes
 *   on while the block's last 8 bytes are not all ASCII. It replaced decoding one code point at a
 *   time, whose branches on each byte the processor cannot guess in text that mixes lengths:
 *   measured on x64, 16 KiB of the bench's text with accents and a check mark in 0.58 of the time,
 *   Cyrillic 0.73, Japanese 0.80, ASCII with one accented letter at random places every 2 to 32
 *   bytes 0.6 to 0.9. Text with accents at exactly the same distance all along is the one loser
 *   (1.3 to 1.5 times the time at one every 12 to 32 bytes): the processor learns that pattern.
 * - 4-byte code points, and the last bytes before `end`, one code point at a time. After a 4-byte
 *   code point that is not followed by another, the blocks again (text without ASCII after an emoji
 *   would otherwise go on one code point at a time to its end).
 * Node 20's own decoder (V8's, behind toString and TextDecoder alike) is scalar, and was already
 * about 3 times slower than the one-at-a-time version on text that is not all ASCII (16 KiB of the
 * bench's text: 38 µs against 12). Assembled from the text below with wabt (`wat2wasm
 * --enable-simd`); test/protocol/utf8-decode.test.ts checks that the bytes are that text's.
 *
 * WAT begin
 * (module
 *   (memory (export "m") 2)
 *   (func (export "d") (param $src i32) (param $end i32) (param $dst i32) (result i32)
 *     (local $c i32) (local $v v128) (local $start i32) (local $ascii i32)
 *     (local $key i32) (local $pick v128) (local $first v128) (local $second v128) (local $third v128)
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
 *             (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $ascii) (i32.const 1))))
 *             ;; Eight bytes at a time, while there are code points of 1-3 bytes: the code points that start
 *             ;; in the first 8 bytes of a block (their last bytes may be in the next 2) are picked from
 *             ;; it with the table entry of the block's continuation bytes (at 0x1f000, filled by the host).
 *             (block $scalar
 *               (loop $eight
 *                 (br_if $scalar (i32.gt_u (i32.add (local.get $src) (i32.const 16)) (local.get $end)))
 *                 (local.set $v (v128.load align=1 (local.get $src)))
 *                 (br_if $scalar (i32.and (i8x16.bitmask (i8x16.ge_u (local.get $v) (v128.const i8x16 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0 0xf0))) (i32.const 0xff)))
 *                 (local.set $key (i32.and (i8x16.bitmask (i8x16.lt_s (local.get $v) (v128.const i8x16 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64 -64))) (i32.const 0xff)))
 *                 (local.set $pick (v128.load (i32.add (i32.const 0x1f000) (i32.shl (local.get $key) (i32.const 4)))))
 *                 (local.set $first (i8x16.swizzle (local.get $v) (local.get $pick)))
 *                 (local.set $second (v128.and (i8x16.swizzle (local.get $v) (i8x16.add (local.get $pick) (v128.const i16x8 1 1 1 1 1 1 1 1)))
 *                                              (v128.const i16x8 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f)))
 *                 (local.set $third (v128.and (i8x16.swizzle (local.get $v) (i8x16.add (local.get $pick) (v128.const i16x8 2 2 2 2 2 2 2 2)))
 *                                             (v128.const i16x8 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f 0x3f)))
 *                 ;; $second becomes a two-byte sequence's code unit, (first & 0x1f) << 6 | second & 0x3f; a three-byte
 *                 ;; lead is 1110xxxx, so those bits shifted 6 more in a 16-bit lane, with the third byte's 6, are its own
 *                 (local.set $second (v128.or (i16x8.shl (v128.and (local.get $first) (v128.const i16x8 0x1f 0x1f 0x1f 0x1f 0x1f 0x1f 0x1f 0x1f)) (i32.const 6)) (local.get $second)))
 *                 (v128.store align=1 (local.get $dst)
 *                   (v128.bitselect
 *                     (v128.bitselect
 *                       (v128.or (i16x8.shl (local.get $second) (i32.const 6)) (local.get $third))
 *                       (local.get $second)
 *                       (i16x8.gt_s (local.get $first) (v128.const i16x8 0xdf 0xdf 0xdf 0xdf 0xdf 0xdf 0xdf 0xdf)))
 *                     (local.get $first)
 *                     (i16x8.gt_s (local.get $first) (v128.const i16x8 0x7f 0x7f 0x7f 0x7f 0x7f 0x7f 0x7f 0x7f))))
 *                 (local.set $src (i32.add (local.get $src) (i32.const 8)))
 *                 (local.set $dst (i32.add (local.get $dst) (i32.shl (i32.sub (i32.const 8) (i32.popcnt (local.get $key))) (i32.const 1))))
 *                 ;; on while bytes 8-15 are not all ASCII (byte 8 may be the rest of a code point, skipped below)
 *                 (br_if $eight (i32.shr_u (i8x16.bitmask (local.get $v)) (i32.const 8)))
 *                 (br $top)))
 *             ;; a 4-byte code point, or less than 16 bytes left: one at a time, from the next code point
 *             (block $start
 *               (loop $skip
 *                 (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
 *                 (br_if $start (i32.ne (i32.and (i32.load8_u (local.get $src)) (i32.const 0xc0)) (i32.const 0x80)))
 *                 (local.set $src (i32.add (local.get $src) (i32.const 1)))
 *                 (br $skip)))))
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
 *           ;; on here from a 4-byte code point to the next; from any other, back to the blocks
 *           (br_if $code_point (i32.ge_u (i32.load8_u (local.get $src)) (i32.const 0xf0)))
 *           (br $top))))
 *     (i32.sub (local.get $dst) (local.get $start))))
 * WAT end
 */
const DECODER_WASM = 'AGFzbQEAAAABCAFgA39/fwF/AwIBAAUDAQACBwkCAW0CAAFkAAAK+AUB9QUEAX8BewN/BHsgAiEFAkADQCAAIAFPDQEgAEEQaiABTQRAIAD9AAAAIQQgAiAE/YkB/QsAACACIAT9igH9CwAQIAT9ZCEGIAZFBEAgAEEQaiEAIAJBIGohAgwCCyAGaCEGIAAgBmohACACIAZBAXRqIQICQANAIABBEGogAUsNASAA/QAAACEEIAT9DPDw8PDw8PDw8PDw8PDw8PD9LP1kQf8BcQ0BIAT9DMDAwMDAwMDAwMDAwMDAwMD9Jf1kQf8BcSEHQYDgByAHQQR0av0ABAAhCCAEIAj9DiEJIAQgCP0MAQABAAEAAQABAAEAAQABAP1u/Q79DD8APwA/AD8APwA/AD8APwD9TiEKIAQgCP0MAgACAAIAAgACAAIAAgACAP1u/Q79DD8APwA/AD8APwA/AD8APwD9TiELIAn9DB8AHwAfAB8AHwAfAB8AHwD9TkEG/YsBIAr9UCEKIAIgCkEG/YsBIAv9UCAKIAn9DN8A3wDfAN8A3wDfAN8A3wD9Mf1SIAkgCf0MfwB/AH8AfwB/AH8AfwB/AP0x/VL9CwAAIABBCGohACACQQggB2lrQQF0aiECIAT9ZEEIdg0ADAMLCwJAA0AgACABTw0EIAAtAABBwAFxQYABRw0BIABBAWohAAwACwsLA0AgAC0AACEDIANBgAFJBEAgAiADOwAAIABBAWohACACQQJqIQIMAgsgA0HgAUkEQCACIANBH3FBBnQgAC0AAUE/cXI7AAAgAEECaiEAIAJBAmohAgUgA0HwAUkEQCACIANBD3FBDHQgAC0AAUE/cUEGdHIgAC0AAkE/cXI7AAAgAEEDaiEAIAJBAmohAgUgA0EHcUESdCAALQABQT9xQQx0ciAALQACQT9xQQZ0ciAALQADQT9xckGAgARrIQMgAkGAsAMgA0EKdnI7AAAgAkGAuAMgA0H/B3FyOwACIABBBGohACACQQRqIQILCyAAIAFPDQIgAC0AAEHwAU8NAAwBCwsLIAIgBWsL';

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
  const memory = new Uint8Array(exports.m.buffer);
  writeDecoderTable(memory);
  return { decode: exports.d, memory, memoryBuffer: Buffer.from(exports.m.buffer) };
}

/**
 * Fills the decoder's table at TABLE_OFFSET: 256 entries of 16 bytes, one for each set of
 * continuation bytes among 8 (bit p: byte p is one). Entry lane j (bytes 2j, 2j + 1) holds the
 * offset of the j-th byte that is not a continuation byte, where the j-th code point starts, and
 * 0x80, which a swizzle turns into 0 (the lane's high byte); lanes past the last code point hold
 * 0x80 twice.
 */
function writeDecoderTable(memory: Uint8Array): void {
  memory.fill(0x80, TABLE_OFFSET, TABLE_OFFSET + 256 * 16);
  for (let continuation = 0; continuation < 256; continuation++) {
    let lane = TABLE_OFFSET + continuation * 16;
    for (let p = 0; p < 8; p++) {
      if ((continuation & (1 << p)) === 0) {
        memory[lane] = p;
        lane += 2;
      }
    }
  }
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

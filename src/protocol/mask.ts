// XOR masking of RFC 6455 §5.3, in place. Masking and unmasking are the same operation.
// Large payloads go through a tiny WebAssembly SIMD function (its bytes are below: no addon, no
// build step), 16 bytes per instruction; everything else, and every engine without WebAssembly
// SIMD (or without WebAssembly, as under --jitless), takes the JS loop that works a 32-bit word at
// a time over the aligned middle of the buffer.

import { instantiateWasm } from './wasm.js';

const scratch = new Uint8Array(4);
const scratchWord = new Uint32Array(scratch.buffer);

/**
 * Below this many bytes the unrolled byte loop is faster than setting up a word view (measured on
 * x64: 20 ns against 59 ns at 32 B, even at about 192 B).
 */
const WORD_LOOP_MIN = 192;

/**
 * From this many bytes on, WebAssembly SIMD beats the JS loops even though the bytes are copied
 * into its memory and back (measured on x64: even with the byte loop at 96 B, 1.3 times faster at
 * 128 B, 7 times faster than the word loop at 16 KiB).
 */
const SIMD_MIN = 96;

/**
 * Bytes handled per call into WebAssembly: a piece that stays in the L1/L2 cache between the copy in,
 * the XOR and the copy out (measured at 1 MiB on x64: 16 KiB 22 GB/s, 64 KiB 15 GB/s).
 */
const SIMD_CHUNK = 16 * 1024;

/**
 * The WebAssembly module, by hand. One exported memory of one page ("m", 64 KiB) and one function
 * x(ptr, len, word): XORs memory[ptr, ptr+len) with the 32-bit `word` repeated, 64 bytes per loop
 * turn as four v128 loads, xors and stores; `len` is a positive multiple of 64 (the caller pads:
 * bytes past the payload are scratch).
 *
 *   (func (param $p i32) (param $len i32) (param $word i32) (local $end i32) (local $m v128)
 *     (local.set $m (i32x4.splat (local.get $word)))
 *     (local.set $end (i32.add (local.get $p) (local.get $len)))
 *     (loop
 *       (v128.store offset=0 (local.get $p) (v128.xor (v128.load offset=0 (local.get $p)) (local.get $m)))
 *       ... the same at offsets 16, 32, 48 ...
 *       (br_if 0 (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 64))) (local.get $end)))))
 */
function xorBlock(offset: number): number[] {
  return [
    0x20, 0x00, // local.get $p (store address)
    0x20, 0x00, // local.get $p
    0xfd, 0x00, 0x00, offset, // v128.load align=1 offset
    0x20, 0x04, // local.get $m
    0xfd, 0x51, // v128.xor
    0xfd, 0x0b, 0x00, offset, // v128.store align=1 offset
  ];
}
const FUNCTION_BODY = [
  0x02, 0x01, 0x7f, 0x01, 0x7b, // locals: 1 x i32 ($end), 1 x v128 ($m)
  0x20, 0x02, 0xfd, 0x11, 0x21, 0x04, // $m = i32x4.splat($word)
  0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x03, // $end = $p + $len
  0x03, 0x40, // loop (no result)
  ...xorBlock(0),
  ...xorBlock(16),
  ...xorBlock(32),
  ...xorBlock(48),
  0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x22, 0x00, // $p = $p + 64 (i32.const 64 is signed LEB128: c0 00), keep it
  0x20, 0x03, 0x49, 0x0d, 0x00, // br_if 0 ($p < $end, unsigned)
  0x0b, // end loop
  0x0b, // end function
];
function section(id: number, content: number[]): number[] {
  return [id, content.length, ...content]; // every section here is under 128 bytes: one LEB128 byte
}
const WASM_BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00]), // type: (i32, i32, i32) -> ()
  ...section(3, [0x01, 0x00]), // function 0 has type 0
  ...section(5, [0x01, 0x00, 0x01]), // one memory, at least 1 page, no maximum
  ...section(7, [0x02, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x78, 0x00, 0x00]), // exports "m" (memory 0), "x" (function 0)
  ...section(10, [0x01, FUNCTION_BODY.length, ...FUNCTION_BODY]),
]);

interface Simd {
  xor: (pointer: number, length: number, word: number) => void;
  memory: Uint8Array;
  /** The first SIMD_CHUNK bytes of memory, the view a whole chunk is copied back from. */
  chunk: Uint8Array;
}

/** The instantiated module, null when this engine cannot run it; undefined until first needed. */
let simd: Simd | null | undefined;

function loadSimd(): Simd | null {
  const exports = instantiateWasm<{ x: Simd['xor']; m: { buffer: ArrayBuffer } }>(WASM_BYTES);
  if (exports === null) return null;
  const memory = new Uint8Array(exports.m.buffer);
  return { xor: exports.x, memory, chunk: memory.subarray(0, SIMD_CHUNK) };
}

/** Which implementation masks large payloads here: 'wasm-simd', or 'js' where SIMD is unavailable. */
export function maskImplementation(): 'wasm-simd' | 'js' {
  if (simd === undefined) simd = loadSimd();
  return simd === null ? 'js' : 'wasm-simd';
}

/**
 * XORs `data` in place with the 4-byte `mask`, starting at byte `phase` (0-3) of the mask, so a
 * payload that arrives in pieces can be unmasked piece by piece. Returns the phase for the next
 * piece.
 */
export function applyMask(data: Uint8Array, mask: Uint8Array, phase = 0): number {
  const length = data.length;
  if (length >= SIMD_MIN) {
    if (simd === undefined) simd = loadSimd();
    if (simd !== null) return maskSimd(simd, data, data, 0, mask, phase);
  }
  return maskJs(data, mask, phase);
}

/**
 * applyMask through WebAssembly SIMD whatever the length (for tests and benchmarks); throws where
 * WebAssembly SIMD is unavailable.
 */
export function applyMaskSimd(data: Uint8Array, mask: Uint8Array, phase = 0): number {
  if (simd === undefined) simd = loadSimd();
  if (simd === null) throw new Error('WebAssembly SIMD is not available here');
  return maskSimd(simd, data, data, 0, mask, phase);
}

/**
 * Unmasks `source` into `target` from `offset` (RFC 6455 §5.3), leaving `source` as it was: one copy
 * that also unmasks, where unmasking in place and then joining the pieces of a message would pass
 * over its bytes once more. `phase` is the mask byte `source` starts at (its offset in the frame,
 * modulo 4). Returns the phase after it. Throws RangeError if `target` has no room for `source`.
 */
export function maskInto(target: Uint8Array, offset: number, source: Uint8Array, mask: Uint8Array, phase = 0): number {
  const length = source.length;
  if (offset + length > target.length) throw new RangeError(`maskInto: ${length} bytes do not fit at ${offset} of ${target.length}`);
  if (length >= SIMD_MIN) {
    if (simd === undefined) simd = loadSimd();
    if (simd !== null) return maskSimd(simd, source, target, offset, mask, phase);
  }
  target.set(source, offset);
  return maskJs(target.subarray(offset, offset + length), mask, phase);
}

/**
 * Copies each SIMD_CHUNK piece of `source` into the WebAssembly memory, XORs it there 16 bytes at a
 * time, and copies it out to `target` from `offset` (the same place, for unmasking in place).
 */
function maskSimd(wasm: Simd, source: Uint8Array, target: Uint8Array, offset: number, mask: Uint8Array, phase: number): number {
  const length = source.length;
  const memory = wasm.memory;
  // Chunks are multiples of 4 bytes long, so every chunk starts at the same mask phase. WebAssembly
  // memory is little-endian: the first mask byte is the lowest byte of the word.
  const word =
    (mask[phase & 3]! | (mask[(phase + 1) & 3]! << 8) | (mask[(phase + 2) & 3]! << 16) | (mask[(phase + 3) & 3]! << 24)) | 0;
  for (let from = 0; from < length; from += SIMD_CHUNK) {
    const end = from + SIMD_CHUNK < length ? from + SIMD_CHUNK : length;
    memory.set(from === 0 && end === length ? source : source.subarray(from, end), 0);
    wasm.xor(0, (end - from + 63) & ~63, word);
    target.set(end - from === SIMD_CHUNK ? wasm.chunk : memory.subarray(0, end - from), offset + from);
  }
  return (phase + length) & 3;
}

/** The JS loop: bytes up to a 4-byte boundary of memory, then 32-bit words, then the last bytes. */
export function maskJs(data: Uint8Array, mask: Uint8Array, phase = 0): number {
  const length = data.length;
  const m0 = mask[phase & 3]!;
  const m1 = mask[(phase + 1) & 3]!;
  const m2 = mask[(phase + 2) & 3]!;
  const m3 = mask[(phase + 3) & 3]!;
  if (length < WORD_LOOP_MIN) {
    let i = 0;
    for (; i + 4 <= length; i += 4) {
      data[i] ^= m0;
      data[i + 1] ^= m1;
      data[i + 2] ^= m2;
      data[i + 3] ^= m3;
    }
    if (i < length) data[i] ^= m0;
    if (i + 1 < length) data[i + 1] ^= m1;
    if (i + 2 < length) data[i + 2] ^= m2;
    return (phase + length) & 3;
  }

  // Bytes until the memory address is a multiple of 4, so a Uint32Array can view the rest.
  const head = (4 - (data.byteOffset & 3)) & 3;
  for (let i = 0; i < head; i++) data[i] ^= mask[(phase + i) & 3]!;
  const wordPhase = (phase + head) & 3;
  scratch[0] = mask[wordPhase]!;
  scratch[1] = mask[(wordPhase + 1) & 3]!;
  scratch[2] = mask[(wordPhase + 2) & 3]!;
  scratch[3] = mask[(wordPhase + 3) & 3]!;
  const word = scratchWord[0]!; // the mask bytes in memory order, whatever the platform's endianness
  const words = (length - head) >>> 2;
  const view = new Uint32Array(data.buffer, data.byteOffset + head, words);
  for (let i = 0; i < words; i++) view[i] ^= word;
  for (let i = head + words * 4; i < length; i++) data[i] ^= mask[(phase + i) & 3]!;
  return (phase + length) & 3;
}

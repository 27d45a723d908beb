// XOR masking of RFC 6455 §5.3, in place. Masking and unmasking are the same operation.
// Works a 32-bit word at a time over the aligned middle of the buffer; the unaligned edges and
// short payloads go a byte at a time.

const scratch = new Uint8Array(4);
const scratchWord = new Uint32Array(scratch.buffer);

/** Below this many bytes the byte loop is faster than setting up word views. */
const WORD_LOOP_MIN = 32;

/**
 * XORs `data` in place with the 4-byte `mask`, starting at byte `phase` (0-3) of the mask, so a
 * payload that arrives in pieces can be unmasked piece by piece. Returns the phase for the next
 * piece.
 */
export function applyMask(data: Uint8Array, mask: Uint8Array, phase = 0): number {
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

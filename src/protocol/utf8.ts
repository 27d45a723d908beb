// UTF-8 validation (RFC 3629), as RFC 6455 §8.1 requires of text messages and close reasons.
// Incremental: a text message arriving in fragments, and each fragment in pieces, is checked piece
// by piece and fails at the first piece that cannot be the start of valid UTF-8 ("fail fast"),
// not when the message ends. The bulk of each piece goes through Node's native `isUtf8`; only the
// up to three bytes of a code point split across pieces go through the byte state machine below.

import { isUtf8 } from 'node:buffer';

/** Whether `data` is, as a whole, valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
export function isValidUtf8(data: Uint8Array): boolean {
  return data.length === 0 || isUtf8(data);
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
    let bulkEnd = end;
    for (let i = end - 1; i >= start && i >= end - 3; i--) {
      const c = data[i]!;
      if ((c & 0xc0) !== 0x80) {
        const len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (i + len > end) bulkEnd = i;
        break;
      }
    }
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

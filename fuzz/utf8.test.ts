// Properties of the incremental UTF-8 check (RFC 3629, as RFC 6455 §8.1 requires): fed arbitrary
// bytes split at arbitrary points, Utf8Validator agrees with new TextDecoder('utf-8', { fatal: true })
// on the whole, and fails at the very piece where a streaming TextDecoder first fails (fail fast).
// A Connection fails a fragmented text message with 1007 at that same fragment.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CloseCode, Opcode } from '../src/protocol/constants.js';
import { Connection } from '../src/protocol/connection.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { Utf8Validator, decodeUtf8, decodeUtf8Pieces, isValidUtf8 } from '../src/protocol/utf8.js';
import { cutsArb, params, splitAt } from './config.js';

/** Bytes where UTF-8 has its edges: ASCII ends, continuation ends, every lead byte class, never-valid bytes. */
const EDGE_BYTES = [
  0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0,
  0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xfe, 0xff,
];

/** Valid UTF-8 of any code point, as bytes (multi-byte sequences are common). */
const codePointBytes = fc
  .oneof(
    fc.integer({ min: 0, max: 0x7f }),
    fc.integer({ min: 0x80, max: 0x7ff }),
    fc.integer({ min: 0x800, max: 0xffff }).filter((c) => c < 0xd800 || c > 0xdfff),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  )
  .map((c) => Buffer.from(String.fromCodePoint(c)));

/** Almost-valid sequences: a lead byte with continuations drawn around the edges of what it allows. */
const nearMissBytes = fc
  .tuple(fc.constantFrom(0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5), fc.array(fc.constantFrom(0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0), { maxLength: 3 }))
  .map(([lead, rest]) => Buffer.from([lead, ...rest]));

/** Byte strings biased to multi-byte and invalid sequences, not just noise. */
const bytesArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc.array(fc.constantFrom(...EDGE_BYTES), { maxLength: 24 }).map((b) => Buffer.from(b)),
  fc.array(fc.oneof(codePointBytes, nearMissBytes, fc.constantFrom(...EDGE_BYTES).map((b) => Buffer.of(b))), { maxLength: 12 }).map((parts) =>
    Buffer.concat(parts),
  ),
  // Valid text with one byte changed, dropped or cut off at the end.
  fc
    .tuple(fc.array(codePointBytes, { minLength: 1, maxLength: 10 }), fc.nat(), fc.constantFrom(...EDGE_BYTES), fc.constantFrom('set', 'drop', 'cut'))
    .map(([parts, at, value, how]) => {
      const bytes = Buffer.concat(parts);
      const i = at % bytes.length;
      if (how === 'set') bytes[i] = value;
      if (how === 'drop') return Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
      if (how === 'cut') return bytes.subarray(0, i);
      return bytes;
    }),
  // Long runs, so that the native bulk check and the held-back tail both take part.
  fc.tuple(fc.array(codePointBytes, { maxLength: 200 }), fc.option(nearMissBytes, { nil: undefined })).map(([parts, bad]) =>
    Buffer.concat(bad ? [...parts, bad, ...parts] : parts),
  ),
);

function decodes(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The index of the first piece at which a streaming, fatal TextDecoder throws, or -1. */
function firstFailingPiece(pieces: readonly Uint8Array[]): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < pieces.length; i++) {
    try {
      decoder.decode(pieces[i], { stream: true });
    } catch {
      return i;
    }
  }
  return -1;
}

describe('property: UTF-8', () => {
  test('Utf8Validator fed bytes in arbitrary pieces agrees with a fatal TextDecoder on the whole', () => {
    fc.assert(
      fc.property(bytesArb, cutsArb, (bytes, cuts) => {
        const v = new Utf8Validator();
        let ok = true;
        for (const piece of splitAt(bytes, cuts)) ok = v.write(piece) && ok;
        assert.equal(ok && v.end(), decodes(bytes));
        assert.equal(isValidUtf8(bytes), decodes(bytes));
      }),
      params(2),
    );
  });

  test('decodeUtf8 gives the string toString gives, for valid UTF-8 of any length, however it falls on 16-byte blocks and 32 KiB pieces', () => {
    // Runs of one code point's bytes, repeated so that some inputs cross the 32 KiB piece boundary;
    // or code points of mixed lengths one after another, long enough (over 256 bytes, mostly) not to
    // be left to V8, as the decoder takes them 8 bytes at a time.
    const runsArb = fc
      .array(fc.tuple(codePointBytes, fc.integer({ min: 1, max: 24 })), { minLength: 1, maxLength: 12 })
      .chain((runs) => fc.tuple(fc.constant(runs), fc.constantFrom(1, 1, 1, 20, 200)))
      .map(([runs, times]) => Buffer.concat(runs.flatMap(([bytes, n]) => Array.from({ length: n * times }, () => bytes))));
    const upTo3Bytes = codePointBytes.filter((bytes) => bytes.length < 4);
    const mixedArb = fc
      .boolean() // with 4-byte code points, or none
      .chain((all) => fc.array(all ? codePointBytes : upTo3Bytes, { minLength: 100, maxLength: 600 }))
      .map((parts) => Buffer.concat(parts));
    const validArb = fc.oneof(runsArb, mixedArb);
    fc.assert(
      fc.property(validArb, fc.nat(16), (bytes, offset) => {
        // At an arbitrary offset of a larger buffer, as a message's view of a socket read is.
        const whole = Buffer.alloc(bytes.length + offset + 3, 0x21);
        bytes.copy(whole, offset);
        assert.equal(decodeUtf8(whole.subarray(offset, offset + bytes.length)), bytes.toString('utf8'));
      }),
      params(0.25),
    );
  });

  test('decodeUtf8Pieces gives the string toString gives for valid UTF-8 cut anywhere, inside code points too', () => {
    const validArb = fc.array(codePointBytes, { minLength: 1, maxLength: 60 }).map((parts) => Buffer.concat(parts));
    fc.assert(
      fc.property(validArb, cutsArb, (bytes, cuts) => {
        assert.equal(decodeUtf8Pieces(splitAt(bytes, cuts)), bytes.toString('utf8'));
      }),
      params(0.25),
    );
  });

  test('fail fast: Utf8Validator fails at the same piece as a streaming TextDecoder, and stays failed', () => {
    fc.assert(
      fc.property(bytesArb, cutsArb, (bytes, cuts) => {
        const pieces = splitAt(bytes, cuts);
        const v = new Utf8Validator();
        let first = -1;
        pieces.forEach((piece, i) => {
          const ok = v.write(piece);
          if (!ok && first === -1) first = i;
          if (first !== -1) assert.equal(ok, false, 'a failed validator stays failed');
        });
        assert.equal(first, firstFailingPiece(pieces));
      }),
      params(2),
    );
  });

  test('a fragmented text message fails with 1007 at the fragment where its bytes first go wrong', () => {
    const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
    fc.assert(
      fc.property(bytesArb, cutsArb, (bytes, cuts) => {
        const pieces = splitAt(bytes, cuts);
        const conn = new Connection();
        const expectedFail = firstFailingPiece(pieces);
        for (let i = 0; i < pieces.length; i++) {
          const opcode = i === 0 ? Opcode.Text : Opcode.Continuation;
          conn.receiveData(Buffer.concat(encodeFrame(opcode, pieces[i]!, { fin: i === pieces.length - 1, mask })));
          const events = conn.takeEvents();
          if (i === expectedFail) {
            assert.equal(events.length, 1);
            const [event] = events;
            assert.ok(event?.type === 'error');
            assert.equal(event.error.closeCode, CloseCode.InvalidPayload);
            assert.equal(event.error.code, 'WS_ERR_INVALID_UTF8');
            return;
          }
          if (i < pieces.length - 1) assert.deepEqual(events, [], `fragment ${i} is not the end`);
          else if (decodes(bytes)) assert.deepEqual(events, [{ type: 'text', data: bytes.toString('utf8') }]);
          else {
            // Valid so far, but the message ended inside a code point.
            assert.equal(events.length, 1);
            assert.ok(events[0]?.type === 'error' && events[0].error.closeCode === CloseCode.InvalidPayload);
          }
        }
      }),
      params(),
    );
  });
});

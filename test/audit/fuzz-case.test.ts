// The fuzzer's cases without a network: generated plans become fixed bytes, frames survive the trip
// through hex (the replay file's form), compressed messages inflate back, and a replay file that is
// not one is refused with a message that says why.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { Opcode } from '../../src/protocol/constants.js';
import { encodeFrameSpec } from '../../src/audit/wire.js';
import { frameFromHex, framesToHex, parseReplay, replayFile, REPLAY_FORMAT } from '../../src/audit/fuzz/case.js';
import { casePlanArbitrary, compressMessage, toCase } from '../../src/audit/fuzz/generate.js';

describe('fuzz cases', () => {
  test('every generated case has fixed bytes, and each frame comes back whole from its hex', () => {
    fc.assert(
      fc.property(casePlanArbitrary(fc, { compression: true }), (plan) => {
        const fuzzCase = toCase(plan);
        const hex = framesToHex(fuzzCase.frames);
        assert.deepEqual(framesToHex(toCase(plan).frames), hex, 'the same plan gives the same bytes');
        assert.deepEqual(hex.map((h) => encodeFrameSpec(frameFromHex(h)).bytes.toString('hex')), hex);
        const length = hex.reduce((sum, h) => sum + h.length / 2, 0);
        assert.ok(fuzzCase.splitAt.every((cut, i) => cut > 0 && cut < length && (i === 0 || cut > fuzzCase.splitAt[i - 1]!)));
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  test('frameFromHex reads the header bits, a lying 64-bit length and the unmasked payload', () => {
    assert.deepEqual(frameFromHex('82ff000000000001000000000000'), {
      opcode: Opcode.Binary, fin: true, rsv: 0, mask: Buffer.alloc(4), payload: Buffer.alloc(0), length: 0x10000, lengthForm: 64,
    });
    // RFC 6455 §5.7: a masked "Hello".
    assert.deepEqual(frameFromHex('818537fa213d7f9f4d5158'), {
      opcode: Opcode.Text, fin: true, rsv: 0, mask: Buffer.from('37fa213d', 'hex'), payload: Buffer.from('Hello'), length: 5, lengthForm: 7,
    });
    assert.equal(frameFromHex('4900').rsv, 0x40);
    assert.equal(frameFromHex('0900').fin, false);
    assert.throws(() => frameFromHex('zz'), { name: 'RangeError', message: 'not a frame in hex: "zz"' });
    assert.throws(() => frameFromHex('81'), { name: 'RangeError', message: 'a frame takes at least 2 bytes: "81"' });
    assert.throws(() => frameFromHex('81fe00'), { name: 'RangeError', message: 'frame header cut short: "81fe00"' });
  });

  test('a compressed message is raw DEFLATE without its final 00 00 ff ff (RFC 7692 §7.2.1)', () => {
    const text = Buffer.from('Hello, Hello, Hello');
    const compressed = compressMessage(text);
    assert.notEqual(compressed.subarray(-4).toString('hex'), '0000ffff');
    assert.deepEqual(inflateRawSync(Buffer.concat([compressed, Buffer.from('0000ffff', 'hex')]), { finishFlush: constants.Z_SYNC_FLUSH }), text);
  });

  test('a replay file round-trips, and what is not one is refused with the reason', () => {
    const fuzzCase = { frames: [frameFromHex('098000000000')], splitAt: [1], delay: 0, extensions: 'permessage-deflate' };
    const finding = { kind: 'hang' as const, frames: ['098000000000'], expected: 'e', observed: 'o' };
    const file = replayFile('ws://127.0.0.1:9001/', 2, true, fuzzCase, finding);
    assert.equal(file.format, REPLAY_FORMAT);
    const loaded = parseReplay(JSON.stringify(file));
    assert.deepEqual(loaded, { fuzzCase, url: 'ws://127.0.0.1:9001/', seed: 2, echo: true, finding });
    assert.throws(() => parseReplay('{'), /^Error: the replay file is not JSON/);
    assert.throws(() => parseReplay('{"url":"ws://x/"}'), { message: `not a replay file: expected "format": "${REPLAY_FORMAT}" (pef-ws fuzz saves one for each finding)` });
    assert.throws(() => parseReplay(JSON.stringify({ ...file, finding: { ...finding, kind: 'oops' } })), { message: 'the replay file\'s "finding" is not valid' });
    assert.throws(() => parseReplay(JSON.stringify({ ...file, splitAt: [-1] })), { message: 'the replay file\'s "splitAt" is not a list of offsets' });
    assert.throws(() => parseReplay(JSON.stringify({ ...file, frames: [1] })), { message: 'the replay file\'s "frames" is not a list of hex strings' });
  });
});

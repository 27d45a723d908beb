// Regression tests for the model's reading of a stream that ends inside a frame (found by the
// fuzzer): a server can judge a frame on its header alone, before its payload arrives, so the
// model must too; and a length of 2^53 or more, which no payload can ever fill, is never echoed.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { expect } from '../../src/audit/model.js';

describe('expect: a frame cut short at the end of the stream', () => {
  test('a Ping announcing 65536 bytes fails with 1002 on its header, without waiting for the payload', () => {
    const e = expect([{ opcode: Opcode.Ping, payload: 'ab', length: 0x10000, lengthForm: 64 }]);
    assert.deepEqual(e.ending, { kind: 'fail', codes: [CloseCode.ProtocolError], reason: 'control frame with 65536 bytes of payload (§5.5: at most 125)', frame: 0 });
    assert.deepEqual(e.replies, []);
  });

  test('a header cut inside its extended length still shows a reserved opcode', () => {
    // A Ping whose length lies short by 2: the two bytes after it start a masked frame 0e fe (opcode 14, its 16-bit length cut off).
    const e = expect([{ opcode: Opcode.Ping, payload: Buffer.from([0x0e, 0xfe]), length: 0, mask: Buffer.alloc(4) }]);
    assert.deepEqual(e.replies.map((r) => r.kind), ['pong']);
    assert.equal(e.ending.kind === 'fail' && e.ending.reason, 'reserved control opcode 0xe (§5.2)');
  });

  test('invalid UTF-8 in the part of a text frame that came fails fast with 1007', () => {
    const e = expect([{ opcode: Opcode.Text, payload: Buffer.from([0x41, 0xff]), length: 100, mask: Buffer.alloc(4) }]);
    assert.deepEqual(e.ending.kind === 'fail' && e.ending.codes, [CloseCode.InvalidPayload]);
    assert.equal(e.ending.kind === 'fail' && e.ending.failFast, 2 + 4 + 1);
  });

  test('a valid partial text frame leaves the connection open, and a 2^60 length is never echoed', () => {
    assert.deepEqual(expect([{ opcode: Opcode.Text, payload: 'ok', length: 100 }]).ending, { kind: 'open' });
    const huge = expect([{ opcode: Opcode.Binary, payload: 'ab', length: 2 ** 60, lengthForm: 64 }]);
    assert.deepEqual(huge.ending, { kind: 'open' });
    assert.deepEqual(huge.replies, []);
  });
});

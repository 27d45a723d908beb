// The RFC 6455 model of src/audit/model.ts: what a server must do for a sequence of client frames
// (expect) and how a wire log is held against it (judge). Pure: wire logs are written out by hand.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { encodeClosePayload } from '../../src/protocol/frame.js';
import { expect, judge, worse, describeExpectation, type Expectation } from '../../src/audit/model.js';
import type { FrameSpec, WireEvent, WireFrame } from '../../src/audit/wire.js';

const closeSpec = (code?: number, reason = ''): FrameSpec => ({ opcode: Opcode.Close, payload: encodeClosePayload(code, reason) });

function serverFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true, rsv = 0, masked = false): WireFrame {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return { fin, rsv, opcode, masked, length: bytes.length, payload: bytes, headerLength: 2, problems: [] };
}
const received = (at: number, frame: WireFrame): WireEvent => ({ at, direction: 'received', type: 'frame', frame });
const sentClose = (at: number, code: number): WireEvent => ({ at, direction: 'sent', type: 'frame', frame: serverFrame(Opcode.Close, encodeClosePayload(code), true, 0, true) });
const fin = (at: number): WireEvent => ({ at, direction: 'received', type: 'fin' });

describe('expect: what RFC 6455 requires of a server', () => {
  test('a text and a binary message are echoed, then the Close code is echoed', () => {
    const e = expect([{ opcode: Opcode.Text, payload: 'Hello' }, { opcode: Opcode.Binary, payload: Buffer.from([1, 2]) }, closeSpec(1000)]);
    assert.deepEqual(e.replies.map((r) => [r.kind, r.payload.toString('hex')]), [['text', Buffer.from('Hello').toString('hex')], ['binary', '0102']]);
    assert.deepEqual(e.ending, { kind: 'close', code: 1000, frame: 2 });
  });

  test('a Ping between fragments gets its Pong before the echo of the message', () => {
    const e = expect([
      { opcode: Opcode.Text, payload: 'frag', fin: false },
      { opcode: Opcode.Ping, payload: 'ping!' },
      { opcode: Opcode.Continuation, payload: 'ment' },
    ]);
    assert.deepEqual(e.replies.map((r) => `${r.kind}:${r.payload}`), ['pong:ping!', 'text:fragment']);
    assert.deepEqual(e.ending, { kind: 'open' });
  });

  test('an unmasked client frame must fail the connection with 1002 (§5.1)', () => {
    const e = expect([{ opcode: Opcode.Text, payload: 'x', mask: null }]);
    assert.equal(e.ending.kind, 'fail');
    assert.deepEqual(e.ending.kind === 'fail' && e.ending.codes, [CloseCode.ProtocolError]);
    assert.match(describeExpectation(e), /unmasked client frame \(§5\.1\)/);
  });

  test('invalid UTF-8 in the first fragment must fail fast at the byte that proves it', () => {
    // 0xce 0xba is κ; 0xe1 0xbd is the start of a 3-byte sequence; 0xed 0xa0 is a surrogate: invalid at 0xa0.
    const first = Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80]);
    const e = expect([{ opcode: Opcode.Text, payload: first, fin: false }, { opcode: Opcode.Continuation, payload: 'rest' }]);
    assert.equal(e.ending.kind, 'fail');
    if (e.ending.kind !== 'fail') return;
    assert.deepEqual(e.ending.codes, [CloseCode.InvalidPayload]);
    assert.equal(e.ending.frame, 0);
    // header 2 + mask 4, then bytes 0..3 of the payload: 0xa0 is at payload index 3.
    assert.equal(e.ending.failFast, 6 + 3);
  });

  test('a text message ending inside a code point fails only at its end (no fail-fast point)', () => {
    const e = expect([{ opcode: Opcode.Text, payload: Buffer.from([0x41, 0xe2, 0x82]) }]);
    assert.equal(e.ending.kind === 'fail' && e.ending.failFast, undefined);
    assert.match(e.ending.kind === 'fail' ? e.ending.reason : '', /ends inside a UTF-8 sequence/);
  });

  test('reserved opcodes, RSV bits, long and fragmented control frames fail with 1002', () => {
    for (const spec of [
      { opcode: 3 },
      { opcode: 0xb },
      { opcode: Opcode.Text, payload: 'x', rsv: 0x20 },
      { opcode: Opcode.Ping, payload: Buffer.alloc(126) },
      { opcode: Opcode.Ping, fin: false },
      { opcode: Opcode.Continuation, payload: 'x' },
    ] satisfies FrameSpec[]) {
      const e = expect([spec]);
      assert.deepEqual(e.ending.kind === 'fail' ? e.ending.codes : e.ending, [CloseCode.ProtocolError], JSON.stringify(spec));
    }
  });

  test('Close payloads: 1 byte, code 1005 and 999 fail with 1002; an invalid reason with 1002 or 1007', () => {
    assert.deepEqual(expect([{ opcode: Opcode.Close, payload: Buffer.from([3]) }]).ending.kind, 'fail');
    const e1005 = expect([{ opcode: Opcode.Close, payload: Buffer.from([0x03, 0xed]) }]);
    assert.match(e1005.ending.kind === 'fail' ? e1005.ending.reason : '', /close code 1005/);
    const bad = expect([{ opcode: Opcode.Close, payload: Buffer.from([0x03, 0xe8, 0xff]) }]);
    assert.deepEqual(bad.ending.kind === 'fail' && bad.ending.codes, [1002, 1007]);
    assert.deepEqual(expect([{ opcode: Opcode.Close }]).ending, { kind: 'close', code: null, frame: 0 });
  });

  test('frames after the Close are never answered', () => {
    const e = expect([closeSpec(1000), { opcode: Opcode.Text, payload: 'late' }]);
    assert.deepEqual(e.replies, []);
    assert.equal(e.ending.kind, 'close');
  });

  test('a 64-bit length with its top bit set fails; a non-minimal length form is modelled as read', () => {
    const e = expect([{ opcode: Opcode.Binary, payload: 'abc', length: 2 ** 63, lengthForm: 64 }]);
    assert.equal(e.ending.kind, 'fail');
    const lax = expect([{ opcode: Opcode.Text, payload: 'abc', lengthForm: 64 }]);
    assert.deepEqual(lax.replies.map((r) => r.payload.toString()), ['abc']);
  });

  test('without --echo only Pongs are owed', () => {
    const e = expect([{ opcode: Opcode.Text, payload: 'a' }, { opcode: Opcode.Ping, payload: 'p' }], { echo: false });
    assert.deepEqual(e.replies.map((r) => r.kind), ['pong']);
  });

  test('worse orders verdicts FAILED > NON-STRICT > INFORMATIONAL > UNIMPLEMENTED > OK', () => {
    assert.equal(worse('OK', 'NON-STRICT'), 'NON-STRICT');
    assert.equal(worse('FAILED', 'INFORMATIONAL'), 'FAILED');
    assert.equal(worse('UNIMPLEMENTED', 'INFORMATIONAL'), 'INFORMATIONAL');
  });
});

describe('judge: a wire log held against the expectation', () => {
  const echoThenClose: Expectation = expect([{ opcode: Opcode.Text, payload: 'Hello' }, closeSpec(1000)]);
  const options = { closeDeadline: 1000 };

  test('the echo, the echoed Close and the server closing TCP first is OK', () => {
    const j = judge(echoThenClose, [received(1, serverFrame(Opcode.Text, 'Hello')), sentClose(2, 1000), received(3, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(4)], options);
    assert.equal(j.verdict, 'OK');
    assert.deepEqual({ ...j.close, detail: '' }, { verdict: 'OK', code: 1000, reason: '', closeFrame: true, serverClosedTcpFirst: true, tcpClosedInTime: true, detail: '' });
  });

  test('1005 on the wire is FAILED, in the close field', () => {
    const j = judge(expect([{ opcode: Opcode.Close }]), [sentClose(1, 1000), received(2, serverFrame(Opcode.Close, Buffer.from([0x03, 0xed]))), fin(3)], options);
    assert.equal(j.verdict, 'FAILED');
    assert.equal(j.close.verdict, 'FAILED');
    assert.equal(j.close.code, 1005);
    assert.match(j.close.detail, /put close code 1005 on the wire \(§7\.4\.1/);
  });

  test('a missing Pong is FAILED and named', () => {
    const j = judge(expect([{ opcode: Opcode.Ping, payload: 'hi' }, closeSpec(1000)]), [sentClose(1, 1000), received(2, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(3)], options);
    assert.equal(j.verdict, 'FAILED');
    assert.match(j.reason, /never sent pong 2 B "hi" \(§5\.5\.2/);
  });

  test('TCP left open after the closing handshake is FAILED; closed only after ours is NON-STRICT', () => {
    const open = judge(echoThenClose, [received(1, serverFrame(Opcode.Text, 'Hello')), sentClose(2, 1000), received(3, serverFrame(Opcode.Close, encodeClosePayload(1000))), { at: 2000, direction: 'sent', type: 'destroy' }], options);
    assert.equal(open.close.verdict, 'FAILED');
    assert.match(open.close.detail, /left TCP open more than 1000 ms/);
    const late = judge(echoThenClose, [received(1, serverFrame(Opcode.Text, 'Hello')), sentClose(2, 1000), received(3, serverFrame(Opcode.Close, encodeClosePayload(1000))), { at: 1003, direction: 'sent', type: 'fin' }, fin(1004)], options);
    assert.equal(late.verdict, 'NON-STRICT');
    assert.equal(late.close.serverClosedTcpFirst, false);
  });

  test('an echo of invalid UTF-8 where the connection must fail is FAILED', () => {
    const bad = Buffer.from([0x41, 0xff]);
    const j = judge(expect([{ opcode: Opcode.Text, payload: bad }, closeSpec(1000)]), [received(1, serverFrame(Opcode.Text, bad)), received(2, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(3)], options);
    assert.equal(j.verdict, 'FAILED');
    assert.match(j.reason, /sent a text message that is not UTF-8/);
  });

  test('failing only after the pause at the invalid byte is NON-STRICT (not fail-fast)', () => {
    const e = expect([{ opcode: Opcode.Text, payload: Buffer.from([0xff]), fin: false }, { opcode: Opcode.Continuation, payload: 'x' }]);
    const log: WireEvent[] = [
      { at: 1, direction: 'sent', type: 'pause', until: 500, reason: 'fail-fast' },
      received(501, serverFrame(Opcode.Close, encodeClosePayload(1007))),
      sentClose(502, 1007),
      fin(503),
    ];
    const j = judge(e, log, options);
    assert.equal(j.verdict, 'NON-STRICT');
    assert.match(j.reason, /fail fast, §8\.1/);
    assert.equal(j.close.verdict, 'OK');
    const fast = judge(e, [received(2, serverFrame(Opcode.Close, encodeClosePayload(1007))), { at: 1, direction: 'sent', type: 'pause', until: 3, reason: 'fail-fast' }, sentClose(3, 1007), fin(4)], options);
    assert.equal(fast.verdict, 'OK');
  });

  test('a 1009 where an echo was owed is INFORMATIONAL, with the limit', () => {
    const e = expect([{ opcode: Opcode.Binary, payload: Buffer.alloc(70_000) }, closeSpec(1000)]);
    const j = judge(e, [received(1, serverFrame(Opcode.Close, encodeClosePayload(1009, 'too big'))), sentClose(2, 1009), fin(3)], options);
    assert.equal(j.verdict, 'INFORMATIONAL');
    assert.match(j.reason, /closed with 1009 "too big" on its own limit \(largest message 70000 B, 1 fragment\)/);
  });

  test('a masked server frame is FAILED (§5.1)', () => {
    const j = judge(echoThenClose, [received(1, serverFrame(Opcode.Text, 'Hello', true, 0, true)), sentClose(2, 1000), received(3, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(4)], options);
    assert.equal(j.verdict, 'FAILED');
    assert.match(j.reason, /masked a text frame \(§5\.1/);
  });
});

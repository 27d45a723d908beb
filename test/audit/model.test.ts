// The RFC 6455 model of src/audit/model.ts: what a server must do for a sequence of client frames
// (expect) and how a wire log is held against it (judge). Pure: wire logs are written out by hand.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { encodeClosePayload } from '../../src/protocol/frame.js';
import { checkNegotiation, expect, judge, judgeHandshake, worse, describeExpectation, type Expectation } from '../../src/audit/model.js';
import { PerMessageDeflate } from '../../src/protocol/deflate.js';
import { acceptKey } from '../../src/protocol/handshake.js';
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

describe('judge: what a server sends wrong', () => {
  const options = { closeDeadline: 1000 };
  const closeEcho = (at: number, code = 1000): WireEvent[] => [sentClose(at, code), received(at + 1, serverFrame(Opcode.Close, encodeClosePayload(code))), fin(at + 2)];
  const open = expect([{ opcode: Opcode.Text, payload: 'a' }, closeSpec(1000)]);

  test('each framing fault of a server frame is FAILED and named', () => {
    const cases: [WireFrame, RegExp][] = [
      [serverFrame(Opcode.Text, 'a', true, 0x20), /set RSV bits 0x20 on a text frame \(§5\.2\)/],
      [serverFrame(Opcode.Ping, 'x', false), /sent a fragmented Ping frame of 1 bytes \(§5\.5\)/],
      [serverFrame(0xb, 'x'), /sent reserved opcode 0xb \(§5\.2\)/],
      [serverFrame(0x3, 'x'), /sent reserved opcode 0x3 \(§5\.2\)/],
      [serverFrame(Opcode.Continuation, 'x'), /sent a continuation frame with no message in progress \(§5\.4\)/],
      [{ ...serverFrame(Opcode.Text, 'a'), problems: ['length 1 in the 16-bit form'] }, /sent a frame with length 1 in the 16-bit form/],
    ];
    for (const [frame, reason] of cases) {
      const j = judge(open, [received(1, frame), received(2, serverFrame(Opcode.Text, 'a')), ...closeEcho(3)], options);
      assert.equal(j.verdict, 'FAILED');
      assert.match(j.reason, reason);
    }
    const nested = judge(open, [received(1, serverFrame(Opcode.Text, 'a', false)), received(2, serverFrame(Opcode.Text, 'a')), ...closeEcho(3)], options);
    assert.match(nested.reason, /started a new message inside a fragmented one \(§5\.4\)/);
    const bytes = judge(open, [{ at: 1, direction: 'received', type: 'bytes', bytes: Buffer.from([1]) }, received(2, serverFrame(Opcode.Text, 'a')), ...closeEcho(3)], options);
    assert.match(bytes.reason, /sent bytes that are not a frame/);
  });

  test('bad Close payloads from the server: 1 byte, code 999, a reason that is not UTF-8; frames after its Close', () => {
    const e = expect([closeSpec(1000)]);
    const oneByte = judge(e, [sentClose(1, 1000), received(2, serverFrame(Opcode.Close, Buffer.from([3]))), fin(3)], options);
    assert.match(oneByte.close.detail, /Close frame with a 1-byte payload/);
    const code999 = judge(e, [sentClose(1, 1000), received(2, serverFrame(Opcode.Close, Buffer.from([0x03, 0xe7]))), fin(3)], options);
    assert.match(code999.close.detail, /put close code 999 on the wire \(§7\.4: not a code that may be sent\)/);
    const badReason = judge(e, [sentClose(1, 1000), received(2, serverFrame(Opcode.Close, Buffer.from([0x03, 0xe8, 0xff]))), fin(3)], options);
    assert.match(badReason.close.detail, /close reason that is not UTF-8/);
    const after = judge(e, [sentClose(1, 1000), received(2, serverFrame(Opcode.Close, encodeClosePayload(1000))), received(3, serverFrame(Opcode.Text, 'late')), fin(4)], options);
    assert.equal(after.close.verdict, 'FAILED');
    assert.match(after.close.detail, /^sent 1 frame\(s\) after its Close/);
  });

  test('the closing handshake: another code is NON-STRICT, no answer or no Close is FAILED', () => {
    const e = expect([closeSpec(3000)]);
    const other = judge(e, [sentClose(1, 3000), received(2, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(3)], options);
    assert.equal(other.verdict, 'NON-STRICT');
    assert.match(other.close.detail, /answered close code 3000 with 1000 instead of echoing it/);
    const limit = judge(e, [sentClose(1, 3000), received(2, serverFrame(Opcode.Close, encodeClosePayload(1009))), fin(3)], options);
    assert.equal(limit.close.verdict, 'INFORMATIONAL');
    const silent = judge(e, [sentClose(1, 3000), { at: 2000, direction: 'sent', type: 'destroy' }], options);
    assert.match(silent.close.detail, /never answered the Close frame \(§5\.5\.1/);
    const dropped = judge(e, [sentClose(1, 3000), fin(2)], options);
    assert.match(dropped.close.detail, /closed TCP without answering the Close frame/);
    const empty = judge(expect([closeSpec()]), [sentClose(1, 1000), received(2, serverFrame(Opcode.Close)), fin(3)], options);
    assert.equal(empty.verdict, 'OK');
  });

  test('a server that closes on its own: 1009 is INFORMATIONAL, 1001 is FAILED; an open connection stays open', () => {
    const e = expect([{ opcode: Opcode.Text, payload: 'a' }]);
    const own = judge(e, [received(1, serverFrame(Opcode.Close, encodeClosePayload(1001, 'bye'))), sentClose(2, 1001), fin(3)], options);
    assert.equal(own.verdict, 'FAILED');
    assert.match(own.close.detail, /closed with 1001 "bye" although nothing called for it/);
    const stays = judge(e, [received(1, serverFrame(Opcode.Text, 'a'))], options);
    assert.equal(stays.verdict, 'OK');
    assert.equal(stays.close.detail, 'the connection stayed open, as it must');
    const dropped = judge(e, [received(1, serverFrame(Opcode.Text, 'a')), fin(2)], options);
    assert.equal(dropped.close.detail, 'the server closed TCP without a Close frame');
  });

  test('failing: no Close frame is NON-STRICT, a wrong code FAILED, 1002 for bad UTF-8 NON-STRICT, a missing earlier echo NON-STRICT', () => {
    const e = expect([{ opcode: Opcode.Text, payload: 'ok' }, { opcode: Opcode.Text, payload: Buffer.from([0xff]) }]);
    const noClose = judge(e, [received(1, serverFrame(Opcode.Text, 'ok')), fin(2)], options);
    assert.equal(noClose.verdict, 'NON-STRICT');
    assert.match(noClose.close.detail, /dropped TCP without a Close frame \(§7\.1\.7/);
    const wrong = judge(e, [received(1, serverFrame(Opcode.Text, 'ok')), received(2, serverFrame(Opcode.Close, encodeClosePayload(1011))), sentClose(3, 1011), fin(4)], options);
    assert.equal(wrong.verdict, 'FAILED');
    assert.match(wrong.close.detail, /closed with 1011; text message that is not UTF-8 \(§8\.1\) calls for 1007/);
    const protocol = judge(e, [received(1, serverFrame(Opcode.Text, 'ok')), received(2, serverFrame(Opcode.Close, encodeClosePayload(1002))), sentClose(3, 1002), fin(4)], options);
    assert.equal(protocol.verdict, 'NON-STRICT');
    assert.match(protocol.close.detail, /failed with 1002 where 1007 names the fault/);
    const noEcho = judge(e, [received(2, serverFrame(Opcode.Close, encodeClosePayload(1007))), sentClose(3, 1007), fin(4)], options);
    assert.equal(noEcho.verdict, 'NON-STRICT');
    assert.match(noEcho.reason, /failed the connection without first sending text 2 B "ok", owed to frames before the bad one/);
    const never = judge(e, [received(1, serverFrame(Opcode.Text, 'ok')), { at: 5000, direction: 'sent', type: 'destroy' }], options);
    assert.equal(never.verdict, 'FAILED');
    assert.match(never.close.detail, /did not fail the connection/);
  });

  test('replies: a wrong echo is FAILED; only the last of several Pings answered is INFORMATIONAL; unsolicited Pongs are ignored', () => {
    const wrong = judge(open, [received(1, serverFrame(Opcode.Text, 'b')), ...closeEcho(2)], options);
    assert.equal(wrong.reason, 'expected text 1 B "a", the server sent text 1 B "b"');
    const pings = expect([{ opcode: Opcode.Ping, payload: '1' }, { opcode: Opcode.Ping, payload: '2' }, { opcode: Opcode.Ping, payload: '3' }, closeSpec(1000)]);
    const last = judge(pings, [received(1, serverFrame(Opcode.Pong, 'x')), received(2, serverFrame(Opcode.Pong, '3')), ...closeEcho(3)], options);
    assert.equal(last.verdict, 'INFORMATIONAL');
    assert.equal(last.reason, 'the server answered only the most recent of several Pings (2 Pongs left out; §5.5.3 allows it)');
  });

  test('without --echo the server own messages are checked for validity only', () => {
    const e = expect([{ opcode: Opcode.Text, payload: 'a' }, { opcode: Opcode.Ping, payload: 'p' }, closeSpec(1000)], { echo: false });
    const j = judge(e, [received(1, serverFrame(Opcode.Text, 'welcome')), received(2, serverFrame(Opcode.Pong, 'p')), ...closeEcho(3)], options);
    assert.equal(j.verdict, 'OK');
    assert.match(j.observed, /^text 7 B "welcome", pong 1 B "p"; Close 1000; server closed TCP at 5 ms$/);
  });
});

describe('permessage-deflate in the model', () => {
  const agreed = { serverMaxWindowBits: 15, serverNoContextTakeover: false, clientMaxWindowBits: 15, clientNoContextTakeover: false };
  const deflate = () =>
    new PerMessageDeflate({ ownWindowBits: 15, ownNoContextTakeover: false, peerWindowBits: 15, peerNoContextTakeover: false, threshold: 0, level: 6, memLevel: 8 });

  test('compressed messages are inflated both ways; RSV1 on a continuation or a Ping fails; bad data fails with 1007', () => {
    const client = deflate();
    const data = Buffer.from('hello hello hello hello');
    const payload = client.compress(data);
    client.commit(data);
    const e = expect([{ opcode: Opcode.Text, payload, rsv: 0x40 }, closeSpec(1000)], { deflate: agreed });
    assert.deepEqual(e.replies.map((r) => r.payload.toString()), ['hello hello hello hello']);
    const server = deflate();
    const reply = server.compress(data);
    const ok = judge(e, [received(1, serverFrame(Opcode.Text, reply, true, 0x40)), sentClose(2, 1000), received(3, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(4)], { deflate: agreed, closeDeadline: 1000 });
    assert.equal(ok.verdict, 'OK');
    const garbage = judge(e, [received(1, serverFrame(Opcode.Text, Buffer.from('ffffffff', 'hex'), true, 0x40)), sentClose(2, 1000), received(3, serverFrame(Opcode.Close, encodeClosePayload(1000))), fin(4)], { deflate: agreed, closeDeadline: 1000 });
    assert.match(garbage.reason, /compressed message that does not inflate/);
    const continuation = expect([{ opcode: Opcode.Text, payload: 'a', rsv: 0x40, fin: false }, { opcode: Opcode.Continuation, payload: 'b', rsv: 0x40 }], { deflate: agreed });
    assert.match(continuation.ending.kind === 'fail' ? continuation.ending.reason : '', /RSV1 on a control frame or a continuation frame \(RFC 7692 §6\.1\)/);
    const bad = expect([{ opcode: Opcode.Binary, payload: Buffer.from('ffffffff', 'hex'), rsv: 0x40 }], { deflate: agreed });
    assert.deepEqual(bad.ending.kind === 'fail' && bad.ending.codes, [1007, 1002]);
    const notText = client.compress(Buffer.from([0xff, 0xfe]));
    const invalid = expect([{ opcode: Opcode.Text, payload: notText, rsv: 0x40 }], { deflate: agreed });
    assert.match(invalid.ending.kind === 'fail' ? invalid.ending.reason : '', /not UTF-8 once inflated/);
  });
});

describe('checkNegotiation and judgeHandshake: the answers of a 101 (RFC 6455 §4.1, RFC 7692 §7.1)', () => {
  const offer = (extensions: string, protocols: string[] = []) => ({ key: 'dGhlIHNhbXBsZSBub25jZQ==', protocols, extensions });
  const answer = (value: string) => ({ 'sec-websocket-extensions': value });

  test('valid answers give the parameters agreed', () => {
    assert.deepEqual(checkNegotiation(offer('permessage-deflate; client_max_window_bits'), answer('permessage-deflate; client_max_window_bits=10; server_no_context_takeover')), {
      problem: null,
      deflate: { serverMaxWindowBits: 15, serverNoContextTakeover: true, clientMaxWindowBits: 10, clientNoContextTakeover: false },
    });
    assert.deepEqual(checkNegotiation(offer('permessage-deflate; server_max_window_bits=10; client_max_window_bits=9, permessage-deflate'), answer('permessage-deflate; server_max_window_bits=9')).deflate, {
      serverMaxWindowBits: 9, serverNoContextTakeover: false, clientMaxWindowBits: 9, clientNoContextTakeover: false,
    });
    assert.deepEqual(checkNegotiation(offer('', ['chat']), { 'sec-websocket-protocol': 'chat' }), { problem: null, deflate: null });
  });

  test('each wrong answer is named', () => {
    const problems: [string, string, RegExp][] = [
      ['', 'x-foo', /extension "x-foo", which was not offered \(§4\.1 item 5\)/],
      ['permessage-deflate', 'permessage-deflate, permessage-deflate', /permessage-deflate answered twice/],
      ['permessage-deflate', 'permessage-deflate; bogus', /unknown parameter bogus/],
      ['permessage-deflate', 'permessage-deflate; server_no_context_takeover=1', /server_no_context_takeover takes no value/],
      ['permessage-deflate; server_no_context_takeover', 'permessage-deflate', /server_no_context_takeover was offered but not answered/],
      ['permessage-deflate', 'permessage-deflate; server_max_window_bits=7', /server_max_window_bits=7 is not 8-15/],
      ['permessage-deflate; server_max_window_bits=9', 'permessage-deflate; server_max_window_bits=12', /server_max_window_bits=12 is above the 9 offered/],
      ['permessage-deflate; server_max_window_bits=9', 'permessage-deflate', /server_max_window_bits was offered but not answered/],
      ['permessage-deflate', 'permessage-deflate; client_max_window_bits=10', /client_max_window_bits answered but not offered/],
      ['permessage-deflate; client_max_window_bits', 'permessage-deflate; client_max_window_bits', /client_max_window_bits=true is not 8-15/],
      ['permessage-deflate; client_max_window_bits=9', 'permessage-deflate; client_max_window_bits=11', /client_max_window_bits=11 is above the 9 offered/],
      ['permessage-deflate', 'permessage-deflate; server_max_window_bits=9; server_max_window_bits=9', /repeats server_max_window_bits/],
      ['permessage-deflate', 'permessage-deflate;;', /is not valid \(§9\.1\)/],
    ];
    for (const [offered, answered, problem] of problems) {
      assert.match(checkNegotiation(offer(offered), answer(answered)).problem ?? '', problem, `${offered} / ${answered}`);
    }
    assert.match(checkNegotiation(offer('', ['chat']), { 'sec-websocket-protocol': 'superchat' }).problem!, /"superchat" was not offered \(§4\.1 item 6\)/);
  });

  test('refusals: another 4xx is NON-STRICT, a 5xx or a missing required header FAILED, no status line FAILED', () => {
    const response = (status: number, headers: Record<string, string> = {}) => ({ status, reason: '', httpVersion: 'HTTP/1.1', headers, head: '', body: Buffer.from('no\n'), interim: [] });
    const refuse = { outcome: 'refuse' as const, statuses: [405], header: { name: 'Allow', pattern: /GET/, rule: 'RFC 9110 §15.5.6' } };
    assert.equal(judgeHandshake(refuse, offer(''), response(405, { allow: 'GET' }), 100).verdict, 'OK');
    assert.deepEqual(judgeHandshake({ outcome: 'refuse', statuses: [405] }, offer(''), response(400), 100), { verdict: 'NON-STRICT', reason: 'refused with 400; 405 names the fault', observed: 'HTTP 400, body 3 B 6e6f0a' });
    assert.match(judgeHandshake(refuse, offer(''), response(405), 100).reason, /the 405 lacks Allow \(RFC 9110 §15\.5\.6\)/);
    assert.match(judgeHandshake(refuse, offer(''), response(500), 100).reason, /got 500; a client error \(4xx\) names it \(405\)/);
    assert.match(judgeHandshake(refuse, offer(''), response(0), 100).reason, /closed the connection without an HTTP response/);
    assert.equal(judgeHandshake({ outcome: 'accept' }, offer(''), response(403), 100).reason, 'the server refused a valid request with 403');
    assert.equal(judgeHandshake({ outcome: 'either' }, offer(''), response(403), 100).verdict, 'OK');
  });

  test('Expect: 100-continue: a 101 without the 100 Continue before it FAILED, with it OK, a 417 OK', () => {
    const sent = offer('');
    const switching = (interim: number[]) => ({
      status: 101,
      reason: 'Switching Protocols',
      httpVersion: 'HTTP/1.1',
      headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': acceptKey(sent.key) },
      head: '',
      body: Buffer.alloc(0),
      interim,
    });
    const expectContinue = { outcome: 'either' as const, continueFirst: true };
    assert.deepEqual(judgeHandshake(expectContinue, sent, switching([]), 100), {
      verdict: 'FAILED',
      reason: 'a 101 without the 100 Continue the request expected (RFC 9110 §7.8: a server sends 100 before 101)',
      observed: 'HTTP 101 Switching Protocols',
    });
    assert.deepEqual(judgeHandshake(expectContinue, sent, switching([100]), 100), {
      verdict: 'OK',
      reason: 'accepted after 100, and the 101 is right (§4.2.2)',
      observed: 'HTTP 101 Switching Protocols',
    });
    const refused = { status: 417, reason: 'Expectation Failed', httpVersion: 'HTTP/1.1', headers: {}, head: '', body: Buffer.alloc(0), interim: [] };
    assert.equal(judgeHandshake(expectContinue, sent, refused, 100).verdict, 'OK');
  });
});

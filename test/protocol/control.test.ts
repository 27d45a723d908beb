// RFC 6455 §5.5 control frames, §5.5.1 Close, §5.5.2-3 Ping/Pong and §7 closing the connection:
// what the connection reports and the exact bytes it queues in answer. Input frames are masked
// with 00000000 (plain hex payloads) unless a test is about the RFC's masked examples.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, ConnectionState, RSV1, isValidCloseCode } from '../../src/protocol/index.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { encodeClosePayload, parseClosePayload, truncateUtf8 } from '../../src/protocol/frame.js';
import type { MessageExtension } from '../../src/protocol/connection.js';
import {
  assertConnectionFailing,
  assertEvents,
  assertFrameSent,
  assertInputDiscarded,
  assertNothingSent,
  assertProtocolError,
  closeFrameBytes,
  hex,
  receive,
  server,
  takeFrames,
} from '../helpers/protocol.js';

/** The masked frame of a Close with this code and reason (zero key). */
function peerClose(code: number, reasonHex = ''): string {
  const length = 2 + reasonHex.length / 2;
  return `88 ${(0x80 | length).toString(16)} 00000000 ${code.toString(16).padStart(4, '0')} ${reasonHex}`;
}

/** Asserts the closing handshake completed: the peer's Close reported, our echo queued, TCP to be ended. */
function assertClosed(conn: ReturnType<typeof server>, code: number, reason: string, echo: string): void {
  assertEvents(conn, [{ type: 'close', code, reason }]);
  assertFrameSent(conn, echo);
  assert.equal(conn.state, ConnectionState.Closed);
  assert.equal(conn.closeReceived, true);
  assert.equal(conn.closeSent, true);
  assert.equal(conn.endTransport, true);
  assert.equal(conn.failure, null);
  assert.equal(conn.closeCode, code);
  assert.equal(conn.closeReason, reason);
  assertInputDiscarded(conn);
}

/** An extension that claims RSV1 and passes payloads through (to reach the control-frame RSV check). */
const passThrough: MessageExtension = {
  rsv: RSV1,
  decode: (data) => data,
  encode: () => null,
};

describe('5.5 Control frames', () => {
  test('a control frame longer than 125 bytes fails with 1002 from its header', () => {
    for (const header of ['89 fe 007e', '8a ff 0000000000000080', '88 fe 0100']) {
      const conn = server();
      receive(conn, header);
      assertConnectionFailing(conn, {
        code: 'WS_ERR_CONTROL_FRAME_TOO_LONG',
        message: 'control frame payload over 125 bytes',
        closeCode: CloseCode.ProtocolError,
      });
    }
  });

  test('a control frame without FIN fails with 1002', () => {
    for (const b0 of ['09', '0a', '08']) {
      const conn = server();
      receive(conn, `${b0} 80 00000000`);
      assertConnectionFailing(conn, {
        code: 'WS_ERR_FRAGMENTED_CONTROL_FRAME',
        message: 'FIN must be set on control frames',
        closeCode: CloseCode.ProtocolError,
      });
    }
  });

  test('a ping of exactly 125 bytes is answered with a pong of the same 125 bytes', () => {
    const payload = Buffer.alloc(125, 0x5a);
    const conn = server();
    receive(conn, Buffer.concat([hex('89 fd 00000000'), payload]));
    assertEvents(conn, [{ type: 'ping', data: payload.toString('hex') }]);
    assertFrameSent(conn, Buffer.concat([hex('8a 7d'), payload]));
  });

  test('RSV1 on a control frame fails with 1002 even when an extension claims RSV1', () => {
    const conn = server({ extension: passThrough });
    receive(conn, 'c9 80 00000000');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_UNEXPECTED_RSV_1',
      message: 'RSV1 must be clear on control frames',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('RSV1 on a continuation frame fails with 1002 even when an extension claims RSV1', () => {
    const conn = server({ extension: passThrough });
    receive(conn, '41 81 00000000 61', 'c0 81 00000000 62');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_UNEXPECTED_RSV_1',
      message: 'RSV1 must be clear on continuation frames',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('ping() and pong() refuse payloads over 125 bytes with a RangeError', () => {
    const conn = server();
    const message = 'a control frame payload is at most 125 bytes (RFC 6455 §5.5)';
    assert.throws(() => conn.ping(Buffer.alloc(126)), { name: 'RangeError', message });
    assert.throws(() => conn.pong(Buffer.alloc(126)), { name: 'RangeError', message });
    assertNothingSent(conn);
  });
});

describe('5.5.1 Close', () => {
  test('a Close with code and reason is reported and echoed with the code only; the server ends TCP', () => {
    const conn = server();
    receive(conn, peerClose(1000, '627965'));
    assertClosed(conn, CloseCode.Normal, 'bye', '88 02 03e8');
  });

  test('an empty Close is reported as 1005 and answered with an empty Close', () => {
    const conn = server();
    receive(conn, '88 80 00000000');
    assertClosed(conn, CloseCode.NoStatusReceived, '', '88 00');
  });

  test('the masked Close of a browser tab closing (1001) is echoed unmasked', () => {
    const conn = server();
    receive(conn, '88 82 37fa213d 3413');
    assertClosed(conn, CloseCode.GoingAway, '', '88 02 03e9');
  });

  test('a Close with a 1-byte payload fails with 1002', () => {
    const conn = server();
    receive(conn, '88 81 00000000 03');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_INVALID_CLOSE_PAYLOAD',
      message: 'close frame payload of 1 byte: a code takes 2',
      closeCode: CloseCode.ProtocolError,
    });
  });

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    test(`a Close with the invalid code ${code} fails with 1002`, () => {
      const conn = server();
      receive(conn, peerClose(code));
      assertConnectionFailing(conn, {
        code: 'WS_ERR_INVALID_CLOSE_CODE',
        message: `invalid close code ${code}`,
        closeCode: CloseCode.ProtocolError,
      });
    });
  }

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    test(`a Close with the valid code ${code} is echoed`, () => {
      const conn = server();
      receive(conn, peerClose(code, '6f6b'));
      assertClosed(conn, code, 'ok', `88 02 ${code.toString(16).padStart(4, '0')}`);
    });
  }

  test('a Close whose reason is not UTF-8 fails with 1002', () => {
    const conn = server();
    receive(conn, peerClose(1000, 'cebae1bdb9 eda080'));
    assertConnectionFailing(conn, {
      code: 'WS_ERR_INVALID_CLOSE_REASON',
      message: 'close reason is not valid UTF-8',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('a Close with a 123-byte reason (the most that fits) is accepted', () => {
    const reason = 'r'.repeat(123);
    const conn = server();
    receive(conn, Buffer.concat([hex('88 fd 00000000 03e8'), Buffer.from(reason)]));
    assertClosed(conn, CloseCode.Normal, reason, '88 02 03e8');
  });

  test('a Close split across reads is reassembled before it is checked', () => {
    const conn = server();
    receive(conn, '88 85 00000000 03', 'e8 62', '7965');
    assertClosed(conn, CloseCode.Normal, 'bye', '88 02 03e8');
  });

  test('isValidCloseCode matches the ranges of §7.4', () => {
    const valid = [];
    for (let code = 0; code < 6000; code++) if (isValidCloseCode(code)) valid.push(code);
    assert.equal(valid.length, 4 + 8 + 2000);
    assert.deepEqual(valid.slice(0, 13), [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000]);
    assert.equal(valid.at(-1), 4999);
  });

  test('parseClosePayload returns the code and reason, or the ProtocolError', () => {
    assert.deepEqual(parseClosePayload(hex('')), { code: 1005, reason: '' });
    assert.deepEqual(parseClosePayload(hex('0fa0 e282ac')), { code: 4000, reason: '€' });
    const error = parseClosePayload(hex('03ed'));
    assertProtocolError(error, { code: 'WS_ERR_INVALID_CLOSE_CODE', message: 'invalid close code 1005', closeCode: 1002 });
  });

  test('encodeClosePayload writes the code in network order and the reason in UTF-8', () => {
    assert.equal(encodeClosePayload().toString('hex'), '');
    assert.equal(encodeClosePayload(1000).toString('hex'), '03e8');
    assert.equal(encodeClosePayload(4999, '€').toString('hex'), '1387e282ac');
    assert.equal(encodeClosePayload(1000, 'x'.repeat(123)).length, 125);
  });

  for (const code of [1005, 1006, 1015, 999, 1004, 5000, 1000.5]) {
    test(`encodeClosePayload refuses ${code}: it may not go on the wire`, () => {
      assert.throws(() => encodeClosePayload(code), { name: 'RangeError', message: `close code ${code} may not be sent (RFC 6455 §7.4)` });
    });
  }

  test('encodeClosePayload refuses a reason without a code and a reason over 123 bytes', () => {
    assert.throws(() => encodeClosePayload(undefined, 'x'), { name: 'RangeError', message: 'a close reason needs a close code' });
    assert.throws(() => encodeClosePayload(1000, '€'.repeat(42)), {
      name: 'RangeError',
      message: 'close reason is 126 bytes; at most 123 fit in a control frame',
    });
  });

  test('truncateUtf8 cuts on a code point boundary', () => {
    assert.equal(truncateUtf8('abc', 3), 'abc');
    assert.equal(truncateUtf8('abcd', 3), 'abc');
    assert.equal(truncateUtf8('a€', 3), 'a');
    assert.equal(truncateUtf8('a€', 4), 'a€');
    assert.equal(truncateUtf8('€€', 5), '€');
    assert.equal(truncateUtf8('😀', 3), '');
    assert.equal(truncateUtf8('ab😀', 5), 'ab');
  });
});

describe('5.5.2-3 Ping/Pong', () => {
  test('the masked ping "Hello" is reported and answered with an unmasked pong of the same payload', () => {
    const conn = server();
    receive(conn, '89 85 37fa213d 7f9f4d5158');
    assertEvents(conn, [{ type: 'ping', data: '48656c6c6f' }]);
    assertFrameSent(conn, '8a 05 48656c6c6f');
  });

  test('an empty ping is answered with an empty pong', () => {
    const conn = server();
    receive(conn, '89 80 00000000');
    assertEvents(conn, [{ type: 'ping', data: '' }]);
    assertFrameSent(conn, '8a 00');
  });

  test('a ping split across reads is answered once, whole', () => {
    const conn = server();
    receive(conn, '89', '83 00', '000000 61', '6263');
    assertEvents(conn, [{ type: 'ping', data: '616263' }]);
    assertFrameSent(conn, '8a 03 616263');
  });

  test('each of several pings is answered in order', () => {
    const conn = server();
    receive(conn, '89 81 00000000 01 89 81 00000000 02');
    assertEvents(conn, [
      { type: 'ping', data: '01' },
      { type: 'ping', data: '02' },
    ]);
    assertFrameSent(conn, '8a 01 01 8a 01 02');
  });

  test('an unsolicited pong is reported and not answered', () => {
    const conn = server();
    receive(conn, '8a 85 37fa213d 7f9f4d5158');
    assertEvents(conn, [{ type: 'pong', data: '48656c6c6f' }]);
    assertNothingSent(conn);
    assert.equal(conn.state, ConnectionState.Open);
  });

  test('ping(data) and pong(data) queue the frames', () => {
    const conn = server();
    assert.equal(conn.ping(), true);
    assert.equal(conn.ping(Buffer.from('hi')), true);
    assert.equal(conn.pong(Buffer.from('x')), true);
    assertFrameSent(conn, '89 00 89 02 6869 8a 01 78');
  });

  test('a ping received after our Close is reported but not answered', () => {
    const conn = server();
    conn.close();
    assertFrameSent(conn, '88 02 03e8');
    receive(conn, '89 81 00000000 61');
    assertEvents(conn, [{ type: 'ping', data: '61' }]);
    assertNothingSent(conn);
  });
});

describe('7 Closing', () => {
  test('close() queues a Close 1000, and nothing may be sent after it', () => {
    const conn = server();
    assert.equal(conn.close(), true);
    assertFrameSent(conn, '88 02 03e8');
    assert.equal(conn.state, ConnectionState.Closing);
    assert.equal(conn.closeSent, true);
    assert.equal(conn.endTransport, false, 'the server waits for the peer Close (the I/O layer times out)');
    assert.equal(conn.sendText('a'), false);
    assert.equal(conn.sendBinary(hex('01')), false);
    assert.equal(conn.sendTextBytes(hex('61')), false);
    assert.equal(conn.ping(), false);
    assert.equal(conn.pong(), false);
    assert.equal(conn.close(1001), false);
    assertNothingSent(conn);
  });

  test('close(code, reason) sends both; the peer Close then completes the handshake without a second Close', () => {
    const conn = server();
    conn.close(4000, 'going');
    assertFrameSent(conn, '88 07 0fa0 676f696e67');
    receive(conn, peerClose(4000));
    assertEvents(conn, [{ type: 'close', code: 4000, reason: '' }]);
    assertNothingSent(conn);
    assert.equal(conn.state, ConnectionState.Closed);
    assert.equal(conn.endTransport, true);
    assert.equal(conn.closeCode, 4000);
  });

  test('data frames arriving after our Close are still delivered until the peer Close', () => {
    const conn = server();
    conn.close();
    conn.takeOutput();
    receive(conn, '81 81 00000000 61', '88 80 00000000');
    assertEvents(conn, [
      { type: 'text', data: 'a' },
      { type: 'close', code: 1005, reason: '' },
    ]);
    assertNothingSent(conn);
  });

  test('close() refuses codes that may not be sent and over-long reasons, sending nothing', () => {
    const conn = server();
    for (const code of [1005, 1006, 1015, 999]) {
      assert.throws(() => conn.close(code), { name: 'RangeError', message: `close code ${code} may not be sent (RFC 6455 §7.4)` });
    }
    assert.throws(() => conn.close(1000, 'x'.repeat(124)), {
      name: 'RangeError',
      message: 'close reason is 124 bytes; at most 123 fit in a control frame',
    });
    assertNothingSent(conn);
    assert.equal(conn.state, ConnectionState.Open);
  });

  test('nothing is sent after the peer Close was answered', () => {
    const conn = server();
    receive(conn, '88 80 00000000');
    conn.takeEvents();
    conn.takeOutput();
    assert.equal(conn.sendText('a'), false);
    assert.equal(conn.ping(), false);
    assert.equal(conn.close(), false);
    assertNothingSent(conn);
  });

  test('frames after the peer Close in the same read are discarded', () => {
    const conn = server();
    receive(conn, '88 80 00000000 81 81 00000000 61 89 80 00000000');
    assertClosed(conn, CloseCode.NoStatusReceived, '', '88 00');
  });

  test('EOF without a Close reports 1006 and an empty reason', () => {
    const conn = server();
    conn.receiveEof();
    assert.equal(conn.state, ConnectionState.Closed);
    assert.equal(conn.endTransport, true);
    assert.equal(conn.closeCode, CloseCode.Abnormal);
    assert.equal(conn.closeReason, '');
    assertNothingSent(conn);
    assertInputDiscarded(conn);
    assert.equal(conn.sendText('a'), false);
  });

  test('EOF after our Close, before the peer answered, reports 1006', () => {
    const conn = server();
    conn.close(1000, 'bye');
    conn.receiveEof();
    assert.equal(conn.closeCode, CloseCode.Abnormal);
    assert.equal(conn.closeReason, '');
  });

  test('EOF in the middle of a fragmented message drops it and reports 1006', () => {
    const conn = server();
    receive(conn, '01 81 00000000 61');
    conn.receiveEof();
    assertEvents(conn, []);
    assert.equal(conn.closeCode, CloseCode.Abnormal);
  });

  test('input that arrived before EOF is parsed before the connection closes', () => {
    const conn = server();
    receive(conn, '81 81 00000000 61 81 81 00000000 62');
    conn.receiveEof();
    assertEvents(conn, [
      { type: 'text', data: 'a' },
      { type: 'text', data: 'b' },
    ]);
    assert.equal(conn.closeCode, CloseCode.Abnormal);
  });

  test('EOF after the closing handshake changes nothing', () => {
    const conn = server();
    receive(conn, peerClose(1000));
    conn.takeEvents();
    conn.receiveEof();
    assert.equal(conn.closeCode, CloseCode.Normal);
  });

  test('fail() with 1011 sends a Close 1011 without the internal details', () => {
    const conn = server();
    conn.fail(new ProtocolError('WS_ERR_HANDLER', CloseCode.InternalError, 'secret stack trace'));
    assertConnectionFailing(conn, { code: 'WS_ERR_HANDLER', message: 'secret stack trace', closeCode: CloseCode.InternalError });
    assertFrameSent(conn, '');
  });

  test('fail() truncates a long message to a 123-byte reason', () => {
    const conn = server();
    conn.fail(new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'é'.repeat(100)));
    assertFrameSent(conn, closeFrameBytes(CloseCode.PolicyViolation, 'é'.repeat(61)));
    assert.equal(conn.closeCode, CloseCode.PolicyViolation);
    assert.equal(conn.closeReason, 'é'.repeat(61));
  });

  test('only the first failure counts: a second fail() is ignored', () => {
    const conn = server();
    receive(conn, '81 05 48656c6c6f');
    conn.takeEvents();
    conn.takeOutput();
    conn.fail(new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'later'));
    assertEvents(conn, []);
    assertNothingSent(conn);
    assert.equal(conn.closeCode, CloseCode.ProtocolError);
  });

  test('a failure after our Close sends no second Close and reports the failure code with its own reason', () => {
    // Regression: closeReason returned the reason of our earlier Close ("bye", sent with 1000)
    // next to the failure's code 1002, a pair that never went on the wire together.
    const conn = server();
    conn.close(1000, 'bye');
    assertFrameSent(conn, '88 05 03e8 627965');
    receive(conn, '81 05 48656c6c6f');
    const events = conn.takeEvents();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, 'error');
    assertNothingSent(conn);
    assert.equal(conn.state, ConnectionState.Closed);
    assert.equal(conn.endTransport, true);
    assert.equal(conn.closeCode, CloseCode.ProtocolError);
    assert.equal(conn.closeReason, 'MASK must be set on frames from a client');
  });

  test('fail() with a close code that may not be sent still fails the connection, sending 1011', () => {
    // Regression: encodeClosePayload threw a RangeError from inside fail(), after the failure was
    // recorded and the parser stopped but before the Close was queued: the connection stayed Open,
    // never asked for the transport to end, reported no error, and went on accepting sends.
    for (const code of [1005, 1006, 1015, 999]) {
      const conn = server();
      conn.fail(new ProtocolError('WS_ERR_INTERNAL', code, 'not for the wire'));
      assertFrameSent(conn, '88 02 03f3');
      assert.equal(conn.state, ConnectionState.Closed);
      assert.equal(conn.endTransport, true);
      assert.equal(conn.closeCode, code);
      assert.equal(conn.closeReason, '');
      assert.equal(conn.sendText('a'), false);
      const events = conn.takeEvents();
      assert.equal(events.length, 1);
      assert.equal(events[0]!.type, 'error');
    }
  });

  test('fail() after EOF is ignored', () => {
    const conn = server();
    conn.receiveEof();
    conn.fail(new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'x'));
    assertEvents(conn, []);
    assertNothingSent(conn);
    assert.equal(conn.closeCode, CloseCode.Abnormal);
  });
});

describe('client role', () => {
  test('a client masks what it sends with a fresh key per frame', () => {
    const conn = server({ role: 'client' });
    conn.sendText('Hello');
    conn.sendText('Hello');
    const [a, b] = takeFrames(conn);
    for (const frame of [a!, b!]) {
      assert.equal(frame.subarray(0, 2).toString('hex'), '8185');
      const key = frame.subarray(2, 6);
      const payload = Buffer.from(frame.subarray(6));
      for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]!;
      assert.equal(payload.toString(), 'Hello');
    }
    assert.notEqual(a!.subarray(2, 6).toString('hex'), b!.subarray(2, 6).toString('hex'));
  });

  test('a client masks large messages and control frames too', () => {
    const conn = server({ role: 'client' });
    conn.sendBinary(Buffer.alloc(20_000, 1));
    conn.ping(Buffer.from('p'));
    conn.close();
    const frames = takeFrames(conn);
    assert.equal(frames.length, 3);
    assert.equal(frames[0]!.subarray(0, 4).toString('hex'), '82fe4e20');
    assert.equal(frames[0]!.length, 8 + 20_000);
    assert.equal(frames[1]!.subarray(0, 2).toString('hex'), '8981');
    assert.equal(frames[2]!.subarray(0, 2).toString('hex'), '8882');
  });

  test('a client accepts unmasked frames', () => {
    const conn = server({ role: 'client' });
    receive(conn, '81 05 48656c6c6f');
    assertEvents(conn, [{ type: 'text', data: 'Hello' }]);
  });

  test('a client fails on a masked frame with 1002 and its Close is masked', () => {
    const conn = server({ role: 'client' });
    receive(conn, '81 85 37fa213d 7f9f4d5158');
    const events = conn.takeEvents();
    assert.equal(events.length, 1);
    const event = events[0]!;
    assert.ok(event.type === 'error');
    assertProtocolError(event.error, {
      code: 'WS_ERR_MASKED_FRAME',
      message: 'MASK must be clear on frames from a server',
      closeCode: CloseCode.ProtocolError,
    });
    const [close] = conn.takeOutput();
    const reason = 'MASK must be clear on frames from a server';
    assert.equal(close!.subarray(0, 2).toString('hex'), (0x8880 | (2 + reason.length)).toString(16));
    const payload = Buffer.from(close!.subarray(6));
    for (let i = 0; i < payload.length; i++) payload[i] ^= close![2 + (i & 3)]!;
    assert.equal(payload.toString('hex'), '03ea' + Buffer.from(reason).toString('hex'));
  });

  test('a client that receives the server Close answers it and waits for the server to end TCP', () => {
    const conn = server({ role: 'client' });
    receive(conn, '88 02 03e8');
    assertEvents(conn, [{ type: 'close', code: 1000, reason: '' }]);
    const [echo] = conn.takeOutput();
    assert.equal(echo!.subarray(0, 2).toString('hex'), '8882');
    assert.equal(conn.state, ConnectionState.Closed);
    assert.equal(conn.endTransport, false);
  });
});

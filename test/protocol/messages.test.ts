// RFC 6455 §5.4 fragmentation and §5.6 data frames: messages reassembled from frames given as hex
// literals, empty messages and fragments, and text checked as UTF-8 fragment by fragment (§8.1,
// "fail fast"). Input frames are masked with 00000000 so their payload reads as plain hex; the
// unmasking itself is covered in framing.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { Utf8Validator, isValidUtf8 } from '../../src/protocol/utf8.js';
import {
  assertConnectionFailing,
  assertEvents,
  assertFrameSent,
  assertNothingSent,
  hex,
  type PlainEvent,
  receive,
  server,
  toHex,
} from '../helpers/protocol.js';

/** A masked frame with the zero key: `b0` is the first byte, the payload is given as hex. */
function frame(b0: number, payloadHex = ''): Buffer {
  const payload = hex(payloadHex);
  return Buffer.concat(encodeFrame(b0 & 0x0f, payload, { fin: (b0 & 0x80) !== 0, mask: hex('00000000') }));
}

// Lets one test force a garbage collection before it measures memory (not timing).
setFlagsFromString('--expose-gc');

const invalidUtf8Failure = {
  code: 'WS_ERR_INVALID_UTF8',
  message: 'invalid UTF-8 in a text message',
  closeCode: CloseCode.InvalidPayload,
} as const;

describe('5.4 Fragmentation', () => {
  test('"Hel" + "lo" in two frames is one text message, delivered when the last frame ends', () => {
    const conn = server();
    receive(conn, '01 83 00000000 48656c');
    assertEvents(conn, []);
    receive(conn, '80 82 00000000 6c6f');
    assertEvents(conn, [{ type: 'text', data: 'Hello' }]);
    assertNothingSent(conn);
  });

  test('a binary message in three fragments is reassembled in order', () => {
    const conn = server();
    receive(conn, '02 82 00000000 0102', '00 81 00000000 03', '80 83 00000000 040506');
    assertEvents(conn, [{ type: 'binary', data: '010203040506' }]);
  });

  test('messages in one frame and fragmented ones come out the same however the input is cut', () => {
    // A message in one frame whose payload is all in one read is handed out as that piece, with no
    // assembly; every other cut goes through the assembly. Both must give the same messages.
    const stream = hex(
      '82 84 00000000 01020304' + // binary, one frame
        '01 82 00000000 6869' + // text in two frames, a Ping between them
        '89 81 00000000 70' +
        '80 81 00000000 21' +
        '81 83 00000000 e29c93' + // text, one frame (a three-byte character)
        '82 80 00000000' + // an empty binary message
        '82 fe 0100 00000000' + 'ab'.repeat(256), // binary, one frame, 16-bit length
    );
    const expected: PlainEvent[] = [
      { type: 'binary', data: '01020304' },
      { type: 'ping', data: '70' },
      { type: 'text', data: 'hi!' },
      { type: 'text', data: '✓' },
      { type: 'binary', data: '' },
      { type: 'binary', data: 'ab'.repeat(256) },
    ];
    for (let cut = 0; cut <= stream.length; cut++) {
      const conn = server();
      receive(conn, stream.subarray(0, cut), stream.subarray(cut));
      assertEvents(conn, expected);
    }
  });

  test('a continuation frame with no message open fails with 1002', () => {
    const conn = server();
    receive(conn, '80 81 00000000 61');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_UNEXPECTED_CONTINUATION',
      message: 'continuation frame without a message to continue',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('a continuation frame after a complete message fails with 1002', () => {
    const conn = server();
    receive(conn, '81 81 00000000 61', '00 81 00000000 62');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_UNEXPECTED_CONTINUATION',
      message: 'continuation frame without a message to continue',
      closeCode: CloseCode.ProtocolError,
      before: [{ type: 'text', data: 'a' }],
    });
  });

  for (const [name, b0] of [
    ['text', '81'],
    ['binary', '02'],
  ] as const) {
    test(`a new ${name} frame while a fragmented message is open fails with 1002`, () => {
      const conn = server();
      receive(conn, '01 81 00000000 61', `${b0} 81 00000000 62`);
      assertConnectionFailing(conn, {
        code: 'WS_ERR_EXPECTED_CONTINUATION',
        message: 'new data frame while a fragmented message is open',
        closeCode: CloseCode.ProtocolError,
      });
    });
  }

  test('a ping between fragments is answered at once and the message goes on', () => {
    const conn = server();
    receive(conn, '01 82 00000000 6865', '89 82 00000000 7878', '80 83 00000000 6c6c6f');
    assertEvents(conn, [
      { type: 'ping', data: '7878' },
      { type: 'text', data: 'hello' },
    ]);
    assertFrameSent(conn, '8a 02 7878');
  });

  test('a pong between fragments is reported and the message goes on', () => {
    const conn = server();
    receive(conn, '02 81 00000000 01 8a 80 00000000 80 81 00000000 02');
    assertEvents(conn, [
      { type: 'pong', data: '' },
      { type: 'binary', data: '0102' },
    ]);
    assertNothingSent(conn);
  });

  test('a Close between fragments abandons the message and closes', () => {
    const conn = server();
    receive(conn, '01 81 00000000 61', '88 82 00000000 03e8', '80 81 00000000 62');
    assertEvents(conn, [{ type: 'close', code: CloseCode.Normal, reason: '' }]);
    assertFrameSent(conn, '88 02 03e8');
  });

  test('a fragmented message split into single bytes on the wire is reassembled', () => {
    const wire = hex('01 82 00000000 6162 89 81 00000000 7a 80 81 00000000 63');
    const conn = server();
    for (const b of wire) conn.receiveData(Buffer.of(b));
    assertEvents(conn, [
      { type: 'ping', data: '7a' },
      { type: 'text', data: 'abc' },
    ]);
    assertFrameSent(conn, '8a 01 7a');
  });

  test('empty fragments carry an empty message like any other', () => {
    const conn = server();
    receive(conn, '01 80 00000000', '00 80 00000000', '80 80 00000000');
    assertEvents(conn, [{ type: 'text', data: '' }]);
    receive(conn, '02 80 00000000', '80 80 00000000');
    assertEvents(conn, [{ type: 'binary', data: '' }]);
  });

  test('empty fragments around data do not change the message', () => {
    const conn = server();
    receive(conn, '02 80 00000000', '00 81 00000000 01', '00 80 00000000', '80 81 00000000 02');
    assertEvents(conn, [{ type: 'binary', data: '0102' }]);
  });

  test('a message of 100,000 empty fragments then 100,000 one-byte fragments is delivered whole', () => {
    // The memory a message in assembly holds is bounded by its bytes plus a constant, however
    // many fragments carry it: no fragment-count limit is needed (cf. ws, Autobahn 9.3 and 9.4).
    const empty = hex('00 80 00000000');
    const one = hex('00 81 00000000 61');
    const wire = Buffer.concat([
      hex('01 80 00000000'),
      Buffer.concat(Array.from({ length: 100_000 }, () => empty)),
      Buffer.concat(Array.from({ length: 100_000 }, () => one)),
      hex('80 80 00000000'),
    ]);
    const conn = server();
    // In reads of 4096 bytes, as a socket might hand them over.
    for (let i = 0; i < wire.length; i += 4096) conn.receiveData(wire.subarray(i, i + 4096));
    const events = conn.takeEvents();
    assert.equal(events.length, 1);
    const [event] = events;
    assert.ok(event?.type === 'text');
    assert.equal(event.data, 'a'.repeat(100_000));
    assertNothingSent(conn);
  });

  test('a message in assembly does not keep every read buffer alive, however many fragments it has', () => {
    // Each 1-byte fragment arrives in a read buffer of its own, 256 KiB large. Were every piece kept
    // as a view, the message would pin 1,000 such buffers (250 MiB); beyond a few dozen pieces the
    // connection copies them out, so the buffers can be collected. Measured after a forced GC.
    const gc = runInNewContext('gc') as () => void;
    const conn = server();
    const readSize = 256 * 1024;
    const before = (gc(), process.memoryUsage().arrayBuffers);
    for (let i = 0; i < 1000; i++) {
      const read = Buffer.from(new ArrayBuffer(readSize));
      hex(`${i === 0 ? '02' : '00'} 81 00000000 ${(i & 0xff).toString(16).padStart(2, '0')}`).copy(read);
      conn.receiveData(read.subarray(0, 7));
    }
    gc();
    const held = process.memoryUsage().arrayBuffers - before;
    assert.ok(held < 64 * 1024 * 1024, `${Math.round(held / 1048576)} MiB held for a 1000-byte message`);
    receive(conn, '80 80 00000000');
    const events = conn.takeEvents();
    assert.ok(events[0]?.type === 'binary');
    assert.deepEqual([...events[0].data], Array.from({ length: 1000 }, (_, i) => i & 0xff));
  });

  test('a 1-byte fragment message delivers the bytes as received, views or not', () => {
    const conn = server();
    const wire = Buffer.concat([
      frame(0x02, '00'),
      ...Array.from({ length: 199 }, (_, i) => frame(0x00, (i + 1).toString(16).padStart(2, '0'))),
      frame(0x80, ''),
    ]);
    conn.receiveData(wire);
    const events = conn.takeEvents();
    assert.equal(events.length, 1);
    assert.ok(events[0]?.type === 'binary');
    assert.deepEqual([...events[0].data], Array.from({ length: 200 }, (_, i) => i));
  });
});

describe('5.6 Data frames / UTF-8', () => {
  test('the text "0" is a message', () => {
    const conn = server();
    receive(conn, '81 81 00000000 30');
    assertEvents(conn, [{ type: 'text', data: '0' }]);
  });

  test('an empty text message and an empty binary message are delivered', () => {
    const conn = server();
    receive(conn, '81 80 00000000', '82 80 00000000');
    const events = conn.takeEvents();
    assert.deepEqual(events.map((e) => e.type), ['text', 'binary']);
    assert.equal(events[0]!.type === 'text' && events[0].data, '');
    assert.ok(events[1]!.type === 'binary' && Buffer.isBuffer(events[1].data) && events[1].data.length === 0);
  });

  test('binary payloads are not checked as UTF-8', () => {
    const conn = server();
    receive(conn, '82 84 00000000 c0afeda0');
    assertEvents(conn, [{ type: 'binary', data: 'c0afeda0' }]);
  });

  test('valid multi-byte UTF-8 is delivered as a string', () => {
    const conn = server();
    receive(conn, '81 8b 00000000 cebae1bdb9cf83cebcceb5', '81 84 00000000 f09f9880');
    assertEvents(conn, [
      { type: 'text', data: '\u03ba\u1f79\u03c3\u03bc\u03b5' }, // κόσμε, with U+1F79 as Autobahn 6.2 has it
      { type: 'text', data: '😀' },
    ]);
  });

  for (const [name, bytes] of [
    ['a lone continuation byte', '80'],
    ['an overlong 2-byte NUL (C0 80)', 'c080'],
    ['an overlong 3-byte form (E0 80 80)', 'e08080'],
    ['a surrogate (ED A0 80)', 'eda080'],
    ['a code point above U+10FFFF (F4 90 80 80)', 'f4908080'],
    ['the byte FF', 'ff'],
    ['a truncated sequence followed by ASCII (E2 82 41)', 'e28241'],
  ] as const) {
    test(`a text frame with ${name} fails with 1007`, () => {
      const conn = server();
      receive(conn, Buffer.concat([hex(`81 ${(0x80 | (bytes.length / 2 + 1)).toString(16).padStart(2, '0')} 00000000 61`), hex(bytes)]));
      assertConnectionFailing(conn, invalidUtf8Failure);
    });
  }

  test('a text message that ends inside a code point fails with 1007', () => {
    const conn = server();
    receive(conn, '81 82 00000000 e282');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_INVALID_UTF8',
      message: 'text message ends inside a UTF-8 sequence',
      closeCode: CloseCode.InvalidPayload,
    });
  });

  test('a code point split across three fragments is accepted', () => {
    const conn = server();
    receive(conn, '01 81 00000000 e2', '00 81 00000000 82', '80 81 00000000 ac');
    assertEvents(conn, [{ type: 'text', data: '€' }]);
  });

  test('a 4-byte code point split across reads inside one frame is accepted', () => {
    const conn = server();
    receive(conn, '81 86 00000000 61f0', '9f', '98', '8062');
    assertEvents(conn, [{ type: 'text', data: 'a😀b' }]);
  });

  test('fail fast: a fragmented text message fails with 1007 at its first invalid fragment, not at its end', () => {
    // Autobahn 6.4.1: a valid fragment, then one that can never be UTF-8; the last fragment never comes.
    const conn = server();
    receive(conn, '01 8b 00000000 cebae1bdb9cf83cebcceb5');
    assertEvents(conn, []);
    receive(conn, '00 84 00000000 f4908080');
    assertConnectionFailing(conn, invalidUtf8Failure);
  });

  test('fail fast: invalid bytes fail the message before the rest of their frame arrives', () => {
    // Autobahn 6.4.3/6.4.4: the frame announces 12 bytes; the invalid ones come in the first read.
    const conn = server();
    receive(conn, '81 8c 00000000 cebae1bdb9 f4');
    assertEvents(conn, []);
    receive(conn, '90');
    assertConnectionFailing(conn, invalidUtf8Failure);
  });

  test('fail fast: an invalid continuation after a lead byte held over from the previous fragment fails there', () => {
    const conn = server();
    receive(conn, '01 81 00000000 e0', '00 81 00000000 80');
    assertConnectionFailing(conn, invalidUtf8Failure);
  });
});

describe('Utf8Validator', () => {
  test('accepts a code point fed a byte at a time and reports the end only on a boundary', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('f0')), true);
    assert.equal(v.end(), false);
    assert.equal(v.write(hex('9f')), true);
    assert.equal(v.write(hex('98')), true);
    assert.equal(v.end(), false);
    assert.equal(v.write(hex('80')), true);
    assert.equal(v.end(), true);
  });

  test('stays failed after an invalid byte until reset', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('61 c0')), false);
    assert.equal(v.write(hex('61')), false);
    assert.equal(v.end(), false);
    v.reset();
    assert.equal(v.write(hex('61')), true);
    assert.equal(v.end(), true);
  });

  test('reset forgets a code point left open', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('e2 82')), true);
    v.reset();
    assert.equal(v.write(hex('61')), true);
    assert.equal(v.end(), true);
  });

  for (const [name, lead, bad] of [
    ['E0 needs A0-BF', 'e0', '9f'],
    ['ED needs 80-9F', 'ed', 'a0'],
    ['F0 needs 90-BF', 'f0', '8f'],
    ['F4 needs 80-8F', 'f4', '90'],
    ['C2 needs 80-BF', 'c2', 'c0'],
    ['F1 needs 80-BF', 'f1', '7f'],
  ] as const) {
    test(`the second byte is range-checked across pieces: ${name}`, () => {
      const v = new Utf8Validator();
      assert.equal(v.write(hex(lead)), true);
      assert.equal(v.write(hex(bad)), false);
    });
  }

  for (const lead of ['c0', 'c1', 'f5', 'f8', 'ff']) {
    test(`the byte ${lead} fails even as the last byte of a piece`, () => {
      assert.equal(new Utf8Validator().write(hex(`61 ${lead}`)), false);
    });
  }

  test('isValidUtf8 accepts the empty string and rejects a surrogate', () => {
    assert.equal(isValidUtf8(Buffer.alloc(0)), true);
    assert.equal(isValidUtf8(hex('eda080')), false);
    assert.equal(isValidUtf8(Buffer.from('κόσμε')), true);
  });
});

describe('5.6 sending data frames', () => {
  test('sendText and sendBinary queue one final frame each', () => {
    const conn = server();
    assert.equal(conn.sendText(''), true);
    assert.equal(conn.sendText('0'), true);
    assert.equal(conn.sendBinary(hex('0102')), true);
    assertFrameSent(conn, '81 00 81 01 30 82 02 0102');
  });

  test('sendTextBytes checks UTF-8 and sends the bytes as text', () => {
    const conn = server();
    assert.equal(conn.sendTextBytes(hex('e282ac')), true);
    assertFrameSent(conn, '81 03 e282ac');
    assert.throws(() => conn.sendTextBytes(hex('e282')), { name: 'TypeError', message: 'a text message must be valid UTF-8' });
    assertNothingSent(conn);
  });

  test('large messages use the 16- and 64-bit lengths and the payload follows its header', () => {
    const conn = server();
    const text = 'x'.repeat(70_000);
    conn.sendText(text);
    const out = Buffer.concat(conn.takeOutput());
    assert.equal(out.subarray(0, 10).toString('hex'), '817f0000000000011170');
    assert.equal(out.length, 10 + 70_000);
    assert.equal(out.subarray(10).toString(), text);
    const data = Buffer.alloc(20_000, 7);
    conn.sendBinary(data);
    const parts = conn.takeOutput();
    assert.equal(Buffer.concat(parts).subarray(0, 4).toString('hex'), '827e4e20');
    assert.equal(Buffer.concat(parts).length, 4 + 20_000);
    conn.sendText('y'.repeat(300));
    assert.equal(Buffer.concat(conn.takeOutput()).subarray(0, 5).toString('hex'), '817e012c79');
  });

  test('small frames queued one after another come out as one buffer per 16 KiB slab they fill, not one per frame', () => {
    const conn = server();
    for (let i = 0; i < 500; i++) {
      conn.sendBinary(Buffer.alloc(i % 40, i));
      conn.sendText('é'.repeat(i % 7));
    }
    const out = conn.takeOutput();
    // The rest of the slab in use, then as many 16 KiB slabs as the frames fill.
    const bytes = out.reduce((sum, b) => sum + b.length, 0);
    assert.ok(out.length <= 1 + Math.ceil(bytes / (16 * 1024)), `${out.length} buffers for 1000 frames of ${bytes} bytes`);
    for (let i = 1; i < out.length; i++) assert.notEqual(out[i]!.buffer, out[i - 1]!.buffer, `buffer ${i} is a new slab, not a gap in the same one`);
    let expected = '';
    for (let i = 0; i < 500; i++) {
      expected += toHex(encodeFrame(Opcode.Binary, Buffer.alloc(i % 40, i))) + toHex(encodeFrame(Opcode.Text, Buffer.from('é'.repeat(i % 7))));
    }
    assert.equal(toHex(out), expected, 'and each frame is as it was written, none overwritten');
  });

  test('a large payload queued between small frames keeps its place: the small frames before it go out before it', () => {
    const conn = server();
    const large = Buffer.alloc(20_000, 9);
    conn.sendText('a');
    conn.sendBinary(large);
    conn.sendText('b');
    conn.ping(hex('01'));
    const out = conn.takeOutput();
    // The Text frame and the large frame's header as one view, the payload as it was given, then the rest.
    assert.deepEqual(out.map((b) => b.length), [3 + 4, 20_000, 3 + 3]);
    assert.equal(out[1]!.buffer, large.buffer, 'the large payload is not copied');
    assert.equal(toHex(out), '8101' + '61' + '827e4e20' + large.toString('hex') + '8101' + '62' + '890101');
    assert.equal(conn.outputBytes, 0);
  });

  test('connections that cut frames from the slab in turn each take only their own, in order', () => {
    const a = server();
    const b = server();
    a.sendText('a1');
    b.sendText('b1');
    a.sendText('a2');
    b.sendBinary(hex('ff'));
    a.sendText('a3');
    assert.equal(a.outputBytes, 3 * 4);
    assert.equal(toHex(a.takeOutput()), '81026131' + '81026132' + '81026133');
    assert.equal(toHex(b.takeOutput()), '81026231' + '8201ff');
    a.sendText('a4');
    assert.equal(toHex(a.takeOutput()), '81026134', 'a frame queued after a take starts a new run');
  });

  test('takeQueuedBuffer takes what is queued when it is one buffer, and takes nothing otherwise', () => {
    const conn = server();
    assert.equal(conn.takeQueuedBuffer(), null, 'nothing queued');
    conn.sendText('a1');
    conn.sendBinary(hex('ff'));
    const run = conn.takeQueuedBuffer();
    assert.equal(run === null ? null : toHex(run), '81026131' + '8201ff', 'a run of small frames is one buffer');
    assert.equal(conn.outputBytes, 0);
    assert.deepEqual(conn.takeQueuedOutput(), []);
    // A large payload follows its header as a buffer of its own: two buffers, left for takeQueuedOutput.
    const large = Buffer.alloc(5000, 3);
    conn.sendBinary(large);
    assert.equal(conn.takeQueuedBuffer(), null);
    assert.equal(conn.outputBytes, 4 + 5000);
    assert.equal(toHex(conn.takeQueuedOutput()), '827e1388' + large.toString('hex'));
    // One large frame's own buffer (a text message over the slab's frames) is one buffer too.
    conn.sendText('z'.repeat(5000));
    const own = conn.takeQueuedBuffer();
    assert.equal(own === null ? null : toHex(own), '817e1388' + Buffer.from('z'.repeat(5000)).toString('hex'));
    assert.equal(conn.outputBytes, 0);
    conn.sendText('b');
    assert.equal(toHex(conn.takeQueuedOutput()), '810162', 'a frame queued after it starts anew');
  });

  test('outputBytes counts what is queued until it is taken', () => {
    const conn = server();
    conn.sendText('Hello');
    conn.sendBinary(hex('01'));
    assert.equal(conn.outputBytes, 7 + 3);
    conn.takeOutput();
    assert.equal(conn.outputBytes, 0);
  });

  test('the encoder round-trips a text frame the connection sent', () => {
    const conn = server();
    conn.sendText('Hello');
    assert.equal(Buffer.concat(conn.takeOutput()).toString('hex'), Buffer.concat(encodeFrame(Opcode.Text, Buffer.from('Hello'))).toString('hex'));
  });
});

describe('memory held by a message in assembly (docs/security.md)', () => {
  /** One 64 KiB read: `lead` first, then 125-byte Pings (answered, so nothing of them is kept) to fill it. */
  function read(lead: Buffer): Buffer {
    const ping = frame(0x89, '70'.repeat(125));
    const backing = Buffer.allocUnsafeSlow(64 * 1024);
    lead.copy(backing, 0);
    let used = lead.length;
    while (used + ping.length <= backing.length) used += ping.copy(backing, used);
    return backing.subarray(0, used);
  }

  // Root cause: a fragmented message kept its pieces as views into the reads that carried them,
  // and a view pins its whole read: sixty 1-byte fragments, each at the start of its own 64 KiB
  // read, held 3.75 MiB for a 60-byte message (40 such connections: +125 MiB of RSS).
  test('sixty 1-byte fragments, each in its own 64 KiB read, pinned 3.75 MiB; now the connection holds 60 bytes', () => {
    const conn = server();
    for (let i = 0; i < 60; i++) {
      receive(conn, read(frame(i === 0 ? 0x01 : 0x00, (0x41 + (i % 26)).toString(16))));
      const events = conn.takeEvents();
      assert.equal(events.length, 500, 'the Pings of each read were answered');
      conn.takeOutput();
      assert.ok(conn.retainedBytes <= 2 * (i + 1), `after fragment ${i + 1}: ${conn.retainedBytes} bytes held`);
    }
    assert.equal(conn.retainedBytes, 60, 'each piece copied out into a buffer of its own size');
    receive(conn, frame(0x80));
    const [message] = conn.takeEvents();
    assert.deepEqual(message, { type: 'text', data: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(3).slice(0, 60) });
    assert.equal(conn.retainedBytes, 0);
  });

  test('a Ping whose first byte ends a 64 KiB read is copied out of it; a piece that is most of its read stays a view', () => {
    const conn = server();
    const ping = frame(0x89, '71'.repeat(125));
    // The Ping's header and first payload byte end the first read; the rest comes in the next.
    const first = read(Buffer.alloc(0));
    const chunk = Buffer.allocUnsafeSlow(first.length + 7);
    first.copy(chunk);
    ping.copy(chunk, first.length, 0, 7);
    receive(conn, chunk);
    conn.takeEvents();
    conn.takeOutput();
    assert.equal(conn.retainedBytes, 1);
    receive(conn, ping.subarray(7));
    assert.deepEqual(conn.takeEvents().map((e) => [e.type, (e as { data: Buffer }).data.length]), [['ping', 125]]);
    assert.equal(conn.retainedBytes, 0);

    // A 48 KiB fragment that fills most of its read is kept as it is: no copy.
    const big = frame(0x02, '5a'.repeat(48 * 1024));
    receive(conn, big);
    assert.equal(conn.retainedBytes, big.buffer.byteLength);
  });
});

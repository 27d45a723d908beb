// RFC 6455 §5.2 base framing, §5.3 masking and the maxPayload limit: hex literals checked in both
// directions (these bytes parse to this frame; the encoder writes these bytes with a fixed mask),
// and every framing error with its class, code, message, close code and the Close frame it queues.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode, RSV1, RSV2, RSV3 } from '../../src/protocol/constants.js';
import { encodeFrame, frameHeaderLength, writeFrameHeader } from '../../src/protocol/frame.js';
import { applyMask } from '../../src/protocol/mask.js';
import { FrameParser } from '../../src/protocol/parser.js';
import {
  MASK,
  RecordingSink,
  assertConnectionFailing,
  assertEvents,
  assertFrameSent,
  assertNothingSent,
  assertProtocolError,
  hex,
  receive,
  server,
  toHex,
} from '../helpers/protocol.js';

/** Parses `input` as a server would, fed in the pieces given, and returns what the sink saw. */
function parse(...pieces: Array<string | Buffer>): RecordingSink {
  const sink = new RecordingSink();
  const parser = new FrameParser(sink);
  for (const piece of pieces) parser.push(typeof piece === 'string' ? hex(piece) : Buffer.from(piece));
  return sink;
}

function pattern(length: number): Buffer {
  const data = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) data[i] = i % 251;
  return data;
}

describe('5.2 Base framing', () => {
  test('the masked "Hello" of RFC 6455 §5.7 parses to a final text frame', () => {
    const sink = parse('81 85 37fa213d 7f9f4d5158');
    assert.deepEqual(sink.frames, [{ fin: true, rsv: 0, opcode: Opcode.Text, length: 5, data: '48656c6c6f' }]);
    assert.deepEqual(sink.errors, []);
  });

  test('the masked "Hello" parses the same when fed one byte at a time', () => {
    const bytes = hex('81 85 37fa213d 7f9f4d5158');
    const sink = parse(...[...bytes].map((b) => Buffer.of(b)));
    assert.deepEqual(sink.frames, [{ fin: true, rsv: 0, opcode: Opcode.Text, length: 5, data: '48656c6c6f' }]);
  });

  test('the §5.7 examples encode to the RFC bytes (server frames unmasked)', () => {
    const hello = Buffer.from('Hello');
    assert.equal(toHex(encodeFrame(Opcode.Text, hello)), '810548656c6c6f');
    assert.equal(toHex(encodeFrame(Opcode.Text, Buffer.from('Hel'), { fin: false })), '010348656c');
    assert.equal(toHex(encodeFrame(Opcode.Continuation, Buffer.from('lo'))), '80026c6f');
    assert.equal(toHex(encodeFrame(Opcode.Ping, hello)), '890548656c6c6f');
    assert.equal(toHex(encodeFrame(Opcode.Pong, hello, { mask: MASK })), '8a8537fa213d7f9f4d5158');
    assert.equal(toHex(encodeFrame(Opcode.Text, hello, { mask: MASK })), '818537fa213d7f9f4d5158');
    assert.equal(toHex(encodeFrame(Opcode.Binary, Buffer.alloc(256))[0]), '827e0100');
    assert.equal(toHex(encodeFrame(Opcode.Binary, Buffer.alloc(65536))[0]), '827f0000000000010000');
  });

  test('the encoder returns [header, payload] and masks a copy, never the caller bytes', () => {
    const payload = Buffer.from('Hello');
    const [header, body] = encodeFrame(Opcode.Text, payload, { mask: MASK });
    assert.equal(header.toString('hex'), '818537fa213d');
    assert.equal(body.toString('hex'), '7f9f4d5158');
    assert.equal(payload.toString(), 'Hello');
    const [, plain] = encodeFrame(Opcode.Binary, payload);
    assert.equal(plain.buffer, payload.buffer, 'an unmasked payload goes out as a view');
  });

  test('RSV bits given to the encoder stand in the first byte', () => {
    assert.equal(toHex(encodeFrame(Opcode.Text, Buffer.alloc(0), { rsv: RSV1 })), 'c100');
    assert.equal(toHex(encodeFrame(Opcode.Binary, Buffer.alloc(0), { rsv: RSV2 | RSV3, fin: false })), '3200');
  });

  for (const [length, header] of [
    [0, '82 80'],
    [125, '82 fd'],
    [126, '82 fe 007e'],
    [65535, '82 fe ffff'],
    [65536, '82 ff 0000000000010000'],
  ] as const) {
    test(`a masked ${length}-byte frame parses from its header ${header} and the encoder writes that header`, () => {
      const payload = pattern(length);
      const masked = Buffer.from(payload);
      applyMask(masked, MASK);
      const wire = Buffer.concat([hex(header), MASK, masked]);
      const sink = parse(wire);
      assert.equal(sink.frames.length, 1);
      assert.deepEqual({ ...sink.frames[0]!, data: '' }, { fin: true, rsv: 0, opcode: Opcode.Binary, length, data: '' });
      assert.equal(sink.frames[0]!.data, payload.toString('hex'));
      assert.equal(toHex(Buffer.concat(encodeFrame(Opcode.Binary, payload, { mask: MASK }))), wire.toString('hex'));
      assert.equal(frameHeaderLength(length, true), hex(header).length + 4);
    });
  }

  test('headers with 16- and 64-bit lengths parse when split at every byte', () => {
    const wire = Buffer.concat([hex('82 ff 0000000000010000 37fa213d'), Buffer.alloc(65536)]);
    for (let cut = 1; cut < 14; cut++) {
      const sink = parse(wire.subarray(0, cut), wire.subarray(cut));
      assert.equal(sink.frames.length, 1, `cut at ${cut}`);
      assert.equal(sink.frames[0]!.length, 65536);
    }
    const short = Buffer.concat([hex('81 fe 007e 00000000'), Buffer.alloc(126, 0x61)]);
    const sink = parse(...[...short.subarray(0, 8)].map((b) => Buffer.of(b)), short.subarray(8));
    assert.deepEqual(sink.frames.map((f) => f.length), [126]);
  });

  test('writeFrameHeader writes at an offset and returns the offset after the header', () => {
    const target = Buffer.alloc(20, 0xee);
    assert.equal(writeFrameHeader(target, 3, Opcode.Binary, 65535, true, 0), 7);
    assert.equal(target.subarray(0, 8).toString('hex'), 'eeeeee827effffee');
    assert.equal(writeFrameHeader(target, 1, Opcode.Text, 2 ** 32 + 5, false, RSV1, MASK), 15);
    assert.equal(target.subarray(0, 16).toString('hex'), 'ee41ff000000010000000537fa213dee');
  });

  test('two frames in one read and a frame split in the payload all parse', () => {
    const sink = parse('81 81 00000000 61 82 82 00000000', '0102 89 80 00000000');
    assert.deepEqual(sink.frames, [
      { fin: true, rsv: 0, opcode: Opcode.Text, length: 1, data: '61' },
      { fin: true, rsv: 0, opcode: Opcode.Binary, length: 2, data: '0102' },
      { fin: true, rsv: 0, opcode: Opcode.Ping, length: 0, data: '' },
    ]);
  });

  test('a sink that returns false from onFrameHeader stops the parser for good', () => {
    const sink = new RecordingSink({ stopAtHeader: 1 });
    const parser = new FrameParser(sink);
    parser.push(hex('81 81 00000000 61 81 81 00000000 62'));
    assert.equal(parser.stopped, true);
    assert.equal(parser.pending, false);
    parser.push(hex('81 81 00000000 63'));
    assert.deepEqual(sink.frames, []);
  });

  test('a sink that returns false from onFrameEnd pauses the parser, which resume() continues', () => {
    const sink = new RecordingSink({ pause: true });
    const parser = new FrameParser(sink);
    parser.push(hex('81 81 00000000 61 81 81 00000000 62'));
    assert.deepEqual(sink.frames.map((f) => f.data), ['61']);
    assert.equal(parser.pending, true);
    parser.resume();
    assert.deepEqual(sink.frames.map((f) => f.data), ['61', '62']);
    parser.resume();
    assert.equal(sink.frames.length, 2);
    parser.stop();
    parser.push(hex('81 81 00000000 63'));
    assert.equal(sink.frames.length, 2);
  });

  test('a client-role parser reads unmasked frames', () => {
    const sink = new RecordingSink();
    new FrameParser(sink, { role: 'client' }).push(hex('81 05 48656c6c6f'));
    assert.deepEqual(sink.frames, [{ fin: true, rsv: 0, opcode: Opcode.Text, length: 5, data: '48656c6c6f' }]);
  });

  test('RSV1 is accepted once an extension claims it (setAllowedRsv)', () => {
    const sink = new RecordingSink();
    const parser = new FrameParser(sink);
    parser.setAllowedRsv(RSV1);
    parser.push(hex('c1 80 00000000'));
    assert.deepEqual(sink.frames, [{ fin: true, rsv: RSV1, opcode: Opcode.Text, length: 0, data: '' }]);
    parser.push(hex('e1 80 00000000'));
    assertProtocolError(sink.errors[0], {
      code: 'WS_ERR_UNEXPECTED_RSV_2_3',
      message: 'RSV2 and RSV3 must be clear',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('an unmasked client frame fails the connection with 1002', () => {
    const conn = server();
    receive(conn, '81 05 48656c6c6f');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_UNMASKED_FRAME',
      message: 'MASK must be set on frames from a client',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('the Close frame of a failure has these exact bytes', () => {
    const conn = server();
    receive(conn, '81 05 48656c6c6f');
    assertFrameSent(conn, '88 2a 03ea' + Buffer.from('MASK must be set on frames from a client').toString('hex'));
  });

  test('RSV1 without a negotiated extension fails the connection with 1002', () => {
    const conn = server();
    receive(conn, 'c1 80 00000000');
    assertConnectionFailing(conn, { code: 'WS_ERR_UNEXPECTED_RSV_1', message: 'RSV1 must be clear', closeCode: CloseCode.ProtocolError });
  });

  for (const [name, b0] of [
    ['RSV2', 'a1'],
    ['RSV3', '91'],
    ['RSV2 and RSV3', 'b2'],
  ] as const) {
    test(`${name} set fails the connection with 1002`, () => {
      const conn = server();
      receive(conn, `${b0} 80 00000000`);
      assertConnectionFailing(conn, {
        code: 'WS_ERR_UNEXPECTED_RSV_2_3',
        message: 'RSV2 and RSV3 must be clear',
        closeCode: CloseCode.ProtocolError,
      });
    });
  }

  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    test(`reserved opcode 0x${opcode.toString(16)} fails the connection with 1002`, () => {
      const conn = server();
      receive(conn, `8${opcode.toString(16)} 80 00000000`);
      assertConnectionFailing(conn, {
        code: 'WS_ERR_INVALID_OPCODE',
        message: `invalid opcode ${opcode}`,
        closeCode: CloseCode.ProtocolError,
      });
    });
  }

  test('a 64-bit length with the most significant bit set fails with 1002 from the header alone', () => {
    const conn = server();
    receive(conn, '82 ff 8000000000000000');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_INVALID_PAYLOAD_LENGTH',
      message: 'the most significant bit of a 64-bit payload length is set',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('a 64-bit length of 2^63-1 fails with 1009 from the header alone, before a mask or payload byte', () => {
    const conn = server();
    receive(conn, '82 ff 7fffffffffffffff');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_PAYLOAD_TOO_BIG',
      message: 'frame payload length over 2^53 bytes',
      closeCode: CloseCode.MessageTooBig,
    });
  });

  // Found by pef-ws fuzz: the frame broke §5.4 at its first byte, yet the server closed with 1009
  // for its length, read later; our oracle (and fail-fast) expects the first violation, 1002.
  test('a data frame inside a fragmented message fails with 1002 at its first two bytes, before a 64-bit length over 2^53', () => {
    const conn = server();
    receive(conn, '01 81 00000000 61'); // a text message begun, not finished
    receive(conn, '81 ff 4e80007f'); // a new text frame: §5.4 is broken before the length is complete
    assertConnectionFailing(conn, {
      code: 'WS_ERR_EXPECTED_CONTINUATION',
      message: 'new data frame while a fragmented message is open',
      closeCode: CloseCode.ProtocolError,
    });
  });

  test('a 64-bit length of 2^53 fails in the parser; 2^53-1 reaches the message limit', () => {
    const sink = parse('82 ff 0020000000000000');
    assertProtocolError(sink.errors[0], {
      code: 'WS_ERR_PAYLOAD_TOO_BIG',
      message: 'frame payload length over 2^53 bytes',
      closeCode: CloseCode.MessageTooBig,
    });
    const conn = server();
    receive(conn, '82 ff 001fffffffffffff 00000000');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_PAYLOAD_TOO_BIG',
      message: 'message over the limit of 1048576 bytes',
      closeCode: CloseCode.MessageTooBig,
    });
  });

  test('a parser error is reported once and the parser discards what follows', () => {
    const sink = new RecordingSink();
    const parser = new FrameParser(sink);
    parser.push(hex('81 05 48656c6c6f 81 05 48656c6c6f'));
    assert.equal(sink.errors.length, 1);
    assert.equal(parser.stopped, true);
    parser.push(hex('81 81 00000000 61'));
    assert.equal(sink.errors.length, 1);
    assert.deepEqual(sink.frames, []);
  });
});

describe('5.3 Masking', () => {
  test('masking "Hello" with 37fa213d gives the bytes of RFC 6455 §5.7 and is its own inverse', () => {
    const data = Buffer.from('Hello');
    assert.equal(applyMask(data, MASK), 1);
    assert.equal(data.toString('hex'), '7f9f4d5158');
    applyMask(data, MASK);
    assert.equal(data.toString(), 'Hello');
  });

  test('a payload unmasked in pieces carries the mask phase from piece to piece', () => {
    const data = hex('7f9f4d5158');
    let phase = applyMask(data.subarray(0, 2), MASK, 0);
    assert.equal(phase, 2);
    phase = applyMask(data.subarray(2), MASK, phase);
    assert.equal(phase, 1);
    assert.equal(data.toString(), 'Hello');
  });

  test('the masked payload is unmasked whatever the read boundaries inside it', () => {
    const payload = pattern(300);
    const wire = Buffer.concat(encodeFrame(Opcode.Binary, payload, { mask: MASK }));
    for (const cut of [9, 10, 11, 13, 50, 51, 200]) {
      const sink = parse(wire.subarray(0, cut), wire.subarray(cut, cut + 37), wire.subarray(cut + 37));
      assert.equal(sink.frames[0]!.data, payload.toString('hex'), `cut at ${cut}`);
    }
  });

  test('a server never masks what it sends', () => {
    const conn = server();
    conn.sendText('Hello');
    conn.sendBinary(Buffer.from('Hello'));
    conn.ping(Buffer.from('Hello'));
    conn.pong();
    assertFrameSent(conn, '81 05 48656c6c6f 82 05 48656c6c6f 89 05 48656c6c6f 8a 00');
  });
});

describe('limits (maxPayload)', () => {
  test('a frame at the limit is accepted', () => {
    const conn = server({ maxPayload: 5 });
    receive(conn, '81 85 37fa213d 7f9f4d5158');
    assertEvents(conn, [{ type: 'text', data: 'Hello' }]);
    assertNothingSent(conn);
  });

  test('a frame over the limit fails with 1009 from its header, before any payload arrives', () => {
    const conn = server({ maxPayload: 5 });
    receive(conn, '82 86 37fa213d');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_PAYLOAD_TOO_BIG',
      message: 'message over the limit of 5 bytes',
      closeCode: CloseCode.MessageTooBig,
    });
  });

  test('the limit counts the whole message across its fragments, checked at each header', () => {
    const conn = server({ maxPayload: 5 });
    receive(conn, '01 83 00000000 616263', '89 80 00000000', '00 82 00000000 6465');
    assertEvents(conn, [{ type: 'ping', data: '' }]);
    assertFrameSent(conn, '8a 00');
    receive(conn, '80 81 00000000');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_PAYLOAD_TOO_BIG',
      message: 'message over the limit of 5 bytes',
      closeCode: CloseCode.MessageTooBig,
    });
  });

  test('the count starts over with each message', () => {
    const conn = server({ maxPayload: 3 });
    receive(conn, '01 82 00000000 6162', '80 81 00000000 63', '81 83 00000000 646566');
    assertEvents(conn, [
      { type: 'text', data: 'abc' },
      { type: 'text', data: 'def' },
    ]);
  });

  test('the default limit is 1 MiB: a 1 MiB header is accepted, one byte more fails', () => {
    const ok = server();
    receive(ok, '82 ff 0000000000100000 00000000 00');
    assert.deepEqual(ok.takeEvents(), []);
    assert.equal(ok.failure, null);
    const over = server();
    receive(over, '82 ff 0000000000100001 00000000');
    assertConnectionFailing(over, {
      code: 'WS_ERR_PAYLOAD_TOO_BIG',
      message: 'message over the limit of 1048576 bytes',
      closeCode: CloseCode.MessageTooBig,
    });
  });

  test('control frames do not count towards the message limit', () => {
    const conn = server({ maxPayload: 2 });
    receive(conn, '01 82 00000000 6162', '89 85 37fa213d 7f9f4d5158', '80 80 00000000');
    assertEvents(conn, [
      { type: 'ping', data: '48656c6c6f' },
      { type: 'text', data: 'ab' },
    ]);
  });
});

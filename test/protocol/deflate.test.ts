// permessage-deflate messages (RFC 7692 §7.2): the worked examples of §7.2.3 byte for byte in both
// directions, context takeover, the threshold, failures (1002, 1007, 1009) and the memory kept.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { CloseCode, Opcode, RSV1 } from '../../src/protocol/constants.js';
import { Connection, type ConnectionEvent } from '../../src/protocol/connection.js';
import { PerMessageDeflate, deflateMemory, type DeflateParams } from '../../src/protocol/deflate.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { encodeFrame } from '../../src/protocol/frame.js';

const MASK = Buffer.from('37fa213d', 'hex');

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function params(overrides: Partial<DeflateParams> = {}): DeflateParams {
  return {
    ownWindowBits: 15,
    ownNoContextTakeover: false,
    peerWindowBits: 15,
    peerNoContextTakeover: false,
    threshold: 0,
    level: 6,
    memLevel: 8,
    ...overrides,
  };
}

/** A frame as a client sends it: masked, with the bits given. */
function clientFrame(opcode: number, payload: Uint8Array, rsv = 0, fin = true): Buffer {
  return Buffer.concat(encodeFrame(opcode, payload, { fin, rsv, mask: MASK }));
}

function events(conn: Connection): ConnectionEvent[] {
  return conn.takeEvents();
}

function assertFailed(conn: Connection, code: string, closeCode: number, message: string | RegExp): void {
  const all = events(conn);
  const last = all[all.length - 1];
  assert.ok(last !== undefined && last.type === 'error', 'the connection failed');
  assert.ok(last.error instanceof ProtocolError);
  assert.equal(last.error.code, code);
  assert.equal(last.error.closeCode, closeCode);
  if (typeof message === 'string') assert.equal(last.error.message, message);
  else assert.match(last.error.message, message);
  // The Close frame sent carries the same code (§7.1.7).
  const out = Buffer.concat(conn.takeOutput());
  assert.equal(out[0], 0x88);
  assert.equal(out.readUInt16BE(2), closeCode);
}

describe('RFC 7692 §7.2.3 worked examples, received', () => {
  test('§7.2.3.1: a compressed "Hello" in one frame (c1 07 f2 48 cd c9 c9 07 00) is received as "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 48 cd c9 c9 07 00'), RSV1));
    assert.deepEqual(events(conn), [{ type: 'text', data: 'Hello' }]);
  });

  test('§7.2.3.1: the same payload in two fragments (41 03 f2 48 cd, 80 04 c9 c9 07 00) is received as "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 48 cd'), RSV1, false));
    conn.receiveData(clientFrame(Opcode.Continuation, hex('c9 c9 07 00')));
    assert.deepEqual(events(conn), [{ type: 'text', data: 'Hello' }]);
  });

  test('§7.2.3.2: a second "Hello" sharing the sliding window (f2 00 11 00 00) is received as "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 48 cd c9 c9 07 00'), RSV1));
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 00 11 00 00'), RSV1));
    assert.deepEqual(events(conn), [
      { type: 'text', data: 'Hello' },
      { type: 'text', data: 'Hello' },
    ]);
  });

  test('§7.2.3.2: without client context takeover, a reference into the previous message fails with 1007', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params({ peerNoContextTakeover: true })) });
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 48 cd c9 c9 07 00'), RSV1));
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 00 11 00 00'), RSV1));
    const all = events(conn);
    assert.deepEqual(all[0], { type: 'text', data: 'Hello' });
    conn.takeOutput();
    conn.receiveData(Buffer.alloc(0));
    const failure = all[1];
    assert.ok(failure?.type === 'error');
    assert.equal(failure.error.code, 'WS_ERR_INFLATE_FAILED');
    assert.equal(failure.error.closeCode, CloseCode.InvalidPayload);
    assert.equal(failure.error.message, 'compressed message does not inflate: invalid distance too far back');
  });

  test('§7.2.3.3: a DEFLATE block with no compression (00 05 00 fa ff "Hello" 00) is received as "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('00 05 00 fa ff 48 65 6c 6c 6f 00'), RSV1));
    assert.deepEqual(events(conn), [{ type: 'text', data: 'Hello' }]);
  });

  test('§7.2.3.4: a DEFLATE block with BFINAL set (f3 48 cd c9 c9 07 00 00) is received as "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('f3 48 cd c9 c9 07 00 00'), RSV1));
    assert.deepEqual(events(conn), [{ type: 'text', data: 'Hello' }]);
  });

  test('§7.2.3.5: two DEFLATE blocks in one message (f2 48 05 00 00 00 ff ff ca c9 c9 07 00) are received as "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Binary, hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00'), RSV1));
    assert.deepEqual(events(conn).map((e) => e.type === 'binary' && e.data.toString('latin1')), ['Hello']);
  });

  test('§7.2.3.6: an empty compressed message (00) is received as an empty text message', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('00'), RSV1));
    conn.receiveData(clientFrame(Opcode.Text, Buffer.alloc(0), RSV1));
    assert.deepEqual(events(conn), [
      { type: 'text', data: '' },
      { type: 'text', data: '' },
    ]);
  });
});

describe('RFC 7692 §7.2.3 worked examples, sent', () => {
  test('§7.2.3.1: "Hello" compresses to f2 48 cd c9 c9 07 00, the trailing 00 00 ff ff removed', () => {
    const ext = new PerMessageDeflate(params());
    assert.equal(ext.compress(Buffer.from('Hello')).toString('hex'), 'f248cdc9c90700');
  });

  test('§7.2.3.2: with context takeover the second "Hello" compresses to f2 00 11 00 00', () => {
    const ext = new PerMessageDeflate(params());
    const first = ext.compress(Buffer.from('Hello'));
    ext.commit(Buffer.from('Hello'));
    assert.equal(first.toString('hex'), 'f248cdc9c90700');
    assert.equal(ext.compress(Buffer.from('Hello')).toString('hex'), 'f200110000');
  });

  test('§7.2.3.2: without server context takeover the second "Hello" compresses like the first', () => {
    const before = deflateMemory();
    const ext = new PerMessageDeflate(params({ ownNoContextTakeover: true }));
    ext.commit(Buffer.from('Hello'));
    assert.equal(ext.compress(Buffer.from('Hello')).toString('hex'), 'f248cdc9c90700');
    assert.deepEqual(deflateMemory(), before);
  });

  test('§7.2.3.3: at level 0 "Hello" goes in a block with no compression: 00 05 00 fa ff 48 65 6c 6c 6f 00', () => {
    const ext = new PerMessageDeflate(params({ level: 0 }));
    assert.equal(ext.compress(Buffer.from('Hello')).toString('hex'), '000500faff48656c6c6f00');
  });

  test('§7.2.3.4: the sender never sets BFINAL (the first block header bit is 0)', () => {
    const ext = new PerMessageDeflate(params());
    for (const text of ['Hello', '', 'x'.repeat(100_000)]) {
      assert.equal(ext.compress(Buffer.from(text))[0]! & 1, 0);
    }
  });

  test('§7.2.3.6: an empty message compresses to the single byte 00', () => {
    const ext = new PerMessageDeflate(params());
    assert.equal(ext.compress(Buffer.alloc(0)).toString('hex'), '00');
  });

  test('a server sends a message over the threshold as one frame with RSV1: c1, length, compressed payload', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params({ threshold: 10 })) });
    const text = 'Hello, Hello, Hello, Hello';
    conn.sendText(text);
    const expected = deflateRawSync(Buffer.from(text), { finishFlush: 2 }).subarray(0, -4);
    assert.equal(Buffer.concat(conn.takeOutput()).toString('hex'), 'c1' + expected.length.toString(16).padStart(2, '0') + expected.toString('hex'));
  });

  test('a message under the threshold goes uncompressed: 81 05 "Hello"', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params({ threshold: 6 })) });
    conn.sendText('Hello');
    assert.equal(Buffer.concat(conn.takeOutput()).toString('hex'), '810548656c6c6f');
  });

  test('a message compression would not shrink goes uncompressed and stays out of the history', () => {
    const ext = new PerMessageDeflate(params());
    const conn = new Connection({ extension: ext });
    conn.sendText('Hello'); // 7 compressed bytes for 5
    assert.equal(Buffer.concat(conn.takeOutput()).toString('hex'), '810548656c6c6f');
    // Still the first message of the compressed stream: no back reference to the uncompressed one.
    assert.equal(ext.compress(Buffer.from('Hello')).toString('hex'), 'f248cdc9c90700');
  });

  test('send with compress false skips compression of a message over the threshold', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.sendBinary(Buffer.alloc(200), false);
    const out = Buffer.concat(conn.takeOutput());
    assert.equal(out.subarray(0, 2).toString('hex'), '827e');
    assert.equal(out.readUInt16BE(2), 200);
  });
});

describe('failures of compressed messages', () => {
  test('RSV1 on a frame when permessage-deflate was not negotiated fails with 1002', () => {
    const conn = new Connection();
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 48 cd c9 c9 07 00'), RSV1));
    const all = events(conn);
    assert.equal(all.length, 1);
    assert.ok(all[0]!.type === 'error');
    assert.equal(all[0].error.closeCode, CloseCode.ProtocolError);
  });

  test('RSV1 on a continuation frame fails with 1002 WS_ERR_UNEXPECTED_RSV_1', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Text, hex('f2 48 cd'), RSV1, false));
    conn.receiveData(clientFrame(Opcode.Continuation, hex('c9 c9 07 00'), RSV1));
    assertFailed(conn, 'WS_ERR_UNEXPECTED_RSV_1', CloseCode.ProtocolError, 'RSV1 must be clear on continuation frames');
  });

  test('RSV1 on a Ping fails with 1002 WS_ERR_UNEXPECTED_RSV_1', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Ping, Buffer.alloc(0), RSV1));
    assertFailed(conn, 'WS_ERR_UNEXPECTED_RSV_1', CloseCode.ProtocolError, 'RSV1 must be clear on control frames');
  });

  test('a payload that is not DEFLATE data fails with 1007 WS_ERR_INFLATE_FAILED', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    conn.receiveData(clientFrame(Opcode.Binary, hex('ff ff ff ff'), RSV1));
    assertFailed(conn, 'WS_ERR_INFLATE_FAILED', CloseCode.InvalidPayload, 'compressed message does not inflate: invalid block type');
  });

  test('compressed text that inflates to invalid UTF-8 fails with 1007 WS_ERR_INVALID_UTF8', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()) });
    const payload = deflateRawSync(hex('48 65 ff 6c'), { finishFlush: 2 }).subarray(0, -4);
    conn.receiveData(clientFrame(Opcode.Text, payload, RSV1));
    assertFailed(conn, 'WS_ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in a text message');
  });

  test('a bomb (10 KB inflating to 10 MiB) fails with 1009 once maxPayload bytes are out, and keeps no window', () => {
    const before = deflateMemory();
    const ext = new PerMessageDeflate(params());
    const conn = new Connection({ extension: ext, maxPayload: 1024 * 1024 });
    const bomb = deflateRawSync(Buffer.alloc(10 * 1024 * 1024), { finishFlush: 2 }).subarray(0, -4);
    assert.ok(bomb.length < 11_000, `bomb is ${bomb.length} bytes`);
    conn.receiveData(clientFrame(Opcode.Binary, bomb, RSV1));
    assertFailed(conn, 'WS_ERR_PAYLOAD_TOO_BIG', CloseCode.MessageTooBig, 'message over the limit of 1048576 bytes');
    assert.deepEqual(deflateMemory(), before);
  });

  test('a message that inflates to exactly maxPayload bytes is accepted', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()), maxPayload: 4096 });
    const payload = deflateRawSync(Buffer.alloc(4096, 0x61), { finishFlush: 2 }).subarray(0, -4);
    conn.receiveData(clientFrame(Opcode.Text, payload, RSV1));
    assert.deepEqual(events(conn), [{ type: 'text', data: 'a'.repeat(4096) }]);
  });

  test('a message that inflates to maxPayload + 1 bytes fails with 1009', () => {
    const conn = new Connection({ extension: new PerMessageDeflate(params()), maxPayload: 4096 });
    const payload = deflateRawSync(Buffer.alloc(4097, 0x61), { finishFlush: 2 }).subarray(0, -4);
    conn.receiveData(clientFrame(Opcode.Text, payload, RSV1));
    assertFailed(conn, 'WS_ERR_PAYLOAD_TOO_BIG', CloseCode.MessageTooBig, 'message over the limit of 4096 bytes');
  });

  test('a peer that uses a window larger than agreed fails with 1007', () => {
    // client_max_window_bits=8 agreed; the peer refers 1000 bytes back.
    const conn = new Connection({ extension: new PerMessageDeflate(params({ peerWindowBits: 8 })) });
    let seed = 1;
    const text = Buffer.from(Array.from({ length: 1000 }, () => 0x61 + ((seed = (seed * 48271) % 0x7fffffff) % 26)));
    const first = deflateRawSync(text, { finishFlush: 2 }).subarray(0, -4);
    const second = deflateRawSync(text.subarray(0, 40), { finishFlush: 2, dictionary: text }).subarray(0, -4);
    conn.receiveData(clientFrame(Opcode.Text, first, RSV1));
    conn.receiveData(clientFrame(Opcode.Text, second, RSV1));
    const all = events(conn);
    assert.equal(all[0]?.type, 'text');
    assert.ok(all[1]?.type === 'error');
    assert.equal(all[1].error.code, 'WS_ERR_INFLATE_FAILED');
    assert.equal(all[1].error.closeCode, CloseCode.InvalidPayload);
  });
});

describe('window bits', () => {
  test('a window of 8 bits compresses with matches at most 256 bytes back, read by an 8-bit inflater', () => {
    const sender = new PerMessageDeflate(params({ ownWindowBits: 8 }));
    const receiver = new PerMessageDeflate(params({ peerWindowBits: 8 }));
    const text = Buffer.from(Array.from({ length: 300 }, (_, i) => `line ${i % 37} of the log; `).join(''));
    for (let i = 0; i < 5; i++) {
      const wire = sender.encode(text);
      assert.ok(wire !== null && wire.length < text.length);
      assert.deepEqual(receiver.decode(wire, 1 << 20), text);
    }
  });

  test('each window size from 8 to 15 round-trips with context takeover', () => {
    const text = Buffer.from('The quick brown fox jumps over the lazy dog. '.repeat(200));
    for (let bits = 8; bits <= 15; bits++) {
      const sender = new PerMessageDeflate(params({ ownWindowBits: bits }));
      const receiver = new PerMessageDeflate(params({ peerWindowBits: bits }));
      for (let i = 0; i < 3; i++) {
        const wire = sender.encode(text.subarray(i * 7));
        assert.ok(wire !== null);
        assert.deepEqual(receiver.decode(wire, 1 << 20), text.subarray(i * 7), `window bits ${bits}`);
      }
      sender.dispose();
      receiver.dispose();
    }
  });
});

describe('memory', () => {
  test('1,000 connections without context takeover keep no window after a message each way', () => {
    const start = deflateMemory();
    const conns: Connection[] = [];
    const payload = deflateRawSync(Buffer.from('hello '.repeat(50)), { finishFlush: 2 }).subarray(0, -4);
    for (let i = 0; i < 1000; i++) {
      const conn = new Connection({
        extension: new PerMessageDeflate(params({ ownNoContextTakeover: true, peerNoContextTakeover: true })),
      });
      conn.receiveData(clientFrame(Opcode.Text, payload, RSV1));
      assert.equal(conn.takeEvents()[0]?.type, 'text');
      conn.sendText('hello '.repeat(50));
      assert.equal(conn.takeOutput()[0]![0], 0xc1);
      conns.push(conn);
    }
    assert.deepEqual(deflateMemory(), start);
    for (const conn of conns) conn.receiveEof();
    assert.deepEqual(deflateMemory(), start);
  });

  test('1,000 connections with context takeover keep two windows each, all freed when their transport ends', () => {
    const start = deflateMemory();
    const conns: Connection[] = [];
    const payload = deflateRawSync(Buffer.from('hello '.repeat(50)), { finishFlush: 2 }).subarray(0, -4);
    for (let i = 0; i < 1000; i++) {
      const conn = new Connection({ extension: new PerMessageDeflate(params({ ownWindowBits: 12, peerWindowBits: 12 })) });
      conn.receiveData(clientFrame(Opcode.Text, payload, RSV1));
      conn.takeEvents();
      conn.sendText('hello '.repeat(50));
      conn.takeOutput();
      conns.push(conn);
    }
    // Each window holds 300 bytes so far, in the smallest allocation (1 KiB).
    assert.deepEqual(deflateMemory(), { windows: start.windows + 2000, bytes: start.bytes + 2000 * 1024 });
    for (const conn of conns) conn.receiveEof();
    assert.deepEqual(deflateMemory(), start);
  });

  test('no window exists before the first message, and a window never grows past 2^bits bytes', () => {
    const start = deflateMemory();
    const ext = new PerMessageDeflate(params({ ownWindowBits: 10 }));
    assert.deepEqual(deflateMemory(), start);
    ext.encode(Buffer.alloc(5000, 0x61));
    assert.deepEqual(deflateMemory(), { windows: start.windows + 1, bytes: start.bytes + 1024 });
    ext.dispose();
    ext.dispose();
    assert.deepEqual(deflateMemory(), start);
  });
});

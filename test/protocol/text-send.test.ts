// Sending text (Connection.sendText): the frame is the string's UTF-8 behind the right header at
// every length class, however the string is encoded (one pass into scratch, or measured first when
// long); and the string last handed out in a text event goes back as the very bytes it came in
// (the echo, relay and broadcast case), until the I/O layer says the read is handled.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode } from '../../src/protocol/constants.js';
import type { Connection } from '../../src/protocol/connection.js';
import { type DeflateParams, PerMessageDeflate } from '../../src/protocol/deflate.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { clientFrame, server, toHex } from '../helpers/protocol.js';

/** The unmasked server frame that carries `text`. */
function textFrame(text: string): string {
  return toHex(encodeFrame(Opcode.Text, Buffer.from(text, 'utf8')));
}

/** Feeds `reads`, checks that they make the text message `text`, sends it back and returns what was queued (checked to be its frame). */
function echoReads(conn: Connection, reads: readonly Buffer[], text: string): Buffer[] {
  for (const read of reads) conn.receiveData(read);
  const event = conn.nextEvent();
  assert.ok(event?.type === 'text');
  assert.equal(event.data, text);
  conn.sendText(event.data);
  const output = conn.takeOutput();
  assert.equal(toHex(output), textFrame(text));
  return output;
}

/** Feeds one client text frame (a fresh buffer, as a socket read is) and returns the string handed out and the read. */
function receiveText(conn: Connection, text: string): { data: string; read: Buffer } {
  const read = clientFrame(Opcode.Text, text);
  conn.receiveData(read);
  const event = conn.nextEvent();
  assert.ok(event?.type === 'text');
  return { data: event.data, read };
}

describe('sendText', () => {
  test('the frame is the UTF-8 behind the right header at every length class', () => {
    const conn = server();
    for (const units of [0, 1, 41, 42, 125, 126, 4095, 21_845, 21_846, 65_535, 65_536, 262_144, 262_145, 400_000]) {
      for (const unit of ['a', 'é', '✓', '😀']) {
        const text = unit.repeat(Math.ceil(units / unit.length)).slice(0, units);
        conn.sendText(text);
        assert.equal(toHex(conn.takeOutput()), textFrame(text), `${units} UTF-16 units of ${JSON.stringify(unit)}`);
      }
    }
  });

  test('a lone surrogate is sent as U+FFFD (what Buffer.from does), never as invalid UTF-8', () => {
    const conn = server();
    conn.sendText('a\ud800b');
    assert.equal(toHex(conn.takeOutput()), textFrame('a\ufffdb'));
  });
});

describe('sending back the text just received', () => {
  test('the received bytes go out again: the payload is a view of the read, not a new encoding', () => {
    const conn = server();
    const text = 'café ✓ '.repeat(2000); // over the 4 KiB from which payloads follow their header as views
    const { data, read } = receiveText(conn, text);
    conn.sendText(data);
    const output = conn.takeOutput();
    assert.equal(toHex(output), textFrame(text));
    assert.equal(output.length, 2);
    assert.equal(output[1]!.buffer, read.buffer, 'the payload is the unmasked input');
  });

  test('small text: the same bytes, copied behind the header', () => {
    const conn = server();
    const { data } = receiveText(conn, 'hé');
    conn.sendText(data);
    assert.equal(toHex(conn.takeOutput()), textFrame('hé'));
  });

  test('another string of the same length is encoded itself', () => {
    const conn = server();
    const text = 'ü'.repeat(3000);
    const { data, read } = receiveText(conn, text);
    const other = 'ö'.repeat(3000);
    conn.sendText(other);
    const output = conn.takeOutput();
    assert.equal(toHex(output), textFrame(other));
    assert.notEqual(output[output.length - 1]!.buffer, read.buffer);
    conn.sendText(data);
    assert.equal(toHex(conn.takeOutput()), textFrame(text));
  });

  test('after forgetReceived the string is encoded again, to the same bytes, and the read is not kept', () => {
    const conn = server();
    const text = 'x✓'.repeat(3000);
    const { data, read } = receiveText(conn, text);
    conn.forgetReceived();
    conn.sendText(data);
    const output = conn.takeOutput();
    assert.equal(toHex(output), textFrame(text));
    for (const piece of output) assert.notEqual(piece.buffer, read.buffer);
  });

  test('a later message replaces the remembered one', () => {
    const conn = server();
    const first = receiveText(conn, 'first message ✓'.repeat(300));
    const second = receiveText(conn, 'second ✓');
    conn.sendText(first.data);
    conn.sendText(second.data);
    assert.equal(toHex(conn.takeOutput()), textFrame('first message ✓'.repeat(300)) + textFrame('second ✓'));
  });

  test('with permessage-deflate the received bytes are compressed as the string would be', () => {
    const params: DeflateParams = { ownWindowBits: 15, peerWindowBits: 15, ownNoContextTakeover: true, peerNoContextTakeover: true, threshold: 0, level: 6, memLevel: 8 };
    const conn = server({ extension: new PerMessageDeflate(params) });
    const text = '{"k":"välue ✓"}'.repeat(500);
    const { data } = receiveText(conn, text);
    conn.sendText(data);
    const echoed = Buffer.concat(conn.takeOutput());
    const fresh = server({ extension: new PerMessageDeflate(params) });
    fresh.sendText(text);
    assert.equal(echoed.toString('hex'), Buffer.concat(fresh.takeOutput()).toString('hex'));
  });

  test('large text that came in several reads is handed out whole and sent back as those reads, never joined', () => {
    const conn = server();
    const text = 'ab✓😀'.repeat(20_000); // 200,000 bytes, over the 64 KiB from which text stays in pieces
    const frame = clientFrame(Opcode.Text, text);
    // Cut inside code points: 4-byte and 3-byte characters straddle the reads.
    const cuts = [20, 65_539, 131_070, frame.length]; // the header is 14 bytes: every read carries payload
    const reads: Buffer[] = [];
    let from = 0;
    for (const cut of cuts) {
      // Each read its own ArrayBuffer, as a socket read is (Buffer.from would take the small first
      // one from Node's 8 KiB pool, and a 6-byte piece of an 8 KiB buffer is copied out, not kept).
      const read = Buffer.alloc(cut - from);
      frame.copy(read, 0, from, cut);
      reads.push(read);
      from = cut;
    }
    const output = echoReads(conn, reads, text);
    assert.deepEqual(
      output.slice(1).map((piece) => reads.indexOf(reads.find((read) => read.buffer === piece.buffer)!)),
      [0, 1, 2, 3],
      'each payload piece is a view of its read',
    );
  });

  test('text under 64 KiB in one frame over several reads is unmasked into one buffer, and sent back as that buffer', () => {
    const conn = server();
    const text = 'ab✓😀'.repeat(5_000); // 50,000 bytes
    const frame = clientFrame(Opcode.Text, text);
    const reads = [frame.subarray(0, 20), frame.subarray(20, 30_001), frame.subarray(30_001)].map((read) => Buffer.from(read));
    const output = echoReads(conn, reads, text);
    assert.equal(output.length, 2, 'the header and the payload as one buffer');
    assert.ok(reads.every((read) => read.buffer !== output[1]!.buffer));
  });

  test('with decodeText: false, large text in one frame over several reads is one buffer of its own', () => {
    const conn = server({ decodeText: false });
    const text = 'ab✓😀'.repeat(20_000);
    const frame = clientFrame(Opcode.Text, text);
    const reads = [frame.subarray(0, 20), frame.subarray(20, 65_539), frame.subarray(65_539)].map((read) => Buffer.from(read));
    for (const read of reads) conn.receiveData(read);
    const event = conn.nextEvent();
    assert.ok(event?.type === 'textBytes');
    assert.equal(event.data.toString('hex'), Buffer.from(text).toString('hex'));
    assert.ok(reads.every((read) => read.buffer !== event.data.buffer));
    assert.equal(conn.sendTextBytes(event.data), true);
    assert.equal(toHex(conn.takeOutput()), textFrame(text));
  });

  test('the frame observer sees the first bytes of a message sent back from pieces', () => {
    const seen: string[] = [];
    const conn = server({ onFrame: (direction, _fin, _rsv, _opcode, _masked, length, head) => void seen.push(`${direction} ${length} ${head.toString('latin1')}`) });
    const text = 'x'.repeat(70_000);
    const frame = clientFrame(Opcode.Text, text);
    conn.receiveData(Buffer.from(frame.subarray(0, 60))); // the first read carries 46 bytes of payload
    conn.receiveData(Buffer.from(frame.subarray(60)));
    const event = conn.nextEvent();
    assert.ok(event?.type === 'text');
    conn.sendText(event.data);
    conn.takeOutput();
    assert.deepEqual(seen, [`in 70000 ${'x'.repeat(125)}`, `out 70000 ${'x'.repeat(125)}`]);
  });

  test('a client sends text received in pieces masked, as one frame', () => {
    const conn = server({ role: 'client' });
    const text = 'é'.repeat(40_000);
    const frame = Buffer.concat(encodeFrame(Opcode.Text, Buffer.from(text, 'utf8')));
    conn.receiveData(Buffer.from(frame.subarray(0, 30_001)));
    conn.receiveData(Buffer.from(frame.subarray(30_001)));
    const event = conn.nextEvent();
    assert.ok(event?.type === 'text');
    assert.equal(event.data, text);
    conn.sendText(event.data);
    const sent = Buffer.concat(conn.takeOutput());
    assert.equal(sent[1]! & 0x80, 0x80, 'masked');
    assert.equal(sent[1]! & 0x7f, 127, 'a 64-bit length: 80,000 bytes');
    const mask = sent.subarray(10, 14);
    const payload = Buffer.from(sent.subarray(14));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
    assert.equal(payload.toString('utf8'), text);
  });

  test('with permessage-deflate, text received in pieces is compressed as the string would be', () => {
    const params: DeflateParams = { ownWindowBits: 15, peerWindowBits: 15, ownNoContextTakeover: true, peerNoContextTakeover: true, threshold: 0, level: 6, memLevel: 8 };
    const conn = server({ extension: new PerMessageDeflate(params) });
    const text = '{"k":"välue ✓"}'.repeat(6000);
    const frame = clientFrame(Opcode.Text, text);
    conn.receiveData(Buffer.from(frame.subarray(0, 40_000)));
    conn.receiveData(Buffer.from(frame.subarray(40_000)));
    const event = conn.nextEvent();
    assert.ok(event?.type === 'text');
    conn.sendText(event.data);
    const fresh = server({ extension: new PerMessageDeflate(params) });
    fresh.sendText(text);
    assert.equal(Buffer.concat(conn.takeOutput()).toString('hex'), Buffer.concat(fresh.takeOutput()).toString('hex'));
  });
});

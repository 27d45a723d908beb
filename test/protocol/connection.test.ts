// The Connection's Sans-I/O contract beyond single frames: events one at a time (nextEvent) so the
// application's answers go out before the protocol's own; the per-message extension plug point
// (RFC 6455 §9, with a fake extension); the frame observer used for tracing.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode, RSV1, isControlOpcode } from '../../src/protocol/constants.js';
import { Connection, type FrameObserver, type MessageExtension } from '../../src/protocol/connection.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { FrameParser, type FrameSink } from '../../src/protocol/parser.js';
import {
  assertConnectionFailing,
  assertEvents,
  assertFrameSent,
  assertNothingSent,
  hex,
  plainEvents,
  receive,
  server,
  toHex,
} from '../helpers/protocol.js';

/** An extension that "encodes" by reversing the bytes, and records what it was asked to decode. */
class ReversingExtension implements MessageExtension {
  readonly rsv = RSV1;
  decoded: Array<{ data: string; maxPayload: number }> = [];
  disposed = 0;
  constructor(readonly fail: ProtocolError | null = null) {}
  decode(data: Buffer, maxPayload: number): Buffer | ProtocolError {
    this.decoded.push({ data: data.toString('hex'), maxPayload });
    return this.fail ?? Buffer.from(data).reverse();
  }
  encode(data: Uint8Array): Buffer | null {
    return data.length === 0 ? null : Buffer.from(data).reverse();
  }
  dispose(): void {
    this.disposed++;
  }
}

describe('Connection: events one at a time', () => {
  test('nextEvent parses only up to the next event, so an answer to a message goes out before a later Pong', () => {
    const conn = server();
    receive(conn, '81 81 00000000 61 89 81 00000000 70 81 81 00000000 62');
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'text', data: 'a' }]);
    conn.sendText('echo a');
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'ping', data: '70' }]);
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'text', data: 'b' }]);
    assert.equal(conn.nextEvent(), undefined);
    assertFrameSent(conn, '81 06 6563686f2061 8a 01 70');
  });

  test('a read received while an event waits is not parsed yet: its Ping is answered after the reply to that event', () => {
    // Root cause: FrameParser.push resumed a paused parser, so a second receiveData before the
    // event was taken parsed on and queued the Pong ahead of the application's reply.
    const conn = server();
    receive(conn, '81 81 00000000 61', '89 81 00000000 70');
    assert.equal(conn.outputBytes, 0, 'nothing answered before the message is handled');
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'text', data: 'a' }]);
    conn.sendText('echo a');
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'ping', data: '70' }]);
    assert.equal(conn.nextEvent(), undefined);
    assertFrameSent(conn, '81 06 6563686f2061 8a 01 70');
  });

  test('nextEvent returns undefined when nothing has arrived', () => {
    const conn = server();
    assert.equal(conn.nextEvent(), undefined);
    receive(conn, '81 81 00000000');
    assert.equal(conn.nextEvent(), undefined);
    receive(conn, '61');
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'text', data: 'a' }]);
  });

  test('takeOutput parses what is pending first, so a Pong is never left behind', () => {
    const conn = server();
    receive(conn, '81 81 00000000 61 89 80 00000000');
    assertFrameSent(conn, '8a 00');
    assertEvents(conn, [
      { type: 'text', data: 'a' },
      { type: 'ping', data: '' },
    ]);
  });

  test('fail() while input is pending discards it', () => {
    const conn = server();
    receive(conn, '81 81 00000000 61 81 81 00000000 62');
    assert.deepEqual(plainEvents([conn.nextEvent()!]), [{ type: 'text', data: 'a' }]);
    conn.fail(new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'policy'));
    assertConnectionFailing(conn, { code: 'WS_ERR_POLICY', message: 'policy', closeCode: CloseCode.PolicyViolation });
  });

  test('a sink that stops the parser from inside onFrameEnd and returns true still stops it', () => {
    let parser: FrameParser | null = null;
    const ends: number[] = [];
    const sink: FrameSink = {
      onFrameHeader: () => true,
      onFrameData: () => true,
      onFrameEnd: () => {
        ends.push(1);
        parser!.stop();
        return true;
      },
      onFrameError: () => assert.fail('no error'),
    };
    parser = new FrameParser(sink);
    parser.push(hex('81 80 00000000 81 80 00000000'));
    assert.deepEqual(ends, [1]);
    assert.equal(parser.stopped, true);
  });

  test('a sink that returns false from onFrameHeader after a 16-bit length stops the parser', () => {
    const headers: number[] = [];
    const parser = new FrameParser(
      {
        onFrameHeader: (_f, _r, _o, length) => (headers.push(length), false),
        onFrameData: () => assert.fail('no data'),
        onFrameEnd: () => assert.fail('no end'),
        onFrameError: () => assert.fail('no error'),
      },
      { role: 'client' },
    );
    parser.push(hex('82 7e 0100'));
    assert.deepEqual(headers, [256]);
    assert.equal(parser.stopped, true);
  });

  test('isControlOpcode is true for 0x8-0xF only', () => {
    assert.deepEqual(
      Array.from({ length: 16 }, (_, op) => isControlOpcode(op)),
      [...Array<boolean>(8).fill(false), ...Array<boolean>(8).fill(true)],
    );
  });
});

describe('9 Extensions: the per-message plug point', () => {
  test('a message with RSV1 goes through decode() whole, with maxPayload, and RSV1 frames are accepted', () => {
    const ext = new ReversingExtension();
    const conn = server({ extension: ext, maxPayload: 100 });
    receive(conn, '41 82 00000000 6261', '00 81 00000000 63', '80 81 00000000 64');
    assertEvents(conn, [{ type: 'text', data: 'dcab' }]);
    assert.deepEqual(ext.decoded, [{ data: '62616364', maxPayload: 100 }]);
  });

  test('an encoded text message is checked as UTF-8 after decoding, not before', () => {
    const ext = new ReversingExtension();
    const conn = server({ extension: ext });
    receive(conn, 'c1 83 00000000 ac82e2'); // reversed "€"
    assertEvents(conn, [{ type: 'text', data: '€' }]);
    receive(conn, 'c1 82 00000000 82e2');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_INVALID_UTF8',
      message: 'invalid UTF-8 in a text message',
      closeCode: CloseCode.InvalidPayload,
    });
  });

  test('a message without RSV1 bypasses decode() even when an extension is negotiated', () => {
    const ext = new ReversingExtension();
    const conn = server({ extension: ext });
    receive(conn, '82 82 00000000 0102');
    assertEvents(conn, [{ type: 'binary', data: '0102' }]);
    assert.deepEqual(ext.decoded, []);
  });

  test('a ProtocolError from decode() fails the connection with it', () => {
    const error = new ProtocolError('WS_ERR_INFLATE_FAILED', CloseCode.InvalidPayload, 'inflate failed');
    const conn = server({ extension: new ReversingExtension(error) });
    receive(conn, 'c2 81 00000000 01');
    assertConnectionFailing(conn, { code: 'WS_ERR_INFLATE_FAILED', message: 'inflate failed', closeCode: CloseCode.InvalidPayload });
  });

  test('sends go through encode() and carry RSV1; encode() returning null or compress=false sends as is', () => {
    const conn = server({ extension: new ReversingExtension() });
    conn.sendText('ab');
    conn.sendBinary(hex('0102'));
    conn.sendTextBytes(hex('6364'));
    conn.sendText('');
    conn.sendText('ab', false);
    conn.sendBinary(hex('01'), false);
    conn.sendTextBytes(hex('61'), false);
    assertFrameSent(conn, 'c1 02 6261 c2 02 0201 c1 02 6463 81 00 81 02 6162 82 01 01 81 01 61');
  });

  test('EOF lets the extension free its state', () => {
    const ext = new ReversingExtension();
    const conn = server({ extension: ext });
    conn.receiveEof();
    assert.equal(ext.disposed, 1);
  });
});

describe('Frame observer (tracing)', () => {
  function observed() {
    const seen: string[] = [];
    const onFrame: FrameObserver = (direction, fin, rsv, opcode, masked, length, head) => {
      seen.push(`${direction} fin=${fin} rsv=${rsv} op=${opcode} masked=${masked} len=${length} ${head.toString('hex')}`);
    };
    return { seen, onFrame };
  }

  test('received frames are reported when complete, sent frames when queued, with the start of the payload', () => {
    const { seen, onFrame } = observed();
    const conn = server({ onFrame });
    receive(conn, '01 82 00000000 6869', '89 81 00000000 70', '80 80 00000000');
    conn.takeEvents();
    conn.sendText('ok');
    conn.sendBinary(Buffer.alloc(20_000, 0xab));
    assert.deepEqual(seen.slice(0, 5), [
      'in fin=false rsv=0 op=1 masked=true len=2 6869',
      'in fin=true rsv=0 op=9 masked=true len=1 70',
      'out fin=true rsv=0 op=10 masked=false len=1 70',
      'in fin=true rsv=0 op=0 masked=true len=0 ',
      'out fin=true rsv=0 op=1 masked=false len=2 6f6b',
    ]);
    assert.equal(seen[5], `out fin=true rsv=0 op=2 masked=false len=20000 ${'ab'.repeat(125)}`);
    assert.equal(seen.length, 6);
  });

  test('only the first 125 bytes of a long payload are kept, gathered across reads', () => {
    const { seen, onFrame } = observed();
    const conn = server({ onFrame });
    const payload = Buffer.alloc(300, 0x61);
    receive(conn, Buffer.concat([hex('82 fe 012c 00000000'), payload.subarray(0, 100)]), payload.subarray(100, 200), payload.subarray(200));
    conn.takeEvents();
    assert.deepEqual(seen, [`in fin=true rsv=0 op=2 masked=true len=300 ${'61'.repeat(125)}`]);
  });

  test('a frame that breaks a rule is reported before the Close that answers it', () => {
    const { seen, onFrame } = observed();
    const conn = server({ onFrame, maxPayload: 1 });
    receive(conn, '81 82 00000000 6162');
    conn.takeEvents();
    assert.equal(seen.length, 2);
    assert.equal(seen[0], 'in fin=true rsv=0 op=1 masked=true len=2 ');
    assert.match(seen[1]!, /^out fin=true rsv=0 op=8 masked=false len=\d+ 03f1/);
    assert.equal(Opcode.Close, 8);
  });

  test('a client observes its own frames as masked and the received ones as not', () => {
    const { seen, onFrame } = observed();
    const conn = new Connection({ role: 'client', onFrame });
    conn.sendText('hi');
    receive(conn, '81 01 61');
    conn.takeEvents();
    assert.deepEqual(seen, ['out fin=true rsv=0 op=1 masked=true len=2 6869', 'in fin=true rsv=0 op=1 masked=false len=1 61']);
  });

  // Regression: sendText queued its frame before calling the observer (found by a review helper),
  // so a send from inside the observer came after it, and a throw still sent it; every other
  // frame is observed first.
  test('every sent frame is observed before it is queued: a send from the observer goes first, a throw queues nothing', () => {
    const sends: [(conn: Connection) => boolean, string][] = [
      [(conn) => conn.sendText('OUT'), '81034f5554'],
      [(conn) => conn.sendBinary(Buffer.from('OUT')), '82034f5554'],
    ];
    for (const [send, outerFrame] of sends) {
      let inner = false;
      const conn = server({
        onFrame: (direction) => {
          if (direction !== 'out' || inner) return;
          inner = true;
          conn.sendText('in');
        },
      });
      send(conn);
      assert.equal(toHex(conn.takeOutput()), '8102696e' + outerFrame, 'the inner frame first, then the outer one');
      const throwing = server({
        onFrame: () => {
          throw new Error('a trace printer failed');
        },
      });
      assert.throws(() => send(throwing), /a trace printer failed/);
      assertNothingSent(throwing);
    }
  });

  test('without an observer nothing is reported and frames flow as usual', () => {
    const conn = server();
    receive(conn, '89 80 00000000');
    assertEvents(conn, [{ type: 'ping', data: '' }]);
    assertFrameSent(conn, '8a 00');
    assertNothingSent(conn);
  });
});

describe('decodeText: false, text messages as their checked bytes', () => {
  test('a text message is reported as its bytes, not decoded, and sending them back frames the same bytes', () => {
    const conn = server({ decodeText: false });
    receive(conn, '81 85 00000000 63 61 66 c3 a9'); // "café"
    const events = conn.takeEvents();
    assert.deepEqual(plainEvents(events), [{ type: 'textBytes', data: '636166c3a9' }]);
    const event = events[0]!;
    assert.ok(event.type === 'textBytes' && Buffer.isBuffer(event.data));
    assert.equal(conn.sendTextBytes(event.data), true);
    assertFrameSent(conn, '81 05 636166c3a9');
  });

  test('a fragmented text message of 64 KiB and more, across reads, is one Buffer of all its bytes', () => {
    const conn = server({ decodeText: false, maxPayload: 1 << 20 });
    const part = Buffer.alloc(40_000, 'é'); // 2-byte characters, every frame ends on a character's end
    const first = Buffer.concat([hex('01 fe 9c40 00000000'), part]);
    const last = Buffer.concat([hex('80 fe 9c40 00000000'), part]);
    receive(conn, first.subarray(0, 1000), first.subarray(1000), last.subarray(0, 30_000), last.subarray(30_000));
    const events = conn.takeEvents();
    assert.equal(events.length, 1);
    const event = events[0]!;
    assert.ok(event.type === 'textBytes');
    assert.equal(event.data.length, 80_000);
    assert.ok(event.data.equals(Buffer.concat([part, part])));
  });

  test('invalid UTF-8 still fails the connection with 1007 (§8.1), at the first bad piece', () => {
    const conn = server({ decodeText: false });
    receive(conn, '01 82 00000000 c3 28');
    assertConnectionFailing(conn, { code: 'WS_ERR_INVALID_UTF8', message: 'invalid UTF-8 in a text message', closeCode: CloseCode.InvalidPayload });
  });

  test('a text message that ends inside a character fails with 1007', () => {
    const conn = server({ decodeText: false });
    receive(conn, '81 82 00000000 61 c3');
    assertConnectionFailing(conn, {
      code: 'WS_ERR_INVALID_UTF8',
      message: 'text message ends inside a UTF-8 sequence',
      closeCode: CloseCode.InvalidPayload,
    });
  });

  test('an encoded text message is checked after decoding and reported as its bytes', () => {
    const ext = new ReversingExtension();
    const conn = server({ extension: ext, decodeText: false });
    receive(conn, 'c1 83 00000000 ac82e2'); // reversed "€"
    assertEvents(conn, [{ type: 'textBytes', data: 'e282ac' }]);
    receive(conn, 'c1 82 00000000 82e2');
    assertConnectionFailing(conn, { code: 'WS_ERR_INVALID_UTF8', message: 'invalid UTF-8 in a text message', closeCode: CloseCode.InvalidPayload });
  });

  test('binary messages are unchanged', () => {
    const conn = server({ decodeText: false });
    receive(conn, '82 82 00000000 c3 28');
    assertEvents(conn, [{ type: 'binary', data: 'c328' }]);
  });
});

describe('a large binary frame over several reads: unmasked into one buffer of its size', () => {
  const payload = Buffer.alloc(50_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
  const mask = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
  const wire = (): Buffer => Buffer.concat(encodeFrame(Opcode.Binary, payload, { mask }));

  test('in one read, the message is a view of that read, unmasked in place (no copy)', () => {
    const conn = server();
    const read = wire();
    conn.receiveData(read);
    const [event] = conn.takeEvents();
    assert.ok(event?.type === 'binary');
    assert.ok(event.data.equals(payload));
    assert.equal(event.data.buffer, read.buffer);
  });

  test('over several reads, each is unmasked into the message as it comes and left as it was', () => {
    const conn = server();
    const frame = wire();
    const reads = [frame.subarray(0, 1001), frame.subarray(1001, 20_003), frame.subarray(20_003)].map((r) => Buffer.from(r));
    const copies = reads.map((r) => Buffer.from(r));
    for (const read of reads) conn.receiveData(read);
    const [event] = conn.takeEvents();
    assert.ok(event?.type === 'binary');
    assert.ok(event.data.equals(payload));
    assert.equal(event.data.length, payload.length);
    for (const read of reads) assert.notEqual(event.data.buffer, read.buffer);
    assert.deepEqual(reads.map((r) => r.toString('hex')), copies.map((c) => c.toString('hex')), 'the reads still hold the masked bytes');
  });

  test('when no buffer of its size can be had, the reads are unmasked in place and joined as before', () => {
    const conn = server();
    const frame = wire();
    const reads = [frame.subarray(0, 1001), frame.subarray(1001, 20_003), frame.subarray(20_003)].map((r) => Buffer.from(r));
    const allocUnsafe = Buffer.allocUnsafe;
    let refused = 0;
    Buffer.allocUnsafe = (size: number): Buffer<ArrayBuffer> => {
      if (size === payload.length && refused === 0) {
        refused++;
        throw new RangeError('Array buffer allocation failed');
      }
      return allocUnsafe(size);
    };
    try {
      for (const read of reads) conn.receiveData(read);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
    assert.equal(refused, 1);
    const [event] = conn.takeEvents();
    assert.ok(event?.type === 'binary');
    assert.ok(event.data.equals(payload));
    assert.ok(reads[2]!.equals(payload.subarray(20_003 - (frame.length - payload.length))), 'the last read was unmasked in place');
  });
});

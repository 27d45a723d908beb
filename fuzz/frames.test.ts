// Properties of the framing layer (RFC 6455 §5): random frames survive encoding and parsing split
// anywhere; a Connection reports the same whatever the read boundaries; arbitrary bytes never throw
// and fail at most once with a framing close code; masking twice is the identity; lengths use the
// shortest encoding.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CloseCode, Opcode, RSV1 } from '../src/protocol/constants.js';
import { Connection } from '../src/protocol/connection.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { encodeFrame, frameHeaderLength, writeFrameHeader } from '../src/protocol/frame.js';
import { applyMask, applyMaskSimd, maskImplementation, maskJs } from '../src/protocol/mask.js';
import { FrameParser, type FrameSink } from '../src/protocol/parser.js';
import { RecordingSink, plainEvents, toHex } from '../test/helpers/protocol.js';
import { cutsArb, params, splitAt } from './config.js';

interface Frame {
  opcode: number;
  fin: boolean;
  rsv: number;
  payload: Uint8Array;
}

/** Payloads mostly short, sometimes past the 16-bit and 64-bit length thresholds. */
const payloadArb = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 140 }), weight: 12 },
  { arbitrary: fc.integer({ min: 126, max: 70_000 }).map((n) => Buffer.alloc(n, n & 0xff)), weight: 1 },
);

/** Frames a parser accepts on its own (§5.2, §5.5): the message rules are not its business. */
const validFrameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ opcode: fc.constantFrom(0, 1, 2), fin: fc.boolean(), rsv: fc.constantFrom(0, RSV1), payload: payloadArb }),
  fc.record({
    opcode: fc.constantFrom(8, 9, 10),
    fin: fc.constant(true),
    rsv: fc.constant(0),
    payload: fc.uint8Array({ maxLength: 125 }),
  }),
);

const maskArb = fc.uint8Array({ minLength: 4, maxLength: 4 });

function encodeAll(frames: readonly Frame[], mask: Uint8Array | undefined): Buffer {
  return Buffer.concat(
    frames.flatMap((f) => encodeFrame(f.opcode, f.payload, mask ? { fin: f.fin, rsv: f.rsv, mask } : { fin: f.fin, rsv: f.rsv })),
  );
}

/**
 * Frames of a plausible conversation for a Connection: whole and fragmented text and binary
 * messages, valid and invalid UTF-8, control frames in between, Close frames, and now and then a
 * frame breaking a rule (reserved opcode, RSV, unmasked, control too long).
 */
const textPayloadArb = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => Buffer.from(s)),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 20 }),
);
const conversationFrameArb: fc.Arbitrary<Frame & { unmasked?: boolean }> = fc.oneof(
  { arbitrary: fc.record({ opcode: fc.constantFrom(0, 1), fin: fc.boolean(), rsv: fc.constant(0), payload: textPayloadArb }), weight: 6 },
  { arbitrary: fc.record({ opcode: fc.constantFrom(0, 2), fin: fc.boolean(), rsv: fc.constant(0), payload: payloadArb }), weight: 3 },
  {
    arbitrary: fc.record({ opcode: fc.constantFrom(9, 10), fin: fc.constant(true), rsv: fc.constant(0), payload: fc.uint8Array({ maxLength: 125 }) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      opcode: fc.constant(8),
      fin: fc.constant(true),
      rsv: fc.constant(0),
      payload: fc.oneof(
        fc.constant(new Uint8Array(0)),
        fc.tuple(fc.constantFrom(1000, 1001, 1005, 1006, 3000, 4999, 999, 5000), fc.string({ maxLength: 10 })).map(([code, reason]) =>
          Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]),
        ),
        fc.uint8Array({ maxLength: 125 }),
      ),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      opcode: fc.integer({ min: 0, max: 15 }),
      fin: fc.boolean(),
      rsv: fc.constantFrom(0, 0x10, 0x20, 0x40, 0x70),
      payload: fc.uint8Array({ maxLength: 130 }),
      unmasked: fc.boolean(),
    }),
    weight: 1,
  },
);

function encodeConversation(frames: ReadonlyArray<Frame & { unmasked?: boolean }>, mask: Uint8Array): Buffer {
  return Buffer.concat(
    frames.flatMap((f) => encodeFrame(f.opcode, f.payload, f.unmasked ? { fin: f.fin, rsv: f.rsv } : { fin: f.fin, rsv: f.rsv, mask })),
  );
}

/** Everything a connection reports and sends after being fed `pieces` (copies: it unmasks in place). */
function run(pieces: readonly Buffer[], maxPayload: number) {
  const conn = new Connection({ maxPayload });
  for (const piece of pieces) conn.receiveData(Buffer.from(piece));
  return {
    events: plainEvents(conn.takeEvents()),
    output: toHex(conn.takeOutput()),
    state: conn.state,
    closeCode: conn.closeCode,
    closeReason: conn.closeReason,
  };
}

const FAILURE_CODES: ReadonlySet<number> = new Set([
  CloseCode.ProtocolError,
  CloseCode.InvalidPayload,
  CloseCode.PolicyViolation,
  CloseCode.MessageTooBig,
]);

describe('property: framing', () => {
  test('random frames, encoded with a random mask and split at random points, parse back to the same frames', () => {
    fc.assert(
      fc.property(fc.array(validFrameArb, { maxLength: 8 }), maskArb, cutsArb, (frames, mask, cuts) => {
        const wire = encodeAll(frames, mask);
        const sink = new RecordingSink();
        const parser = new FrameParser(sink, { allowedRsv: RSV1 });
        for (const piece of splitAt(wire, cuts)) parser.push(Buffer.from(piece));
        assert.deepEqual(sink.errors, []);
        assert.deepEqual(
          sink.frames,
          frames.map((f) => ({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, length: f.payload.length, data: Buffer.from(f.payload).toString('hex') })),
        );
      }),
      params(),
    );
  });

  test('a client-role parser reads unmasked frames split at random points', () => {
    fc.assert(
      fc.property(fc.array(validFrameArb, { maxLength: 6 }), cutsArb, (frames, cuts) => {
        const sink = new RecordingSink();
        const parser = new FrameParser(sink, { role: 'client', allowedRsv: RSV1 });
        for (const piece of splitAt(encodeAll(frames, undefined), cuts)) parser.push(piece);
        assert.deepEqual(sink.errors, []);
        assert.equal(sink.frames.length, frames.length);
      }),
      params(0.5),
    );
  });

  test('a connection reports the same events and sends the same bytes whether the input is split or whole', () => {
    fc.assert(
      fc.property(
        fc.array(conversationFrameArb, { maxLength: 10 }),
        maskArb,
        cutsArb,
        fc.constantFrom(20, 200, 1 << 20),
        (frames, mask, cuts, maxPayload) => {
          const wire = encodeConversation(frames, mask);
          const whole = run([wire], maxPayload);
          const split = run(splitAt(wire, cuts), maxPayload);
          assert.deepEqual(split, whole);
          const bytewise = wire.length <= 400 ? run([...wire].map((b) => Buffer.of(b)), maxPayload) : whole;
          assert.deepEqual(bytewise, whole);
        },
      ),
      params(),
    );
  });

  test('binary and text messages up to about 70,000 bytes, in one frame or several, split anywhere, arrive exactly as sent', () => {
    // A large message in one frame is unmasked straight into a buffer of its size as its pieces come
    // (Connection.onFrameData, reserve); every other one piece by piece in place.
    const binaryArb = fc.oneof(
      { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 1 },
      { arbitrary: fc.integer({ min: 4000, max: 70_000 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), weight: 3 },
    );
    // Text: a few characters of any width repeated, so that code points straddle frames and reads.
    const textArb = fc
      .tuple(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 12_000 }))
      .map(([unit, times]) => unit.repeat(times));
    const messageArb = fc.record({
      message: fc.oneof(binaryArb.map((data) => ({ opcode: Opcode.Binary, data: Buffer.from(data) })), textArb.map((text) => ({ opcode: Opcode.Text, data: Buffer.from(text) }))),
      fragments: fc.integer({ min: 1, max: 3 }),
    });
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 3 }), maskArb, cutsArb, fc.boolean(), (messages, mask, cuts, decodeText) => {
        const wire = Buffer.concat(
          messages.flatMap(({ message: { opcode, data }, fragments }) => {
            // Fragments cut anywhere, even inside a code point (only the message must be UTF-8, §5.6).
            const size = Math.ceil(data.length / fragments) || 1;
            const frames: Buffer[] = [];
            for (let i = 0, start = 0; i < fragments; i++, start += size) {
              const last = i === fragments - 1;
              frames.push(...encodeFrame(i === 0 ? opcode : Opcode.Continuation, data.subarray(start, last ? data.length : start + size), { fin: last, mask }));
            }
            return frames;
          }),
        );
        const conn = new Connection({ maxPayload: 1 << 20, decodeText });
        for (const piece of splitAt(wire, cuts)) conn.receiveData(Buffer.from(piece)); // each read a buffer of its own, as from a socket
        const received = conn.takeEvents().map((e) => (e.type === 'text' ? `text ${toHex(Buffer.from(e.data))}` : 'data' in e ? `${e.type} ${toHex(e.data)}` : e.type));
        const expected = messages.map(({ message: { opcode, data } }) =>
          opcode === Opcode.Binary ? `binary ${toHex(data)}` : `${decodeText ? 'text' : 'textBytes'} ${toHex(data)}`,
        );
        assert.deepEqual(received, expected);
      }),
      params(0.3),
    );
  });

  test('arbitrary bytes never throw and yield at most one failure, with a framing close code, and nothing after it', () => {
    const inputArb = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      // Plausible frames with a few bytes overwritten: reaches deeper states than noise does.
      fc
        .tuple(fc.array(conversationFrameArb, { maxLength: 6 }), maskArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }))
        .map(([frames, mask, edits]) => {
          const wire = encodeConversation(frames, mask);
          for (const [at, value] of edits) if (wire.length > 0) wire[at % wire.length] = value;
          return wire;
        }),
    );
    fc.assert(
      fc.property(inputArb, cutsArb, fc.constantFrom(0, 10, 1 << 20), (input, cuts, maxPayload) => {
        const conn = new Connection({ maxPayload });
        const events = [];
        const output: Buffer[] = [];
        let stateBefore = conn.state;
        for (const piece of splitAt(input, cuts)) {
          conn.receiveData(Buffer.from(piece));
          events.push(...conn.takeEvents());
          output.push(...conn.takeOutput());
          assert.ok(conn.state >= stateBefore, 'the state never goes back');
          stateBefore = conn.state;
        }
        conn.receiveEof();
        events.push(...conn.takeEvents());
        output.push(...conn.takeOutput());
        const errors = events.filter((e) => e.type === 'error');
        const closes = events.filter((e) => e.type === 'close');
        assert.ok(errors.length + closes.length <= 1, 'at most one failure or peer Close');
        const last = events.at(-1);
        if (errors.length === 1) {
          assert.equal(last, errors[0], 'nothing after the failure');
          const error = errors[0]!.error;
          assert.ok(error instanceof ProtocolError);
          assert.ok(FAILURE_CODES.has(error.closeCode), `close code ${error.closeCode}`);
          assert.equal(conn.closeCode, error.closeCode);
        }
        if (closes.length === 1) assert.equal(last, closes[0], 'nothing after the peer Close');
        // What went out parses as server frames with exactly one Close, last, once the connection is done.
        const sink = new RecordingSink();
        new FrameParser(sink, { role: 'client' }).push(Buffer.concat(output));
        assert.deepEqual(sink.errors, []);
        const closeFrames = sink.frames.filter((f) => f.opcode === Opcode.Close);
        assert.ok(closeFrames.length <= 1);
        if (closeFrames.length === 1) assert.equal(sink.frames.at(-1)!.opcode, Opcode.Close);
        if (errors.length + closes.length === 1) assert.equal(closeFrames.length, 1);
      }),
      params(),
    );
  });
});

describe('property: a client Connection talking to a server Connection', () => {
  test('messages go both ways intact over reads split anywhere, and the closing handshake completes', () => {
    const messageArb = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 50 }).map((data) => ({ type: 'text' as const, data })),
      fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 4000, max: 70_000 }).map((n) => Buffer.alloc(n, n & 0xff))).map(
        (data) => ({ type: 'binary' as const, data: Buffer.from(data) }),
      ),
    );
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 6 }), cutsArb, cutsArb, fc.constantFrom(1000, 1001, 4000), (messages, cutsIn, cutsOut, code) => {
        const client = new Connection({ role: 'client' });
        const srv = new Connection();
        const transfer = (from: Connection, to: Connection, cuts: readonly number[]) => {
          for (const piece of splitAt(Buffer.concat(from.takeOutput()), cuts)) to.receiveData(Buffer.from(piece));
        };
        for (const m of messages) m.type === 'text' ? client.sendText(m.data) : client.sendBinary(m.data);
        transfer(client, srv, cutsIn);
        const received = plainEvents(srv.takeEvents());
        const expected = plainEvents(messages as never);
        assert.deepEqual(received, expected);
        // The server echoes each message; the client reads them back.
        for (const m of messages) m.type === 'text' ? srv.sendText(m.data) : srv.sendBinary(m.data);
        transfer(srv, client, cutsOut);
        assert.deepEqual(plainEvents(client.takeEvents()), expected);
        // The client closes; the server echoes and ends TCP; the client sees the echo.
        client.close(code, 'bye');
        transfer(client, srv, cutsIn);
        assert.deepEqual(plainEvents(srv.takeEvents()), [{ type: 'close', code, reason: 'bye' }]);
        assert.equal(srv.endTransport, true);
        transfer(srv, client, cutsOut);
        assert.deepEqual(plainEvents(client.takeEvents()), [{ type: 'close', code, reason: '' }]);
        assert.equal(client.state, srv.state);
        assert.equal(client.endTransport, false, 'the client waits for the server to end TCP');
      }),
      params(0.5),
    );
  });
});

describe('property: masking and lengths', () => {
  const implementations: Array<[string, typeof applyMask]> = [
    ['applyMask', applyMask],
    ['maskJs', maskJs],
  ];
  if (maskImplementation() === 'wasm-simd') implementations.push(['applyMaskSimd', applyMaskSimd]);

  for (const [name, mask] of implementations) {
    test(`${name} twice is the identity and once matches §5.3's definition, at any phase and byteOffset alignment`, () => {
      const dataArb = fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 1000, max: 40_000 }).map((n) => Buffer.alloc(n, n & 0xff)),
      );
      fc.assert(
        fc.property(dataArb, maskArb, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 7 }), (data, key, phase, offset) => {
          const memory = new Uint8Array(new ArrayBuffer(data.length + offset + 4)).fill(0xee);
          const view = memory.subarray(offset, offset + data.length);
          view.set(data);
          assert.equal(mask(view, key, phase), (phase + data.length) & 3);
          for (let i = 0; i < data.length; i++) {
            if (view[i] !== (data[i]! ^ key[(phase + i) & 3]!)) assert.fail(`byte ${i} differs from the definition`);
          }
          mask(view, key, phase);
          assert.ok(Buffer.from(view).equals(Buffer.from(data)), 'masking twice gives the data back');
          assert.ok(memory.subarray(0, offset).every((b) => b === 0xee), 'nothing before the view is touched');
          assert.ok(memory.subarray(offset + data.length).every((b) => b === 0xee), 'nothing after the view is touched');
        }),
        params(),
      );
    });
  }

  test('masking in pieces with the returned phase equals masking at once', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), maskArb, cutsArb, (data, key, cuts) => {
        const whole = Buffer.from(data);
        applyMask(whole, key, 0);
        const pieces = Buffer.from(data);
        let phase = 0;
        for (const piece of splitAt(pieces, cuts)) phase = applyMask(piece, key, phase);
        assert.ok(pieces.equals(whole));
      }),
      params(),
    );
  });

  test('lengths 0/125/126/127/65535/65536 and any other use the shortest encoding and parse back', () => {
    const lengthArb = fc.oneof(
      fc.constantFrom(0, 1, 125, 126, 127, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
      fc.integer({ min: 0, max: 2 ** 20 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(lengthArb, fc.option(maskArb, { nil: undefined }), (length, key) => {
        const header = Buffer.alloc(14);
        const end = writeFrameHeader(header, 0, Opcode.Binary, length, true, 0, key);
        const shortest = length <= 125 ? 2 : length <= 0xffff ? 4 : 10;
        assert.equal(end, shortest + (key ? 4 : 0));
        assert.equal(frameHeaderLength(length, key !== undefined), end);
        const field = header[1]! & 0x7f;
        assert.equal(field, length <= 125 ? length : length <= 0xffff ? 126 : 127);
        // The parser reads back the same length from the header alone.
        let seen = -1;
        const sink: FrameSink = {
          onFrameHeader: (_fin, _rsv, _opcode, l) => ((seen = l), false),
          onFrameData: () => true,
          onFrameEnd: () => true,
          onFrameError: (e) => assert.fail(e.message),
        };
        new FrameParser(sink, { role: key ? 'server' : 'client' }).push(header.subarray(0, end));
        assert.equal(seen, length);
      }),
      params(),
    );
  });
});

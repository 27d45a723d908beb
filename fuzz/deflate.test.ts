// Properties of permessage-deflate (RFC 7692): random messages, split into random fragments and read
// in random chunks, come out of a peer's Connection as they went in, in both directions, with and
// without context takeover and at every window size; random bytes with RSV1 never throw.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CloseCode, Opcode, RSV1 } from '../src/protocol/constants.js';
import { Connection, type ConnectionEvent } from '../src/protocol/connection.js';
import { PerMessageDeflate, deflateMemory } from '../src/protocol/deflate.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { cutsArb, params, splitAt } from './config.js';

const MASK = Buffer.from('37fa213d', 'hex');

type Message = { type: 'text'; data: string } | { type: 'binary'; data: Buffer };

/** Messages that compress (a small alphabet, repeated) and messages that do not (any code point, any byte). */
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', 'b', 'hello ', 'é', '✓', '\n'), maxLength: 400 }).map((data) => ({ type: 'text' as const, data })),
  fc.string({ unit: 'binary', maxLength: 200 }).map((data) => ({ type: 'text' as const, data })),
  fc.uint8Array({ maxLength: 300 }).map((data) => ({ type: 'binary' as const, data: Buffer.from(data) })),
  fc.integer({ min: 0, max: 20_000 }).map((n) => ({ type: 'binary' as const, data: Buffer.alloc(n, n % 251) })),
);

/** Both ends' settings: the same window and takeover seen from each side. */
const settingsArb = fc.record({
  serverBits: fc.integer({ min: 8, max: 15 }),
  clientBits: fc.integer({ min: 8, max: 15 }),
  serverTakeover: fc.boolean(),
  clientTakeover: fc.boolean(),
  threshold: fc.constantFrom(0, 16, 96),
});
type Settings = typeof settingsArb extends fc.Arbitrary<infer T> ? T : never;

function pair(s: Settings): { server: PerMessageDeflate; client: PerMessageDeflate } {
  const common = { threshold: s.threshold, level: 6, memLevel: 5 };
  return {
    server: new PerMessageDeflate({
      ...common,
      ownWindowBits: s.serverBits,
      ownNoContextTakeover: !s.serverTakeover,
      peerWindowBits: s.clientBits,
      peerNoContextTakeover: !s.clientTakeover,
    }),
    client: new PerMessageDeflate({
      ...common,
      ownWindowBits: s.clientBits,
      ownNoContextTakeover: !s.clientTakeover,
      peerWindowBits: s.serverBits,
      peerNoContextTakeover: !s.serverTakeover,
    }),
  };
}

function bytesOf(message: Message): Buffer {
  return message.type === 'text' ? Buffer.from(message.data, 'utf8') : message.data;
}

/** A client message as frames: compressed by the client's extension (or not, as it decides), fragmented at `cuts`. */
function clientFrames(ext: PerMessageDeflate, message: Message, cuts: readonly number[]): Buffer {
  const data = bytesOf(message);
  const encoded = ext.encode(data);
  const payload = encoded ?? data;
  const pieces = splitAt(payload, cuts);
  const frames: Buffer[] = [];
  pieces.forEach((piece, i) => {
    const opcode = i === 0 ? (message.type === 'text' ? Opcode.Text : Opcode.Binary) : Opcode.Continuation;
    const rsv = i === 0 && encoded !== null ? RSV1 : 0;
    frames.push(...encodeFrame(opcode, piece, { fin: i === pieces.length - 1, rsv, mask: MASK }));
  });
  return Buffer.concat(frames);
}

function plain(events: readonly ConnectionEvent[]): Message[] {
  return events.map((e) => {
    if (e.type === 'text') return { type: 'text', data: e.data };
    if (e.type === 'binary') return { type: 'binary', data: Buffer.from(e.data) };
    throw new Error(`unexpected ${e.type} event: ${e.type === 'error' ? e.error.message : ''}`);
  });
}

describe('permessage-deflate round trips', () => {
  test('client to server: random messages, fragments and read chunks arrive intact', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(fc.tuple(messageArb, cutsArb), { minLength: 1, maxLength: 8 }), cutsArb, (s, items, readCuts) => {
        const { server, client } = pair(s);
        const conn = new Connection({ extension: server, maxPayload: 1 << 20 });
        const wire = Buffer.concat(items.map(([message, cuts]) => clientFrames(client, message, cuts)));
        for (const chunk of splitAt(wire, readCuts)) conn.receiveData(Buffer.from(chunk));
        assert.deepEqual(plain(conn.takeEvents()), items.map(([message]) => message));
        conn.receiveEof();
        client.dispose();
      }),
      params(0.5),
    );
  });

  test('server to client: random messages sent by a server Connection, read in random chunks, arrive intact', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(messageArb, { minLength: 1, maxLength: 8 }), cutsArb, (s, messages, readCuts) => {
        const { server, client } = pair(s);
        const sender = new Connection({ extension: server });
        const receiver = new Connection({ role: 'client', extension: client, maxPayload: 1 << 20 });
        for (const message of messages) {
          if (message.type === 'text') sender.sendText(message.data);
          else sender.sendBinary(message.data);
        }
        const wire = Buffer.concat(sender.takeOutput());
        for (const chunk of splitAt(wire, readCuts)) receiver.receiveData(Buffer.from(chunk));
        assert.deepEqual(plain(receiver.takeEvents()), messages);
        sender.receiveEof();
        receiver.receiveEof();
      }),
      params(0.5),
    );
  });

  test('windows are all freed once both ends have ended', () => {
    const start = deflateMemory();
    fc.assert(
      fc.property(settingsArb, fc.array(messageArb, { minLength: 1, maxLength: 4 }), (s, messages) => {
        const { server, client } = pair(s);
        const sender = new Connection({ extension: server });
        const receiver = new Connection({ role: 'client', extension: client, maxPayload: 1 << 20 });
        for (const message of messages) sender.sendBinary(bytesOf(message));
        for (const chunk of sender.takeOutput()) receiver.receiveData(Buffer.from(chunk));
        receiver.takeEvents();
        sender.receiveEof();
        receiver.receiveEof();
        assert.deepEqual(deflateMemory(), start);
      }),
      params(0.3),
    );
  });
});

describe('hostile compressed input', () => {
  test('random bytes with RSV1 never throw: a message, or a failure with 1007 or 1009', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (payload, text) => {
        const conn = new Connection({
          extension: new PerMessageDeflate({
            ownWindowBits: 15,
            ownNoContextTakeover: false,
            peerWindowBits: 15,
            peerNoContextTakeover: false,
            threshold: 0,
            level: 6,
            memLevel: 5,
          }),
          maxPayload: 4096,
        });
        conn.receiveData(Buffer.concat(encodeFrame(text ? Opcode.Text : Opcode.Binary, payload, { rsv: RSV1, mask: MASK })));
        const events = conn.takeEvents();
        assert.equal(events.length, 1);
        const event = events[0]!;
        if (event.type === 'error') {
          assert.ok(
            [CloseCode.InvalidPayload, CloseCode.MessageTooBig].includes(event.error.closeCode as 1007 | 1009),
            `${event.error.code} ${event.error.closeCode}`,
          );
        } else {
          assert.equal(event.type, text ? 'text' : 'binary');
        }
        conn.receiveEof();
      }),
      params(),
    );
  });
});

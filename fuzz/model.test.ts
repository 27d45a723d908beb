// A model-based property (fast-check commands) of the Connection state machine, RFC 6455 §5.5.1
// and §7: any sequence of ping / sendText / sendBinary / close / peer Close / peer frames / EOF /
// fail keeps the invariants: exactly one Close frame is ever sent once the connection is over and
// no frame follows it, the state never goes back, the end is reported once, and the close code
// reported agrees with how the connection ended.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CloseCode, Opcode } from '../src/protocol/constants.js';
import { Connection, ConnectionState, type ConnectionEvent } from '../src/protocol/connection.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { FrameParser } from '../src/protocol/parser.js';
import { RecordingSink } from '../test/helpers/protocol.js';
import { params } from './config.js';

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** What the model knows: whether we sent a Close (and whether the application did), and whether the connection is over. */
interface Model {
  closeSent: boolean;
  closeSentByApp: boolean;
  closed: boolean;
}

/** The connection under test and everything observed of it so far. */
class Real {
  readonly conn = new Connection({ maxPayload: 64 });
  readonly events: ConnectionEvent[] = [];
  /** Parses what the server sent, as the client would (unmasked frames). */
  readonly sent = new RecordingSink();
  readonly #sentParser = new FrameParser(this.sent, { role: 'client' });
  #lastState: number = ConnectionState.Open;
  #finalCode: number | null = null;

  /** Collects output and events after a command and checks every invariant. */
  observe(model: Model): void {
    const { conn } = this;
    for (const chunk of conn.takeOutput()) this.#sentParser.push(Buffer.from(chunk));
    const fresh = conn.takeEvents();
    this.events.push(...fresh);

    // What goes out is well-formed; at most one Close, and nothing after it (§5.5.1).
    assert.deepEqual(this.sent.errors, [], 'the output parses');
    const closeAt = this.sent.frames.findIndex((f) => f.opcode === Opcode.Close);
    const closes = this.sent.frames.filter((f) => f.opcode === Opcode.Close).length;
    assert.ok(closes <= 1, 'one Close frame at most');
    if (closeAt !== -1) assert.equal(closeAt, this.sent.frames.length - 1, 'no frame after the Close');
    assert.equal(conn.closeSent, closes === 1, 'closeSent says whether a Close went out');

    // The state only moves forward, and matches the model.
    assert.ok(conn.state >= this.#lastState, `state went back from ${this.#lastState} to ${conn.state}`);
    this.#lastState = conn.state;
    assert.equal(conn.state, model.closed ? ConnectionState.Closed : model.closeSent ? ConnectionState.Closing : ConnectionState.Open);
    assert.equal(conn.closeSent, model.closeSent);

    // The end is reported at most once (a peer Close or an error), as the last event.
    const ends = this.events.filter((e) => e.type === 'close' || e.type === 'error');
    assert.ok(ends.length <= 1, 'one end event at most');
    if (ends.length === 1) assert.equal(this.events.at(-1), ends[0], 'nothing after the end event');

    if (conn.state === ConnectionState.Closed) {
      assert.equal(conn.endTransport, true, 'a server ends the transport once closed');
      // The close code agrees with how it ended, and never changes afterwards.
      const end = ends[0];
      const expected =
        end === undefined ? CloseCode.Abnormal : end.type === 'close' ? end.code : end.error.closeCode;
      assert.equal(conn.closeCode, expected);
      if (end?.type === 'close') assert.equal(conn.closeReason, end.reason);
      if (this.#finalCode === null) this.#finalCode = conn.closeCode;
      assert.equal(conn.closeCode, this.#finalCode, 'the close code never changes once closed');
      if (closeAt !== -1 && end !== undefined) {
        // The Close that went out carries the echoed code (none for 1005) or the failure's code.
        const payload = Buffer.from(this.sent.frames[closeAt]!.data, 'hex');
        if (end.type === 'error' && !model.closeSentByApp) assert.equal(payload.readUInt16BE(0), end.error.closeCode);
        if (end.type === 'close' && !model.closeSentByApp) {
          assert.equal(payload.length === 0 ? CloseCode.NoStatusReceived : payload.readUInt16BE(0), end.code);
        }
      }
    }
  }

  /** Brings the model up to date after input whose effect it cannot predict. */
  sync(model: Model): void {
    if (this.conn.failure !== null || this.conn.closeReceived || this.conn.state === ConnectionState.Closed) {
      model.closed = true;
    }
    if (this.conn.failure !== null || this.conn.closeReceived) model.closeSent = true;
  }
}

type Cmd = fc.Command<Model, Real>;

const isOpen = (m: Model) => !m.closeSent && !m.closed;

class Ping implements Cmd {
  constructor(readonly data: Uint8Array) {}
  check = () => true;
  run(m: Model, r: Real): void {
    assert.equal(r.conn.ping(this.data), !m.closeSent && !m.closed);
    r.observe(m);
  }
  toString = () => `ping(${this.data.length})`;
}

class SendText implements Cmd {
  constructor(readonly text: string) {}
  check = () => true;
  run(m: Model, r: Real): void {
    assert.equal(r.conn.sendText(this.text), isOpen(m));
    r.observe(m);
  }
  toString = () => `sendText(${JSON.stringify(this.text)})`;
}

class SendBinary implements Cmd {
  constructor(readonly data: Uint8Array) {}
  check = () => true;
  run(m: Model, r: Real): void {
    assert.equal(r.conn.sendBinary(this.data), isOpen(m));
    r.observe(m);
  }
  toString = () => `sendBinary(${this.data.length})`;
}

class Close implements Cmd {
  constructor(readonly code: number, readonly reason: string) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const expected = !m.closeSent && !m.closed;
    assert.equal(r.conn.close(this.code, this.reason), expected);
    if (expected) {
      m.closeSent = true;
      m.closeSentByApp = true;
    }
    r.observe(m);
  }
  toString = () => `close(${this.code}, ${JSON.stringify(this.reason)})`;
}

class PeerClose implements Cmd {
  constructor(readonly code: number | null) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const payload = this.code === null ? Buffer.alloc(0) : Buffer.from([this.code >> 8, this.code & 0xff]);
    const eventsBefore = r.events.length;
    r.conn.receiveData(Buffer.concat(encodeFrame(Opcode.Close, payload, { mask: MASK })));
    const wasOpen = !m.closed;
    if (wasOpen) {
      m.closeSent = true; // echoed, or sent before
      m.closed = true;
    }
    r.observe(m);
    if (wasOpen) {
      assert.deepEqual(r.events.slice(eventsBefore), [{ type: 'close', code: this.code ?? CloseCode.NoStatusReceived, reason: '' }]);
    } else {
      assert.equal(r.events.length, eventsBefore, 'input after the end is discarded');
    }
  }
  toString = () => `peerClose(${this.code})`;
}

class PeerFrame implements Cmd {
  constructor(readonly opcode: number, readonly fin: boolean, readonly rsv: number, readonly masked: boolean, readonly payload: Uint8Array) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const eventsBefore = r.events.length;
    const wasClosed = m.closed;
    r.conn.receiveData(
      Buffer.concat(encodeFrame(this.opcode, this.payload, this.masked ? { fin: this.fin, rsv: this.rsv, mask: MASK } : { fin: this.fin, rsv: this.rsv })),
    );
    r.sync(m);
    r.observe(m);
    if (wasClosed) assert.equal(r.events.length, eventsBefore, 'input after the end is discarded');
  }
  toString = () =>
    `peerFrame(op=${this.opcode}, fin=${this.fin}, rsv=${this.rsv}, masked=${this.masked}, ${Buffer.from(this.payload).toString('hex')})`;
}

class PeerEof implements Cmd {
  check = () => true;
  run(m: Model, r: Real): void {
    r.conn.receiveEof();
    m.closed = true;
    r.observe(m);
  }
  toString = () => 'peerEof()';
}

class Fail implements Cmd {
  constructor(readonly closeCode: number) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const eventsBefore = r.events.length;
    const wasClosed = m.closed;
    r.conn.fail(new ProtocolError('WS_ERR_POLICY', this.closeCode, 'failed by the test'));
    if (!wasClosed) {
      m.closeSent = true;
      m.closed = true;
    }
    r.observe(m);
    if (wasClosed) assert.equal(r.events.length, eventsBefore, 'a failure after the end is ignored');
    else assert.equal(r.events.length, eventsBefore + 1);
  }
  toString = () => `fail(${this.closeCode})`;
}

const validCode = fc.oneof(fc.constantFrom(1000, 1001, 1002, 1003, 1011, 3000, 4999), fc.integer({ min: 3000, max: 4999 }));

const commands = [
  fc.uint8Array({ maxLength: 125 }).map((d) => new Ping(d)),
  fc.string({ maxLength: 30 }).map((t) => new SendText(t)),
  fc.uint8Array({ maxLength: 100 }).map((d) => new SendBinary(d)),
  fc.tuple(validCode, fc.string({ maxLength: 10 })).map(([code, reason]) => new Close(code, reason)),
  fc.option(validCode, { nil: null }).map((code) => new PeerClose(code)),
  fc
    .record({
      opcode: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 2, 9, 10), weight: 8 }, { arbitrary: fc.integer({ min: 0, max: 15 }), weight: 1 }),
      fin: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
      rsv: fc.oneof({ arbitrary: fc.constant(0), weight: 9 }, { arbitrary: fc.constantFrom(0x10, 0x20, 0x40), weight: 1 }),
      masked: fc.oneof({ arbitrary: fc.constant(true), weight: 9 }, { arbitrary: fc.constant(false), weight: 1 }),
      payload: fc.oneof(fc.string({ maxLength: 20 }).map((s) => Buffer.from(s)), fc.uint8Array({ maxLength: 80 })),
    })
    .map((f) => new PeerFrame(f.opcode, f.fin, f.rsv, f.masked, f.payload)),
  fc.constant(new PeerEof()),
  fc.constantFrom(1002, 1007, 1008, 1009, 1011).map((code) => new Fail(code)),
];

describe('property: connection model', () => {
  test('any sequence of sends, closes, peer frames, EOF and failures keeps the closing invariants', () => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 25 }), (cmds) => {
        fc.modelRun(() => ({ model: { closeSent: false, closed: false, closeSentByApp: false }, real: new Real() }), cmds);
      }),
      params(),
    );
  });
});

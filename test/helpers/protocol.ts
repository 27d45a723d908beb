// Shared helpers of the protocol-core tests: hex literals, a fixed masking key, a recording
// FrameSink, and assertions named for what they check (assertFrameSent, assertConnectionFailing).

import assert from 'node:assert/strict';
import { Connection, type ConnectionEvent, type ConnectionOptions } from '../../src/protocol/connection.js';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import type { FrameSink } from '../../src/protocol/parser.js';
import { parseFrame } from './net.js';

/** Bytes from a hex literal; spaces and line breaks are ignored ("81 85 37fa213d"). */
export function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  assert.match(digits, /^([0-9a-fA-F]{2})*$/, `bad hex literal: ${text}`);
  return Buffer.from(digits, 'hex');
}

/** Hex of bytes, as the assertions print them. */
export function toHex(data: Uint8Array | readonly Uint8Array[]): string {
  const parts = data instanceof Uint8Array ? [data] : data;
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length))).toString('hex');
}

/** The masking key of RFC 6455 §5.7's examples. */
export const MASK = hex('37 fa 21 3d');

/**
 * A client frame (masked with MASK), built by the encoder. Used for frames too long to write
 * out as hex; the encoder itself is checked against hex literals in frame.test.ts.
 */
export function clientFrame(opcode: number, payload: Uint8Array | string, options: { fin?: boolean; rsv?: number } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat(encodeFrame(opcode, data, { ...options, mask: MASK }));
}

/** A server-side Connection. */
export function server(options: ConnectionOptions = {}): Connection {
  return new Connection(options);
}

/** Feeds bytes as the transport would: a fresh copy, since the connection unmasks in place. */
export function receive(conn: Connection, ...chunks: Array<Uint8Array | string>): void {
  for (const chunk of chunks) conn.receiveData(typeof chunk === 'string' ? hex(chunk) : Buffer.from(chunk));
}

/** Asserts that exactly these bytes were queued for the peer since the last take. */
export function assertFrameSent(conn: Connection, expected: string | Uint8Array): void {
  const want = typeof expected === 'string' ? hex(expected) : expected;
  assert.equal(toHex(conn.takeOutput()), toHex(want));
}

/**
 * The frames queued for the peer since the last take, one Buffer each: takeOutput may hand frames
 * that lie side by side in memory over as one Buffer, so they are cut apart by their headers.
 */
export function takeFrames(conn: Connection): Buffer[] {
  let bytes = Buffer.concat(conn.takeOutput());
  const frames: Buffer[] = [];
  while (bytes.length !== 0) {
    const frame = parseFrame(bytes);
    assert.ok(frame !== null, `a frame cut short in the last ${bytes.length} bytes of the output`);
    frames.push(frame.bytes);
    bytes = bytes.subarray(frame.bytes.length);
  }
  return frames;
}

/** Asserts that nothing was queued for the peer since the last take. */
export function assertNothingSent(conn: Connection): void {
  assert.deepEqual(conn.takeOutput(), []);
}

/** Events with Buffers shown as hex, for readable deep equality. */
export type PlainEvent =
  | { type: 'text'; data: string }
  | { type: 'textBytes' | 'binary' | 'ping' | 'pong'; data: string }
  | { type: 'close'; code: number; reason: string }
  | { type: 'error'; code: ProtocolErrorCode; closeCode: number; message: string };

export function plainEvents(events: readonly ConnectionEvent[]): PlainEvent[] {
  return events.map((e): PlainEvent => {
    switch (e.type) {
      case 'text':
        return { type: 'text', data: e.data };
      case 'textBytes':
      case 'binary':
      case 'ping':
      case 'pong':
        assert.ok(Buffer.isBuffer(e.data), `${e.type} data is a Buffer`);
        return { type: e.type, data: e.data.toString('hex') };
      case 'close':
        return { type: 'close', code: e.code, reason: e.reason };
      case 'error':
        assert.ok(e.error instanceof ProtocolError);
        return { type: 'error', code: e.error.code, closeCode: e.error.closeCode, message: e.error.message };
    }
  });
}

/** Asserts the events since the last take (Buffers compared as hex). */
export function assertEvents(conn: Connection, expected: PlainEvent[]): void {
  assert.deepEqual(plainEvents(conn.takeEvents()), expected);
}

/** The exact bytes of an unmasked Close frame with this code and reason, built by hand (not by the encoder). */
export function closeFrameBytes(code: number, reason = ''): Buffer {
  const text = Buffer.from(reason, 'utf8');
  assert.ok(text.length <= 123);
  return Buffer.concat([Buffer.from([0x88, 2 + text.length, code >> 8, code & 0xff]), text]);
}

export interface ExpectedFailure {
  code: ProtocolErrorCode;
  message: string;
  closeCode: number;
  /** Events expected before the error, if any. */
  before?: PlainEvent[];
  /** The output expected before the Close frame, as hex (e.g. a Pong). */
  sentBefore?: string;
}

/**
 * Asserts that the connection failed (RFC 6455 §7.1.7) with one ProtocolError of this class, code,
 * message and close code; that exactly one Close frame carrying that code and the message as its
 * reason was queued; that the transport is to be ended; and that further input is discarded.
 */
export function assertConnectionFailing(conn: Connection, expected: ExpectedFailure): ProtocolError {
  const events = conn.takeEvents();
  const last = events.at(-1);
  assert.ok(last !== undefined && last.type === 'error', `expected an error event, got ${JSON.stringify(plainEvents(events))}`);
  const error = last.error;
  assert.ok(error instanceof ProtocolError, 'the error is a ProtocolError');
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'ProtocolError');
  assert.deepEqual(
    { code: error.code, message: error.message, closeCode: error.closeCode },
    { code: expected.code, message: expected.message, closeCode: expected.closeCode },
  );
  assert.deepEqual(plainEvents(events.slice(0, -1)), expected.before ?? []);
  assert.equal(conn.failure, error);
  const closeReason = expected.closeCode === 1011 ? '' : expected.message;
  assert.equal(toHex(conn.takeOutput()), (expected.sentBefore ?? '').replace(/\s+/g, '') + toHex(closeFrameBytes(expected.closeCode, closeReason)));
  assert.equal(conn.state, 3 /* Closed */);
  assert.equal(conn.endTransport, true);
  assert.equal(conn.closeSent, true);
  assert.equal(conn.closeCode, expected.closeCode);
  assert.equal(conn.closeReason, closeReason);
  assertInputDiscarded(conn);
  return error;
}

/** Asserts that a valid frame fed now produces no event and no output (§7.1.7, §5.5.1). */
export function assertInputDiscarded(conn: Connection): void {
  receive(conn, '89 80 37fa213d'); // a masked, empty Ping
  receive(conn, '81 85 37fa213d 7f9f4d5158'); // a masked "Hello"
  assert.deepEqual(conn.takeEvents(), []);
  assert.deepEqual(conn.takeOutput(), []);
}

/** One frame as a FrameParser reports it. */
export interface RecordedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  length: number;
  /** The payload, unmasked, as hex. */
  data: string;
}

/**
 * A FrameSink that records frames and errors. `pause` makes onFrameEnd pause the parser after
 * every frame; `stopAtHeader` makes the n-th header (1-based) stop it for good.
 */
export class RecordingSink implements FrameSink {
  frames: RecordedFrame[] = [];
  errors: ProtocolError[] = [];
  headers = 0;
  #current: { fin: boolean; rsv: number; opcode: number; length: number; parts: Buffer[] } | null = null;
  constructor(readonly options: { pause?: boolean; stopAtHeader?: number } = {}) {}

  onFrameHeader(fin: boolean, rsv: number, opcode: number, length: number): boolean {
    assert.equal(this.#current, null, 'a header arrives only after the previous frame ended');
    this.headers++;
    if (this.headers === this.options.stopAtHeader) return false;
    this.#current = { fin, rsv, opcode, length, parts: [] };
    return true;
  }

  onFrameData(data: Buffer): boolean {
    assert.ok(this.#current !== null, 'data belongs to a frame');
    assert.ok(data.length > 0, 'no empty data pieces');
    this.#current.parts.push(Buffer.from(data));
    return true;
  }

  onFrameEnd(): boolean {
    const c = this.#current;
    assert.ok(c !== null, 'a frame ends after its header');
    const data = Buffer.concat(c.parts);
    assert.equal(data.length, c.length, 'the payload has the announced length');
    this.frames.push({ fin: c.fin, rsv: c.rsv, opcode: c.opcode, length: c.length, data: data.toString('hex') });
    this.#current = null;
    return this.options.pause !== true;
  }

  onFrameError(error: ProtocolError): void {
    this.errors.push(error);
  }
}

/** Asserts a ProtocolError's class, code, message and close code together. */
export function assertProtocolError(
  error: unknown,
  expected: { code: ProtocolErrorCode; message: string; closeCode: number },
): void {
  assert.ok(error instanceof ProtocolError, 'a ProtocolError');
  assert.deepEqual(
    { code: error.code, message: error.message, closeCode: error.closeCode },
    { code: expected.code, message: expected.message, closeCode: expected.closeCode },
  );
}

// What a case of the audit battery is: a small record (id, title, RFC section, what to send, what
// must come back), and the helpers the case files use to write frames in a line each. The battery
// itself is data: one file per family under src/audit/cases/.

import { Opcode } from '../protocol/constants.js';
import { encodeClosePayload } from '../protocol/frame.js';
import type { PerMessageDeflate } from '../protocol/deflate.js';
import type { FrameSpec, RequestOptions } from './wire.js';
import type { HandshakeExpectation } from './model.js';

export type { FrameSpec } from './wire.js';

/** What a case's frames may depend on: the permessage-deflate the handshake agreed, to compress with. */
export interface CaseContext {
  /** Our compressor for this connection (client side of RFC 7692), or null without the extension. */
  deflate: PerMessageDeflate | null;
}

/** How the client's byte stream is cut into writes. */
export type WritePlan =
  /** All frames in one write: the hardest order for a server (default). */
  | 'once'
  /** Each frame its own write. */
  | 'frames'
  /** Pieces of this many bytes, each its own write, `delay` ms apart. */
  | { chunkSize: number; delay?: number };

/** What a case sends and how. Shared by both kinds of case. */
interface CaseBase {
  /** A dotted id, family first: `utf8.split.3`. */
  id: string;
  /** One line saying what is sent and checked. */
  title: string;
  /** The RFC section it enforces: `RFC 6455 §5.5.2`. */
  rfc: string;
  /** A note shown in the report, e.g. a rule the server is about to gain. */
  note?: string;
  /** The case's own deadline in ms, when the runner's default is too short (16 MiB payloads). */
  timeout?: number;
}

/** A case that opens the WebSocket normally, sends frames and judges the replies with the model. */
export interface FrameCase extends CaseBase {
  kind: 'frames';
  /** The frames, in order (a function: large payloads are built only when the case runs). */
  frames: (context: CaseContext) => FrameSpec[];
  /** How the stream is cut into writes. Default 'once'. */
  write?: WritePlan;
  /** The permessage-deflate offer to make (the Sec-WebSocket-Extensions value); the case is UNIMPLEMENTED when it is declined. */
  deflateOffer?: string;
  /**
   * Observe fail-fast detection (§8.1): stop writing right after the byte that proves the text
   * invalid, and wait for the server to fail before sending the rest. Default false.
   */
  failFast?: boolean;
  /** Whether the audit closes with 1000 once the replies came, when the frames leave the connection open. Default true. */
  closeAfter?: boolean;
}

/** A case that sends an opening handshake request of its own and judges the response. */
export interface HandshakeCase extends CaseBase {
  kind: 'handshake';
  /** The request: options bending the normal one (a function of the server's URL when they name it). */
  request: RequestOptions | ((url: URL) => RequestOptions);
  /** What the response must be. */
  expect: HandshakeExpectation;
}

/** One case of the battery. */
export type AuditCase = FrameCase | HandshakeCase;

// ------------------------------------------------------------------------------- frame helpers

/** A text frame (FIN set unless told otherwise). */
export function text(payload: string | Uint8Array, options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): FrameSpec {
  return { opcode: Opcode.Text, payload, ...options };
}
/** A binary frame. */
export function binary(payload: Uint8Array | string, options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): FrameSpec {
  return { opcode: Opcode.Binary, payload, ...options };
}
/** A continuation frame; `fin` defaults to true (the last fragment). */
export function continuation(payload: string | Uint8Array, options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): FrameSpec {
  return { opcode: Opcode.Continuation, payload, ...options };
}
/** A Ping frame. */
export function ping(payload: string | Uint8Array = '', options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): FrameSpec {
  return { opcode: Opcode.Ping, payload, ...options };
}
/** A Pong frame. */
export function pong(payload: string | Uint8Array = '', options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): FrameSpec {
  return { opcode: Opcode.Pong, payload, ...options };
}
/** A Close frame with a code and reason (any code: invalid ones are written as given), or with no payload. */
export function close(code?: number, reason: string | Uint8Array = ''): FrameSpec {
  if (code === undefined) return { opcode: Opcode.Close };
  const reasonBytes = typeof reason === 'string' ? Buffer.from(reason) : Buffer.from(reason);
  const payload = Buffer.alloc(2 + reasonBytes.length);
  payload.writeUInt16BE(code, 0);
  reasonBytes.copy(payload, 2);
  return { opcode: Opcode.Close, payload };
}
/** A Close frame with a valid code, through the core's encoder (throws for a code that may not be sent). */
export function validClose(code: number, reason = ''): FrameSpec {
  return { opcode: Opcode.Close, payload: encodeClosePayload(code, reason) };
}

/** `payload` cut into fragments of `size` bytes: the first with `opcode`, the rest continuations. */
export function fragments(opcode: number, payload: Uint8Array, size: number): FrameSpec[] {
  const frames: FrameSpec[] = [];
  for (let start = 0; start < payload.length || frames.length === 0; start += size) {
    const end = Math.min(payload.length, start + size);
    frames.push({ opcode: frames.length === 0 ? opcode : Opcode.Continuation, payload: payload.subarray(start, end), fin: end >= payload.length });
  }
  return frames;
}

const PATTERN = Buffer.from('The quick brown fox jumps over the lazy dog, 0123456789. ');

/** `length` bytes of repeatable, printable ASCII (a text payload that is cheap to check). */
export function asciiPayload(length: number, seed = 0): Buffer {
  const start = seed % PATTERN.length;
  // Buffer.fill repeats the pattern natively: 16 MiB costs what a memcpy does.
  return Buffer.alloc(length).fill(Buffer.concat([PATTERN.subarray(start), PATTERN.subarray(0, start)]));
}

/** Bytes of noise after which binaryPayload repeats: more than permessage-deflate's 32 KiB window, so it never compresses. */
const NOISE_BLOCK = 64 * 1024;

/** `length` bytes of repeatable binary noise (xorshift32, a 64 KiB block repeated): the same every run, and it does not compress. */
export function binaryPayload(length: number, seed = 1): Buffer {
  const block = Buffer.allocUnsafe(Math.min(length, NOISE_BLOCK));
  let x = seed | 0 || 1;
  for (let i = 0; i < block.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = x & 0xff;
  }
  return length <= NOISE_BLOCK ? block : Buffer.alloc(length).fill(block);
}

/** Shorthand for a frame case that takes a fixed list of frames. */
export function frameCase(id: string, title: string, rfc: string, frames: FrameSpec[] | ((context: CaseContext) => FrameSpec[]), extra: Partial<FrameCase> = {}): FrameCase {
  return { kind: 'frames', id, title, rfc, frames: typeof frames === 'function' ? frames : () => frames, ...extra };
}

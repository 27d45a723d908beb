// The fuzzer's generators: fast-check arbitraries of frame sequences, valid and invalid. A case is
// built from groups (a message, perhaps fragmented, perhaps compressed, with control frames between
// its fragments; a control frame; a Close; a frame with random header bits; a frame announcing a
// huge length), a mutation that breaks one frame (RSV bits, a reserved opcode, no mask, a
// non-minimal or lying length, FIN flipped), the points where the byte stream is cut into writes,
// and the permessage-deflate offer. fast-check shrinks the groups, and so the frames.
//
// fast-check is loaded by the caller (it is an optional peer dependency) and passed in.

import { constants as zlib, deflateRawSync } from 'node:zlib';
import type * as FastCheck from 'fast-check';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, RSV1 } from '../../protocol/constants.js';
import { encodedLength, type FrameSpec } from '../wire.js';
import type { FuzzCase } from './case.js';

/** The fast-check module, as `await import('fast-check')` returns it. */
export type FastCheckModule = Omit<typeof FastCheck, 'default'>;

/** A data message's payload before any compression. */
type Body =
  | { kind: 'text'; text: string }
  /** Text with one invalid UTF-8 sequence inside (RFC 3629 §3, RFC 6455 §8.1). */
  | { kind: 'bad-text'; before: string; bad: readonly number[]; after: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  /** A long payload: `length` bytes of a repeated pattern (sizes that need the 16- and 64-bit lengths). */
  | { kind: 'long'; length: number; pattern: number };

/** A Ping or Pong. */
interface Control {
  opcode: number;
  payload: Uint8Array;
}

/** What breaks one frame. */
type Mutation =
  | { kind: 'rsv'; bits: number }
  | { kind: 'opcode'; opcode: number }
  | { kind: 'unmasked' }
  | { kind: 'length-form'; form: 16 | 64 }
  | { kind: 'length-lie'; delta: number }
  | { kind: 'fin' };

type Group =
  | {
      kind: 'message';
      opcode: number;
      body: Body;
      /** Compressed with permessage-deflate (RSV1 on the first frame, RFC 7692 §6). */
      compressed: boolean;
      /** A byte of the wire payload XORed, to break the compressed data: [index, value]. */
      corrupt: [number, number] | null;
      /** Cut points of the wire payload into fragments (duplicates make empty fragments). */
      cuts: number[];
      /** Control frames after fragment `at` (modulo the count). */
      controls: { at: number; control: Control }[];
    }
  | { kind: 'control'; control: Control }
  | { kind: 'close'; payload: Uint8Array }
  | { kind: 'raw'; opcode: number; fin: boolean; rsv: number; payload: Uint8Array }
  /** A frame whose 64-bit length announces far more than is sent (§5.2; limits, §10.4). */
  | { kind: 'huge'; opcode: number; length: number; payload: Uint8Array };

/** What the arbitrary generates; `toCase` turns it into frames. */
export interface CasePlan {
  groups: Group[];
  /** A mutation, and the index (modulo the frame count) of the frame it breaks. */
  mutation: [Mutation, number] | null;
  /** End with a Close 1000, so the server must answer it and close TCP (§7.1.1-§7.1.2). */
  closing: boolean;
  /** One masking key for the case's frames, as a 32-bit number (shrinks to 00000000). */
  mask: number;
  /** Cut points of the whole byte stream into writes (modulo its length). */
  splits: number[];
  delay: number;
  extensions: string | null;
}

/** The permessage-deflate offers a case may make (RFC 7692 §7.1); compressed frames work with each. */
export const DEFLATE_OFFERS: readonly string[] = [
  'permessage-deflate',
  'permessage-deflate; client_no_context_takeover',
  'permessage-deflate; server_no_context_takeover',
  'permessage-deflate; server_max_window_bits=10',
  'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9',
];

/** Byte sequences that are not UTF-8: overlong forms, surrogates, beyond U+10FFFF, stray and cut-short sequences. */
export const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5],
  [0xfe],
  [0xff],
  [0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
];

/** Close codes that may be sent (§7.4) and some that may not. */
const CLOSE_CODES: readonly number[] = [
  1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
  0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
];

/** Lengths a 64-bit length field may announce: past 2^31, 2^32, 2^53, and with the top bit set (§5.2). */
const HUGE_LENGTHS: readonly number[] = [0x10000, 0x7fffffff, 0x80000000, 2 ** 32, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 2 ** 62, 2 ** 63, 2 ** 63 + 2 ** 11];

const RESERVED_OPCODES: readonly number[] = [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf];

/** What the generated cases may use. */
export interface GenerateOptions {
  /** Offer permessage-deflate in some cases (compressed frames are sent either way). */
  compression: boolean;
}

/** The arbitrary of fuzz case plans. */
export function casePlanArbitrary(fc: FastCheckModule, options: GenerateOptions): FastCheck.Arbitrary<CasePlan> {
  const smallBytes = (max: number): FastCheck.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });
  const text = fc.string({ unit: 'binary', maxLength: 24 });
  const body: FastCheck.Arbitrary<Body> = fc.oneof(
    { withCrossShrink: true },
    { arbitrary: text.map((t): Body => ({ kind: 'text', text: t })), weight: 4 },
    { arbitrary: smallBytes(32).map((bytes): Body => ({ kind: 'bytes', bytes })), weight: 2 },
    {
      arbitrary: fc.record({ before: text, bad: fc.constantFrom(...INVALID_UTF8), after: text }).map((b): Body => ({ kind: 'bad-text', ...b })),
      weight: 2,
    },
    {
      arbitrary: fc
        .record({ length: fc.oneof(fc.integer({ min: 126, max: 1000 }), fc.integer({ min: 0x10000, max: 0x10000 + 4096 })), pattern: fc.nat(255) })
        .map((b): Body => ({ kind: 'long', ...b })),
      weight: 1,
    },
  );
  const control: FastCheck.Arbitrary<Control> = fc.record({
    opcode: fc.constantFrom(Opcode.Ping, Opcode.Pong),
    payload: fc.oneof({ arbitrary: smallBytes(16), weight: 5 }, { arbitrary: fc.uint8Array({ minLength: MAX_CONTROL_PAYLOAD, maxLength: MAX_CONTROL_PAYLOAD + 2 }), weight: 1 }),
  });
  const message = fc.record({
    kind: fc.constant('message' as const),
    opcode: fc.constantFrom(Opcode.Text, Opcode.Binary),
    body,
    compressed: fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, { arbitrary: fc.constant(true), weight: 1 }),
    corrupt: fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { freq: 8 }),
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
    controls: fc.array(fc.record({ at: fc.nat(), control }), { maxLength: 2 }),
  });
  const closePayload = fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.record({ code: fc.constantFrom(...CLOSE_CODES), reason: fc.string({ unit: 'binary', maxLength: 12 }) }).map(({ code, reason }) => closeBytes(code, Buffer.from(reason))),
    fc.record({ code: fc.constantFrom(...CLOSE_CODES), bad: fc.constantFrom(...INVALID_UTF8) }).map(({ code, bad }) => closeBytes(code, Buffer.from(bad))),
    fc.nat(255).map((b) => Uint8Array.of(b)),
    fc.integer({ min: 1000, max: 1015 }).map((code) => closeBytes(code, Buffer.alloc(MAX_CONTROL_PAYLOAD - 1, 0x61))),
  );
  const group: FastCheck.Arbitrary<Group> = fc.oneof(
    { withCrossShrink: true },
    { arbitrary: message, weight: 8 },
    { arbitrary: control.map((c): Group => ({ kind: 'control', control: c })), weight: 3 },
    { arbitrary: closePayload.map((payload): Group => ({ kind: 'close', payload })), weight: 1 },
    {
      arbitrary: fc
        .record({ opcode: fc.nat(15), fin: fc.boolean(), rsv: fc.nat(7), payload: smallBytes(8) })
        .map((r): Group => ({ kind: 'raw', opcode: r.opcode, fin: r.fin, rsv: r.rsv << 4, payload: r.payload })),
      weight: 1,
    },
    {
      arbitrary: fc
        .record({ opcode: fc.constantFrom(Opcode.Binary, Opcode.Text, Opcode.Continuation, Opcode.Ping), length: fc.constantFrom(...HUGE_LENGTHS), payload: smallBytes(8) })
        .map((h): Group => ({ kind: 'huge', ...h })),
      weight: 1,
    },
  );
  const mutation: FastCheck.Arbitrary<Mutation> = fc.oneof(
    fc.integer({ min: 1, max: 7 }).map((bits): Mutation => ({ kind: 'rsv', bits: bits << 4 })),
    fc.constantFrom(...RESERVED_OPCODES).map((opcode): Mutation => ({ kind: 'opcode', opcode })),
    fc.constant<Mutation>({ kind: 'unmasked' }),
    fc.constantFrom(16 as const, 64 as const).map((form): Mutation => ({ kind: 'length-form', form })),
    fc.integer({ min: -4, max: 4 }).filter((d) => d !== 0).map((delta): Mutation => ({ kind: 'length-lie', delta })),
    fc.constant<Mutation>({ kind: 'fin' }),
  );
  return fc.record({
    groups: fc.array(group, { minLength: 1, maxLength: 6 }),
    mutation: fc.option(fc.tuple(mutation, fc.nat()), { freq: 3 }),
    // Shrinks towards no closing Close: a fault that needs none is shown without one.
    closing: fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant(false), weight: 1 }, { arbitrary: fc.constant(true), weight: 4 }),
    mask: fc.nat({ max: 0xffffffff }),
    splits: fc.array(fc.nat(), { maxLength: 5 }),
    delay: fc.oneof({ arbitrary: fc.constant(0), weight: 9 }, { arbitrary: fc.constant(1), weight: 1 }),
    extensions: options.compression ? fc.option(fc.constantFrom(...DEFLATE_OFFERS), { freq: 3 }) : fc.constant(null),
  });
}

function closeBytes(code: number, reason: Uint8Array): Uint8Array {
  const bytes = Buffer.alloc(2 + reason.length);
  bytes.writeUInt16BE(code, 0);
  bytes.set(reason, 2);
  return bytes;
}

/** The payload of a body, as UTF-8 or bytes. */
function bodyBytes(body: Body): Buffer {
  switch (body.kind) {
    case 'text':
      return Buffer.from(body.text, 'utf8');
    case 'bad-text':
      return Buffer.concat([Buffer.from(body.before, 'utf8'), Buffer.from(body.bad), Buffer.from(body.after, 'utf8')]);
    case 'bytes':
      return Buffer.from(body.bytes);
    case 'long': {
      // Printable ASCII, so a long text message is valid UTF-8.
      const bytes = Buffer.allocUnsafe(body.length);
      for (let i = 0; i < bytes.length; i++) bytes[i] = 0x20 + ((i + body.pattern) % 95);
      return bytes;
    }
  }
}

/**
 * A message compressed on its own (RFC 7692 §7.2.1): raw DEFLATE ending in a sync flush, whose
 * final 00 00 ff ff is removed. No context is kept between messages, so the bytes are the same
 * whatever context takeover and window the handshake agrees on.
 */
export function compressMessage(payload: Uint8Array): Buffer {
  const flushed = deflateRawSync(payload, { finishFlush: zlib.Z_SYNC_FLUSH });
  return flushed.subarray(0, flushed.length - 4);
}

/** Splits `data` at `cuts` (each modulo length + 1, sorted; a repeated cut gives an empty piece). */
function cutAt(data: Buffer, cuts: readonly number[]): Buffer[] {
  const points = cuts.map((c) => c % (data.length + 1)).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    pieces.push(data.subarray(start, point));
    start = point;
  }
  pieces.push(data.subarray(start));
  return pieces;
}

function groupFrames(group: Group): FrameSpec[] {
  switch (group.kind) {
    case 'control':
      return [{ opcode: group.control.opcode, payload: group.control.payload }];
    case 'close':
      return [{ opcode: Opcode.Close, payload: group.payload }];
    case 'raw':
      return [{ opcode: group.opcode, fin: group.fin, rsv: group.rsv, payload: group.payload }];
    case 'huge':
      return [{ opcode: group.opcode, payload: group.payload, length: group.length, lengthForm: 64 }];
    case 'message': {
      let wire = bodyBytes(group.body);
      if (group.compressed) wire = compressMessage(wire);
      if (group.corrupt !== null && wire.length > 0) {
        wire = Buffer.from(wire);
        wire[group.corrupt[0] % wire.length] ^= group.corrupt[1];
      }
      const pieces = cutAt(wire, group.cuts);
      const frames: FrameSpec[] = [];
      pieces.forEach((piece, i) => {
        const spec: FrameSpec = { opcode: i === 0 ? group.opcode : Opcode.Continuation, payload: piece, fin: i === pieces.length - 1 };
        if (i === 0 && group.compressed) spec.rsv = RSV1;
        frames.push(spec);
        for (const { at, control } of group.controls) {
          if (at % pieces.length === i && i < pieces.length - 1) frames.push({ opcode: control.opcode, payload: control.payload });
        }
      });
      return frames;
    }
  }
}

function mutate(spec: FrameSpec, mutation: Mutation): FrameSpec {
  const payloadLength = typeof spec.payload === 'string' ? Buffer.byteLength(spec.payload) : (spec.payload?.length ?? 0);
  switch (mutation.kind) {
    case 'rsv':
      return { ...spec, rsv: (spec.rsv ?? 0) ^ mutation.bits };
    case 'opcode':
      return { ...spec, opcode: mutation.opcode };
    case 'unmasked':
      return { ...spec, mask: null };
    case 'length-form': {
      const length = spec.length ?? payloadLength;
      // Only ever a longer form than needed: a shorter one cannot hold the length.
      if (mutation.form === 16 && length >= 0x10000) return spec;
      return { ...spec, lengthForm: mutation.form };
    }
    case 'length-lie': {
      const length = Math.max(0, (spec.length ?? payloadLength) + mutation.delta);
      const form = spec.lengthForm ?? (payloadLength < 126 ? 7 : payloadLength < 0x10000 ? 16 : 64);
      // Keep the length form of the true length; a lie that needs a longer form gets it.
      const needed = length < 126 ? 7 : length < 0x10000 ? 16 : 64;
      return { ...spec, length, lengthForm: needed > form ? needed : form };
    }
    case 'fin':
      return { ...spec, fin: !(spec.fin ?? true) };
  }
}

/** The masking key of a plan, as 4 bytes. */
function maskKey(mask: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32BE(mask >>> 0, 0);
  return key;
}

/** Turns a plan into the frames and writes of a case. Pure: the same plan gives the same bytes. */
export function toCase(plan: CasePlan): FuzzCase {
  let frames = plan.groups.flatMap(groupFrames);
  if (plan.mutation !== null && frames.length > 0) {
    const [mutation, at] = plan.mutation;
    const index = at % frames.length;
    frames = frames.map((spec, i) => (i === index ? mutate(spec, mutation) : spec));
  }
  if (plan.closing) frames.push({ opcode: Opcode.Close, payload: closeBytes(CloseCode.Normal, new Uint8Array(0)) });
  const key = maskKey(plan.mask);
  frames = frames.map((spec) => (spec.mask === null ? spec : { ...spec, mask: key }));
  const streamLength = frames.reduce((sum, spec) => sum + encodedLength(spec), 0);
  const splitAt = [...new Set(plan.splits.map((s) => (streamLength <= 1 ? 0 : 1 + (s % (streamLength - 1)))))].filter((s) => s > 0).sort((a, b) => a - b);
  return { frames, splitAt, delay: plan.delay, extensions: plan.extensions };
}

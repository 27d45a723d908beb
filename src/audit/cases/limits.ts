// Limits and large payloads (RFC 6455 §5.2, §5.4, §10.4): messages up to 16 MiB in one frame, in
// many fragments, written in small pieces, and many messages in a row. A server may refuse a
// message over its own limit with 1009 (or 1008): that is INFORMATIONAL, with the limit named.
// (Autobahn's families 9 and 10.)

import { Opcode } from '../../protocol/constants.js';
import { asciiPayload, binaryPayload, fragments, frameCase, type AuditCase } from '../case.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const FRAGMENT_SIZES = [64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB];
const CHUNK_SIZES = [64, 128, 256, 512, 1 * KiB, 2 * KiB, 4 * KiB, 64 * KiB];
const COUNTS = [0, 16, 64, 256, 1 * KiB, 4 * KiB];

const size = (n: number): string => (n >= MiB ? `${n / MiB}MiB` : n >= KiB ? `${n / KiB}KiB` : `${n}B`);
const timeoutFor = (n: number): number => 10_000 + Math.ceil(n / MiB) * 1000;

export const cases: AuditCase[] = [
  ...SIZES.flatMap((n) => [
    frameCase(`limits.text.${size(n)}`, `a ${size(n)} text message in one frame is echoed`, 'RFC 6455 §5.2', () => [{ opcode: Opcode.Text, payload: asciiPayload(n) }], { timeout: timeoutFor(n) }),
    frameCase(`limits.binary.${size(n)}`, `a ${size(n)} binary message in one frame is echoed`, 'RFC 6455 §5.2', () => [{ opcode: Opcode.Binary, payload: binaryPayload(n, n) }], { timeout: timeoutFor(n) }),
  ]),
  ...FRAGMENT_SIZES.flatMap((f) => [
    frameCase(`limits.fragmented.text.${size(f)}`, `a 4MiB text message in fragments of ${size(f)} is echoed`, 'RFC 6455 §5.4', () => fragments(Opcode.Text, asciiPayload(4 * MiB), f), { timeout: timeoutFor(4 * MiB) + (f < KiB ? 5000 : 0) }),
    frameCase(`limits.fragmented.binary.${size(f)}`, `a 4MiB binary message in fragments of ${size(f)} is echoed`, 'RFC 6455 §5.4', () => fragments(Opcode.Binary, binaryPayload(4 * MiB, f), f), { timeout: timeoutFor(4 * MiB) + (f < KiB ? 5000 : 0) }),
  ]),
  ...CHUNK_SIZES.flatMap((c) => [
    frameCase(`limits.chunked.text.${size(c)}`, `a 1MiB text frame written in pieces of ${size(c)} is echoed`, 'RFC 6455 §5.2', () => [{ opcode: Opcode.Text, payload: asciiPayload(MiB) }], { write: { chunkSize: c }, timeout: 20_000 }),
    frameCase(`limits.chunked.binary.${size(c)}`, `a 1MiB binary frame written in pieces of ${size(c)} is echoed`, 'RFC 6455 §5.2', () => [{ opcode: Opcode.Binary, payload: binaryPayload(MiB, c) }], { write: { chunkSize: c }, timeout: 20_000 }),
  ]),
  ...COUNTS.flatMap((n) => [
    frameCase(`limits.many.text.${size(n)}`, `1000 text messages of ${size(n)} in a row are echoed in order`, 'RFC 6455 §5.6', () => Array.from({ length: 1000 }, (_, i) => ({ opcode: Opcode.Text, payload: asciiPayload(n, i) })), { write: { chunkSize: 64 * KiB }, timeout: 20_000 }),
    frameCase(`limits.many.binary.${size(n)}`, `1000 binary messages of ${size(n)} in a row are echoed in order`, 'RFC 6455 §5.6', () => Array.from({ length: 1000 }, (_, i) => ({ opcode: Opcode.Binary, payload: binaryPayload(n, i + 1) })), { write: { chunkSize: 64 * KiB }, timeout: 20_000 }),
  ]),
  frameCase('limits.empty-fragments', 'a message of 10,000 empty fragments and one byte (a server may stop it with 1008/1009)', 'RFC 6455 §5.4, §10.4', () => [
    ...Array.from({ length: 10_000 }, (_, i) => ({ opcode: i === 0 ? Opcode.Text : Opcode.Continuation, payload: '', fin: false })),
    { opcode: Opcode.Continuation, payload: 'x' },
  ]),
  frameCase('limits.reply-fragmentation', 'a 1MiB message whose echo the server may send in fragments of its choosing', 'RFC 6455 §5.4', () => [{ opcode: Opcode.Binary, payload: binaryPayload(MiB, 77) }]),
];

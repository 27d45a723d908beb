// permessage-deflate (RFC 7692) with each parameter set: the audit offers the extension, compresses
// what it sends with the parameters agreed, and checks that each message comes back (compressed or
// not). A server that declines the offer is UNIMPLEMENTED for these cases. (Autobahn's families 12, 13.)

import { Opcode, RSV1 } from '../../protocol/constants.js';
import { asciiPayload, binaryPayload, frameCase, ping, type AuditCase, type CaseContext, type FrameSpec } from '../case.js';

/** A compressed message as one frame (RFC 7692 §6: RSV1 on its first frame); the context advances. */
function compressed(context: CaseContext, opcode: number, data: Buffer): FrameSpec {
  const deflate = context.deflate!;
  const payload = deflate.compress(data);
  deflate.commit(data);
  return { opcode, payload, rsv: RSV1 };
}

/** JSON-like text that compresses as real traffic does. */
function jsonPayload(length: number, seed: number): Buffer {
  let s = '';
  for (let i = 0; s.length < length; i++) s += `{"id":${seed * 1000 + i},"name":"user${(i * 7919 + seed) % 997}","active":${i % 3 === 0},"tags":["a","b${i % 5}"]},`;
  return Buffer.from(s.slice(0, length));
}

const OFFERS: [id: string, offer: string][] = [
  ['default', 'permessage-deflate'],
  ['client-max-window-bits', 'permessage-deflate; client_max_window_bits'],
  ['client-no-context-takeover', 'permessage-deflate; client_no_context_takeover'],
  ['server-no-context-takeover', 'permessage-deflate; server_no_context_takeover'],
  ['no-context-takeover', 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((n): [string, string] => [`server-window-${n}`, `permessage-deflate; server_max_window_bits=${n}`]),
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((n): [string, string] => [`client-window-${n}`, `permessage-deflate; client_max_window_bits=${n}`]),
];
const SIZES = [64, 1024, 16 * 1024, 128 * 1024];
const MESSAGES = 10;

const parameterCases = OFFERS.flatMap(([id, offer]) =>
  SIZES.map((n) =>
    frameCase(`deflate.${id}.${n}`, `${MESSAGES} compressed text messages of ${n} bytes with the offer "${offer}" are echoed`, 'RFC 7692 §7.1, §7.2', (context) =>
      Array.from({ length: MESSAGES }, (_, i) => compressed(context, Opcode.Text, jsonPayload(n, i))), { deflateOffer: offer }),
  ),
);

const KINDS: [id: string, opcode: number, payload: (n: number, i: number) => Buffer][] = [
  ['text', Opcode.Text, (n, i) => asciiPayload(n, i)],
  ['binary', Opcode.Binary, (n, i) => binaryPayload(n, i + 1)],
];
const messageCases = KINDS.flatMap(([kind, opcode, payload]) =>
  [16, 256, 4096, 65536, 1024 * 1024].map((n) =>
    frameCase(`deflate.message.${kind}.${n}`, `${MESSAGES} compressed ${kind} messages of ${n} bytes (${kind === 'binary' ? 'incompressible' : 'repetitive'}) are echoed`, 'RFC 7692 §7.2', (context) =>
      Array.from({ length: MESSAGES }, (_, i) => compressed(context, opcode, payload(n, i))), { deflateOffer: 'permessage-deflate', timeout: 20_000 }),
  ),
);

const DEFAULT = { deflateOffer: 'permessage-deflate' };
export const cases: AuditCase[] = [
  ...parameterCases,
  ...messageCases,
  frameCase('deflate.fragmented', 'a compressed message in three fragments (RSV1 on the first only) is echoed', 'RFC 7692 §6.1', (context) => {
    const frame = compressed(context, Opcode.Text, asciiPayload(3000));
    const data = frame.payload as Buffer;
    const third = Math.ceil(data.length / 3);
    return [
      { opcode: Opcode.Text, payload: data.subarray(0, third), rsv: RSV1, fin: false },
      ping('between'),
      { opcode: Opcode.Continuation, payload: data.subarray(third, 2 * third), fin: false },
      { opcode: Opcode.Continuation, payload: data.subarray(2 * third) },
    ];
  }, DEFAULT),
  frameCase('deflate.uncompressed', 'an uncompressed message (RSV1 clear) on a connection with the extension is echoed', 'RFC 7692 §6', [{ opcode: Opcode.Text, payload: 'plain text' }], DEFAULT),
  frameCase('deflate.empty', 'a compressed empty message is echoed as empty', 'RFC 7692 §7.2.3.6', (context) => [compressed(context, Opcode.Text, Buffer.alloc(0))], DEFAULT),
  frameCase('deflate.rsv1-continuation', 'RSV1 on a continuation frame fails with 1002', 'RFC 7692 §6.1', (context) => {
    const data = compressed(context, Opcode.Text, asciiPayload(200)).payload as Buffer;
    return [
      { opcode: Opcode.Text, payload: data.subarray(0, 10), rsv: RSV1, fin: false },
      { opcode: Opcode.Continuation, payload: data.subarray(10), rsv: RSV1 },
    ];
  }, DEFAULT),
  frameCase('deflate.rsv1-ping', 'RSV1 on a Ping fails with 1002', 'RFC 7692 §6.1', [ping('x', { rsv: RSV1 })], DEFAULT),
  frameCase('deflate.not-deflate', 'a message with RSV1 whose payload does not inflate fails (1007)', 'RFC 7692 §6.2', [{ opcode: Opcode.Binary, payload: Buffer.from('ffffffffffffffff', 'hex'), rsv: RSV1 }], DEFAULT),
  frameCase('deflate.invalid-utf8', 'a compressed text message that is not UTF-8 once inflated fails with 1007', 'RFC 7692 §6, RFC 6455 §8.1', (context) => [compressed(context, Opcode.Text, Buffer.from('ceba eda080 6f6b'.replace(/ /g, ''), 'hex'))], DEFAULT),
];

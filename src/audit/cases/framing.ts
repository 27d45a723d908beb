// Framing (RFC 6455 §5.2, §5.6): text and binary messages of every length form, in one write and
// in small pieces. (Autobahn's family 1.)

import { Opcode } from '../../protocol/constants.js';
import { asciiPayload, binaryPayload, frameCase, type AuditCase } from '../case.js';

/** Payload lengths at the edges of the 7-bit, 16-bit and 64-bit length forms (§5.2). */
const LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536];

export const cases: AuditCase[] = [
  ...LENGTHS.map((n) =>
    frameCase(`framing.text.${n}`, `a text message of ${n} bytes in one frame is echoed`, 'RFC 6455 §5.2, §5.6', [{ opcode: Opcode.Text, payload: asciiPayload(n) }]),
  ),
  ...LENGTHS.map((n) =>
    frameCase(`framing.binary.${n}`, `a binary message of ${n} bytes in one frame is echoed`, 'RFC 6455 §5.2, §5.6', [{ opcode: Opcode.Binary, payload: binaryPayload(n, n + 1) }]),
  ),
  frameCase('framing.text.65536-chunked', 'a 65,536-byte text frame written in 997-byte pieces is echoed', 'RFC 6455 §5.2', [{ opcode: Opcode.Text, payload: asciiPayload(65536) }], { write: { chunkSize: 997 } }),
  frameCase('framing.binary.65536-chunked', 'a 65,536-byte binary frame written in 997-byte pieces is echoed', 'RFC 6455 §5.2', [{ opcode: Opcode.Binary, payload: binaryPayload(65536) }], { write: { chunkSize: 997 } }),
  frameCase('framing.header-bytewise', 'a 300-byte text frame written one byte at a time for its 8 header bytes is echoed', 'RFC 6455 §5.2', [{ opcode: Opcode.Text, payload: asciiPayload(300) }], { write: { chunkSize: 1 } }),
  frameCase('framing.unmasked', 'an unmasked text frame from the client fails with 1002', 'RFC 6455 §5.1, §5.3', [{ opcode: Opcode.Text, payload: 'unmasked', mask: null }]),
  frameCase('framing.unmasked-after-echo', 'a masked message, then an unmasked one: the first is echoed, the second fails with 1002', 'RFC 6455 §5.1', [
    { opcode: Opcode.Text, payload: 'masked' },
    { opcode: Opcode.Text, payload: 'unmasked', mask: null },
  ]),
  frameCase('framing.unmasked-ping', 'an unmasked Ping fails with 1002 and gets no Pong', 'RFC 6455 §5.1', [{ opcode: Opcode.Ping, payload: 'unmasked', mask: null }]),
  frameCase('framing.text.length-16-non-minimal', 'a 5-byte text frame whose length uses the 16-bit form (§5.2 asks the shortest)', 'RFC 6455 §5.2', [{ opcode: Opcode.Text, payload: 'short', lengthForm: 16 }], {
    note: 'a server may accept it (what the model expects) or fail with 1002; a failure is judged against the echo',
  }),
];

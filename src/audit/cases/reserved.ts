// Reserved bits and reserved opcodes (RFC 6455 §5.2): with no extension agreed, a frame with an RSV
// bit set, or an opcode 3-7 or 11-15, fails the connection with 1002; messages before it are still
// echoed. (Autobahn's families 3 and 4.)

import { Opcode } from '../../protocol/constants.js';
import { binaryPayload, frameCase, ping, text, validClose, type AuditCase, type FrameCase } from '../case.js';

const RSV_BITS = [0x40, 0x20, 0x10, 0x60, 0x50, 0x30, 0x70];
const rsvName = (rsv: number): string => ['rsv1', 'rsv2', 'rsv3'].filter((_, i) => rsv & (0x40 >> i)).join('+');

const rsvCases: FrameCase[] = RSV_BITS.flatMap((rsv) => [
  frameCase(`rsv.${rsvName(rsv)}.text`, `a text frame with ${rsvName(rsv).toUpperCase()} set fails with 1002`, 'RFC 6455 §5.2', [text('Hello', { rsv })]),
  frameCase(`rsv.${rsvName(rsv)}.after-echo`, `a text message, then one with ${rsvName(rsv).toUpperCase()} set, then a Ping: the first is echoed, the second fails`, 'RFC 6455 §5.2', [
    text('before'),
    text('bad', { rsv }),
    ping('after'),
  ]),
]);
rsvCases.push(
  frameCase('rsv.rsv1.binary', 'a binary frame with RSV1 set (no extension agreed) fails with 1002', 'RFC 6455 §5.2', [{ opcode: Opcode.Binary, payload: binaryPayload(10), rsv: 0x40 }]),
  frameCase('rsv.rsv2.ping', 'a Ping with RSV2 set fails with 1002 (and gets no Pong)', 'RFC 6455 §5.2', [ping('x', { rsv: 0x20 })]),
  frameCase('rsv.rsv3.close', 'a Close with RSV3 set fails with 1002', 'RFC 6455 §5.2', [{ ...validClose(1000), rsv: 0x10 }]),
  frameCase('rsv.rsv1.bytewise', 'a text frame with RSV1 set, written one byte at a time after a good message', 'RFC 6455 §5.2', [text('before'), text('bad', { rsv: 0x40 })], { write: { chunkSize: 1 } }),
);

const RESERVED_DATA = [3, 4, 5, 6, 7];
const RESERVED_CONTROL = [0xb, 0xc, 0xd, 0xe, 0xf];
const opcodeCases: FrameCase[] = [...RESERVED_DATA, ...RESERVED_CONTROL].flatMap((opcode) => {
  const hex = opcode.toString(16);
  return [
    frameCase(`opcode.${hex}`, `a frame with reserved opcode 0x${hex} fails with 1002`, 'RFC 6455 §5.2', [{ opcode }]),
    frameCase(`opcode.${hex}.with-payload`, `a message, then reserved opcode 0x${hex} with payload, then a Ping: the message is echoed, the frame fails`, 'RFC 6455 §5.2', [
      text('before'),
      { opcode, payload: 'reserved' },
      ping('after'),
    ]),
  ];
});

export const cases: AuditCase[] = [...rsvCases, ...opcodeCases];

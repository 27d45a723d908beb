// The closing handshake (RFC 6455 §5.5.1, §7): a Close is answered with a Close echoing its code,
// then the server closes TCP; nothing is answered after a Close; invalid Close payloads (1 byte, a
// code that may not be sent, a reason that is not UTF-8, more than 125 bytes) fail with 1002.
// (Autobahn's family 7.)

import { asciiPayload, close, frameCase, ping, text, validClose, type AuditCase } from '../case.js';

/** Codes a client may send (§7.4.1, §7.4.2 and the IANA registry): each must be echoed. */
const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
/** Codes no endpoint may send: unassigned, reserved (1004), for reporting only (1005, 1006, 1015), or out of range. */
const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];

export const cases: AuditCase[] = [
  frameCase('close.after-echo', 'a message, then a Close: the message is echoed, then the Close', 'RFC 6455 §7.1.2', [text('Hello'), validClose(1000)]),
  frameCase('close.twice', 'a second Close after the first is ignored', 'RFC 6455 §5.5.1', [validClose(1000), validClose(1001)]),
  frameCase('close.then-ping', 'a Ping after the Close gets no Pong', 'RFC 6455 §5.5.1', [validClose(1000), ping('late')]),
  frameCase('close.then-text', 'a text message after the Close is not echoed', 'RFC 6455 §5.5.1', [validClose(1000), text('late')]),
  frameCase('close.then-garbage', 'bytes that are no valid frame after the Close are ignored', 'RFC 6455 §5.5.1', [validClose(1000), { opcode: 0x5, payload: 'junk', rsv: 0x70 }]),
  frameCase('close.empty', 'a Close without payload is answered with a Close without code (or 1000), never 1005', 'RFC 6455 §5.5.1, §7.4.1', [close()]),
  frameCase('close.1-byte', 'a Close with a 1-byte payload fails with 1002', 'RFC 6455 §5.5.1', [{ opcode: 0x8, payload: Buffer.from([0x03]) }]),
  frameCase('close.code-only', 'a Close with code 1000 and no reason gets 1000 back', 'RFC 6455 §5.5.1', [validClose(1000)]),
  frameCase('close.reason', 'a Close with code 1000 and a reason gets 1000 back', 'RFC 6455 §5.5.1', [validClose(1000, 'Goodbye, and thanks for all the fish')]),
  frameCase('close.reason-123', 'a Close with the longest reason (123 bytes) gets 1000 back', 'RFC 6455 §5.5, §5.5.1', [validClose(1000, asciiPayload(123).toString())]),
  frameCase('close.reason-124', 'a Close of 126 bytes (a 124-byte reason) fails with 1002: control frames hold 125', 'RFC 6455 §5.5', [close(1000, asciiPayload(124))]),
  frameCase('close.reason-invalid-utf8', 'a Close whose reason is not UTF-8 fails with 1007 (or 1002)', 'RFC 6455 §5.5.1, §8.1', [close(1000, Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex'))]),
  frameCase('close.reason-utf8', 'a Close with a multi-byte UTF-8 reason gets its code back', 'RFC 6455 §5.5.1', [validClose(1000, 'κόσμε ✓')]),
  ...VALID_CODES.map((code) => frameCase(`close.code.${code}`, `a Close with code ${code} (a code that may be sent) gets ${code} back`, 'RFC 6455 §7.4', [validClose(code)])),
  ...INVALID_CODES.map((code) => frameCase(`close.code.${code}`, `a Close with code ${code} (which may not be sent) fails with 1002`, 'RFC 6455 §7.4.1, §7.4.2', [close(code)])),
  frameCase('close.inside-fragmented', 'a Close between two fragments: the closing handshake; the partial message is never echoed', 'RFC 6455 §5.4, §7.1.2', [text('half ', { fin: false }), validClose(1000), text('rest')]),
  frameCase('close.after-large', 'a 256 KiB message, then a Close at once: the echo comes before the Close', 'RFC 6455 §7.1.2', () => [text(asciiPayload(256 * 1024)), validClose(1000)]),
];

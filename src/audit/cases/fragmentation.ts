// Fragmentation (RFC 6455 §5.4): every legal sequence of fragments is reassembled and echoed,
// control frames may come between fragments, and every illegal sequence (a continuation with no
// message, a new message inside one) fails with 1002. (Autobahn's family 5.)

import { Opcode } from '../../protocol/constants.js';
import { asciiPayload, binary, binaryPayload, continuation, fragments, frameCase, ping, pong, text, validClose, type AuditCase, type FrameSpec, type WritePlan } from '../case.js';

type Sequence = [id: string, title: string, frames: FrameSpec[]];

const legal: Sequence[] = [
  ['text.2', 'a text message in two fragments is echoed whole', [text('fragment1 ', { fin: false }), continuation('fragment2')]],
  ['text.3', 'a text message in three fragments is echoed whole', [text('one ', { fin: false }), continuation('two ', { fin: false }), continuation('three')]],
  ['binary.3', 'a binary message in three fragments is echoed whole', [binary(binaryPayload(10, 1), { fin: false }), continuation(binaryPayload(10, 2), { fin: false }), continuation(binaryPayload(10, 3))]],
  ['text.1-byte-fragments', 'a text message sent as 1-byte fragments is echoed whole', fragments(Opcode.Text, Buffer.from('Hello, fragments!'), 1)],
  ['empty-fragments', 'a text message of empty fragments around one byte is echoed', [text('', { fin: false }), continuation('', { fin: false }), continuation('x', { fin: false }), continuation('')]],
  ['all-empty', 'a text message of empty fragments only is echoed as an empty message', [text('', { fin: false }), continuation('', { fin: false }), continuation('')]],
  ['ping-between', 'a Ping between two fragments is answered before the message is echoed', [text('fragment1 ', { fin: false }), ping('between'), continuation('fragment2')]],
  ['pong-between', 'an unsolicited Pong between two fragments is ignored', [text('fragment1 ', { fin: false }), pong('between'), continuation('fragment2')]],
  ['pings-between', 'a Ping between every fragment of a 5-fragment message gets its Pong, in order', [
    text('a', { fin: false }), ping('1'), continuation('b', { fin: false }), ping('2'), continuation('c', { fin: false }), ping('3'), continuation('d', { fin: false }), ping('4'), continuation('e'),
  ]],
  ['binary-ping-between', 'a Ping between fragments of a binary message', [binary(binaryPayload(200, 5), { fin: false }), ping(binaryPayload(20, 6)), continuation(binaryPayload(200, 7))]],
  ['two-messages', 'two fragmented messages back to back are echoed in order', [text('first ', { fin: false }), continuation('message'), binary(Buffer.from([1, 2]), { fin: false }), continuation(Buffer.from([3]))]],
];

const illegal: Sequence[] = [
  ['continuation-first', 'a continuation frame (FIN set) with no message in progress fails with 1002', [continuation('orphan')]],
  ['continuation-first-nofin', 'a continuation frame (FIN clear) with no message in progress fails with 1002', [continuation('orphan', { fin: false })]],
  ['continuation-after-message', 'a complete message, then a continuation frame: echo, then 1002', [text('complete'), continuation('orphan')]],
  ['text-inside-text', 'a new text frame while a fragmented text message is open fails with 1002', [text('open ', { fin: false }), text('new')]],
  ['binary-inside-text', 'a binary frame while a fragmented text message is open fails with 1002', [text('open ', { fin: false }), binary(Buffer.from([1]))]],
  ['text-inside-binary', 'a text frame while a fragmented binary message is open fails with 1002', [binary(Buffer.from([1]), { fin: false }), text('new', { fin: false }), continuation('x')]],
  ['orphan-then-message', 'a continuation with no message, then a good message: 1002, nothing echoed', [continuation('orphan', { fin: false }), continuation('more'), text('good')]],
];

const WRITES: [suffix: string, write: WritePlan | undefined][] = [
  ['', undefined],
  ['.frames', 'frames'],
  ['.bytewise', { chunkSize: 1 }],
];

export const cases: AuditCase[] = [
  ...legal.flatMap(([id, title, frames]) =>
    WRITES.map(([suffix, write]) => frameCase(`fragment.${id}${suffix}`, `${title}${suffix === '.frames' ? ' (a write per frame)' : suffix === '.bytewise' ? ' (written one byte at a time)' : ''}`, 'RFC 6455 §5.4', frames, write ? { write } : {})),
  ),
  ...illegal.flatMap(([id, title, frames]) =>
    WRITES.map(([suffix, write]) => frameCase(`fragment.${id}${suffix}`, `${title}${suffix === '.frames' ? ' (a write per frame)' : suffix === '.bytewise' ? ' (written one byte at a time)' : ''}`, 'RFC 6455 §5.4', frames, write ? { write } : {})),
  ),
  frameCase('fragment.pings-between-slow', 'Pings between fragments sent 20 ms apart are answered at once, the message echoed at its end', 'RFC 6455 §5.4, §5.5.2', [
    text('slow ', { fin: false }), ping('1'), continuation('fragments ', { fin: false }), ping('2'), continuation('end'),
  ], { write: { chunkSize: 9, delay: 20 } }),
  frameCase('fragment.close-inside-message', 'a Close while a fragmented message is open: the closing handshake, the partial message is never echoed', 'RFC 6455 §5.4, §7.1.2', [
    text('never ', { fin: false }), continuation('echoed', { fin: false }), validClose(1000),
  ]),
  frameCase('fragment.large-in-64k-fragments', 'a 1 MiB text message in 16 fragments of 64 KiB', 'RFC 6455 §5.4', () => fragments(Opcode.Text, asciiPayload(1 << 20), 65536)),
];

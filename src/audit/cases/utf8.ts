// UTF-8 in text messages (RFC 6455 §8.1, RFC 3629): valid text of every shape is echoed, whole or
// split across fragments at any byte; text that is not UTF-8 fails the connection with 1007, and a
// strict server fails at the first byte that proves it ("fail fast"), not at the end of the message.
// (Autobahn's family 6.)

import { Opcode } from '../../protocol/constants.js';
import { continuation, fragments, frameCase, ping, text, type AuditCase, type FrameCase } from '../case.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Valid text: boundaries of each sequence length, noncharacters (valid UTF-8), the replacement character. */
const VALID: [id: string, title: string, bytes: Buffer][] = [
  ['greek', 'the Greek word "kosme"', utf8('κόσμε')],
  ['mixed', 'ASCII mixed with 2-byte characters', utf8('Hello-µ@ßöäüàá-UTF-8!!')],
  ['nul', 'U+0000, the NUL character', hex('00')],
  ['u007f', 'U+007F, the last 1-byte character', hex('7f')],
  ['u0080', 'U+0080, the first 2-byte character', hex('c280')],
  ['u07ff', 'U+07FF, the last 2-byte character', hex('dfbf')],
  ['u0800', 'U+0800, the first 3-byte character', hex('e0a080')],
  ['ud7ff', 'U+D7FF, just below the surrogates', hex('ed9fbf')],
  ['ue000', 'U+E000, just above the surrogates', hex('ee8080')],
  ['ufffd', 'U+FFFD, the replacement character', hex('efbfbd')],
  ['ufffe', 'U+FFFE, a noncharacter (still valid UTF-8)', hex('efbfbe')],
  ['uffff', 'U+FFFF, the last 3-byte character (a noncharacter)', hex('efbfbf')],
  ['u10000', 'U+10000, the first 4-byte character', hex('f0908080')],
  ['u1fffe', 'U+1FFFE, a noncharacter in plane 1', hex('f09fbfbe')],
  ['u10ffff', 'U+10FFFF, the last code point', hex('f48fbfbf')],
  ['emoji', 'emoji and a combining sequence', utf8('e\u0301 👍🏽 🇪🇺')],
  ['all-lengths', 'one character of each length, repeated', Buffer.concat(Array.from({ length: 32 }, () => utf8('a\u00e9\u20ac\u{1f600}')))],
];

/** Not UTF-8: stray bytes, truncated and overlong sequences, surrogates, code points above U+10FFFF. */
const INVALID: [id: string, title: string, bytes: Buffer][] = [
  ['continuation-80', 'a lone continuation byte 0x80', hex('80')],
  ['continuation-bf', 'a lone continuation byte 0xbf', hex('bf')],
  ['continuations', 'three continuation bytes in a row', hex('80 bf 80')],
  ['lead-c0-space', 'a 2-byte lead byte followed by a space', hex('c0 20')],
  ['lead-e0-space', 'a 3-byte lead byte followed by a space', hex('e0 20')],
  ['lead-f0-space', 'a 4-byte lead byte followed by a space', hex('f0 20')],
  ['truncated-2', 'a 2-byte sequence missing its last byte, at the end', hex('c2')],
  ['truncated-3', 'a 3-byte sequence missing its last byte, at the end', hex('e0 a0')],
  ['truncated-4', 'a 4-byte sequence missing its last byte, at the end', hex('f0 90 80')],
  ['truncated-then-ascii', 'a truncated 3-byte sequence followed by ASCII', hex('e2 82 41')],
  ['byte-fe', 'the byte 0xfe, never in UTF-8', hex('fe')],
  ['byte-ff', 'the byte 0xff, never in UTF-8', hex('ff')],
  ['bytes-fe-ff', 'the bytes fe fe ff ff', hex('fe fe ff ff')],
  ['overlong-slash-2', 'an overlong 2-byte "/" (c0 af)', hex('c0 af')],
  ['overlong-slash-3', 'an overlong 3-byte "/" (e0 80 af)', hex('e0 80 af')],
  ['overlong-slash-4', 'an overlong 4-byte "/" (f0 80 80 af)', hex('f0 80 80 af')],
  ['overlong-max-2', 'the largest overlong 2-byte form (c1 bf)', hex('c1 bf')],
  ['overlong-max-3', 'the largest overlong 3-byte form (e0 9f bf)', hex('e0 9f bf')],
  ['overlong-max-4', 'the largest overlong 4-byte form (f0 8f bf bf)', hex('f0 8f bf bf')],
  ['overlong-nul-2', 'an overlong NUL (c0 80)', hex('c0 80')],
  ['overlong-nul-3', 'an overlong NUL (e0 80 80)', hex('e0 80 80')],
  ['five-byte', 'an old 5-byte form (f8 88 80 80 80)', hex('f8 88 80 80 80')],
  ['six-byte', 'an old 6-byte form (fc 84 80 80 80 80)', hex('fc 84 80 80 80 80')],
  ['surrogate-d800', 'the surrogate U+D800 (ed a0 80)', hex('ed a0 80')],
  ['surrogate-db7f', 'the surrogate U+DB7F (ed ad bf)', hex('ed ad bf')],
  ['surrogate-dc00', 'the low surrogate U+DC00 (ed b0 80)', hex('ed b0 80')],
  ['surrogate-dfff', 'the low surrogate U+DFFF (ed bf bf)', hex('ed bf bf')],
  ['surrogate-pair', 'a surrogate pair encoded as two 3-byte forms (CESU-8)', hex('ed a0 80 ed b0 80')],
  ['above-10ffff', 'U+110000, above the last code point (f4 90 80 80)', hex('f4 90 80 80')],
  ['lead-f5', 'the lead byte 0xf5 (would start U+140000)', hex('f5 80 80 80')],
  ['lead-f7', 'the lead byte 0xf7 (f7 bf bf bf)', hex('f7 bf bf bf')],
];

const KOSME = utf8('κόσμε');
const TAIL = utf8('-edited');

const valid: FrameCase[] = VALID.flatMap(([id, title, bytes]) => [
  frameCase(`utf8.valid.${id}`, `valid text, ${title}, in one frame is echoed`, 'RFC 6455 §8.1, RFC 3629', [text(bytes)]),
  frameCase(`utf8.valid.${id}.fragmented`, `valid text, ${title}, in 1-byte fragments is echoed whole`, 'RFC 6455 §5.4, §8.1', fragments(Opcode.Text, bytes, 1)),
]);

const invalid: FrameCase[] = INVALID.flatMap(([id, title, bytes]) => [
  frameCase(`utf8.invalid.${id}`, `text with ${title} fails with 1007`, 'RFC 6455 §8.1, RFC 3629', [text(Buffer.concat([KOSME, bytes, TAIL]))]),
  frameCase(`utf8.invalid.${id}.fragmented`, `text with ${title}, in 1-byte fragments, fails with 1007`, 'RFC 6455 §5.4, §8.1', fragments(Opcode.Text, Buffer.concat([KOSME, bytes, TAIL]), 1)),
]);

/** The message split into two fragments at every byte: `utf8.split.K` cuts before byte K. */
const SPLIT_MESSAGE = utf8('Hello-µ@ßöäüàá-UTF-8!! κόσμε €𝄞');
const split: FrameCase[] = Array.from({ length: SPLIT_MESSAGE.length - 1 }, (_, i) => i + 1).map((k) =>
  frameCase(`utf8.split.${k}`, `valid text split into two fragments before byte ${k} (inside a character where it falls there) is echoed whole`, 'RFC 6455 §5.4, §8.1', [
    text(SPLIT_MESSAGE.subarray(0, k), { fin: false }),
    continuation(SPLIT_MESSAGE.subarray(k)),
  ]),
);
/** An invalid message (a surrogate in the middle) split at every byte. */
const BAD_MESSAGE = Buffer.concat([KOSME, hex('ed a0 80'), TAIL]);
const badSplit: FrameCase[] = Array.from({ length: BAD_MESSAGE.length - 1 }, (_, i) => i + 1).map((k) =>
  frameCase(`utf8.invalid-split.${k}`, `text with a surrogate, split into two fragments before byte ${k}, fails with 1007`, 'RFC 6455 §5.4, §8.1', [
    text(BAD_MESSAGE.subarray(0, k), { fin: false }),
    continuation(BAD_MESSAGE.subarray(k)),
  ]),
);

/**
 * Fail fast: the audit stops writing right after the byte that proves the text invalid and waits;
 * a strict server fails then, a lax one only once the message is complete (NON-STRICT).
 */
const failFast: FrameCase[] = [
  frameCase('utf8.fail-fast.first-fragment', 'invalid UTF-8 in the first of three fragments: the server fails before the others are sent', 'RFC 6455 §8.1, §7.1.7', [
    text(Buffer.concat([KOSME, hex('ed a0 80')]), { fin: false }),
    continuation('more text ', { fin: false }),
    continuation('the end'),
  ], { failFast: true }),
  frameCase('utf8.fail-fast.fragment-start', 'a fragment that starts with an invalid byte: the server fails before the last fragment', 'RFC 6455 §8.1', [
    text(KOSME, { fin: false }),
    continuation(Buffer.concat([hex('f4 90 80 80'), TAIL]), { fin: false }),
    continuation('the end'),
  ], { failFast: true }),
  frameCase('utf8.fail-fast.one-frame-chunked', 'one text frame written in pieces, invalid in its middle: the server fails before the rest arrives', 'RFC 6455 §8.1', [
    text(Buffer.concat([KOSME, hex('ed a0 80'), TAIL, TAIL])),
  ], { failFast: true, write: { chunkSize: 4 } }),
  frameCase('utf8.fail-fast.split-code-point', 'one text frame written in pieces, an invalid code point split between two writes', 'RFC 6455 §8.1', [
    text(Buffer.concat([KOSME, hex('f4 90 80 80'), TAIL, TAIL])),
  ], { failFast: true, write: { chunkSize: 13 } }),
];

export const cases: AuditCase[] = [
  frameCase('utf8.empty', 'an empty text message is echoed', 'RFC 6455 §5.6', [text('')]),
  frameCase('utf8.empty.fragmented', 'an empty text message in three empty fragments is echoed', 'RFC 6455 §5.4', [text('', { fin: false }), continuation('', { fin: false }), continuation('')]),
  frameCase('utf8.valid.with-ping', 'valid text fragmented at each byte with a Ping in the middle', 'RFC 6455 §5.4, §8.1', [
    ...fragments(Opcode.Text, KOSME, 1).slice(0, 5), ping('mid'), ...fragments(Opcode.Text, KOSME, 1).slice(5).map((f) => ({ ...f, opcode: Opcode.Continuation })),
  ]),
  ...valid,
  ...invalid,
  ...split,
  ...badSplit,
  ...failFast,
];

// The model of what RFC 6455 (and RFC 7692, when permessage-deflate was agreed) requires of a server
// for a given sequence of client frames, and the judge that holds a server's observed wire log
// against it. Both the audit battery and the fuzzer's oracle use this one model.
//
//   expect(frames, options) -> Expectation      pure: what a conforming server must do
//   judge(expectation, log, options) -> Judgement   the verdict, its reason, and the close behaviour
//
// The model reads the frames as the server will: it encodes them to the exact byte stream and parses
// that stream back, so a frame whose header lies about its length is modelled as the server sees it.

import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, RSV1, isControlOpcode, isValidCloseCode } from '../protocol/constants.js';
import { PERMESSAGE_DEFLATE, PerMessageDeflate } from '../protocol/deflate.js';
import { parseExtensionsHeader } from '../protocol/extensions.js';
import { applyMask } from '../protocol/mask.js';
import { Utf8Validator, isValidUtf8 } from '../protocol/utf8.js';
import { ProtocolError } from '../protocol/errors.js';
import { TolerantFrameReader, checkAccept, encodeFrameSpec, type FrameSpec, type HandshakeResponse, type WireEvent, type WireFrame } from './wire.js';

// ---------------------------------------------------------------------------------------- verdicts

/** The verdicts, spelled as the JSON report spells them. */
export type Verdict = 'OK' | 'NON-STRICT' | 'FAILED' | 'INFORMATIONAL' | 'UNIMPLEMENTED';

/** All verdicts, best first. */
export const VERDICTS: readonly Verdict[] = ['OK', 'UNIMPLEMENTED', 'INFORMATIONAL', 'NON-STRICT', 'FAILED'];

/** The worse of two verdicts: FAILED > NON-STRICT > INFORMATIONAL > UNIMPLEMENTED > OK. */
export function worse(a: Verdict, b: Verdict): Verdict {
  return VERDICTS.indexOf(a) >= VERDICTS.indexOf(b) ? a : b;
}

// ------------------------------------------------------------------------------------- expectation

/** What the connection agreed on permessage-deflate (RFC 7692 §7.1), or null for no extension. */
export interface NegotiatedDeflate {
  /** LZ77 window bits the server compresses with (8-15). */
  serverMaxWindowBits: number;
  /** Whether the server starts every message afresh. */
  serverNoContextTakeover: boolean;
  /** LZ77 window bits the client (the audit) compresses with (8-15). */
  clientMaxWindowBits: number;
  /** Whether the client starts every message afresh. */
  clientNoContextTakeover: boolean;
}

/** How the model reads a sequence of frames. */
export interface ModelOptions {
  /** The server echoes every message back with its type (as Autobahn's echo servers do). Default true. */
  echo?: boolean;
  /** permessage-deflate as agreed in the handshake; null or absent: no extension. */
  deflate?: NegotiatedDeflate | null;
}

/** Something the server must send back, in order: an echoed message or a Pong. */
export interface ExpectedReply {
  /** 'text' or 'binary' for an echoed message, 'pong' for the answer to a Ping (§5.5.3). */
  kind: 'text' | 'binary' | 'pong';
  /** The payload (a message's payload after decompression). */
  payload: Buffer;
  /** Index of the frame (as the server parses the stream) that calls for this reply. */
  frame: number;
}

/** How the sequence must end. */
export type ExpectedEnding =
  /** Nothing in the frames ends the connection: the server must keep it open. */
  | { kind: 'open' }
  /**
   * The client started the closing handshake (§7.1.2): the server must answer with a Close (echoing
   * `code`, or none/1000 when the client's Close had no code, §5.5.1) and then close TCP (§7.1.1).
   */
  | { kind: 'close'; code: number | null; frame: number }
  /** The server must fail the connection (§7.1.7) with one of `codes`, then close TCP. */
  | {
      kind: 'fail';
      codes: readonly number[];
      /** Why, citing the RFC. */
      reason: string;
      /** Index of the frame at which a conforming server knows it must fail. */
      frame: number;
      /**
       * For invalid UTF-8 (§8.1) that can be detected before the message ends: the offset in the
       * client's byte stream of the first byte that proves it. A server that fails only later is
       * NON-STRICT. Absent when detection can only come at the end.
       */
      failFast?: number;
    };

/** What a conforming server must do for a sequence of frames. */
export interface Expectation {
  /** Whether the server is taken for an echo server (else its own messages are checked only for validity). */
  echo: boolean;
  /** The replies, in order, before the server's Close. */
  replies: ExpectedReply[];
  /** How the connection must end. */
  ending: ExpectedEnding;
  /** The frames as the server parses the client's byte stream (unmasked). */
  frames: WireFrame[];
  /** Bytes of the client's stream. */
  streamLength: number;
  /** The largest message in the sequence, in bytes, and the most fragments of one message (to name a server's limit). */
  largestMessage: number;
  mostFragments: number;
}

const ZERO_MASK = new Uint8Array(4);

/** Close codes a server sends when failing for a framing error (§7.4.1). */
const FRAMING = [CloseCode.ProtocolError] as const;
/** Close codes for a text message that is not UTF-8 (§8.1, §7.4.1). */
const INVALID_DATA = [CloseCode.InvalidPayload] as const;

/**
 * The model: what RFC 6455 §5-§8 (and RFC 7692 §6 with permessage-deflate) require of a server that
 * receives `frames`, in order, on an open connection. Pure; encodes with fresh masks only to read the
 * stream back, so the result does not depend on them.
 */
export function expect(frames: readonly FrameSpec[], options: ModelOptions = {}): Expectation {
  const echo = options.echo ?? true;
  const deflate = options.deflate ?? null;
  const reader = new TolerantFrameReader();
  const parsed: WireFrame[] = [];
  let streamLength = 0;
  const written: Buffer[] = [];
  for (const spec of frames) {
    // The masking key does not change what the server reads: a zero key spares the CSPRNG.
    const { bytes } = encodeFrameSpec(spec.mask === undefined ? { ...spec, mask: ZERO_MASK } : spec);
    streamLength += bytes.length;
    parsed.push(...reader.push(bytes));
    written.push(bytes);
  }
  // A frame whose header arrived but whose payload did not (or never can: 2^53 bytes or more) is
  // still judged on its header, as a server can judge it: a long or fragmented control frame, a
  // reserved opcode or RSV bit, a continuation out of place fail at once (§5.2, §5.4, §5.5).
  // (Its index is frames.length when the payload is still missing.)
  const pending = reader.broken !== null ? parsed.length - 1 : pendingHeader(reader.buffered >= 2 ? Buffer.concat(written).subarray(streamLength - reader.buffered) : null);
  const all = typeof pending === 'number' || pending === null ? parsed : [...parsed, pending];
  const incompleteAt = typeof pending === 'number' ? pending : pending === null ? -1 : parsed.length;
  const inflater = deflate
    ? new PerMessageDeflate({
        ownWindowBits: deflate.clientMaxWindowBits,
        ownNoContextTakeover: deflate.clientNoContextTakeover,
        peerWindowBits: deflate.clientMaxWindowBits,
        peerNoContextTakeover: deflate.clientNoContextTakeover,
        threshold: 0,
        level: 6,
        memLevel: 8,
      })
    : null;

  const replies: ExpectedReply[] = [];
  let largestMessage = 0;
  let mostFragments = 0;
  // The message in progress (§5.4).
  let message: { opcode: number; compressed: boolean; parts: Buffer[]; size: number; fragments: number; utf8: Utf8Validator | null } | null = null;
  let offset = 0;
  const done = (ending: ExpectedEnding): Expectation => ({ echo, replies, ending, frames: parsed, streamLength, largestMessage, mostFragments });
  const fail = (index: number, codes: readonly number[], reason: string, failFast?: number): Expectation =>
    done(failFast === undefined ? { kind: 'fail', codes, reason, frame: index } : { kind: 'fail', codes, reason, frame: index, failFast });

  for (let index = 0; index < all.length; index++) {
    const frame = all[index]!;
    const start = offset;
    offset += frame.headerLength + frame.length;
    // §5.1: a server MUST fail the connection on an unmasked client frame.
    if (!frame.masked) return fail(index, FRAMING, 'unmasked client frame (§5.1)');
    // §5.2: the 64-bit length's most significant bit MUST be 0.
    if (frame.problems.some((p) => p.startsWith('the most significant bit'))) {
      return fail(index, [CloseCode.ProtocolError, CloseCode.MessageTooBig], '64-bit length with its most significant bit set (§5.2)');
    }
    // §5.2: RSV bits MUST be 0 unless an extension defines them; RFC 7692 §6 defines RSV1 for the
    // first frame of a data message only.
    const allowedRsv = deflate && !isControlOpcode(frame.opcode) && frame.opcode !== Opcode.Continuation ? RSV1 : 0;
    if ((frame.rsv & ~allowedRsv) !== 0) {
      const what = deflate && frame.rsv === RSV1 ? 'RSV1 on a control frame or a continuation frame (RFC 7692 §6.1)' : `RSV bits 0x${frame.rsv.toString(16)} with no extension defining them (§5.2)`;
      return fail(index, FRAMING, what);
    }
    const opcode = frame.opcode;
    if (isControlOpcode(opcode)) {
      if (opcode !== Opcode.Close && opcode !== Opcode.Ping && opcode !== Opcode.Pong) {
        return fail(index, FRAMING, `reserved control opcode 0x${opcode.toString(16)} (§5.2)`);
      }
      // §5.5: control frames have at most 125 bytes of payload and are never fragmented.
      if (frame.length > MAX_CONTROL_PAYLOAD) return fail(index, FRAMING, `control frame with ${frame.length} bytes of payload (§5.5: at most 125)`);
      if (!frame.fin) return fail(index, FRAMING, 'fragmented control frame (§5.5)');
      if (index === incompleteAt) break; // its payload has not arrived: nothing more to do yet
      if (opcode === Opcode.Ping) {
        // §5.5.2-§5.5.3: a Pong with the Ping's payload.
        replies.push({ kind: 'pong', payload: frame.payload, frame: index });
        continue;
      }
      if (opcode === Opcode.Pong) continue; // §5.5.3: an unsolicited Pong needs no answer
      // Close (§5.5.1): a payload is empty, or a valid code (§7.4) and a UTF-8 reason.
      if (frame.length === 1) return fail(index, FRAMING, 'Close frame with a 1-byte payload (§5.5.1)');
      if (frame.length >= 2) {
        const code = frame.payload.readUInt16BE(0);
        if (!isValidCloseCode(code)) return fail(index, FRAMING, `Close frame with close code ${code}, which may not be sent (§7.4)`);
        if (!isValidUtf8(frame.payload.subarray(2))) {
          return fail(index, [CloseCode.ProtocolError, CloseCode.InvalidPayload], 'Close reason that is not UTF-8 (§5.5.1, §8.1)');
        }
        return done({ kind: 'close', code, frame: index });
      }
      return done({ kind: 'close', code: null, frame: index });
    }
    if (opcode !== Opcode.Continuation && opcode !== Opcode.Text && opcode !== Opcode.Binary) {
      return fail(index, FRAMING, `reserved data opcode 0x${opcode.toString(16)} (§5.2)`);
    }
    // §5.4: a continuation frame continues a message; a new data frame may not interrupt one.
    if (opcode === Opcode.Continuation) {
      if (message === null) return fail(index, FRAMING, 'continuation frame with no message in progress (§5.4)');
    } else {
      if (message !== null) return fail(index, FRAMING, 'new data frame while a fragmented message is in progress (§5.4)');
      const compressed = (frame.rsv & RSV1) !== 0;
      message = { opcode, compressed, parts: [], size: 0, fragments: 0, utf8: opcode === Opcode.Text && !compressed ? new Utf8Validator() : null };
    }
    message.parts.push(frame.payload);
    message.size += frame.length;
    message.fragments++;
    largestMessage = Math.max(largestMessage, message.size);
    mostFragments = Math.max(mostFragments, message.fragments);
    // §8.1: text must be UTF-8. Checked as it arrives: the first byte that proves it invalid is where
    // a fail-fast server stops.
    if (message.utf8 !== null && !message.utf8.write(frame.payload)) {
      const at = firstInvalidByte(message.parts);
      return fail(index, INVALID_DATA, 'text message that is not UTF-8 (§8.1)', start + frame.headerLength + at);
    }
    if (index === incompleteAt) break; // the rest of its payload has not arrived
    if (!frame.fin) continue;
    let payload = message.parts.length === 1 ? message.parts[0]! : Buffer.concat(message.parts);
    if (message.utf8 !== null && !message.utf8.end()) {
      return fail(index, INVALID_DATA, 'text message that ends inside a UTF-8 sequence (§8.1)');
    }
    if (message.compressed) {
      const inflated = inflater!.decode(payload, Number.MAX_SAFE_INTEGER);
      if (inflated instanceof ProtocolError) {
        return fail(index, [CloseCode.InvalidPayload, CloseCode.ProtocolError], 'compressed message that does not inflate (RFC 7692 §6.2)');
      }
      payload = inflated;
      largestMessage = Math.max(largestMessage, payload.length);
      if (message.opcode === Opcode.Text && !isValidUtf8(payload)) {
        return fail(index, INVALID_DATA, 'compressed text message that is not UTF-8 once inflated (§8.1)');
      }
    }
    if (echo) replies.push({ kind: message.opcode === Opcode.Text ? 'text' : 'binary', payload, frame: index });
    message = null;
  }
  return done({ kind: 'open' });
}

/**
 * The header of a frame cut short at the end of the stream, with the payload that came, or null
 * when not even two bytes came. When the extended length is cut short too, the length is its least
 * (126 or 65536): enough to judge a control frame's size.
 */
function pendingHeader(tail: Buffer | null): WireFrame | null {
  if (tail === null || tail.length < 2) return null;
  const short = tail[1]! & 0x7f;
  const masked = (tail[1]! & 0x80) !== 0;
  const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
  const headerLength = 2 + extended + (masked ? 4 : 0);
  const whole = tail.length >= 2 + extended;
  const length = !whole ? (short === 126 ? 126 : 0x10000) : short === 126 ? tail.readUInt16BE(2) : short === 127 ? Number(tail.readBigUInt64BE(2)) : short;
  const problems = short === 127 && whole && tail[2]! >= 0x80 ? ['the most significant bit of the 64-bit length is set (§5.2)'] : [];
  const payload = Buffer.from(tail.subarray(Math.min(headerLength, tail.length)));
  if (masked && payload.length > 0) applyMask(payload, tail.subarray(headerLength - 4, headerLength), 0);
  return { fin: (tail[0]! & 0x80) !== 0, rsv: tail[0]! & 0x70, opcode: tail[0]! & 0x0f, masked, length, payload, headerLength, problems };
}

/** The index, in the last part, of the first byte at which `parts` stop being a prefix of valid UTF-8. */
function firstInvalidByte(parts: readonly Buffer[]): number {
  const validator = new Utf8Validator();
  for (let i = 0; i < parts.length - 1; i++) validator.write(parts[i]!);
  const last = parts[parts.length - 1]!;
  for (let i = 0; i < last.length; i++) {
    if (!validator.write(last.subarray(i, i + 1))) return i;
  }
  return last.length - 1;
}

// ------------------------------------------------------------------------------------------- judge

/** How the server ended the connection, judged on its own (the JSON report's `close` field). */
export interface CloseJudgement {
  /** The verdict on the close behaviour alone. */
  verdict: Verdict;
  /** The close code the server sent; null when its Close had no code or it sent no Close frame. */
  code: number | null;
  /** The close reason the server sent ('' when none). */
  reason: string;
  /** Whether the server sent a Close frame at all. */
  closeFrame: boolean;
  /** Whether the server closed TCP before we did (§7.1.1: the server SHOULD close it first). */
  serverClosedTcpFirst: boolean;
  /** Whether TCP was closed within the deadline after the closing handshake. */
  tcpClosedInTime: boolean;
  /** In words: what the server did and why it is (not) right. */
  detail: string;
}

/** A verdict with its reason. */
export interface Judgement {
  /** The case's verdict: the worse of the behaviour and the close behaviour. */
  verdict: Verdict;
  /** Why, in one or two sentences. */
  reason: string;
  /** The close behaviour on its own. */
  close: CloseJudgement;
  /** What came back, in words (replies, the Close, TCP). */
  observed: string;
}

/** How to judge. */
export interface JudgeOptions {
  /** permessage-deflate as agreed (to inflate the server's compressed messages). */
  deflate?: NegotiatedDeflate | null;
  /** How long after the closing handshake the server may take to close TCP, in ms. */
  closeDeadline: number;
}

interface ObservedReply {
  kind: 'text' | 'binary' | 'pong';
  payload: Buffer;
  at: number;
}

/** Describes a payload briefly: length and the first bytes (text when printable). */
export function describePayload(payload: Buffer): string {
  if (payload.length === 0) return 'empty';
  const head = payload.subarray(0, 16);
  const printable = isValidUtf8(head) && /^[\x20-\x7e]*$/.test(head.toString('latin1'));
  const shown = printable ? JSON.stringify(head.toString('latin1')) : head.toString('hex');
  return `${payload.length} B ${shown}${payload.length > 16 ? '...' : ''}`;
}

function describeReply(reply: { kind: string; payload: Buffer }): string {
  return `${reply.kind} ${describePayload(reply.payload)}`;
}

/** Describes an expectation in words (the JSON report's `expected`). */
export function describeExpectation(expectation: Expectation): string {
  const replies = expectation.replies.length === 0 ? 'no reply' : expectation.replies.map(describeReply).join(', ');
  const ending = expectation.ending;
  const end =
    ending.kind === 'open'
      ? 'the connection stays open'
      : ending.kind === 'close'
        ? `a Close${ending.code === null ? ' (no code, or 1000)' : ` with ${ending.code}`}, then TCP closed by the server`
        : `the connection failed with ${ending.codes.join(' or ')}${ending.failFast !== undefined ? ' as soon as the invalid byte arrives' : ''}: ${ending.reason}`;
  return `${replies}; ${end}`;
}

/**
 * Holds an observed wire log (the part after the opening handshake) against the expectation.
 * Checks every server frame (§5.1 unmasked, §5.2 RSV and opcodes, §5.5 control frames, §8.1 text),
 * the replies in order, the Close code and when TCP ended.
 */
export function judge(expectation: Expectation, log: readonly WireEvent[], options: JudgeOptions): Judgement {
  const deflate = options.deflate ?? null;
  const inflater = deflate
    ? new PerMessageDeflate({
        ownWindowBits: deflate.serverMaxWindowBits,
        ownNoContextTakeover: deflate.serverNoContextTakeover,
        peerWindowBits: deflate.serverMaxWindowBits,
        peerNoContextTakeover: deflate.serverNoContextTakeover,
        threshold: 0,
        level: 6,
        memLevel: 8,
      })
    : null;

  const replies: ObservedReply[] = [];
  const faults: string[] = [];
  let closeFrame: { code: number | null; reason: string; at: number; fault: string | null } | null = null;
  let message: { opcode: number; compressed: boolean; parts: Buffer[] } | null = null;
  let serverEnd: { how: 'fin' | 'reset'; at: number } | null = null;
  let ourClose: number | null = null;
  let ourEnd: number | null = null;
  const pauses: { at: number; until: number }[] = [];
  let framesAfterClose = 0;

  for (const event of log) {
    if (event.direction === 'sent') {
      if (event.type === 'frame' && event.frame.opcode === Opcode.Close && ourClose === null) ourClose = event.at;
      if ((event.type === 'fin' || event.type === 'destroy') && ourEnd === null) ourEnd = event.at;
      if (event.type === 'pause') pauses.push({ at: event.at, until: event.until });
      continue;
    }
    if (event.type === 'fin' || event.type === 'reset') {
      serverEnd ??= { how: event.type, at: event.at };
      continue;
    }
    if (event.type === 'bytes') {
      faults.push('sent bytes that are not a frame');
      continue;
    }
    if (event.type !== 'frame') continue;
    const frame = event.frame;
    if (closeFrame !== null) {
      framesAfterClose++;
      continue;
    }
    // §5.1: a server MUST NOT mask its frames.
    if (frame.masked) faults.push(`masked a ${opcodeName(frame.opcode)} frame (§5.1: a server never masks)`);
    for (const problem of frame.problems) faults.push(`sent a frame with ${problem}`);
    const control = isControlOpcode(frame.opcode);
    const allowedRsv = deflate && !control && frame.opcode !== Opcode.Continuation ? RSV1 : 0;
    if ((frame.rsv & ~allowedRsv) !== 0) faults.push(`set RSV bits 0x${frame.rsv.toString(16)} on a ${opcodeName(frame.opcode)} frame (§5.2)`);
    if (control) {
      if (frame.length > MAX_CONTROL_PAYLOAD || !frame.fin) faults.push(`sent a ${frame.fin ? '' : 'fragmented '}${opcodeName(frame.opcode)} frame of ${frame.length} bytes (§5.5)`);
      if (frame.opcode === Opcode.Pong) replies.push({ kind: 'pong', payload: frame.payload, at: event.at });
      else if (frame.opcode === Opcode.Close) closeFrame = { ...parseServerClose(frame.payload), at: event.at };
      else if (frame.opcode !== Opcode.Ping) faults.push(`sent reserved opcode 0x${frame.opcode.toString(16)} (§5.2)`);
      continue;
    }
    if (frame.opcode === Opcode.Continuation) {
      if (message === null) {
        faults.push('sent a continuation frame with no message in progress (§5.4)');
        continue;
      }
    } else if (frame.opcode === Opcode.Text || frame.opcode === Opcode.Binary) {
      if (message !== null) faults.push('started a new message inside a fragmented one (§5.4)');
      message = { opcode: frame.opcode, compressed: (frame.rsv & RSV1) !== 0 && deflate !== null, parts: [] };
    } else {
      faults.push(`sent reserved opcode 0x${frame.opcode.toString(16)} (§5.2)`);
      continue;
    }
    message.parts.push(frame.payload);
    if (!frame.fin) continue;
    let payload = message.parts.length === 1 ? message.parts[0]! : Buffer.concat(message.parts);
    if (message.compressed) {
      const inflated = inflater!.decode(payload, Number.MAX_SAFE_INTEGER);
      if (inflated instanceof ProtocolError) faults.push('sent a compressed message that does not inflate (RFC 7692 §6.2)');
      else payload = inflated;
    }
    const kind = message.opcode === Opcode.Text ? 'text' : 'binary';
    if (kind === 'text' && !isValidUtf8(payload)) faults.push(`sent a text message that is not UTF-8 (§8.1): ${describePayload(payload)}`);
    replies.push({ kind, payload, at: event.at });
    message = null;
  }

  // ------------------------------------------------------------------- replies against the model
  const expected = expectation.replies;
  const ending = expectation.ending;
  let verdict: Verdict = 'OK';
  let reason = 'as RFC 6455 requires';
  const raise = (to: Verdict, why: string): void => {
    if (VERDICTS.indexOf(to) <= VERDICTS.indexOf(verdict)) return;
    verdict = to;
    reason = why;
  };
  if (faults.length > 0) raise('FAILED', `the server ${faults[0]}`);

  const limitClose = closeFrame !== null && (closeFrame.code === CloseCode.MessageTooBig || closeFrame.code === CloseCode.PolicyViolation);
  const limitText = (): string =>
    `the server closed with ${closeFrame!.code}${closeFrame!.reason ? ` "${closeFrame!.reason}"` : ''} on its own limit (largest message ${expectation.largestMessage} B, ${expectation.mostFragments} fragment${expectation.mostFragments === 1 ? '' : 's'})`;

  // A server that is not an echo server sends what it likes: only its Pongs are held against the model.
  const match = matchReplies(expected, expectation.echo ? replies : replies.filter((r) => r.kind === 'pong'));
  if (match.extra !== null) {
    const unexpected = match.extra;
    raise('FAILED', ending.kind === 'fail'
      ? `the server sent ${describeReply(unexpected)} where it must fail the connection: ${ending.reason}`
      : `the server sent ${describeReply(unexpected)}, which is not what was expected`);
  } else if (match.mismatch !== null) {
    raise('FAILED', `expected ${describeReply(match.mismatch.expected)}, the server sent ${describeReply(match.mismatch.observed)}`);
  } else if (match.missing.length > 0) {
    const first = match.missing[0]!;
    if (limitClose && ending.kind !== 'fail') raise('INFORMATIONAL', limitText());
    else if (ending.kind === 'fail' && closeFrame !== null) {
      // Autobahn's reading: replies owed to frames before the bad one are what a strict server sends.
      raise('NON-STRICT', `the server failed the connection without first sending ${describeReply(first)}${match.missing.length > 1 ? ` and ${match.missing.length - 1} more` : ''}, owed to frames before the bad one`);
    } else raise('FAILED', `the server never sent ${describeReply(first)}${first.kind === 'pong' ? ' (§5.5.2: a Ping MUST be answered with a Pong)' : ''}${match.missing.length > 1 ? ` (and ${match.missing.length - 1} more replies)` : ''}`);
  }
  if (match.skippedPongs > 0) raise('INFORMATIONAL', `the server answered only the most recent of several Pings (${match.skippedPongs} Pong${match.skippedPongs > 1 ? 's' : ''} left out; §5.5.3 allows it)`);

  // --------------------------------------------------------------------------- close behaviour
  const close = judgeClose(expectation, closeFrame, serverEnd, ourClose, ourEnd, options.closeDeadline);
  if (closeFrame !== null && framesAfterClose > 0) {
    close.verdict = 'FAILED';
    close.detail = `sent ${framesAfterClose} frame(s) after its Close (§5.5.1: no data after a Close). ${close.detail}`;
  }
  if (close.verdict === 'INFORMATIONAL' && limitClose) raise('INFORMATIONAL', limitText());
  else if (close.verdict !== 'OK') raise(close.verdict, close.detail);

  // ------------------------------------------------------------------------------ fail-fast (§8.1)
  if (ending.kind === 'fail' && ending.failFast !== undefined && pauses.length > 0 && (closeFrame !== null || serverEnd !== null)) {
    const reacted = Math.min(closeFrame?.at ?? Infinity, serverEnd?.at ?? Infinity);
    const pause = pauses[0]!;
    if (reacted > pause.until) {
      raise('NON-STRICT', `invalid UTF-8 was detected only after the rest of the message arrived, not at the first invalid byte (fail fast, §8.1); the server waited ${Math.round(pause.until - pause.at)} ms without reacting`);
    }
  }

  const observed = [
    replies.length === 0 ? 'no reply' : replies.slice(0, 8).map(describeReply).join(', ') + (replies.length > 8 ? `, ... (${replies.length} replies)` : ''),
    closeFrame === null ? 'no Close frame' : `Close ${closeFrame.code ?? '(no code)'}${closeFrame.reason ? ` "${closeFrame.reason}"` : ''}`,
    serverEnd === null ? 'TCP not closed by the server' : `server ${serverEnd.how === 'fin' ? 'closed TCP' : 'reset TCP'} at ${Math.round(serverEnd.at)} ms`,
  ].join('; ');
  return { verdict, reason, close, observed };
}

function opcodeName(opcode: number): string {
  switch (opcode) {
    case Opcode.Continuation: return 'continuation';
    case Opcode.Text: return 'text';
    case Opcode.Binary: return 'binary';
    case Opcode.Close: return 'Close';
    case Opcode.Ping: return 'Ping';
    case Opcode.Pong: return 'Pong';
    default: return `0x${opcode.toString(16)}`;
  }
}

function parseServerClose(payload: Buffer): { code: number | null; reason: string; fault: string | null } {
  if (payload.length === 0) return { code: null, reason: '', fault: null };
  if (payload.length === 1) return { code: null, reason: '', fault: 'sent a Close frame with a 1-byte payload (§5.5.1)' };
  const code = payload.readUInt16BE(0);
  const reasonBytes = payload.subarray(2);
  const reason = reasonBytes.toString('utf8');
  if (!isValidCloseCode(code)) {
    const why = code === CloseCode.NoStatusReceived || code === CloseCode.Abnormal || code === CloseCode.TlsHandshake ? ' (§7.4.1: 1005, 1006 and 1015 never go on the wire)' : ' (§7.4: not a code that may be sent)';
    return { code, reason, fault: `put close code ${code} on the wire${why}` };
  }
  if (!isValidUtf8(reasonBytes)) return { code, reason, fault: 'sent a close reason that is not UTF-8 (§5.5.1)' };
  return { code, reason, fault: null };
}

/**
 * Pairs observed replies with expected ones, in order. A Pong the server left out is forgiven when a
 * later Ping of the same run was answered (§5.5.3 lets a server answer only the most recent Ping);
 * an observed Pong that answers no Ping is ignored (unsolicited Pongs are allowed, §5.5.3).
 */
function matchReplies(
  expected: readonly ExpectedReply[],
  observed: readonly ObservedReply[],
): { missing: ExpectedReply[]; extra: ObservedReply | null; mismatch: { expected: ExpectedReply; observed: ObservedReply } | null; skippedPongs: number } {
  let i = 0;
  let skippedPongs = 0;
  for (const reply of observed) {
    const want = expected[i];
    if (want !== undefined && want.kind === reply.kind && want.payload.equals(reply.payload)) {
      i++;
      continue;
    }
    if (reply.kind === 'pong') {
      // A later Pong in the same run of Pings?
      let j = i;
      while (j < expected.length && expected[j]!.kind === 'pong' && !expected[j]!.payload.equals(reply.payload)) j++;
      if (j < expected.length && expected[j]!.kind === 'pong' && j > i) {
        skippedPongs += j - i;
        i = j + 1;
        continue;
      }
      continue; // unsolicited, or a repeated answer: nothing the RFC forbids
    }
    if (want === undefined) return { missing: [], extra: reply, mismatch: null, skippedPongs };
    return { missing: [], extra: null, mismatch: { expected: want, observed: reply }, skippedPongs };
  }
  return { missing: expected.slice(i), extra: null, mismatch: null, skippedPongs };
}

function judgeClose(
  expectation: Expectation,
  closeFrame: { code: number | null; reason: string; at: number; fault: string | null } | null,
  serverEnd: { how: 'fin' | 'reset'; at: number } | null,
  ourClose: number | null,
  ourEnd: number | null,
  deadline: number,
): CloseJudgement {
  const ending = expectation.ending;
  const serverClosedTcpFirst = serverEnd !== null && (ourEnd === null || serverEnd.at <= ourEnd);
  // The closing handshake is over when both Close frames have crossed; TCP is then due. A client that
  // closes its side when the deadline passes (as the audit runner does) sees a server in time exactly
  // when the server's FIN came first; without that, the timestamps decide.
  const handshakeDone = closeFrame === null ? null : Math.max(closeFrame.at, ourClose ?? closeFrame.at);
  const tcpClosedInTime = serverEnd !== null && (ourEnd !== null ? serverClosedTcpFirst : handshakeDone === null || serverEnd.at - handshakeDone <= deadline);
  const result = (verdict: Verdict, detail: string): CloseJudgement => ({
    verdict,
    code: closeFrame?.code ?? null,
    reason: closeFrame?.reason ?? '',
    closeFrame: closeFrame !== null,
    serverClosedTcpFirst,
    tcpClosedInTime,
    detail,
  });
  const tcp = (): [Verdict, string] => {
    if (serverEnd === null) return ['FAILED', `the server left TCP open more than ${deadline} ms after the closing handshake (§7.1.1)`];
    if (!serverClosedTcpFirst) return ['NON-STRICT', `the server closed TCP only after the client did, ${deadline} ms after the closing handshake (§7.1.1: the server SHOULD close it first)`];
    if (!tcpClosedInTime) return ['FAILED', `the server closed TCP ${Math.round(serverEnd.at - handshakeDone!)} ms after the closing handshake, past the ${deadline} ms deadline (§7.1.1)`];
    return ['OK', `the server ${serverEnd.how === 'fin' ? 'closed' : 'reset'} TCP first, ${handshakeDone === null ? '' : `${Math.round(serverEnd.at - handshakeDone)} ms after the closing handshake`}`.trim()];
  };

  if (closeFrame?.fault) return result('FAILED', `the server ${closeFrame.fault}`);
  // The server closed on its own, before our Close: only its own limits (1008, 1009) explain that.
  if (closeFrame !== null && ending.kind !== 'fail' && (ourClose === null || closeFrame.at < ourClose)) {
    const [tcpVerdict, tcpDetail] = tcp();
    if (closeFrame.code === CloseCode.MessageTooBig || closeFrame.code === CloseCode.PolicyViolation) {
      return result(worse(tcpVerdict, 'INFORMATIONAL'), `the server closed with ${closeFrame.code} on a limit of its own; ${tcpDetail}`);
    }
    return result('FAILED', `the server closed with ${closeFrame.code ?? 'no code'}${closeFrame.reason ? ` "${closeFrame.reason}"` : ''} although nothing called for it; ${tcpDetail}`);
  }
  if (ending.kind === 'open') {
    if (closeFrame === null) return result('OK', serverEnd === null ? 'the connection stayed open, as it must' : 'the server closed TCP without a Close frame');
    if (closeFrame.code === CloseCode.MessageTooBig || closeFrame.code === CloseCode.PolicyViolation) return result('INFORMATIONAL', `the server closed with ${closeFrame.code} on a limit of its own`);
    return result('FAILED', `the server closed with ${closeFrame.code ?? 'no code'} although nothing called for it`);
  }
  if (ending.kind === 'close') {
    if (closeFrame === null) {
      return result('FAILED', serverEnd === null
        ? 'the server never answered the Close frame (§5.5.1: it MUST send a Close in response)'
        : 'the server closed TCP without answering the Close frame (§5.5.1)');
    }
    const [tcpVerdict, tcpDetail] = tcp();
    let verdict: Verdict = tcpVerdict;
    let detail = `the server answered with ${closeFrame.code ?? 'a Close without code'}; ${tcpDetail}`;
    const echoed = ending.code === null ? closeFrame.code === null || closeFrame.code === CloseCode.Normal : closeFrame.code === ending.code;
    if (!echoed) {
      if (closeFrame.code === CloseCode.MessageTooBig || closeFrame.code === CloseCode.PolicyViolation) verdict = worse(verdict, 'INFORMATIONAL');
      else verdict = worse(verdict, 'NON-STRICT');
      detail = `the server answered close code ${ending.code ?? '(none)'} with ${closeFrame.code ?? '(none)'} instead of echoing it (§5.5.1); ${tcpDetail}`;
    }
    return result(verdict, detail);
  }
  // ending.kind === 'fail'
  if (closeFrame === null) {
    if (serverEnd !== null) return result('NON-STRICT', `the server dropped TCP without a Close frame (§7.1.7: it SHOULD send one with ${ending.codes.join(' or ')})`);
    return result('FAILED', `the server did not fail the connection (${ending.reason}); expected a Close with ${ending.codes.join(' or ')}`);
  }
  const [tcpVerdict, tcpDetail] = tcp();
  if (closeFrame.code !== null && ending.codes.includes(closeFrame.code)) return result(tcpVerdict, `the server failed the connection with ${closeFrame.code}; ${tcpDetail}`);
  if (closeFrame.code === CloseCode.ProtocolError && ending.codes.includes(CloseCode.InvalidPayload)) {
    return result(worse(tcpVerdict, 'NON-STRICT'), `the server failed with 1002 where 1007 names the fault (${ending.reason}); ${tcpDetail}`);
  }
  return result('FAILED', `the server closed with ${closeFrame.code ?? 'no code'}; ${ending.reason} calls for ${ending.codes.join(' or ')}`);
}

// ------------------------------------------------------------------------------ opening handshake

/** What the response to an opening handshake request must be (RFC 6455 §4.2, RFC 7230, RFC 7692 §5). */
export interface HandshakeExpectation {
  /**
   * 'accept': a 101 is required; 'refuse': an HTTP error is required (a 4xx); 'either': both
   * conform (e.g. a foreign Origin, §10.2: the server MAY refuse), and the reason says which came.
   */
  outcome: 'accept' | 'refuse' | 'either';
  /** For a refusal: the statuses that name the fault; another 4xx is NON-STRICT. Default: any 4xx. */
  statuses?: readonly number[];
  /** For a refusal: a header field the response MUST carry (e.g. Sec-WebSocket-Version with 426, §4.4). */
  header?: { name: string; pattern: RegExp; rule: string };
  /** With 'refuse': the verdict and reason when the server accepts after all (a draft version it also speaks). Default FAILED. */
  ifAccepted?: { verdict: Verdict; reason: string };
  /** With 'accept': the verdict and reason when the server refuses instead (an offer it should only decline). Default FAILED. */
  ifRefused?: { verdict: Verdict; reason: string };
  /** A 101 must follow an interim 100 Continue (the request sent Expect: 100-continue, RFC 9110 §7.8, §10.1.1). */
  continueFirst?: boolean;
}

/** What the request offered, for checking the 101's answers. */
export interface HandshakeOffer {
  /** The Sec-WebSocket-Key sent. */
  key: string;
  /** The subprotocols offered in Sec-WebSocket-Protocol. */
  protocols: readonly string[];
  /** The Sec-WebSocket-Extensions value offered, '' for none. */
  extensions: string;
}

/** Judges the response to an opening handshake request. `response` null: none came in time. */
export function judgeHandshake(expectation: HandshakeExpectation, offer: HandshakeOffer, response: HandshakeResponse | null, timeout: number): { verdict: Verdict; reason: string; observed: string } {
  if (response === null || response.status === 0) {
    return { verdict: 'FAILED', reason: response === null ? `no response within ${timeout} ms` : 'the server closed the connection without an HTTP response (§4.2.2: refuse with an HTTP status)', observed: response === null ? 'nothing' : 'connection closed, no status line' };
  }
  const observed = `HTTP ${response.status}${response.reason ? ` ${response.reason}` : ''}${response.body.length ? `, body ${describePayload(response.body)}` : ''}`;
  if (response.status === 101) {
    const problem = checkAccept(response, offer.key) ?? checkNegotiation(offer, response.headers).problem;
    if (problem !== null) return { verdict: 'FAILED', reason: `the 101 is wrong: ${problem}`, observed };
    if (expectation.continueFirst && !response.interim.includes(100)) {
      return { verdict: 'FAILED', reason: 'a 101 without the 100 Continue the request expected (RFC 9110 §7.8: a server sends 100 before 101)', observed };
    }
    if (expectation.outcome === 'refuse') {
      if (expectation.ifAccepted) return { ...expectation.ifAccepted, observed };
      return { verdict: 'FAILED', reason: `the server accepted a request it must refuse${expectation.statuses ? ` (with ${expectation.statuses.join(' or ')})` : ''}`, observed };
    }
    return { verdict: 'OK', reason: `accepted${response.interim.length > 0 ? ` after ${response.interim.join(', ')}` : ''}, and the 101 is right (§4.2.2)`, observed };
  }
  if (expectation.outcome === 'accept') {
    if (expectation.ifRefused) return { verdict: expectation.ifRefused.verdict, reason: `refused with ${response.status}: ${expectation.ifRefused.reason}`, observed };
    return { verdict: 'FAILED', reason: `the server refused a valid request with ${response.status}`, observed };
  }
  if (expectation.outcome === 'either') return { verdict: 'OK', reason: `the server refused with ${response.status}, which the RFC allows here`, observed };
  if (response.status < 400 || response.status >= 500) {
    return { verdict: 'FAILED', reason: `a request the server must refuse got ${response.status}; a client error (4xx) names it${expectation.statuses ? ` (${expectation.statuses.join(' or ')})` : ''}`, observed };
  }
  if (expectation.header) {
    const value = response.headers[expectation.header.name.toLowerCase()];
    if (value === undefined || !expectation.header.pattern.test(value)) {
      return { verdict: 'FAILED', reason: `the ${response.status} lacks ${expectation.header.name} (${expectation.header.rule})`, observed };
    }
  }
  if (expectation.statuses && !expectation.statuses.includes(response.status)) {
    return { verdict: 'NON-STRICT', reason: `refused with ${response.status}; ${expectation.statuses.join(' or ')} names the fault`, observed };
  }
  return { verdict: 'OK', reason: `refused with ${response.status}`, observed };
}

const WINDOW_BITS = /^(?:[89]|1[0-5])$/;

/**
 * Checks a 101's Sec-WebSocket-Protocol and Sec-WebSocket-Extensions against what was offered
 * (RFC 6455 §4.1 items 5-6, RFC 7692 §7.1) and returns the permessage-deflate agreed, if any.
 */
export function checkNegotiation(offer: HandshakeOffer, headers: Readonly<Record<string, string>>): { problem: string | null; deflate: NegotiatedDeflate | null } {
  const protocol = headers['sec-websocket-protocol'];
  if (protocol !== undefined && !offer.protocols.includes(protocol.trim())) {
    return { problem: `Sec-WebSocket-Protocol "${protocol}" was not offered (§4.1 item 6)`, deflate: null };
  }
  const answer = headers['sec-websocket-extensions'];
  if (answer === undefined || answer.trim() === '') return { problem: null, deflate: null };
  const answered = parseExtensionsHeader(answer);
  if (answered === null) return { problem: `Sec-WebSocket-Extensions "${answer}" is not valid (§9.1)`, deflate: null };
  const offers = (parseExtensionsHeader(offer.extensions) ?? []).filter((o) => o.name === PERMESSAGE_DEFLATE);
  let deflate: NegotiatedDeflate | null = null;
  for (const extension of answered) {
    if (extension.name !== PERMESSAGE_DEFLATE || offers.length === 0) {
      return { problem: `the server answered with extension "${extension.name}", which was not offered (§4.1 item 5)`, deflate: null };
    }
    if (deflate !== null) return { problem: 'permessage-deflate answered twice (RFC 7692 §5)', deflate: null };
    const params = new Map<string, string | true>();
    for (const [name, value] of extension.params) {
      if (params.has(name)) return { problem: `permessage-deflate answer repeats ${name} (RFC 7692 §7.1)`, deflate: null };
      params.set(name, value);
    }
    // The answer must accept one of the offers (RFC 7692 §5, §7.1).
    let reasons: string[] = [];
    for (const candidate of offers) {
      const result = acceptsOffer(new Map(candidate.params), params);
      if (typeof result !== 'string') {
        deflate = result;
        reasons = [];
        break;
      }
      reasons.push(result);
    }
    if (deflate === null) return { problem: `the permessage-deflate answer "${answer}" accepts no offer: ${reasons[0]}`, deflate: null };
  }
  return { problem: null, deflate };
}

function acceptsOffer(offered: Map<string, string | true>, answer: Map<string, string | true>): NegotiatedDeflate | string {
  for (const name of answer.keys()) {
    if (!['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'].includes(name)) return `unknown parameter ${name} (RFC 7692 §7.1)`;
  }
  for (const name of ['server_no_context_takeover', 'client_no_context_takeover'] as const) {
    if (answer.has(name) && answer.get(name) !== true) return `${name} takes no value (§7.1.1)`;
  }
  // §7.1.1.1: an offered server_no_context_takeover is accepted only by answering with it.
  if (offered.has('server_no_context_takeover') && !answer.has('server_no_context_takeover')) return 'server_no_context_takeover was offered but not answered (§7.1.1.1)';
  let serverBits = 15;
  const server = answer.get('server_max_window_bits');
  if (server !== undefined) {
    if (server === true || !WINDOW_BITS.test(server)) return `server_max_window_bits=${String(server)} is not 8-15 (§7.1.2.1)`;
    serverBits = Number(server);
    const asked = offered.get('server_max_window_bits');
    if (typeof asked === 'string' && serverBits > Number(asked)) return `server_max_window_bits=${serverBits} is above the ${asked} offered (§7.1.2.1)`;
  } else if (offered.has('server_max_window_bits')) {
    return 'server_max_window_bits was offered but not answered (§7.1.2.1)';
  }
  let clientBits = 15;
  const client = answer.get('client_max_window_bits');
  if (client !== undefined) {
    // §7.1.2.2: only when the offer had it, with a value at most the offered one.
    const asked = offered.get('client_max_window_bits');
    if (asked === undefined) return 'client_max_window_bits answered but not offered (§7.1.2.2)';
    if (client === true || !WINDOW_BITS.test(client)) return `client_max_window_bits=${String(client)} is not 8-15 (§7.1.2.2)`;
    clientBits = Number(client);
    if (typeof asked === 'string' && clientBits > Number(asked)) return `client_max_window_bits=${clientBits} is above the ${asked} offered (§7.1.2.2)`;
  } else {
    const asked = offered.get('client_max_window_bits');
    if (typeof asked === 'string') clientBits = Number(asked);
  }
  return {
    serverMaxWindowBits: serverBits,
    serverNoContextTakeover: answer.has('server_no_context_takeover'),
    clientMaxWindowBits: clientBits,
    clientNoContextTakeover: answer.has('client_no_context_takeover'),
  };
}

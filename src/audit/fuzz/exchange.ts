// Runs one fuzz case against the server and names what went wrong: opens a connection (offering
// permessage-deflate when the case says so), writes the frames cut at the case's points, waits for
// the server to react, holds the wire log against the RFC model (the audit's expect and judge), and
// checks that the server is still alive. A fault becomes a Finding of one kind:
//
//   crash        the server process died, or stopped accepting connections
//   hang         the server went silent while it owed a reply, a Close or the end of TCP
//   wrong-close  a Close where none was due, a wrong close code, or TCP dropped without a Close
//   wrong-echo   a reply missing, different, or sent where the connection had to fail
//   no-close     the server did not end the connection when it had to: it kept answering after
//                input that must fail it, or left TCP open after the closing handshake (§7.1.1)

import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloseCode, Opcode, isValidCloseCode } from '../../protocol/constants.js';
import { encodeClosePayload } from '../../protocol/frame.js';
import { checkNegotiation, describeExpectation, expect, judge, type Expectation, type Judgement, type NegotiatedDeflate, type Verdict } from '../model.js';
import { ConnectError, RawConnection, encodeFrameSpec, type WireEvent, type WireFrame } from '../wire.js';
import { encodeFrames, framesToHex, type Finding, type FindingKind, type FuzzCase } from './case.js';
import { checkLiveness, describeExit, type Target } from './target.js';

/** How cases are run. */
export interface ExchangeSettings {
  /** The server echoes every message (--echo): valid messages must come back. */
  echo: boolean;
  /**
   * Milliseconds the server has to react after the last write, to close TCP after the closing
   * handshake (§7.1.1), and to answer the liveness check.
   */
  timeout: number;
  /** For wss:// URLs: passed to tls.connect. */
  tls?: TlsConnectionOptions;
}

/** What one case came to. */
export interface CaseOutcome {
  /** The fault, or null when the server did what RFC 6455 requires. */
  finding: Finding | null;
  /** The model's verdict ('FAILED' for a crash or a hang). */
  verdict: Verdict;
  /** Frames written, whole or in part, before the server ended the connection (all of them when it did not). */
  framesSent: number;
}

/** The fuzzer cannot go on: the server cannot be reached, or refuses the opening handshake. */
export class FuzzError extends Error {}

const isData = (opcode: number): boolean => opcode === Opcode.Text || opcode === Opcode.Binary || opcode === Opcode.Continuation;

/** Replies (Pongs, last frames of messages) the server sent before its Close, and whether it sent a Close. */
function seen(received: readonly WireFrame[], echo: boolean): { replies: number; close: WireFrame | null } {
  let replies = 0;
  for (const frame of received) {
    if (frame.opcode === Opcode.Close) return { replies, close: frame };
    if (frame.opcode === Opcode.Pong || (echo && isData(frame.opcode) && frame.fin)) replies++;
  }
  return { replies, close: null };
}

/** Runs one case. Throws FuzzError when the server cannot be reached or refuses the handshake. */
export async function runFuzzCase(target: Target, fuzzCase: FuzzCase, settings: ExchangeSettings, retry = true): Promise<CaseOutcome> {
  const { echo, timeout } = settings;
  await target.ensure();
  const url = target.url;
  // A spawned server that died since the last check is started again, once, before giving up.
  const restarted = async (): Promise<boolean> => retry && target.spawned && (await target.waitForExit(timeout)) !== null;
  let connection: RawConnection;
  try {
    connection = await RawConnection.open(url, { connectTimeout: timeout, ...(settings.tls ? { tls: settings.tls } : {}) });
  } catch (error) {
    if (await restarted()) return runFuzzCase(target, fuzzCase, settings, false);
    throw new FuzzError(error instanceof ConnectError ? error.message : String(error));
  }
  try {
    const offer = fuzzCase.extensions;
    const { response, key, problem } = await connection.handshake(url, timeout, offer === null ? {} : { headers: { 'Sec-WebSocket-Extensions': offer } });
    if (problem !== null) {
      if (await restarted()) return runFuzzCase(target, fuzzCase, settings, false);
      throw new FuzzError(`the opening handshake failed: ${problem}`);
    }
    const negotiation = checkNegotiation({ key, protocols: [], extensions: offer ?? '' }, response!.headers);
    if (negotiation.problem !== null) {
      throw new FuzzError(`the 101 answering "${offer}" is wrong: ${negotiation.problem} (pef-ws audit checks the handshake; --no-compression offers no extension)`);
    }
    const deflate = negotiation.deflate;
    const expectation = expect(fuzzCase.frames, { echo, deflate });
    const sent = fuzzCase.frames.map((spec) => encodeFrameSpec(spec).frame);
    const framesSent = await write(connection, fuzzCase);
    await awaitReaction(connection, expectation, settings);
    let { judgement, reading } = judgeCase(fuzzCase, expectation, connection, sent, settings, deflate);
    const dropped = connection.end !== null && connection.end.how !== 'destroyed' && seen(connection.received, echo).close === null;

    // "Never a crashed server: the next connection must still work." Checked after a failure, a
    // dropped connection, and a case the server may still be reading (one left open).
    const settled = judgement.verdict !== 'FAILED' && !dropped && target.exited === null && expectation.ending.kind !== 'open';
    if (settled) return { finding: null, verdict: judgement.verdict, framesSent };
    const liveness = await checkLiveness(url, timeout);
    if (target.spawned) {
      if (!liveness.alive && target.exited === null) await target.waitForExit(timeout);
      if (target.exited !== null) return crash(fuzzCase, expectation, fuzzCase.frames.length, `the server exited (${describeExit(target.exited)})`);
    } else if (!liveness.accepts) {
      return crash(fuzzCase, expectation, framesSent, `the connection ended and ${liveness.problem}: the server is down`);
    }
    if (!liveness.alive) {
      // Up, but no longer serving: the whole server hangs. A spawned one is started afresh.
      if (target.spawned) await target.restart();
      return outcome(fuzzCase, expectation, 'hang', `${liveness.problem}: the server accepts TCP but stopped serving after this case. ${judgement.reason} (${judgement.observed})`, framesSent);
    }
    // What arrived while the liveness check ran counts too: a slow server is not a hung one.
    ({ judgement, reading } = judgeCase(fuzzCase, expectation, connection, sent, settings, deflate));
    if (judgement.verdict !== 'FAILED') return { finding: null, verdict: judgement.verdict, framesSent };
    const kind = classify(reading, judgement, connection, sent, settings, deflate);
    return outcome(fuzzCase, reading, kind, `${judgement.reason} (${judgement.observed})`, framesSent);
  } finally {
    connection.destroy();
  }
}

/** Writes the case's byte stream, cut at its split points; stops when the server ends TCP. Returns the frames (partly) written. */
async function write(connection: RawConnection, fuzzCase: FuzzCase): Promise<number> {
  const encoded = encodeFrames(fuzzCase.frames);
  const stream = Buffer.concat(encoded);
  let written = 0;
  for (const cut of [...fuzzCase.splitAt, stream.length]) {
    if (cut <= written || cut > stream.length) continue;
    if (connection.end !== null || !connection.writable) break;
    if (written > 0 && fuzzCase.delay > 0) await sleep(fuzzCase.delay);
    await connection.write(stream.subarray(written, cut));
    written = cut;
  }
  let frames = 0;
  for (let offset = 0; frames < encoded.length && offset < written; frames++) offset += encoded[frames]!.length;
  return frames;
}

/**
 * Waits for the server: for the replies owed while the connection stays open, else for its Close
 * and the end of TCP. A Close from the server is answered with a Close when ours did not go out
 * (§5.5.1), as a client does.
 */
async function awaitReaction(connection: RawConnection, expectation: Expectation, settings: ExchangeSettings): Promise<void> {
  const { echo, timeout } = settings;
  const owed = expectation.replies.length;
  const open = expectation.ending.kind === 'open';
  await connection.waitFor((c) => {
    const { replies, close } = seen(c.received, echo);
    return c.end !== null || close !== null || (open && replies >= owed);
  }, timeout);
  const close = seen(connection.received, echo).close;
  if (close === null || connection.end !== null) return;
  // When the frames ended with our Close, the server's Close answers it; otherwise answer the server's.
  if (expectation.ending.kind !== 'close' && connection.writable) {
    const code = close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
    await connection.send({ opcode: Opcode.Close, payload: code !== undefined && isValidCloseCode(code) ? encodeClosePayload(code) : encodeClosePayload(CloseCode.Normal) });
  }
  await connection.waitForEnd(timeout);
}

/**
 * The judge's view of the log. The case's stream went out as raw writes cut anywhere; each write
 * becomes the frames that start in it (so the judge sees when our Close went out). Without --echo,
 * data frames from the server are not replies and are left out.
 */
function judgeLog(expectation: Expectation, connection: RawConnection, sent: readonly WireFrame[], settings: ExchangeSettings, deflate: NegotiatedDeflate | null, extra: WireEvent[] = []): Judgement {
  const log: WireEvent[] = [];
  let offset = 0;
  let next = 0;
  let start = 0;
  for (const event of connection.log) {
    if (event.direction === 'sent' && event.type === 'bytes') {
      offset += event.bytes.length;
      for (; next < sent.length && start < offset; next++) {
        log.push({ at: event.at, direction: 'sent', type: 'frame', frame: sent[next]! });
        start += sent[next]!.headerLength + sent[next]!.payload.length;
      }
    } else if (settings.echo || !(event.direction === 'received' && event.type === 'frame' && isData(event.frame.opcode))) {
      log.push(event);
    }
  }
  return judge(expectation, [...log, ...extra], { deflate, closeDeadline: settings.timeout });
}

/**
 * Judges the log against the model's expectation and, where RFC 6455 allows a server another
 * reading, against that one too; the better judgement stands. The other reading: a frame whose
 * length is not in its shortest form breaks a MUST of §5.2 that the model lets pass, so a server
 * may fail the connection there with 1002 (after answering the frames before it).
 */
function judgeCase(fuzzCase: FuzzCase, expectation: Expectation, connection: RawConnection, sent: readonly WireFrame[], settings: ExchangeSettings, deflate: NegotiatedDeflate | null): { judgement: Judgement; reading: Expectation } {
  const judgement = failedOnLimit(fuzzCase, expectation, judgeLog(expectation, connection, sent, settings, deflate));
  if (judgement.verdict !== 'FAILED') return { judgement, reading: expectation };
  const ending = expectation.ending;
  const last = ending.kind === 'open' ? expectation.frames.length - 1 : ending.frame;
  const k = expectation.frames.findIndex((f, i) => i <= last && f.problems.some((p) => p.includes('shortest form')));
  if (k < 0) return { judgement, reading: expectation };
  const reading: Expectation = {
    ...expectation,
    replies: expectation.replies.filter((r) => r.frame < k),
    ending: { kind: 'fail', codes: [CloseCode.ProtocolError], reason: `a frame length not in its shortest form (§5.2), which a server may refuse`, frame: k },
  };
  const other = failedOnLimit(fuzzCase, reading, judgeLog(reading, connection, sent, settings, deflate));
  return other.verdict === 'FAILED' ? { judgement, reading: expectation } : { judgement: other, reading };
}

/** Frames this long are past many servers' size limits (the 64-bit length form starts here, §5.2). */
const LIMIT_SIZE = 0x10000;

/**
 * A frame that breaks a rule and also announces a huge length may be refused for its size first:
 * RFC 6455 orders no checks, so a Close 1009 (or 1008, §7.4.1) is then the server's limit speaking,
 * not a wrong code. The judge allows the same where nothing else ends the connection.
 */
function failedOnLimit(fuzzCase: FuzzCase, expectation: Expectation, judgement: Judgement): Judgement {
  const { close } = judgement;
  const ending = expectation.ending;
  if (judgement.verdict !== 'FAILED' || ending.kind !== 'fail' || close.verdict !== 'FAILED' || judgement.reason !== close.detail) return judgement;
  if (!close.closeFrame && ending.failFast !== undefined) {
    // Invalid UTF-8 in a text message that never ends in the stream: a server that checks UTF-8
    // only at the end of a message waits for the rest. Fail-fast is stricter; §8.1 allows both.
    const frames = expectation.frames;
    const ends = frames[ending.frame]?.fin === true || frames.slice(ending.frame + 1).some((f) => f.opcode === Opcode.Continuation && f.fin);
    if (!ends) {
      const detail = 'the server did not fail fast on invalid UTF-8 in a message that has not ended (§8.1: it must fail once it finds it; checking at the end is allowed)';
      return { ...judgement, verdict: 'NON-STRICT', reason: detail, close: { ...close, verdict: 'NON-STRICT', detail } };
    }
  }
  if (close.code !== CloseCode.MessageTooBig && close.code !== CloseCode.PolicyViolation) return judgement;
  const announced = Math.max(expectation.largestMessage, ...fuzzCase.frames.map((spec) => spec.length ?? Buffer.byteLength(spec.payload ?? '')));
  if (announced < LIMIT_SIZE) return judgement;
  const detail = `the server closed with ${close.code} on a limit of its own (a frame announces ${announced} bytes)`;
  return { ...judgement, verdict: 'INFORMATIONAL', reason: detail, close: { ...close, verdict: 'INFORMATIONAL', detail } };
}

/** Names a FAILED judgement's fault (see the file's head). */
function classify(expectation: Expectation, judgement: Judgement, connection: RawConnection, sent: readonly WireFrame[], settings: ExchangeSettings, deflate: NegotiatedDeflate | null): FindingKind {
  const { replies, close } = seen(connection.received, settings.echo);
  const owed = expectation.replies.length;
  const open = connection.end === null;
  if (judgement.close.verdict !== 'FAILED') return open && close === null && replies < owed ? 'hang' : 'wrong-echo';
  if (close === null) {
    if (!open) return 'wrong-close';
    return replies > owed ? 'no-close' : 'hang';
  }
  if (expectation.ending.kind === 'open') return 'wrong-close';
  // Was the Close itself right, and only TCP late? Judge again as if TCP had closed with the Close.
  const closeEvent = connection.log.find((e) => e.direction === 'received' && e.type === 'frame' && e.frame.opcode === Opcode.Close)!;
  const closedInTime = judgeLog(expectation, connection, sent, settings, deflate, [{ at: closeEvent.at, direction: 'received', type: 'fin' }]);
  return closedInTime.close.verdict === 'FAILED' ? 'wrong-close' : 'no-close';
}

function outcome(fuzzCase: FuzzCase, expectation: Expectation, kind: FindingKind, observed: string, framesSent: number): CaseOutcome {
  return {
    finding: { kind, frames: framesToHex(fuzzCase.frames), expected: describeExpectation(expectation), observed },
    verdict: 'FAILED',
    framesSent,
  };
}

/**
 * The last case's crash, found only when the next case could not connect: the server's exit raced
 * the check after that case. `problem` is what the liveness check saw, e.g. "the next connection
 * failed (ECONNREFUSED)".
 */
export function crashFoundLater(fuzzCase: FuzzCase, framesSent: number, problem: string): CaseOutcome {
  return {
    finding: {
      kind: 'crash',
      frames: framesToHex(fuzzCase.frames.slice(0, framesSent)),
      expected: 'the server stays up (the next connection works)',
      observed: `${problem}: the server is down`,
    },
    verdict: 'FAILED',
    framesSent,
  };
}

/** A crash: the frames up to the moment the connection died (all of them with --spawn: they can be replayed). */
function crash(fuzzCase: FuzzCase, expectation: Expectation | null, framesSent: number, observed: string): CaseOutcome {
  return {
    finding: {
      kind: 'crash',
      frames: framesToHex(fuzzCase.frames.slice(0, framesSent)),
      expected: `${expectation === null ? 'the opening handshake succeeds' : describeExpectation(expectation)}; and the server stays up (the next connection works)`,
      observed,
    },
    verdict: 'FAILED',
    framesSent,
  };
}

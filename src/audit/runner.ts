// The audit runner: runs each case of the battery on its own connection (a pool of them at once),
// within the case's deadline, and judges what came back with the RFC model (model.ts). A frame
// case opens the WebSocket, writes its frames as the case says (in one write, a write per frame, or
// small pieces; pausing where fail-fast is observed), waits for the replies the model expects,
// closes with 1000 when the frames left the connection open, answers the server's Close, and waits
// for the server to close TCP. A handshake case writes its own request and judges the response.

import { performance } from 'node:perf_hooks';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { CloseCode, Opcode, isValidCloseCode } from '../protocol/constants.js';
import { PerMessageDeflate } from '../protocol/deflate.js';
import { encodeClosePayload } from '../protocol/frame.js';
import { parseProtocolHeader } from '../protocol/handshake.js';
import { validClose, type AuditCase, type FrameCase, type HandshakeCase, type WritePlan } from './case.js';
import {
  checkNegotiation,
  describeExpectation,
  describePayload,
  expect,
  judge,
  judgeHandshake,
  worse,
  VERDICTS,
  type CloseJudgement,
  type NegotiatedDeflate,
  type Verdict,
} from './model.js';
import { ConnectError, RawConnection, encodedLength, type FrameSpec, type WireEvent, type WireFrame } from './wire.js';

/** How the battery runs. */
export interface AuditOptions {
  /** The server echoes every message (as Autobahn's test servers do). Default true. */
  echo?: boolean;
  /** Cases run at once, each on its own connection. Default 4. */
  concurrency?: number;
  /** Each case's deadline in ms (cases with large payloads take their own, longer one). Default 10,000. */
  timeout?: number;
  /** How long the server may take to close TCP after the closing handshake, in ms. Default 2,000. */
  closeDeadline?: number;
  /** How long the audit waits at the byte that proves text invalid, for a fail-fast server to react, in ms. Default 1,000. */
  failFastWait?: number;
  /** TLS options for wss:// (ca, rejectUnauthorized, servername). */
  tls?: TlsConnectionOptions;
  /** Called after each case, in the order cases finish. */
  onResult?: (result: CaseResult, done: number, total: number) => void;
}

/** A frame of the wire log as the reports show it. */
export interface WireLogFrame {
  /** The opcode's name: text, binary, continuation, close, ping, pong, or 0x3 for a reserved one. */
  opcode: string;
  fin: boolean;
  /** RSV bits in place (64 = RSV1). */
  rsv: number;
  masked: boolean;
  /** The payload length the header announced. */
  length: number;
  /** The first 64 payload bytes in hex. */
  payload: string;
  /** The first 64 payload bytes as text, when they are printable UTF-8. */
  text?: string;
  /** For a Close frame: its code and reason. */
  closeCode?: number;
  closeReason?: string;
  /** What breaks §5.2 in the header (non-minimal length...). */
  problems?: string[];
}

/** One entry of the wire log in the reports: `at` ms after the TCP connection opened. */
export interface WireLogEntry {
  at: number;
  direction: 'sent' | 'received';
  /** handshake, frame, bytes, fin, reset, destroy, pause, or omitted (entries left out of a long log). */
  type: WireEvent['type'] | 'omitted';
  frame?: WireLogFrame;
  /** The handshake head, or a description of raw bytes, the reset's error, the pause's reason, or how many entries were left out. */
  detail?: string;
}

/** The result of one case (the JSON report's `cases` entries). */
export interface CaseResult {
  id: string;
  title: string;
  rfc: string;
  verdict: Verdict;
  /** Why, in a sentence. */
  reason: string;
  /** The close behaviour judged on its own; null for a handshake the server refused or that never completed. */
  close: CloseJudgement | null;
  /** What a conforming server does, in words. */
  expected: string;
  /** What the server did, in words. */
  observed: string;
  /** Every frame both ways (long logs: the first and last entries). */
  wire: WireLogEntry[];
  /** Milliseconds the case took. */
  duration: number;
  /** A note from the battery (e.g. a rule the server is about to gain). */
  note?: string;
}

/** The JSON report. */
export interface AuditReport {
  url: string;
  cases: CaseResult[];
  counts: Record<Verdict, number>;
  /** Wall-clock milliseconds of the whole run. */
  duration: number;
  /** When the run started (ISO 8601). */
  started: string;
}

const DEFAULTS = { echo: true, concurrency: 4, timeout: 10_000, closeDeadline: 2_000, failFastWait: 1_000 };
/** Entries kept at the start and at the end of a long wire log. */
const WIRE_HEAD = 150;
const WIRE_TAIL = 50;
const PREVIEW = 64;
/** How long after a case's deadline its connection is destroyed, whatever it is doing. */
const HARD_STOP_GRACE = 250;

/** Runs `cases` against the server at `url`; resolves with the report (cases in battery order). */
export async function runAudit(url: string, cases: readonly AuditCase[], options: AuditOptions = {}): Promise<AuditReport> {
  const started = new Date();
  const t0 = performance.now();
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  let done = 0;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? DEFAULTS.concurrency, cases.length || 1));
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const index = next++;
      const result = await runCase(url, cases[index]!, options);
      results[index] = result;
      done++;
      options.onResult?.(result, done, cases.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { url, cases: results, counts: countVerdicts(results), duration: Math.round(performance.now() - t0), started: started.toISOString() };
}

/** How many results have each verdict (every verdict present, 0 when none). */
export function countVerdicts(results: readonly CaseResult[]): Record<Verdict, number> {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const result of results) counts[result.verdict]++;
  return { OK: counts.OK, 'NON-STRICT': counts['NON-STRICT'], FAILED: counts.FAILED, INFORMATIONAL: counts.INFORMATIONAL, UNIMPLEMENTED: counts.UNIMPLEMENTED };
}

/** Runs one case; never throws (a connection that cannot be opened is a FAILED result). */
export async function runCase(url: string, auditCase: AuditCase, options: AuditOptions = {}): Promise<CaseResult> {
  const start = performance.now();
  const timeout = Math.max(auditCase.timeout ?? 0, options.timeout ?? DEFAULTS.timeout);
  const base = { id: auditCase.id, title: auditCase.title, rfc: auditCase.rfc, ...(auditCase.note === undefined ? {} : { note: auditCase.note }) };
  let connection: RawConnection;
  try {
    connection = await RawConnection.open(url, { connectTimeout: timeout, ...(options.tls ? { tls: options.tls } : {}) });
  } catch (error) {
    const message = error instanceof ConnectError ? error.message : String(error);
    return { ...base, verdict: 'FAILED', reason: message, close: null, expected: 'a TCP connection', observed: message, wire: [], duration: Math.round(performance.now() - start) };
  }
  const deadline = start + timeout;
  let timedOut = false;
  // The hard stop, a little after the deadline every wait of the case keeps: it only fires when
  // something cannot be waited for with a deadline (a write the server never reads).
  const timer = setTimeout(() => {
    timedOut = true;
    connection.destroy();
  }, timeout + HARD_STOP_GRACE);
  try {
    const outcome = auditCase.kind === 'handshake'
      ? await runHandshakeCase(url, auditCase, connection, deadline, timeout, options)
      : await runFrameCase(url, auditCase, connection, deadline, timeout, options);
    let { reason } = outcome;
    if (timedOut && outcome.verdict === 'FAILED') reason = `the case ran out of time (${timeout} ms): ${reason}`;
    return { ...base, ...outcome, reason, wire: serializeLog(connection.log), duration: Math.round(performance.now() - start) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ...base, verdict: 'FAILED', reason: `the audit could not run the case: ${message}`, close: null, expected: '', observed: '', wire: serializeLog(connection.log), duration: Math.round(performance.now() - start) };
  } finally {
    clearTimeout(timer);
    connection.destroy();
  }
}

type Outcome = Pick<CaseResult, 'verdict' | 'reason' | 'close' | 'expected' | 'observed'>;

const remaining = (deadline: number): number => Math.max(0, deadline - performance.now());

function requestHeader(headers: Readonly<Record<string, string | null>> | undefined, name: string): string {
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === name && value !== null) return value;
  return '';
}

async function runHandshakeCase(url: string, auditCase: HandshakeCase, connection: RawConnection, deadline: number, timeout: number, options: AuditOptions): Promise<Outcome> {
  const target = new URL(url);
  const request = typeof auditCase.request === 'function' ? auditCase.request(target) : auditCase.request;
  const { response, key } = await connection.handshake(target, remaining(deadline), request);
  const offer = {
    key,
    protocols: parseProtocolHeader(requestHeader(request.headers, 'sec-websocket-protocol')),
    extensions: requestHeader(request.headers, 'sec-websocket-extensions'),
  };
  const expected = auditCase.expect.outcome === 'accept'
    ? 'a 101 with the right Sec-WebSocket-Accept and only offered subprotocols/extensions'
    : auditCase.expect.outcome === 'either'
      ? 'a 101, or a refusal (both allowed)'
      : `a refusal${auditCase.expect.statuses ? ` (${auditCase.expect.statuses.join(' or ')})` : ' (4xx)'}`;
  const verdict = judgeHandshake(auditCase.expect, offer, response, timeout);
  if (response?.status !== 101 || verdict.verdict === 'FAILED') return { ...verdict, close: null, expected };
  // Accepted: finish with a normal closing handshake, judged like any other.
  const deflate = checkNegotiation(offer, response.headers).deflate;
  const closeOutcome = await exchangeFrames(connection, [validClose(CloseCode.Normal)], {}, deadline, options, deflate, false);
  return {
    verdict: worse(verdict.verdict, closeOutcome.close?.verdict ?? 'OK'),
    reason: closeOutcome.close && closeOutcome.close.verdict !== 'OK' && verdict.verdict === 'OK' ? closeOutcome.close.detail : verdict.reason,
    close: closeOutcome.close,
    expected: `${expected}; then the closing handshake`,
    observed: `${verdict.observed}; ${closeOutcome.observed}`,
  };
}

async function runFrameCase(url: string, auditCase: FrameCase, connection: RawConnection, deadline: number, timeout: number, options: AuditOptions): Promise<Outcome> {
  const offer = auditCase.deflateOffer;
  const { response, key, problem } = await connection.handshake(url, remaining(deadline), offer ? { headers: { 'Sec-WebSocket-Extensions': offer } } : {});
  const expectedOpen = 'the opening handshake succeeds';
  if (problem !== null) {
    return { verdict: 'FAILED', reason: `opening handshake: ${response === null ? `no response within ${timeout} ms` : problem}`, close: null, expected: expectedOpen, observed: response ? `HTTP ${response.status} ${response.reason}` : 'no response' };
  }
  const negotiation = checkNegotiation({ key, protocols: [], extensions: offer ?? '' }, response!.headers);
  if (negotiation.problem !== null) {
    return { verdict: 'FAILED', reason: `opening handshake: ${negotiation.problem}`, close: null, expected: expectedOpen, observed: `HTTP 101, Sec-WebSocket-Extensions: ${response!.headers['sec-websocket-extensions'] ?? ''}` };
  }
  if (offer !== undefined && negotiation.deflate === null) {
    const outcome = await exchangeFrames(connection, [validClose(CloseCode.Normal)], auditCase, deadline, options, null, false);
    return { verdict: 'UNIMPLEMENTED', reason: `the server declined "${offer}" (RFC 7692 §5)`, close: outcome.close, expected: 'permessage-deflate agreed', observed: 'no Sec-WebSocket-Extensions in the 101' };
  }
  return exchangeFrames(connection, null, auditCase, deadline, options, negotiation.deflate, true);
}

/** The client side of permessage-deflate for what was agreed: our compressor, and an inflater that reads any window. */
function clientDeflate(deflate: NegotiatedDeflate): PerMessageDeflate {
  return new PerMessageDeflate({
    ownWindowBits: deflate.clientMaxWindowBits,
    ownNoContextTakeover: deflate.clientNoContextTakeover,
    peerWindowBits: 15,
    peerNoContextTakeover: deflate.serverNoContextTakeover,
    threshold: 0,
    level: 6,
    memLevel: 8,
  });
}

/** Cut points of the stream for a write plan (the chunked plan is WriteOptions.chunkSize). */
function writeOptions(plan: WritePlan | undefined, frames: readonly FrameSpec[]): { splitAt?: number[]; chunkSize?: number; delay?: number } {
  if (plan === undefined || plan === 'once') return {};
  if (plan === 'frames') {
    const cuts: number[] = [];
    let offset = 0;
    for (const frame of frames) cuts.push((offset += encodedLength(frame)));
    return { splitAt: cuts };
  }
  return plan.delay === undefined ? { chunkSize: plan.chunkSize } : { chunkSize: plan.chunkSize, delay: plan.delay };
}

function repliesSeen(received: readonly WireFrame[]): { replies: number; close: boolean } {
  let replies = 0;
  let close = false;
  for (const frame of received) {
    if (frame.opcode === Opcode.Close) {
      close = true;
      break;
    }
    if (frame.opcode === Opcode.Pong || ((frame.opcode === Opcode.Text || frame.opcode === Opcode.Binary || frame.opcode === Opcode.Continuation) && frame.fin)) replies++;
  }
  return { replies, close };
}

/**
 * Sends the case's frames (or `fixed` ones), waits for the replies, closes, and judges. `appendClose`:
 * close with 1000 after the replies when the frames leave the connection open.
 */
async function exchangeFrames(
  connection: RawConnection,
  fixed: FrameSpec[] | null,
  auditCase: Pick<FrameCase, 'write' | 'failFast' | 'closeAfter'> & { frames?: FrameCase['frames'] },
  deadline: number,
  options: AuditOptions,
  deflate: NegotiatedDeflate | null,
  appendClose: boolean,
): Promise<Outcome> {
  const echo = options.echo ?? DEFAULTS.echo;
  const closeDeadline = options.closeDeadline ?? DEFAULTS.closeDeadline;
  const frames = fixed ?? auditCase.frames!({ deflate: deflate ? clientDeflate(deflate) : null });
  const closing = appendClose && auditCase.closeAfter !== false ? validClose(CloseCode.Normal) : null;
  const expectation = expect(closing ? [...frames, closing] : frames, { echo, deflate });
  const ending = expectation.ending;
  // Our closing frame is needed only when the frames themselves left the connection open.
  const sendClosing = closing !== null && ending.kind === 'close' && ending.frame === expectation.frames.length - 1 && expectation.streamLength > frames.reduce((n, f) => n + encodedLength(f), 0);
  const serverReacted = (c: RawConnection): boolean => c.end !== null || repliesSeen(c.received).close;

  const write = writeOptions(fixed ? 'frames' : auditCase.write, frames);
  const failFast = auditCase.failFast && ending.kind === 'fail' ? ending.failFast : undefined;
  await connection.send(frames, failFast === undefined ? write : {
    ...write,
    pauseAfter: { offset: failFast + 1, until: serverReacted, timeout: Math.min(options.failFastWait ?? DEFAULTS.failFastWait, remaining(deadline)), reason: 'waiting at the byte that proves the text invalid (fail fast, §8.1)' },
  });
  // The replies the model expects, or the server's Close, or the end of TCP.
  const owed = expectation.replies.length;
  await connection.waitFor((c) => serverReacted(c) || repliesSeen(c.received).replies >= owed, remaining(deadline));
  if (sendClosing && !serverReacted(connection) && connection.writable) await connection.send(closing!);
  // The server's Close (or TCP end).
  await connection.waitFor(serverReacted, ending.kind === 'open' ? Math.min(200, remaining(deadline)) : remaining(deadline));
  const sentClose = connection.log.some((e) => e.direction === 'sent' && e.type === 'frame' && e.frame.opcode === Opcode.Close);
  const serverClose = connection.received.find((f) => f.opcode === Opcode.Close);
  if (serverClose && !sentClose && connection.writable) {
    // §5.5.1: answer the server's Close with a Close (its code, when that may be sent).
    const code = serverClose.payload.length >= 2 ? serverClose.payload.readUInt16BE(0) : undefined;
    await connection.send({ opcode: Opcode.Close, payload: code !== undefined && isValidCloseCode(code) ? encodeClosePayload(code) : Buffer.alloc(0) });
  }
  // §7.1.1: the server closes TCP first; give it the deadline, then close our side and give it a little more.
  if ((await connection.waitForEnd(Math.min(closeDeadline, remaining(deadline)))) === null && serverClose) {
    connection.finish();
    await connection.waitForEnd(Math.min(500, remaining(deadline)));
  }
  const judgement = judge(expectation, connection.log, { deflate, closeDeadline });
  return { verdict: judgement.verdict, reason: judgement.reason, close: judgement.close, expected: describeExpectation(expectation), observed: judgement.observed };
}

// ------------------------------------------------------------------------------- wire log for reports

const OPCODE_NAMES: Readonly<Record<number, string>> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

function serializeFrame(frame: WireFrame): WireLogFrame {
  const head = frame.payload.subarray(0, PREVIEW);
  const out: WireLogFrame = {
    opcode: OPCODE_NAMES[frame.opcode] ?? `0x${frame.opcode.toString(16)}`,
    fin: frame.fin,
    rsv: frame.rsv,
    masked: frame.masked,
    length: frame.length,
    payload: head.toString('hex'),
  };
  const text = head.toString('utf8');
  if (frame.opcode !== Opcode.Close && head.length > 0 && Buffer.from(text).equals(head) && /^[^\x00-\x08\x0e-\x1f\x7f]*$/.test(text)) out.text = text;
  if (frame.opcode === Opcode.Close && frame.payload.length >= 2) {
    out.closeCode = frame.payload.readUInt16BE(0);
    out.closeReason = frame.payload.subarray(2).toString('utf8');
  }
  if (frame.problems.length > 0) out.problems = frame.problems;
  return out;
}

function serializeEvent(event: WireEvent): WireLogEntry {
  const entry: WireLogEntry = { at: Math.round(event.at * 10) / 10, direction: event.direction, type: event.type };
  switch (event.type) {
    case 'frame':
      entry.frame = serializeFrame(event.frame);
      break;
    case 'handshake':
      entry.detail = event.head.trimEnd();
      break;
    case 'bytes':
      entry.detail = `${event.bytes.length} raw bytes: ${describePayload(event.bytes)}`;
      break;
    case 'reset':
      entry.detail = event.error;
      break;
    case 'pause':
      entry.detail = `${event.reason}: ${Math.round(event.until - event.at)} ms`;
      break;
    default:
      break;
  }
  return entry;
}

/** The wire log as the reports keep it: payloads cut to 64 bytes, long logs to their first 150 and last 50 entries. */
export function serializeLog(log: readonly WireEvent[]): WireLogEntry[] {
  if (log.length <= WIRE_HEAD + WIRE_TAIL) return log.map(serializeEvent);
  const left = log.length - WIRE_HEAD - WIRE_TAIL;
  const at = log[WIRE_HEAD]!.at;
  return [
    ...log.slice(0, WIRE_HEAD).map(serializeEvent),
    { at: Math.round(at * 10) / 10, direction: log[WIRE_HEAD]!.direction, type: 'omitted', detail: `${left} entries left out` },
    ...log.slice(log.length - WIRE_TAIL).map(serializeEvent),
  ];
}

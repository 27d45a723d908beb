// One fuzz case as it goes on the wire, and its two written forms: frames as hex strings (what a
// finding prints and the JSON report holds) and the replay file (`pef-ws fuzz --replay file.json`),
// which keeps everything needed to send the same bytes the same way again.

import { encodeFrameSpec, type FrameSpec } from '../wire.js';

/**
 * A fuzz case: frames (every field explicit, masking keys included, so the bytes are fixed), how
 * the byte stream is cut into writes, and the permessage-deflate offer of the opening handshake.
 */
export interface FuzzCase {
  /** The frames, in order. */
  frames: FrameSpec[];
  /** Offsets in the byte stream (all frames back to back) where it is cut into separate writes. */
  splitAt: number[];
  /** Milliseconds to wait between two writes (0: only until each is handed to the kernel). */
  delay: number;
  /** The Sec-WebSocket-Extensions value offered in the handshake, or null to offer none. */
  extensions: string | null;
}

/** A fault found by the fuzzer (the JSON report's `kind`). */
export type FindingKind = 'crash' | 'hang' | 'wrong-close' | 'wrong-echo' | 'no-close';

/** A finding as the JSON report writes it (field names fixed by issue 11). */
export interface Finding {
  /** What went wrong: see FindingKind. */
  kind: FindingKind;
  /** The (shrunk) frames, each as the hex of its bytes on the wire, header and masked payload. */
  frames: string[];
  /** What RFC 6455 required, in words. */
  expected: string;
  /** What the server did, in words. */
  observed: string;
}

/** The bytes of each frame of a case, as written. */
export function encodeFrames(frames: readonly FrameSpec[]): Buffer[] {
  return frames.map((spec) => encodeFrameSpec(spec).bytes);
}

/** The hex strings of a case's frames. */
export function framesToHex(frames: readonly FrameSpec[]): string[] {
  return encodeFrames(frames).map((bytes) => bytes.toString('hex'));
}

/**
 * Reads a frame back from the hex of its bytes: the inverse of encodeFrameSpec, so that
 * `encodeFrameSpec(frameFromHex(h)).bytes.toString('hex') === h`. Bytes past the header are the
 * payload as written (a header may announce a different length: that is kept in `length`).
 * Throws RangeError for text that is not hex or shorter than the header it starts.
 */
export function frameFromHex(hex: string): FrameSpec {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) throw new RangeError(`not a frame in hex: "${hex.slice(0, 40)}"`);
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length < 2) throw new RangeError(`a frame takes at least 2 bytes: "${hex}"`);
  const b0 = bytes[0]!;
  const b1 = bytes[1]!;
  const short = b1 & 0x7f;
  const lengthForm: 7 | 16 | 64 = short === 126 ? 16 : short === 127 ? 64 : 7;
  let offset = lengthForm === 7 ? 2 : lengthForm === 16 ? 4 : 10;
  const masked = (b1 & 0x80) !== 0;
  if (bytes.length < offset + (masked ? 4 : 0)) throw new RangeError(`frame header cut short: "${hex}"`);
  const length = lengthForm === 7 ? short : lengthForm === 16 ? bytes.readUInt16BE(2) : Number(bytes.readBigUInt64BE(2));
  let mask: Buffer | null = null;
  if (masked) {
    mask = Buffer.from(bytes.subarray(offset, offset + 4));
    offset += 4;
  }
  const payload = Buffer.from(bytes.subarray(offset));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return { opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, mask, payload, length, lengthForm };
}

/** The replay file's `format` value. */
export const REPLAY_FORMAT = 'pef-ws-fuzz-replay/1';

/** A saved finding: everything `pef-ws fuzz --replay` needs to send the same bytes the same way. */
export interface ReplayFile {
  /** Always REPLAY_FORMAT. */
  format: typeof REPLAY_FORMAT;
  /** The server fuzzed. */
  url: string;
  /** The seed of the run that found it. */
  seed: number;
  /** Whether the server was fuzzed as an echo server. */
  echo: boolean;
  /** The Sec-WebSocket-Extensions offer, or null. */
  extensions: string | null;
  /** The frames as hex. */
  frames: string[];
  /** Offsets where the byte stream is cut into writes. */
  splitAt: number[];
  /** Milliseconds between writes. */
  delay: number;
  /** The finding as it was reported. */
  finding: Finding;
}

/** Builds the replay file of a finding. */
export function replayFile(url: string, seed: number, echo: boolean, fuzzCase: FuzzCase, finding: Finding): ReplayFile {
  return {
    format: REPLAY_FORMAT,
    url,
    seed,
    echo,
    extensions: fuzzCase.extensions,
    frames: finding.frames,
    splitAt: fuzzCase.splitAt,
    delay: fuzzCase.delay,
    finding,
  };
}

/** A case to replay, read from a file, with the settings it was found with. */
export interface LoadedReplay {
  /** The case to send. */
  fuzzCase: FuzzCase;
  /** The server it was found on. */
  url: string;
  /** The seed it was found with (null when the file does not say). */
  seed: number | null;
  /** Whether it was fuzzed as an echo server (null when the file does not say). */
  echo: boolean | null;
  /** The finding the file records. */
  finding: Finding;
}

const KINDS: readonly string[] = ['crash', 'hang', 'wrong-close', 'wrong-echo', 'no-close'];

function isFinding(value: unknown): value is Finding {
  const f = value as Partial<Finding> | null;
  return (
    typeof f === 'object' && f !== null && typeof f.kind === 'string' && KINDS.includes(f.kind) &&
    Array.isArray(f.frames) && f.frames.every((h) => typeof h === 'string') &&
    typeof f.expected === 'string' && typeof f.observed === 'string'
  );
}

/** Reads a replay file. Throws Error with a message naming what is wrong. */
export function parseReplay(text: string): LoadedReplay {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`the replay file is not JSON: ${(error as Error).message}`);
  }
  const record = data as Record<string, unknown> | null;
  if (typeof record !== 'object' || record === null || record['format'] !== REPLAY_FORMAT) {
    throw new Error(`not a replay file: expected "format": "${REPLAY_FORMAT}" (pef-ws fuzz saves one for each finding)`);
  }
  const { url, seed, echo, finding, frames, splitAt, delay, extensions } = record;
  if (typeof url !== 'string') throw new Error('the replay file has no "url"');
  if (!isFinding(finding)) throw new Error('the replay file\'s "finding" is not valid');
  if (!Array.isArray(frames) || !frames.every((h) => typeof h === 'string')) throw new Error('the replay file\'s "frames" is not a list of hex strings');
  if (!Array.isArray(splitAt) || !splitAt.every((n) => Number.isInteger(n) && n >= 0)) throw new Error('the replay file\'s "splitAt" is not a list of offsets');
  if (typeof delay !== 'number' || !(delay >= 0)) throw new Error('the replay file\'s "delay" is not a number of milliseconds');
  if (extensions !== null && typeof extensions !== 'string') throw new Error('the replay file\'s "extensions" is not a string or null');
  return {
    fuzzCase: { frames: (frames as string[]).map(frameFromHex), splitAt: splitAt as number[], delay, extensions },
    url,
    seed: typeof seed === 'number' ? seed : null,
    echo: typeof echo === 'boolean' ? echo : null,
    finding,
  };
}

// Frame serialisation (RFC 6455 §5.2) and the Close frame's payload (§5.5.1). Pure functions:
// a frame becomes [header, payload], which the caller writes together.

import { CloseCode, MAX_CLOSE_REASON_BYTES, isValidCloseCode } from './constants.js';
import { ProtocolError, protocolViolation } from './errors.js';
import { applyMask } from './mask.js';
import { isValidUtf8 } from './utf8.js';

/** Bytes of a frame header for this payload length: §5.2 requires the shortest length encoding. */
export function frameHeaderLength(payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/**
 * Writes a frame header into `target` at `offset` and returns the offset after it.
 * `rsv` holds the RSV bits already in place (0x40 for RSV1). A `mask` adds the masking key;
 * masking the payload is the caller's business.
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  payloadLength: number,
  fin: boolean,
  rsv: number,
  mask?: Uint8Array,
): number {
  target[offset] = (fin ? 0x80 : 0) | rsv | opcode;
  const maskBit = mask ? 0x80 : 0;
  if (payloadLength < 126) {
    target[offset + 1] = maskBit | payloadLength;
    offset += 2;
  } else if (payloadLength < 0x10000) {
    target[offset + 1] = maskBit | 126;
    target[offset + 2] = payloadLength >>> 8;
    target[offset + 3] = payloadLength & 0xff;
    offset += 4;
  } else {
    target[offset + 1] = maskBit | 127;
    // §5.2: the most significant bit of the 64-bit length MUST be 0; a JS length is below 2^53.
    const high = Math.floor(payloadLength / 0x100000000);
    const low = payloadLength >>> 0;
    target[offset + 2] = high >>> 24;
    target[offset + 3] = (high >>> 16) & 0xff;
    target[offset + 4] = (high >>> 8) & 0xff;
    target[offset + 5] = high & 0xff;
    target[offset + 6] = low >>> 24;
    target[offset + 7] = (low >>> 16) & 0xff;
    target[offset + 8] = (low >>> 8) & 0xff;
    target[offset + 9] = low & 0xff;
    offset += 10;
  }
  if (mask) {
    target[offset] = mask[0]!;
    target[offset + 1] = mask[1]!;
    target[offset + 2] = mask[2]!;
    target[offset + 3] = mask[3]!;
    offset += 4;
  }
  return offset;
}

/** How encodeFrame builds a frame. */
export interface EncodeFrameOptions {
  /** FIN bit; default true. */
  fin?: boolean;
  /** RSV bits as they stand in the first byte (0x40 = RSV1); default 0. */
  rsv?: number;
  /** A 4-byte masking key: the payload is copied and masked with it (client frames, §5.3). Default: unmasked. */
  mask?: Uint8Array;
}

/** Encodes one frame as [header, payload]. Without a mask the payload is returned as it is. */
export function encodeFrame(opcode: number, payload: Uint8Array, options: EncodeFrameOptions = {}): [Buffer, Buffer] {
  const { fin = true, rsv = 0, mask } = options;
  const header = Buffer.allocUnsafe(frameHeaderLength(payload.length, mask !== undefined));
  writeFrameHeader(header, 0, opcode, payload.length, fin, rsv, mask);
  let body = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  if (mask) {
    body = Buffer.from(body); // never mask the caller's bytes in place
    applyMask(body, mask, 0);
  }
  return [header, body];
}

/**
 * The payload of a Close frame (§5.5.1): empty without a code, else the code in network byte
 * order followed by the UTF-8 reason. Throws RangeError for a code that may not be sent (1005,
 * 1006 and 1015 never go on the wire, §7.4.1) or a reason over 123 bytes.
 */
export function encodeClosePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new RangeError('a close reason needs a close code');
    return Buffer.alloc(0);
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new RangeError(`close code ${code} may not be sent (RFC 6455 §7.4)`);
  }
  const reasonBytes = Buffer.byteLength(reason);
  if (reasonBytes > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`close reason is ${reasonBytes} bytes; at most ${MAX_CLOSE_REASON_BYTES} fit in a control frame`);
  }
  const payload = Buffer.allocUnsafe(2 + reasonBytes);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, 'utf8');
  return payload;
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a code point. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const bytes = Buffer.from(text).subarray(0, maxBytes);
  let end = bytes.length;
  // Step back over a code point cut in the middle: drop its continuation bytes and its lead byte.
  let i = end - 1;
  while (i >= 0 && (bytes[i]! & 0xc0) === 0x80) i--;
  if (i >= 0) {
    const lead = bytes[i]!;
    const len = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (i + len > end) end = i;
  }
  return bytes.subarray(0, end).toString('utf8');
}

/** A parsed Close payload: the code (1005 when there was none) and the reason. */
export interface ClosePayload {
  /** The status code, RFC 6455 §7.4; 1005 when the payload was empty. */
  code: number;
  /** The UTF-8 reason, '' when there was none. */
  reason: string;
}

/**
 * Parses a received Close payload (§5.5.1, §7.1.5). Empty means no code (reported as 1005).
 * A 1-byte payload, a code that may not be sent, or a reason that is not UTF-8 is a 1002 error.
 */
export function parseClosePayload(payload: Uint8Array): ClosePayload | ProtocolError {
  if (payload.length === 0) return { code: CloseCode.NoStatusReceived, reason: '' };
  if (payload.length === 1) {
    return protocolViolation('WS_ERR_INVALID_CLOSE_PAYLOAD', 'close frame payload of 1 byte: a code takes 2');
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidCloseCode(code)) {
    return protocolViolation('WS_ERR_INVALID_CLOSE_CODE', `invalid close code ${code}`);
  }
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) {
    return protocolViolation('WS_ERR_INVALID_CLOSE_REASON', 'close reason is not valid UTF-8');
  }
  return { code, reason: Buffer.from(reasonBytes.buffer, reasonBytes.byteOffset, reasonBytes.length).toString('utf8') };
}

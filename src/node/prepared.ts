// A message framed once and written to many sockets: pub/sub fan-out sends the same bytes to every
// subscriber instead of building a frame per connection (ws's prepared frames, uWS's publish).

import { Opcode } from '../protocol/constants.js';
import { frameHeaderLength, writeFrameHeader } from '../protocol/frame.js';
import type { MessageType } from './types.js';

/**
 * One message, framed on first use as a single unmasked, uncompressed, final frame (RFC 6455
 * §5.2; a server never masks, §5.1) and kept: pass it to
 * {@link WebSocketConnection.sendPrepared} of any number of connections and they all write these
 * same bytes.
 *
 * A client connection (it masks every frame with a key of its own, RFC 6455 §5.1), a connection
 * that negotiated permessage-deflate, or one whose frames are traced, sends `data` through its own
 * `send` instead: its compression context is its own (RFC 7692 §7.2.3), so compressed bytes cannot
 * be shared (docs/pubsub.md).
 */
export class PreparedMessage {
  /** The message: a string for `'text'`, a Buffer for `'binary'`. */
  readonly data: string | Buffer;
  /** `'text'` or `'binary'`, from the type of `data`. */
  readonly type: MessageType;
  #frame: Buffer | null = null;

  /** `data` as a text message (a string) or a binary one (a Buffer). TypeError for anything else. */
  constructor(data: string | Buffer) {
    if (typeof data !== 'string' && !Buffer.isBuffer(data)) throw new TypeError('a prepared message is a string or a Buffer');
    this.data = data;
    this.type = typeof data === 'string' ? 'text' : 'binary';
  }

  /** The frame's bytes, header and payload; built on the first call. */
  get frame(): Buffer {
    if (this.#frame !== null) return this.#frame;
    const data = this.data;
    const length = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
    const headerLength = frameHeaderLength(length, false);
    const frame = Buffer.allocUnsafe(headerLength + length);
    writeFrameHeader(frame, 0, typeof data === 'string' ? Opcode.Text : Opcode.Binary, length, true, 0);
    if (typeof data === 'string') frame.write(data, headerLength, 'utf8');
    else frame.set(data, headerLength);
    return (this.#frame = frame);
  }
}

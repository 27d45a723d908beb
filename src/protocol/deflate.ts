// permessage-deflate, RFC 7692: the negotiation of §5 and §7.1 and the per-message DEFLATE of §7.2,
// synchronous so the core stays Sans-I/O (node:zlib here is computation, not I/O).
//
// Memory is bounded by design: no zlib stream outlives a message. Each message is compressed or
// inflated by one synchronous zlib call whose native state is freed before the call returns. Context
// takeover (§7.1.1) is carried by the LZ77 sliding window itself: the last 2^windowBits bytes of the
// messages seen so far, handed to zlib as the preset dictionary of the next message. That is exactly
// the history a persistent stream would keep, at 2^windowBits bytes per direction instead of a whole
// zlib context (a deflate state is ~4x its window plus hash tables), and it needs no private API:
// Node 20's `_processChunk` closes the stream after every synchronous call, so a persistent stream
// cannot be driven synchronously through it.

import { kMaxLength } from 'node:buffer';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { CloseCode, RSV1 } from './constants.js';
import { ProtocolError } from './errors.js';
import type { MessageExtension } from './connection.js';
import type { ExtensionNegotiator } from './handshake.js';
import { parseExtensionsHeader, type ExtensionOffer } from './extensions.js';

/** The extension token of RFC 7692 §7. */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** Settings of permessage-deflate on a server; every field is optional. */
export interface PerMessageDeflateOptions {
  /** Messages shorter than this many bytes are sent uncompressed. Default 96 (PEF's choice). */
  threshold?: number;
  /** zlib compression level, 0-9 (or -1 for zlib's default, 6). Default 6. */
  level?: number;
  /** zlib memLevel, 1-9: the size of the compressor's hash table during a call. Default 5. */
  memLevel?: number;
  /** The largest LZ77 window we compress with, in bits (8-15). Default 12: 4 KiB of history. */
  serverMaxWindowBits?: number;
  /** The window asked of clients that offer `client_max_window_bits`, in bits (8-15). Default 12. */
  clientMaxWindowBits?: number;
  /** Never carry history from one sent message to the next. Default false. */
  serverNoContextTakeover?: boolean;
  /** Ask clients not to carry history from one message to the next. Default false. */
  clientNoContextTakeover?: boolean;
}

/** The settings used for what `compression: true` (the default) leaves unset: PEF's threshold, memory level and window. */
export const DEFAULT_DEFLATE_OPTIONS: Readonly<Required<PerMessageDeflateOptions>> = {
  threshold: 96,
  level: 6,
  memLevel: 5,
  serverMaxWindowBits: 12,
  clientMaxWindowBits: 12,
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
};

/** What both ends agreed for one connection, seen from our side. */
export interface DeflateParams {
  /** Window bits of our compressor (8-15). */
  readonly ownWindowBits: number;
  /** Whether our compressor starts every message afresh. */
  readonly ownNoContextTakeover: boolean;
  /** Window bits the peer compresses with (8-15): the history our decompressor keeps. */
  readonly peerWindowBits: number;
  /** Whether the peer starts every message afresh. */
  readonly peerNoContextTakeover: boolean;
  /** Messages shorter than this many bytes go uncompressed. */
  readonly threshold: number;
  /** zlib compression level. */
  readonly level: number;
  /** zlib memLevel. */
  readonly memLevel: number;
}

// ------------------------------------------------------------------------------------------ memory

let liveWindows = 0;
let liveWindowBytes = 0;

/**
 * The context carried between messages, process-wide: how many sliding windows are held and their
 * bytes. Without context takeover both stay 0 between messages; dispose() returns a connection's.
 */
export function deflateMemory(): { windows: number; bytes: number } {
  return { windows: liveWindows, bytes: liveWindowBytes };
}

/** The last `size` bytes of a direction's messages (RFC 7692 §7.2.1's LZ77 sliding window). Grows as it fills. */
class SlidingWindow {
  readonly size: number;
  #buffer: Buffer | null = null;
  #length = 0;

  constructor(size: number) {
    this.size = size;
  }

  /** The history, or undefined while there is none. */
  get view(): Buffer | undefined {
    return this.#length === 0 ? undefined : this.#buffer!.subarray(0, this.#length);
  }

  add(data: Uint8Array): void {
    if (data.length === 0) return;
    const size = this.size;
    const wanted = Math.min(size, this.#length + data.length);
    let buffer = this.#buffer;
    if (buffer === null || buffer.length < wanted) {
      // Not from Buffer's shared pool: a window must not keep an 8 KiB slab alive.
      const grown = Buffer.allocUnsafeSlow(Math.min(size, Math.max(1024, 2 ** Math.ceil(Math.log2(wanted)))));
      if (buffer !== null) buffer.copy(grown, 0, 0, this.#length);
      else liveWindows++;
      liveWindowBytes += grown.length - (buffer?.length ?? 0);
      this.#buffer = buffer = grown;
    }
    if (data.length >= size) {
      buffer.set(data.subarray(data.length - size));
      this.#length = size;
      return;
    }
    const keep = Math.min(this.#length, size - data.length);
    if (keep < this.#length) buffer.copyWithin(0, this.#length - keep, this.#length);
    buffer.set(data, keep);
    this.#length = keep + data.length;
  }

  free(): void {
    if (this.#buffer === null) return;
    liveWindows--;
    liveWindowBytes -= this.#buffer.length;
    this.#buffer = null;
    this.#length = 0;
  }
}

// ---------------------------------------------------------------------------------------- messages

/** §7.2.1/§7.2.2: the empty stored block a sync flush ends with, removed by the sender, appended by the receiver. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Output chunks: large enough that a typical message is one chunk, small enough not to waste memory. */
function chunkSizeFor(length: number): number {
  return Math.min(64 * 1024, Math.max(1024, length));
}

function isZlibTooLarge(error: unknown): boolean {
  return error instanceof RangeError && (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
}

/** The permessage-deflate extension of one connection (RFC 7692 §7.2). */
export class PerMessageDeflate implements MessageExtension {
  readonly rsv = RSV1;
  /** What was negotiated for this connection. */
  readonly params: DeflateParams;
  /** Our compressor's history; null without context takeover or before the first message. */
  #sent: SlidingWindow | null = null;
  #received: SlidingWindow | null = null;

  constructor(params: DeflateParams) {
    this.params = params;
  }

  /**
   * Compresses a message (§7.2.1): DEFLATE with a sync flush, the trailing 00 00 ff ff removed. Pure
   * with respect to the context: call commit() once the result is really sent.
   */
  compress(data: Uint8Array): Buffer {
    const { ownWindowBits, level, memLevel } = this.params;
    const out = deflateRawSync(data, {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      level,
      memLevel,
      // zlib's raw deflate refuses a window of 8 bits; with 9 its farthest match is 512 - 262 = 250
      // bytes back (MAX_DIST), inside a 256-byte window, so the peer's 8-bit inflater reads it (this is
      // what Node does for windowBits 8 itself).
      windowBits: Math.max(9, ownWindowBits),
      dictionary: this.#sent?.view,
      chunkSize: chunkSizeFor(data.length + 64),
    });
    const end = out.length - TAIL.length;
    return end >= 0 && out.readUInt32BE(end) === 0x0000ffff ? out.subarray(0, end) : out;
  }

  /** Adds a sent message to our history (context takeover, §7.2.1). */
  commit(data: Uint8Array): void {
    if (this.params.ownNoContextTakeover) return;
    (this.#sent ??= new SlidingWindow(2 ** this.params.ownWindowBits)).add(data);
  }

  /**
   * MessageExtension.encode: messages under the threshold, and those compression would not shrink,
   * go as they are (RSV1 clear, outside the history: the peer's decompressor never sees them).
   */
  encode(data: Uint8Array): Buffer | null {
    if (data.length < this.params.threshold) return null;
    const compressed = this.compress(data);
    if (compressed.length >= data.length) return null;
    this.commit(data);
    return compressed;
  }

  /**
   * MessageExtension.decode (§7.2.2): appends 00 00 ff ff and inflates. The output counts against
   * `maxPayload` while it is produced (zlib's maxOutputLength), so a bomb stops after at most that
   * many bytes with 1009; data that does not inflate fails with 1007.
   */
  decode(data: Buffer, maxPayload: number): Buffer | ProtocolError {
    const { peerWindowBits, peerNoContextTakeover } = this.params;
    let out: Buffer;
    try {
      out = inflateRawSync(Buffer.concat([data, TAIL], data.length + TAIL.length), {
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        windowBits: peerWindowBits,
        dictionary: this.#received?.view,
        maxOutputLength: Math.max(1, Math.min(maxPayload, kMaxLength)),
        chunkSize: chunkSizeFor(data.length * 4),
      });
    } catch (error) {
      if (isZlibTooLarge(error)) {
        return new ProtocolError('WS_ERR_PAYLOAD_TOO_BIG', CloseCode.MessageTooBig, `message over the limit of ${maxPayload} bytes`);
      }
      const reason = error instanceof Error ? error.message : String(error);
      return new ProtocolError('WS_ERR_INFLATE_FAILED', CloseCode.InvalidPayload, `compressed message does not inflate: ${reason}`, {
        cause: error,
      });
    }
    if (!peerNoContextTakeover) (this.#received ??= new SlidingWindow(2 ** peerWindowBits)).add(out);
    return out;
  }

  /** Frees the history of both directions (the connection is over). */
  dispose(): void {
    this.#sent?.free();
    this.#received?.free();
    this.#sent = null;
    this.#received = null;
  }
}

// ------------------------------------------------------------------------------------- negotiation

/** §7.1.2.1: a window bits value is a decimal integer 8-15, no leading zero. */
const WINDOW_BITS = /^(?:[89]|1[0-5])$/;

function checkOptions(options: PerMessageDeflateOptions): Required<PerMessageDeflateOptions> {
  const o = { ...DEFAULT_DEFLATE_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  }
  const bits = (name: string, value: number): void => {
    if (!Number.isInteger(value) || value < 8 || value > 15) throw new RangeError(`compression.${name} must be an integer from 8 to 15`);
  };
  bits('serverMaxWindowBits', o.serverMaxWindowBits);
  bits('clientMaxWindowBits', o.clientMaxWindowBits);
  if (!Number.isInteger(o.level) || o.level < -1 || o.level > 9) throw new RangeError('compression.level must be an integer from -1 to 9');
  if (!Number.isInteger(o.memLevel) || o.memLevel < 1 || o.memLevel > 9) throw new RangeError('compression.memLevel must be an integer from 1 to 9');
  if (!(o.threshold >= 0)) throw new RangeError('compression.threshold must be a number of bytes');
  if (typeof o.serverNoContextTakeover !== 'boolean' || typeof o.clientNoContextTakeover !== 'boolean') {
    throw new TypeError('compression.serverNoContextTakeover and clientNoContextTakeover are booleans');
  }
  return o;
}

/** The extension for what the negotiation agreed, with the settings' compressor tuning. */
function agreedExtension(
  o: Readonly<Required<PerMessageDeflateOptions>>,
  agreed: Pick<DeflateParams, 'ownWindowBits' | 'ownNoContextTakeover' | 'peerWindowBits' | 'peerNoContextTakeover'>,
): PerMessageDeflate {
  return new PerMessageDeflate({ ...agreed, threshold: o.threshold, level: o.level, memLevel: o.memLevel });
}

/** The server's side of permessage-deflate negotiation (RFC 7692 §5, §7.1). */
export class PerMessageDeflateNegotiator implements ExtensionNegotiator {
  readonly name = PERMESSAGE_DEFLATE;
  /** The settings, checked, with defaults filled in. */
  readonly options: Readonly<Required<PerMessageDeflateOptions>>;

  /** Throws RangeError or TypeError for settings out of range. */
  constructor(options: PerMessageDeflateOptions = {}) {
    this.options = checkOptions(options);
  }

  /**
   * Accepts the first permessage-deflate offer we can honour (§5: offers come in the client's order
   * of preference) and answers with the parameters agreed. A malformed header declines them all.
   */
  negotiate(header: string): { response: string; extension: PerMessageDeflate } | null {
    const offers = parseExtensionsHeader(header);
    if (offers === null) return null;
    for (const offer of offers) {
      if (offer.name !== PERMESSAGE_DEFLATE) continue;
      const agreed = this.accept(offer);
      if (agreed !== null) return agreed;
    }
    return null;
  }

  /**
   * The response to one offer, or null to decline it: §7.1 says a server declines an offer with an
   * unknown parameter, a repeated parameter, or an invalid value.
   */
  accept(offer: ExtensionOffer): { response: string; extension: PerMessageDeflate } | null {
    let serverNoContextTakeover = false;
    let clientNoContextTakeover = false;
    let serverMaxWindowBits: number | undefined;
    let clientMaxWindowBits: number | true | undefined;
    const seen = new Set<string>();
    for (const [name, value] of offer.params) {
      if (seen.has(name)) return null;
      seen.add(name);
      switch (name) {
        case 'server_no_context_takeover':
          // §7.1.1.1: no value.
          if (value !== true) return null;
          serverNoContextTakeover = true;
          break;
        case 'client_no_context_takeover':
          // §7.1.1.2: no value.
          if (value !== true) return null;
          clientNoContextTakeover = true;
          break;
        case 'server_max_window_bits':
          // §7.1.2.1: a value is required.
          if (value === true || !WINDOW_BITS.test(value)) return null;
          serverMaxWindowBits = Number(value);
          break;
        case 'client_max_window_bits':
          // §7.1.2.2: the value is optional in an offer.
          if (value !== true && !WINDOW_BITS.test(value)) return null;
          clientMaxWindowBits = value === true ? true : Number(value);
          break;
        default:
          return null;
      }
    }

    const o = this.options;
    const response = [PERMESSAGE_DEFLATE];
    // §7.1.1.1: a client's server_no_context_takeover must be honoured; we may add it on our own.
    const ownNoContextTakeover = serverNoContextTakeover || o.serverNoContextTakeover;
    if (ownNoContextTakeover) response.push('server_no_context_takeover');
    // §7.1.1.2: the server may ask the client not to take over context, offered or not.
    const peerNoContextTakeover = clientNoContextTakeover || o.clientNoContextTakeover;
    if (peerNoContextTakeover) response.push('client_no_context_takeover');
    // §7.1.2.1: answer an offered server_max_window_bits with the same or a smaller value. Not
    // offered, it stays out of the response (Firefox fails otherwise), and a smaller window is still
    // ours to use: the client's inflater reads any window up to 15 bits.
    let ownWindowBits = o.serverMaxWindowBits;
    if (serverMaxWindowBits !== undefined) {
      ownWindowBits = Math.min(serverMaxWindowBits, ownWindowBits);
      response.push(`server_max_window_bits=${ownWindowBits}`);
    }
    // §7.1.2.2: client_max_window_bits may be answered only when offered, then with a value at most
    // the offered one. Not offered, the client may use a 15-bit window and we inflate with that.
    let peerWindowBits = 15;
    if (clientMaxWindowBits !== undefined) {
      peerWindowBits = Math.min(clientMaxWindowBits === true ? 15 : clientMaxWindowBits, o.clientMaxWindowBits);
      response.push(`client_max_window_bits=${peerWindowBits}`);
    }
    const extension = agreedExtension(o, { ownWindowBits, ownNoContextTakeover, peerWindowBits, peerNoContextTakeover });
    return { response: response.join('; '), extension };
  }
}

/** permessage-deflate with these settings, for `extensions` of the handshake. */
export function permessageDeflate(options: PerMessageDeflateOptions = {}): PerMessageDeflateNegotiator {
  return new PerMessageDeflateNegotiator(options);
}

const negotiators = new WeakMap<PerMessageDeflateOptions, PerMessageDeflateNegotiator>();
let defaultNegotiator: PerMessageDeflateNegotiator | null = null;

/**
 * The negotiator for a `compression` option (`true`: the defaults, `false`: none), made once per
 * settings object. Throws RangeError or TypeError for settings out of range.
 */
export function compressionNegotiator(compression: boolean | PerMessageDeflateOptions | undefined): PerMessageDeflateNegotiator | null {
  if (compression === false) return null;
  if (compression === true || compression === undefined) return (defaultNegotiator ??= new PerMessageDeflateNegotiator());
  if (typeof compression !== 'object' || compression === null) {
    throw new TypeError('compression must be true, false or an object of permessage-deflate settings');
  }
  let negotiator = negotiators.get(compression);
  if (negotiator === undefined) {
    negotiator = new PerMessageDeflateNegotiator(compression);
    negotiators.set(compression, negotiator);
  }
  return negotiator;
}

/**
 * The extensions to negotiate: permessage-deflate for `compression` first, unless it is off or the
 * list already has a permessage-deflate of its own.
 */
export function withCompression(
  extensions: readonly ExtensionNegotiator[],
  compression: boolean | PerMessageDeflateOptions | undefined,
): readonly ExtensionNegotiator[] {
  const negotiator = compressionNegotiator(compression);
  if (negotiator === null || extensions.some((e) => e.name === PERMESSAGE_DEFLATE)) return extensions;
  return extensions.length === 0 ? [negotiator] : [negotiator, ...extensions];
}

// ------------------------------------------------------------------------------ the client's side

/**
 * The client's side of permessage-deflate (RFC 7692 §5, §7.1): one offer made from the same settings
 * object a server takes (`serverMaxWindowBits` is then the window we ask the server to keep at most,
 * `clientMaxWindowBits` our own), and the check of the server's answer to it.
 */
export class PerMessageDeflateOffer {
  /** The settings, checked, with defaults filled in. */
  readonly options: Readonly<Required<PerMessageDeflateOptions>>;
  /** The offer, as one element of Sec-WebSocket-Extensions. */
  readonly header: string;

  /** Throws RangeError or TypeError for settings out of range. */
  constructor(options: PerMessageDeflateOptions = {}) {
    const o = (this.options = checkOptions(options));
    const parts = [PERMESSAGE_DEFLATE];
    if (o.serverNoContextTakeover) parts.push('server_no_context_takeover');
    if (o.clientNoContextTakeover) parts.push('client_no_context_takeover');
    // §7.1.2.1: a window below the maximum is asked of the server; 15 is what it has without asking.
    if (o.serverMaxWindowBits < 15) parts.push(`server_max_window_bits=${o.serverMaxWindowBits}`);
    // §7.1.2.2: offered without a value, it only says the server may ask us for a smaller window.
    parts.push(o.clientMaxWindowBits < 15 ? `client_max_window_bits=${o.clientMaxWindowBits}` : 'client_max_window_bits');
    this.header = parts.join('; ');
  }

  /**
   * Checks the server's permessage-deflate response element (§7.1) and returns the extension to run,
   * or the reason the client must fail the connection: an unknown or repeated parameter, a value
   * that is not allowed, a server window larger than the one offered, or server_no_context_takeover offered
   * and not answered (§7.1.1.1: a server that cannot honour it declines the whole offer).
   */
  accept(params: ExtensionOffer['params']): PerMessageDeflate | string {
    const o = this.options;
    let peerNoContextTakeover = false;
    let ownNoContextTakeover = o.clientNoContextTakeover;
    let peerWindowBits = 15;
    let ownWindowBits = o.clientMaxWindowBits;
    const seen = new Set<string>();
    for (const [name, value] of params) {
      if (seen.has(name)) return `parameter ${name} repeated`;
      seen.add(name);
      switch (name) {
        case 'server_no_context_takeover':
        case 'client_no_context_takeover':
          // §7.1.1: these parameters have no value.
          if (value !== true) return `parameter ${name} takes no value`;
          if (name === 'server_no_context_takeover') peerNoContextTakeover = true;
          else ownNoContextTakeover = true; // §7.1.1.2: the server may ask this of us, offered or not
          break;
        case 'server_max_window_bits':
        case 'client_max_window_bits': {
          // §7.1.2: in a response both carry a value, 8-15.
          if (value === true || !WINDOW_BITS.test(value)) return `parameter ${name} needs a value from 8 to 15`;
          const bits = Number(value);
          if (name === 'server_max_window_bits') {
            // §7.1.2.1: the same or a smaller value than offered.
            if (o.serverMaxWindowBits < 15 && bits > o.serverMaxWindowBits) return `server_max_window_bits=${bits} is more than the ${o.serverMaxWindowBits} offered`;
            peerWindowBits = bits;
          } else {
            // §7.1.2.2: the server may ignore the value we offered, so a larger one is no error; we
            // compress with the smaller of the two (Autobahn 13.4 and 13.6 answer 15 to an offer of 12).
            ownWindowBits = Math.min(ownWindowBits, bits);
          }
          break;
        }
        default:
          return `unknown parameter ${name}`;
      }
    }
    if (o.serverNoContextTakeover && !peerNoContextTakeover) return 'server_no_context_takeover was offered and not accepted';
    return agreedExtension(o, { ownWindowBits, ownNoContextTakeover, peerWindowBits, peerNoContextTakeover });
  }
}

/** The client's offer for a `compression` option (`true`: the defaults, `false`: none). Throws for settings out of range. */
export function compressionOffer(compression: boolean | PerMessageDeflateOptions | undefined): PerMessageDeflateOffer | null {
  if (compression === false) return null;
  if (compression === true || compression === undefined) return new PerMessageDeflateOffer();
  if (typeof compression !== 'object' || compression === null) {
    throw new TypeError('compression must be true, false or an object of permessage-deflate settings');
  }
  return new PerMessageDeflateOffer(compression);
}

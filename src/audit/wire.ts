// The audit's raw client connection: a TCP (or TLS) socket on which a test writes exactly the bytes
// it wants, including what a conforming client never sends (an opening handshake with a bad key, an
// unmasked frame, a reserved opcode, a length that lies), and a wire log of everything that crossed
// it, both ways, with timestamps: the opening handshake, every frame, and the moment the server
// closed TCP (FIN) or reset it. Server frames are read by a tolerant parser that describes even
// frames a server must never send (masked, non-minimal lengths) instead of stopping at them.
//
// The audit battery (src/audit/runner.ts) and the fuzzer both drive servers through this file.

import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { WEBSOCKET_VERSION } from '../protocol/constants.js';
import { acceptKey, headerHasToken } from '../protocol/handshake.js';
import { writeFrameHeader } from '../protocol/frame.js';
import { applyMask } from '../protocol/mask.js';

// ------------------------------------------------------------------------------------------ frames

/**
 * A frame to write, with every field under the caller's control (RFC 6455 §5.2). The defaults give
 * a valid client frame: FIN set, no RSV bit, the shortest length form, a fresh random masking key.
 */
export interface FrameSpec {
  /** The opcode, 0-15; reserved ones (3-7, 11-15) are written as given. */
  opcode: number;
  /** The payload; a string is sent as UTF-8. Default empty. */
  payload?: Uint8Array | string;
  /** The FIN bit. Default true. */
  fin?: boolean;
  /** The RSV bits as they stand in the first byte (0x40 RSV1, 0x20 RSV2, 0x10 RSV3). Default 0. */
  rsv?: number;
  /**
   * The 4-byte masking key (§5.3): the payload goes out masked with it. `null` sends the frame
   * unmasked (a violation from a client). Default: a fresh key from the CSPRNG.
   */
  mask?: Uint8Array | null;
  /** The payload length written in the header, when it should lie about the payload. Default its length. */
  length?: number;
  /** The length form: 7 (in the second byte), 16 or 64 bits. Default the shortest, as §5.2 requires. */
  lengthForm?: 7 | 16 | 64;
}

/** A frame as it was on the wire, either way. */
export interface WireFrame {
  /** The FIN bit. */
  fin: boolean;
  /** The RSV bits in place (0x40 = RSV1). */
  rsv: number;
  /** The opcode, 0-15. */
  opcode: number;
  /** Whether the MASK bit was set. */
  masked: boolean;
  /** The payload length the header announced. */
  length: number;
  /** The payload, unmasked. For a frame we sent whose `length` lied, the bytes actually written. */
  payload: Buffer;
  /** Bytes of the header: 2 to 14. */
  headerLength: number;
  /** What breaks §5.2 in the frame's header itself: a non-minimal length form, the 64-bit length's top bit. Empty when nothing. */
  problems: string[];
}

/** CSPRNG bytes drawn 4 KiB at a time: a message in 65,536 fragments needs 65,536 keys. */
let maskPool = Buffer.alloc(0);
let maskPoolOffset = 0;

/** A fresh 4-byte masking key from the CSPRNG (§5.3: unpredictable, new for every frame). */
export function freshMask(): Buffer {
  if (maskPoolOffset + 4 > maskPool.length) {
    maskPool = randomBytes(4096);
    maskPoolOffset = 0;
  }
  const key = Buffer.from(maskPool.subarray(maskPoolOffset, maskPoolOffset + 4));
  maskPool.fill(0, maskPoolOffset, maskPoolOffset + 4); // a key is never handed out twice
  maskPoolOffset += 4;
  return key;
}

/** How many bytes encodeFrameSpec writes for `spec`: header and payload. */
export function encodedLength(spec: FrameSpec): number {
  const payload = typeof spec.payload === 'string' ? Buffer.byteLength(spec.payload) : (spec.payload?.length ?? 0);
  const length = spec.length ?? payload;
  const form = spec.lengthForm ?? (length < 126 ? 7 : length < 0x10000 ? 16 : 64);
  return (form === 7 ? 2 : form === 16 ? 4 : 10) + (spec.mask === null ? 0 : 4) + payload;
}

/**
 * Encodes a FrameSpec into one buffer, header and (masked) payload. Returns the bytes and the frame
 * as it will be logged. Valid specs go through the core's header writer; a forced length form or a
 * lying length is written here.
 */
export function encodeFrameSpec(spec: FrameSpec): { bytes: Buffer; frame: WireFrame } {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : Buffer.from(spec.payload ?? new Uint8Array(0));
  const fin = spec.fin ?? true;
  const rsv = spec.rsv ?? 0;
  const mask = spec.mask === null ? undefined : (spec.mask ?? freshMask());
  const length = spec.length ?? payload.length;
  const shortest = length < 126 ? 7 : length < 0x10000 ? 16 : 64;
  const form = spec.lengthForm ?? shortest;
  const headerLength = (form === 7 ? 2 : form === 16 ? 4 : 10) + (mask ? 4 : 0);
  const bytes = Buffer.allocUnsafe(headerLength + payload.length);
  if (form === shortest && length === payload.length && spec.opcode >= 0 && spec.opcode <= 15) {
    writeFrameHeader(bytes, 0, spec.opcode, length, fin, rsv, mask);
  } else {
    bytes[0] = (fin ? 0x80 : 0) | (rsv & 0x70) | (spec.opcode & 0x0f);
    const maskBit = mask ? 0x80 : 0;
    let at = 2;
    if (form === 7) {
      bytes[1] = maskBit | (length & 0x7f);
    } else if (form === 16) {
      bytes[1] = maskBit | 126;
      bytes.writeUInt16BE(length & 0xffff, 2);
      at = 4;
    } else {
      bytes[1] = maskBit | 127;
      bytes.writeBigUInt64BE(BigInt(length), 2);
      at = 10;
    }
    if (mask) bytes.set(mask.subarray(0, 4), at);
  }
  bytes.set(payload, headerLength);
  if (mask) applyMask(bytes.subarray(headerLength), mask, 0);
  const problems: string[] = [];
  if (form !== shortest) problems.push(`length ${length} in the ${form}-bit form (§5.2: the shortest form is required)`);
  if (length !== payload.length) problems.push(`header announces ${length} bytes, ${payload.length} written`);
  return { bytes, frame: { fin, rsv, opcode: spec.opcode & 0x0f, masked: mask !== undefined, length, payload, headerLength, problems } };
}

/**
 * A tolerant parser of the frames a server sends: it reads any header (masked, RSV bits, reserved
 * opcodes, non-minimal lengths) and reports each frame whole once its payload has arrived, with
 * what is wrong in `problems`. It stops only at a length no implementation can mean (2^53 or more).
 */
export class TolerantFrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #broken: string | null = null;

  /** Why the reader gave up, or null. */
  get broken(): string | null {
    return this.#broken;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds received bytes; returns the frames they complete, in order. */
  push(chunk: Buffer): WireFrame[] {
    if (this.#broken !== null || chunk.length === 0) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: WireFrame[] = [];
    while (this.#broken === null) {
      const frame = this.#next();
      if (frame === null) break;
      frames.push(frame);
    }
    return frames;
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0]!.length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  #take(n: number): Buffer {
    const first = this.#peek(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return out;
  }

  #next(): WireFrame | null {
    if (this.#buffered < 2) return null;
    const head = this.#peek(2);
    const b0 = head[0]!;
    const b1 = head[1]!;
    const masked = (b1 & 0x80) !== 0;
    const short = b1 & 0x7f;
    const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
    const headerLength = 2 + extended + (masked ? 4 : 0);
    if (this.#buffered < headerLength) return null;
    const header = this.#peek(headerLength);
    const problems: string[] = [];
    let length = short;
    if (short === 126) {
      length = header.readUInt16BE(2);
      if (length < 126) problems.push(`length ${length} in the 16-bit form (§5.2: the shortest form is required)`);
    } else if (short === 127) {
      const big = header.readBigUInt64BE(2);
      if (big >> 63n) problems.push('the most significant bit of the 64-bit length is set (§5.2)');
      if (big >= 2n ** 53n) {
        // No implementation can mean it: report the header (its payload never comes) and stop.
        this.#broken = `a frame announces ${big} bytes of payload`;
        problems.push(this.#broken);
        this.#chunks = [];
        this.#buffered = 0;
        return { fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, length: Number(big), payload: Buffer.alloc(0), headerLength, problems };
      }
      length = Number(big);
      if (length < 0x10000) problems.push(`length ${length} in the 64-bit form (§5.2: the shortest form is required)`);
    }
    if (this.#buffered < headerLength + length) return null;
    const mask = masked ? Buffer.from(header.subarray(2 + extended, headerLength)) : null;
    this.#take(headerLength);
    const payload = Buffer.from(length === 0 ? Buffer.alloc(0) : this.#take(length));
    if (mask) applyMask(payload, mask, 0);
    return { fin: (b0 & 0x80) !== 0, rsv: b0 & 0x70, opcode: b0 & 0x0f, masked, length, payload, headerLength, problems };
  }
}

// -------------------------------------------------------------------------------------- wire log

/** One thing that crossed the connection, `at` milliseconds after the TCP connection opened. */
export type WireEvent =
  | { at: number; direction: 'sent'; type: 'handshake'; head: string }
  | { at: number; direction: 'received'; type: 'handshake'; head: string; body: Buffer }
  | { at: number; direction: 'sent' | 'received'; type: 'frame'; frame: WireFrame }
  /** Bytes written that are not a frame of ours (raw writes), or received bytes that no frame explains. */
  | { at: number; direction: 'sent' | 'received'; type: 'bytes'; bytes: Buffer }
  /** We half-closed (sent) or the server closed its side (received) with a FIN. */
  | { at: number; direction: 'sent' | 'received'; type: 'fin' }
  /** The connection was reset or failed: the error's code or message. */
  | { at: number; direction: 'received'; type: 'reset'; error: string }
  /** We destroyed the socket (our deadline ran out, or the case was over). */
  | { at: number; direction: 'sent'; type: 'destroy' }
  /**
   * We stopped writing from `at` until `until` (ms), waiting for the server to react to what it had
   * so far: how fail-fast detection (§8.1) is observed. Logged when the pause ends.
   */
  | { at: number; direction: 'sent'; type: 'pause'; until: number; reason: string };

/** How the server ended TCP, as far as we saw it. */
export interface TcpEnd {
  /** 'fin': the server closed its side; 'reset': a reset or socket error; 'destroyed': we closed it first. */
  how: 'fin' | 'reset' | 'destroyed';
  /** Milliseconds after the connection opened. */
  at: number;
}

// ---------------------------------------------------------------------------- opening handshake

/** A parsed HTTP response head (and the body bytes that came with it). */
export interface HandshakeResponse {
  /** The status code, e.g. 101; 0 when the status line could not be read. */
  status: number;
  /** The reason phrase. */
  reason: string;
  /** 'HTTP/1.1' or whatever the status line said. */
  httpVersion: string;
  /** Header fields with lower-case names; repeated fields joined with ', '. */
  headers: Record<string, string>;
  /** The head as received, status line to the blank line, as latin1 text. */
  head: string;
  /** For a refusal: the body bytes read (per Content-Length, or until the server closed). Empty for a 101. */
  body: Buffer;
  /** The statuses of interim (1xx other than 101) responses before this one, e.g. [100] (RFC 9110 §15.2). */
  interim: number[];
}

/** What goes into an opening handshake request; every part can be bent for a test. */
export interface RequestOptions {
  /** The method. Default 'GET'. */
  method?: string;
  /** The HTTP version in the request line. Default 'HTTP/1.1'. */
  httpVersion?: string;
  /** The request target. Default the URL's path and query. */
  path?: string;
  /** Sec-WebSocket-Key. Default: 16 fresh bytes from the CSPRNG, base64 (§4.1). */
  key?: string;
  /**
   * Header fields in order; they replace the defaults of the same name (compared without regard to
   * case) and `null` removes one. Defaults: Host, Upgrade, Connection, Sec-WebSocket-Key,
   * Sec-WebSocket-Version.
   */
  headers?: Readonly<Record<string, string | null>>;
  /** Extra header lines written as they are, after the others (for repeated fields and odd bytes). */
  rawLines?: readonly string[];
  /** Bytes after the blank line (a request body, or frames sent at once). Default none. */
  body?: Uint8Array;
}

/** A fresh Sec-WebSocket-Key: 16 bytes from the CSPRNG in base64 (RFC 6455 §4.1 item 7). */
export function freshKey(): string {
  return randomBytes(16).toString('base64');
}

/** The Host header value for a URL: host and port, IPv6 in brackets, the port left out when it is the default. */
export function hostHeader(url: URL): string {
  return url.host;
}

/** The bytes of an opening handshake request for `url` (RFC 6455 §4.1), and the key it carries. */
export function upgradeRequest(url: URL | string, options: RequestOptions = {}): { bytes: Buffer; key: string } {
  const target = typeof url === 'string' ? new URL(url) : url;
  const key = options.key ?? freshKey();
  const fields = new Map<string, [string, string]>();
  const set = (name: string, value: string | null): void => {
    if (value === null) fields.delete(name.toLowerCase());
    else fields.set(name.toLowerCase(), [name, value]);
  };
  set('Host', hostHeader(target));
  set('Upgrade', 'websocket');
  set('Connection', 'Upgrade');
  set('Sec-WebSocket-Key', key);
  set('Sec-WebSocket-Version', WEBSOCKET_VERSION);
  for (const [name, value] of Object.entries(options.headers ?? {})) set(name, value);
  let head = `${options.method ?? 'GET'} ${options.path ?? `${target.pathname}${target.search}`} ${options.httpVersion ?? 'HTTP/1.1'}\r\n`;
  for (const [name, value] of fields.values()) head += `${name}: ${value}\r\n`;
  for (const line of options.rawLines ?? []) head += `${line}\r\n`;
  const bytes = Buffer.from(head + '\r\n', 'latin1');
  return { bytes: options.body ? Buffer.concat([bytes, options.body]) : bytes, key };
}

/**
 * Checks a response against RFC 6455 §4.1's client rules 1-4: status 101, `Upgrade: websocket`,
 * `Connection: Upgrade`, and Sec-WebSocket-Accept computed from `key`. Returns what is wrong, or
 * null when the response accepts the handshake.
 */
export function checkAccept(response: HandshakeResponse, key: string): string | null {
  if (response.status !== 101) return `status ${response.status || 'unreadable'}, not 101`;
  if (!headerHasToken(response.headers['upgrade'], 'websocket')) return `Upgrade is ${JSON.stringify(response.headers['upgrade'] ?? null)}, not "websocket" (§4.1 item 2)`;
  if (!headerHasToken(response.headers['connection'], 'upgrade')) return `Connection is ${JSON.stringify(response.headers['connection'] ?? null)}, not "Upgrade" (§4.1 item 3)`;
  const accept = response.headers['sec-websocket-accept'];
  const expected = acceptKey(key);
  if (accept?.trim() !== expected) return `Sec-WebSocket-Accept is ${JSON.stringify(accept ?? null)}, expected "${expected}" (§4.1 item 4)`;
  return null;
}

function parseHead(head: string): Omit<HandshakeResponse, 'body' | 'interim'> {
  const lines = head.split('\r\n');
  const status = /^(HTTP\/\d(?:\.\d)?) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return {
    status: status ? Number(status[2]) : 0,
    reason: status?.[3] ?? '',
    httpVersion: status?.[1] ?? '',
    headers,
    head,
  };
}

// ------------------------------------------------------------------------------------ connection

/** How to open a raw connection. */
export interface RawConnectOptions {
  /** Give up connecting after this many ms. Default 10,000. */
  connectTimeout?: number;
  /** For wss:// URLs: passed to tls.connect (ca, rejectUnauthorized, servername...). */
  tls?: TlsConnectionOptions;
}

/** How to write: the bytes are cut at these offsets and each piece is written on its own. */
export interface WriteOptions {
  /** Offsets (ascending) at which the bytes are cut into separate writes. Default: one write. */
  splitAt?: readonly number[];
  /** Cut into pieces of this many bytes (instead of splitAt). */
  chunkSize?: number;
  /** Wait this many ms between pieces (0: only until each piece is flushed to the kernel). Default 0. */
  delay?: number;
  /**
   * Stop after this many bytes and pause (see RawConnection.pause) until `until` holds or `timeout`
   * ms pass; when `until` held, the rest is not written.
   */
  pauseAfter?: { offset: number; until: (connection: RawConnection) => boolean; timeout: number; reason: string };
}

/** Thrown by RawConnection.open when TCP (or TLS) could not be opened; `code` is the socket error's. */
export class ConnectError extends Error {
  /** The system error code (ECONNREFUSED, ETIMEDOUT...) or 'ERR_CONNECT_TIMEOUT'. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * A raw client connection to a WebSocket server. Open it with `RawConnection.open(url)`, write the
 * handshake with `sendRequest`, read the answer with `readResponse`, then `send` frames and
 * `waitFor` what comes back. Everything is recorded in `log`.
 */
export class RawConnection {
  /** Everything that crossed the connection, in order. */
  readonly log: WireEvent[] = [];
  /** Frames received from the server, in order (also in `log`). */
  readonly received: WireFrame[] = [];
  /** How TCP ended, once it has. */
  end: TcpEnd | null = null;

  readonly #socket: Socket;
  readonly #started: number;
  readonly #reader = new TolerantFrameReader();
  /** Bytes before the end of the response head, while the head is being read. */
  #headBytes: Buffer[] | null = [];
  #response: HandshakeResponse | null = null;
  #interim: number[] = [];
  /** True once the handshake succeeded: later bytes are frames. */
  #framing = false;
  #waiters = new Set<() => void>();

  private constructor(socket: Socket, started: number) {
    this.#socket = socket;
    this.#started = started;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.log.push({ at: this.now(), direction: 'received', type: 'fin' });
      this.#ended('fin');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.log.push({ at: this.now(), direction: 'received', type: 'reset', error: error.code ?? error.message });
      this.#ended('reset');
    });
    socket.on('close', () => this.#ended('destroyed'));
  }

  /** Opens TCP (ws://) or TLS (wss://) to the URL's host and port. Rejects with ConnectError. */
  static open(url: URL | string, options: RawConnectOptions = {}): Promise<RawConnection> {
    const target = typeof url === 'string' ? new URL(url) : url;
    const secure = target.protocol === 'wss:' || target.protocol === 'https:';
    const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(target.port || (secure ? 443 : 80));
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const socket = secure
        ? tlsConnect({ host, port, servername: /^[\d.]+$|:/.test(host) ? undefined : host, ...options.tls })
        : netConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectError('ERR_CONNECT_TIMEOUT', `no connection to ${target.host} within ${options.connectTimeout ?? 10_000} ms`));
      }, options.connectTimeout ?? 10_000);
      const fail = (error: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(new ConnectError(error.code ?? 'ERR_CONNECT', `cannot connect to ${target.host}: ${error.message}`));
      };
      socket.once('error', fail);
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(new RawConnection(socket, started));
      });
    });
  }

  /** Milliseconds since the connection was opened. */
  now(): number {
    return Math.round((performance.now() - this.#started) * 1000) / 1000;
  }

  /** Whether the socket can still be written. */
  get writable(): boolean {
    return this.#socket.writable && !this.#socket.destroyed;
  }

  /** The response once its head has been read, else null. */
  get response(): HandshakeResponse | null {
    return this.#response;
  }

  /** Writes an opening handshake request (see upgradeRequest) and logs it. */
  sendRequest(bytes: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const text = Buffer.from(bytes).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    this.log.push({ at: this.now(), direction: 'sent', type: 'handshake', head: end < 0 ? text : text.slice(0, end + 4) });
    return this.#writePieces(Buffer.from(bytes), options);
  }

  /**
   * Resolves with the response head once the blank line has arrived, or with what there was when
   * the server closed or `timeout` ms passed (status 0 when not even a status line came: the head
   * is then ''). A refusal's body is read per Content-Length, or until the server closes, within
   * the same deadline. After a 101 the bytes that follow the head are read as frames.
   */
  async readResponse(timeout: number): Promise<HandshakeResponse | null> {
    const deadline = performance.now() + timeout;
    await this.#until(() => this.#response !== null || this.end !== null, timeout);
    if (this.#response === null) {
      // The server closed, or the deadline passed, before a whole head arrived.
      const partial = this.#headBytes === null ? '' : Buffer.concat(this.#headBytes).toString('latin1');
      if (partial === '' && this.end === null) return null;
      return { ...parseHead(partial), body: Buffer.alloc(0), interim: this.#interim };
    }
    const response = this.#response;
    if (response.status !== 101) {
      // The body ends at Content-Length, at the last chunk of a chunked body, or when the server closes.
      const wanted = Number(response.headers['content-length'] ?? NaN);
      const chunked = /(^|,)\s*chunked\s*$/i.test(response.headers['transfer-encoding'] ?? '');
      await this.#until(
        () =>
          this.end !== null ||
          (Number.isFinite(wanted) && response.body.length >= wanted) ||
          (chunked && /(^|\r\n)0(;[^\r\n]*)?\r\n(.*\r\n)*\r\n$/s.test(response.body.toString('latin1'))),
        Math.max(0, deadline - performance.now()),
      );
    }
    return response;
  }

  /** Opens the WebSocket: sends a normal request (options may bend it), reads the 101 and checks it. */
  async handshake(url: URL | string, timeout: number, options: RequestOptions = {}): Promise<{ response: HandshakeResponse | null; key: string; problem: string | null }> {
    const { bytes, key } = upgradeRequest(url, options);
    await this.sendRequest(bytes);
    const response = await this.readResponse(timeout);
    const problem = response === null ? `no response within ${timeout} ms` : checkAccept(response, key);
    return { response, key, problem };
  }

  /** Encodes and writes frames (all in one buffer unless the options cut it); each is logged. */
  send(frames: FrameSpec | readonly FrameSpec[], options: WriteOptions = {}): Promise<void> {
    const list = Array.isArray(frames) ? (frames as readonly FrameSpec[]) : [frames as FrameSpec];
    const parts: Buffer[] = [];
    const starts: { start: number; frame: WireFrame }[] = [];
    let offset = 0;
    for (const spec of list) {
      const { bytes, frame } = encodeFrameSpec(spec);
      parts.push(bytes);
      starts.push({ start: offset, frame });
      offset += bytes.length;
    }
    return this.#writePieces(parts.length === 1 ? parts[0]! : Buffer.concat(parts), options, starts);
  }

  /** Writes bytes as they are (logged as raw bytes). */
  write(bytes: Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.log.push({ at: this.now(), direction: 'sent', type: 'bytes', bytes: Buffer.from(bytes) });
    return this.#writePieces(Buffer.from(bytes), options);
  }

  /** Half-closes: sends our FIN, keeps reading. */
  finish(): void {
    if (this.#socket.writableEnded || this.#socket.destroyed) return;
    this.log.push({ at: this.now(), direction: 'sent', type: 'fin' });
    this.#socket.end();
  }

  /** Destroys the socket (logged, unless the server already ended TCP). */
  destroy(): void {
    if (this.end === null) this.log.push({ at: this.now(), direction: 'sent', type: 'destroy' });
    this.#socket.destroy();
  }

  /**
   * Waits until `predicate` holds (checked now and after each received chunk or the end of TCP),
   * for at most `timeout` ms. Resolves with whether it held.
   */
  waitFor(predicate: (connection: RawConnection) => boolean, timeout: number): Promise<boolean> {
    return this.#until(() => predicate(this), timeout);
  }

  /**
   * Stops writing until `predicate` holds or `timeout` ms pass, and logs the pause (see WireEvent
   * 'pause'). Resolves with whether the predicate held.
   */
  async pause(predicate: (connection: RawConnection) => boolean, timeout: number, reason: string): Promise<boolean> {
    const at = this.now();
    const held = await this.#until(() => predicate(this), timeout);
    this.log.push({ at, direction: 'sent', type: 'pause', until: this.now(), reason });
    return held;
  }

  /** Waits for the server to end TCP, at most `timeout` ms; resolves with how it ended, or null. */
  async waitForEnd(timeout: number): Promise<TcpEnd | null> {
    await this.#until(() => this.end !== null, timeout);
    return this.end;
  }

  #until(predicate: () => boolean, timeout: number): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!predicate()) return;
        cleanup();
        resolve(true);
      };
      // When the deadline passes, let pending I/O in first (setImmediate runs after the poll phase):
      // after a stall of this process the server's bytes may be waiting beside the expired timer,
      // and they arrived in time.
      const timer = setTimeout(() => setImmediate(() => {
        cleanup();
        resolve(predicate());
      }), Math.max(0, timeout));
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Writes `bytes` in pieces; each frame of `frames` is logged when the piece holding its first byte is written. */
  async #writePieces(bytes: Buffer, options: WriteOptions, frames: readonly { start: number; frame: WireFrame }[] = []): Promise<void> {
    let logged = 0;
    let cuts: number[] = options.chunkSize
      ? Array.from({ length: Math.ceil(bytes.length / options.chunkSize) - 1 }, (_, i) => (i + 1) * options.chunkSize!)
      : [...(options.splitAt ?? [])];
    const pause = options.pauseAfter;
    if (pause && pause.offset > 0 && pause.offset < bytes.length) cuts = [...new Set([...cuts, pause.offset])].sort((a, b) => a - b);
    let start = 0;
    for (const cut of [...cuts, bytes.length]) {
      if (cut <= start || cut > bytes.length) continue;
      if (!this.writable) return;
      const piece = bytes.subarray(start, cut);
      start = cut;
      const at = this.now();
      while (logged < frames.length && frames[logged]!.start < cut) this.log.push({ at, direction: 'sent', type: 'frame', frame: frames[logged++]!.frame });
      await new Promise<void>((resolve) => this.#socket.write(piece, () => resolve()));
      if (pause && cut === pause.offset && cut < bytes.length) {
        if (await this.pause(pause.until, pause.timeout, pause.reason)) return;
      } else if (options.delay && start < bytes.length) {
        await new Promise((resolve) => setTimeout(resolve, options.delay));
      }
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#headBytes !== null) {
      this.#headBytes.push(chunk);
      const all = Buffer.concat(this.#headBytes);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        this.#wake();
        return;
      }
      const head = all.subarray(0, end + 4).toString('latin1');
      const rest = all.subarray(end + 4);
      const parsed = parseHead(head);
      if (parsed.status >= 100 && parsed.status < 200 && parsed.status !== 101) {
        // An interim response (100 Continue, RFC 9110 §15.2): the final one follows.
        this.#interim.push(parsed.status);
        this.log.push({ at: this.now(), direction: 'received', type: 'handshake', head, body: Buffer.alloc(0) });
        this.#headBytes = [];
        if (rest.length > 0) this.#onData(Buffer.from(rest));
        return;
      }
      this.#headBytes = null;
      this.#response = { ...parsed, body: parsed.status === 101 ? Buffer.alloc(0) : Buffer.from(rest), interim: this.#interim };
      this.log.push({ at: this.now(), direction: 'received', type: 'handshake', head, body: this.#response.body });
      if (parsed.status === 101) {
        this.#framing = true;
        if (rest.length > 0) this.#onFrames(rest);
      }
      this.#wake();
      return;
    }
    if (!this.#framing) {
      // Body bytes of a refusal.
      const response = this.#response!;
      response.body = Buffer.concat([response.body, chunk]);
    } else {
      this.#onFrames(chunk);
    }
    this.#wake();
  }

  #onFrames(chunk: Buffer): void {
    const at = this.now();
    for (const frame of this.#reader.push(chunk)) {
      this.received.push(frame);
      this.log.push({ at, direction: 'received', type: 'frame', frame });
    }
    if (this.#reader.broken !== null) this.log.push({ at, direction: 'received', type: 'bytes', bytes: chunk });
  }

  #ended(how: TcpEnd['how']): void {
    if (this.end === null) this.end = { how, at: this.now() };
    this.#wake();
  }
}

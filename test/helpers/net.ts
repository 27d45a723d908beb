// A raw-socket WebSocket client for byte-exact tests: it writes the upgrade request by hand, reads
// the 101 response, sends frames built by encodeFrame (masked with a fixed key unless told not to)
// and reads back exact bytes or whole server frames parsed by hand.

import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { encodeFrame, type EncodeFrameOptions } from '../../src/protocol/frame.js';

/** The key of RFC 6455 §1.3's example, and the Sec-WebSocket-Accept it yields. */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** The masking key every frame of this client uses unless told otherwise (tests must be repeatable). */
export const FIXED_MASK: Uint8Array = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);

/** A frame read from the server, as it was on the wire. */
export interface ReadFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  /** The frame's bytes, header and payload. */
  bytes: Buffer;
}

export interface UpgradeRequestOptions {
  path?: string;
  method?: string;
  key?: string;
  /** Header lines replacing or adding to the defaults; null removes a default header. */
  headers?: Record<string, string | null>;
}

/** The text of an upgrade request, ending with the blank line. */
export function upgradeRequest(port: number, options: UpgradeRequestOptions = {}): string {
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': options.key ?? SAMPLE_KEY,
    'Sec-WebSocket-Version': '13',
    ...options.headers,
  };
  let text = `${options.method ?? 'GET'} ${options.path ?? '/'} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) text += `${name}: ${value}\r\n`;
  return text + '\r\n';
}

/** One frame as one buffer: client frames are masked with FIXED_MASK unless `mask: null`. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string = Buffer.alloc(0),
  options: Omit<EncodeFrameOptions, 'mask'> & { mask?: Uint8Array | null } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const mask = options.mask === null ? undefined : (options.mask ?? FIXED_MASK);
  const encodeOptions: EncodeFrameOptions = { fin: options.fin ?? true, rsv: options.rsv ?? 0 };
  if (mask !== undefined) encodeOptions.mask = mask;
  return Buffer.concat(encodeFrame(opcode, data, encodeOptions));
}

/** A Close payload: the code in network byte order and the UTF-8 reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2, 'utf8');
  return payload;
}

/** Reads the frame at the start of `data` by hand (RFC 6455 §5.2), or null if it is incomplete. */
export function parseFrame(data: Buffer): ReadFrame | null {
  if (data.length < 2) return null;
  const b0 = data[0]!;
  const b1 = data[1]!;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (data.length < 4) return null;
    length = data.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (data.length < 10) return null;
    length = Number(data.readBigUInt64BE(2));
    offset = 10;
  }
  let mask: Buffer | null = null;
  if (masked) {
    if (data.length < offset + 4) return null;
    mask = data.subarray(offset, offset + 4);
    offset += 4;
  }
  if (data.length < offset + length) return null;
  const payload = Buffer.from(data.subarray(offset, offset + length));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  return {
    fin: (b0 & 0x80) !== 0,
    rsv: b0 & 0x70,
    opcode: b0 & 0x0f,
    masked,
    payload,
    bytes: Buffer.from(data.subarray(0, offset + length)),
  };
}

/** A TCP client that keeps every byte the server sends and hands them out exactly. */
export class RawClient {
  readonly socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  /** Where #buffer lives, with room behind it: appending doubles it when full, so reading a large message costs linear time, not quadratic. */
  #store: Buffer = Buffer.alloc(0);
  #storeUsed = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #waiters: (() => void)[] = [];
  /** Bytes received in total (read or not). */
  received = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.#append(chunk);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', (error) => {
      this.#error = error;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /**
   * Opens a TCP connection (no handshake). `allowHalfOpen` keeps our side open after the server's
   * FIN (by default net ends it at once), to play a peer that never closes.
   */
  static async connect(port: number, allowHalfOpen = false): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen });
    socket.setNoDelay(true);
    const client = new RawClient(socket);
    await once(socket, 'connect');
    return client;
  }

  /**
   * Connects and runs the opening handshake: writes the request (and `head`, in the same write),
   * then reads the response head. Returns the client and the response text up to the blank line.
   */
  static async open(
    port: number,
    options: UpgradeRequestOptions & { head?: Buffer; allowHalfOpen?: boolean } = {},
  ): Promise<{ client: RawClient; response: string }> {
    const client = await RawClient.connect(port, options.allowHalfOpen);
    const request = Buffer.from(upgradeRequest(port, options), 'latin1');
    client.write(options.head ? Buffer.concat([request, options.head]) : request);
    const response = await client.readResponseHead();
    return { client, response };
  }

  /** Whether the server has ended its side (FIN received). */
  get ended(): boolean {
    return this.#ended;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes received and not yet read. */
  get pending(): number {
    return this.#buffer.length;
  }

  write(data: Uint8Array | string): void {
    this.socket.write(data);
  }

  /** Sends one frame, masked with FIXED_MASK unless `mask: null`. */
  sendFrame(opcode: number, payload?: Uint8Array | string, options?: Omit<EncodeFrameOptions, 'mask'> & { mask?: Uint8Array | null }): void {
    this.write(clientFrame(opcode, payload, options));
  }

  /** Reads up to and including the blank line that ends an HTTP response head. */
  async readResponseHead(): Promise<string> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end !== -1) return this.#take(end + 4).toString('latin1');
      await this.#more('an HTTP response head');
    }
  }

  /** Reads exactly `n` bytes. */
  async readBytes(n: number): Promise<Buffer> {
    while (this.#buffer.length < n) await this.#more(`${n} bytes (have ${this.#buffer.length})`);
    return this.#take(n);
  }

  /** Reads one whole frame from the server. */
  async readFrame(): Promise<ReadFrame> {
    for (;;) {
      const frame = parseFrame(this.#buffer);
      if (frame) {
        this.#take(frame.bytes.length);
        return frame;
      }
      await this.#more('a frame');
    }
  }

  /** Reads everything until the server ends its side. */
  async readToEnd(): Promise<Buffer> {
    while (!this.#ended && !this.#closed) await this.#more(null);
    return this.#take(this.#buffer.length);
  }

  /** Waits until the server has ended its side of TCP (FIN), with nothing unread left. */
  async expectEnd(): Promise<void> {
    const rest = await this.readToEnd();
    if (rest.length !== 0) throw new Error(`expected the end of the stream, got ${rest.toString('hex')}`);
  }

  /** Waits for the socket's 'close'. */
  async waitClosed(): Promise<void> {
    while (!this.#closed) await this.#more(null);
  }

  /** Ends our side (FIN) and waits for the socket to close. */
  async end(): Promise<void> {
    this.socket.end();
    await this.waitClosed();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #append(chunk: Buffer): void {
    if (this.#buffer.length === 0) {
      this.#buffer = chunk;
      this.#store = chunk;
      this.#storeUsed = chunk.length;
      return;
    }
    const bufferEnd = this.#buffer.byteOffset + this.#buffer.length;
    const ownStore = this.#store.buffer === this.#buffer.buffer && bufferEnd === this.#store.byteOffset + this.#storeUsed;
    if (ownStore && this.#store.length - this.#storeUsed >= chunk.length && this.#store !== this.#buffer) {
      chunk.copy(this.#store, this.#storeUsed);
      this.#storeUsed += chunk.length;
      this.#buffer = this.#store.subarray(this.#storeUsed - this.#buffer.length - chunk.length, this.#storeUsed);
      return;
    }
    // Taken bytes are views into the old store, so it is never written again: a new one holds the rest.
    const length = this.#buffer.length + chunk.length;
    const store = Buffer.allocUnsafe(Math.max(2 * length, 64 * 1024));
    this.#buffer.copy(store, 0);
    chunk.copy(store, this.#buffer.length);
    this.#store = store;
    this.#storeUsed = length;
    this.#buffer = store.subarray(0, length);
  }

  #take(n: number): Buffer {
    const taken = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return taken;
  }

  /** Waits for more input; throws when none can come and `what` was expected. */
  async #more(what: string | null): Promise<void> {
    if (this.#ended || this.#closed || this.#error) {
      if (what !== null) {
        throw new Error(`connection ${this.#error ? `failed (${this.#error.message})` : 'ended'} while waiting for ${what}`);
      }
      if (this.#closed) return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

// A raw TCP server for the client's byte-exact tests: each connection is a RawPeer that reads the
// upgrade request head, answers with bytes written by hand, and reads the client's frames (masked,
// with their masking keys) exactly as they came.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { acceptKey } from '../../src/protocol/handshake.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { parseFrame, type ReadFrame } from '../helpers/net.js';

/** A frame from the client, with its masking key (null if it was not masked). */
export interface ClientFrame extends ReadFrame {
  maskKey: Buffer | null;
}

/** One TCP connection accepted by the raw server. */
export class RawPeer {
  readonly socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  /** The client ended its side (FIN) / the socket closed. */
  ended = false;
  closed = false;
  /** What happened on this socket, in order: 'data', 'end', 'close'. */
  readonly events: string[] = [];

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.events.push('data');
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('end', () => {
      this.events.push('end');
      this.ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.events.push('close');
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Waits until `ready()` holds, checking after every socket event. */
  async until<T>(ready: () => T | null | undefined | false, what: string): Promise<T> {
    for (;;) {
      const value = ready();
      if (value !== null && value !== undefined && value !== false) return value;
      if (this.closed) throw new Error(`socket closed while waiting for ${what}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** The upgrade request head as text (to the blank line), consumed. */
  async readHead(): Promise<string> {
    const end = await this.until(() => {
      const index = this.#buffer.indexOf('\r\n\r\n');
      return index === -1 ? null : index + 4;
    }, 'the request head');
    const head = this.#buffer.toString('latin1', 0, end);
    this.#buffer = this.#buffer.subarray(end);
    return head;
  }

  /** The key of the request head. */
  static keyOf(head: string): string {
    return /\r\nSec-WebSocket-Key: ([^\r]*)\r\n/.exec(head)![1]!;
  }

  /** Reads the request head and answers with a 101 by the letter (plus `extra` header lines). */
  async accept(extra = ''): Promise<string> {
    const head = await this.readHead();
    this.socket.write(response101(RawPeer.keyOf(head), extra));
    return head;
  }

  /** The next frame from the client, consumed. */
  async readFrame(): Promise<ClientFrame> {
    const frame = await this.until(() => parseFrame(this.#buffer), 'a frame');
    this.#buffer = this.#buffer.subarray(frame.bytes.length);
    let maskKey: Buffer | null = null;
    if (frame.masked) {
      const length = frame.bytes[1]! & 0x7f;
      const offset = length === 126 ? 4 : length === 127 ? 10 : 2;
      maskKey = frame.bytes.subarray(offset, offset + 4);
    }
    return { ...frame, maskKey };
  }

  /** Sends one unmasked frame (as a server does) unless a mask is given. */
  sendFrame(opcode: number, payload: Uint8Array | string = Buffer.alloc(0), options: { fin?: boolean; mask?: Uint8Array } = {}): void {
    const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const encodeOptions: { fin: boolean; mask?: Uint8Array } = { fin: options.fin ?? true };
    if (options.mask) encodeOptions.mask = options.mask;
    this.socket.write(Buffer.concat(encodeFrame(opcode, data, encodeOptions)));
  }

  /** Resolves once the client has ended its side or the socket closed. */
  async endedOrClosed(): Promise<void> {
    await this.until(() => this.ended || this.closed || null, 'the end');
  }
}

/** A 101 response to `key`, with more header lines in `extra` (each ending in CRLF). */
export function response101(key: string, extra = ''): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n${extra}\r\n`;
}

/** A raw TCP server on 127.0.0.1 (or `host`); every connection goes to `onPeer`. */
export async function rawServer(
  onPeer: (peer: RawPeer) => void | Promise<void>,
  host = '127.0.0.1',
): Promise<{
  server: Server;
  port: number;
  url: (path?: string) => string;
  peers: RawPeer[];
  peer: (index?: number) => Promise<RawPeer>;
  close: () => Promise<void>;
}> {
  const peers: RawPeer[] = [];
  const arrived: (() => void)[] = [];
  const server = createServer((socket) => {
    const peer = new RawPeer(socket);
    peers.push(peer);
    for (const wake of arrived.splice(0)) wake();
    void Promise.resolve(onPeer(peer)).catch(() => socket.destroy());
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port,
    peers,
    url: (path = '/') => `ws://${shown}:${port}${path}`,
    /** The index-th connection, once it has arrived. */
    peer: async (index = 0) => {
      while (peers[index] === undefined) await new Promise<void>((resolve) => arrived.push(resolve));
      return peers[index]!;
    },
    close: async () => {
      for (const peer of peers) peer.socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

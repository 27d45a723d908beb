// Small WebSocket servers on raw `net` sockets, each broken in one deliberate way, for the audit's
// tests: the battery must find each fault and name it. Apart from its fault, each one is a plain
// echo server that follows RFC 6455 closely enough for the cases aimed at it.

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { CloseCode, Opcode, isControlOpcode } from '../../src/protocol/constants.js';
import { encodeClosePayload, encodeFrame } from '../../src/protocol/frame.js';
import { acceptKey } from '../../src/protocol/handshake.js';
import { isValidUtf8 } from '../../src/protocol/utf8.js';
import { TolerantFrameReader } from '../../src/audit/wire.js';

/** The one thing each server does wrong. */
export type Fault =
  | 'accepts-unmasked' // echoes unmasked client frames instead of failing (§5.1)
  | 'no-pong' // never answers a Ping (§5.5.2)
  | 'echoes-invalid-utf8' // echoes text without checking UTF-8 (§8.1)
  | 'close-1005' // answers a Close without code with code 1005 on the wire (§7.4.1)
  | 'never-closes-tcp' // answers the Close but never closes TCP (§7.1.1)
  | 'wrong-accept' // answers the handshake with a wrong Sec-WebSocket-Accept (§4.2.2)
  | 'silent'; // accepts TCP and never answers the handshake

export interface BrokenServer {
  url: string;
  close(): Promise<void>;
}

function write(socket: Socket, opcode: number, payload: Uint8Array): void {
  if (socket.writable) socket.write(Buffer.concat(encodeFrame(opcode, payload)));
}

function failWith(socket: Socket, code: number): void {
  write(socket, Opcode.Close, encodeClosePayload(code));
  socket.end();
}

function serve(socket: Socket, fault: Fault): void {
  socket.on('error', () => {});
  if (fault === 'silent') return;
  let head = Buffer.alloc(0);
  const reader = new TolerantFrameReader();
  let message: { opcode: number; parts: Buffer[] } | null = null;
  let closed = false;
  const onFrames = (chunk: Buffer): void => {
    for (const frame of reader.push(chunk)) {
      if (closed) return;
      if (!frame.masked && fault !== 'accepts-unmasked') return failWith(socket, CloseCode.ProtocolError);
      if (frame.rsv !== 0 || (frame.opcode > 2 && frame.opcode < 8) || frame.opcode > 10) return failWith(socket, CloseCode.ProtocolError);
      if (isControlOpcode(frame.opcode) && (frame.length > 125 || !frame.fin)) return failWith(socket, CloseCode.ProtocolError);
      if (frame.opcode === Opcode.Ping) {
        if (fault !== 'no-pong') write(socket, Opcode.Pong, frame.payload);
        continue;
      }
      if (frame.opcode === Opcode.Pong) continue;
      if (frame.opcode === Opcode.Close) {
        closed = true;
        const reply = frame.payload.length >= 2 ? frame.payload.subarray(0, 2) : fault === 'close-1005' ? Buffer.from([0x03, 0xed]) : Buffer.alloc(0);
        write(socket, Opcode.Close, reply);
        if (fault !== 'never-closes-tcp') socket.end();
        return;
      }
      if (frame.opcode === Opcode.Continuation) {
        if (message === null) return failWith(socket, CloseCode.ProtocolError);
      } else {
        if (message !== null) return failWith(socket, CloseCode.ProtocolError);
        message = { opcode: frame.opcode, parts: [] };
      }
      message.parts.push(frame.payload);
      if (!frame.fin) continue;
      const payload = Buffer.concat(message.parts);
      const opcode = message.opcode;
      message = null;
      if (opcode === Opcode.Text && !isValidUtf8(payload) && fault !== 'echoes-invalid-utf8') return failWith(socket, CloseCode.InvalidPayload);
      write(socket, opcode, payload);
    }
  };
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    const key = /^sec-websocket-key:\s*(\S+)\s*$/im.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? '';
    const accept = fault === 'wrong-accept' ? acceptKey(`${key}x`) : acceptKey(key);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', onFrames);
    onFrames(head.subarray(end + 4));
  };
  socket.on('data', onData);
}

/** Starts a server with `fault` on a free loopback port. */
export async function startBrokenServer(fault: Fault): Promise<BrokenServer> {
  const sockets = new Set<Socket>();
  // allowHalfOpen: our FIN does not make Node close the server's side (the never-closes-tcp fault).
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serve(socket, fault);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

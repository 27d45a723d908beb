// Fan-out subscribers, one process of many: opens N raw WebSocket connections (node:net, no
// WebSocket library) and counts the data frames each receives. Driven by bench/fanout.ts over IPC:
// {connect: {port, count, deflate}} -> {connected}; {count: true} -> {received}.

import { connect, type Socket } from 'node:net';
import { handshakeRequest } from './common.js';

let received = 0;
const sockets: Socket[] = [];
let localCounter = 0;

/** Counts the frames in a stream of server frames (unmasked, §5.2); pings and pongs are not counted. */
function counter(): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let handshakeDone = false;
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (!handshakeDone) {
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      handshakeDone = true;
      pending = pending.subarray(end + 4);
    }
    for (;;) {
      if (pending.length < 2) return;
      let length = pending[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (pending.length < 4) return;
        length = pending.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (pending.length < 10) return;
        length = pending.readUInt32BE(6);
        offset = 10;
      }
      if (pending.length < offset + length) return;
      const opcode = pending[0]! & 0x0f;
      if (opcode === 1 || opcode === 2) received++;
      pending = pending.subarray(offset + length);
    }
  };
}

async function open(port: number, deflate: boolean): Promise<void> {
  localCounter = (localCounter + 1) % 253;
  const socket = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${localCounter + 2}` });
  socket.setNoDelay(true);
  sockets.push(socket);
  const { request } = handshakeRequest(port);
  const text = request.toString('latin1');
  const withDeflate = deflate ? text.replace('\r\n\r\n', '\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n') : text;
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.write(withDeflate);
      resolve();
    });
    socket.once('error', reject);
  });
  socket.on('data', counter());
}

process.on('message', (message: { connect?: { port: number; count: number; deflate: boolean }; count?: boolean }) => {
  if (message.connect) {
    const { port, count, deflate } = message.connect;
    void (async () => {
      for (let i = 0; i < count; i++) await open(port, deflate);
      process.send!({ connected: sockets.length });
    })();
  } else if (message.count) {
    process.send!({ received });
  }
});
process.on('disconnect', () => process.exit(0));

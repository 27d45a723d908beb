// A fan-out server, its own process: every WebSocket client on /echo is a subscriber of one topic,
// and GET /publish?count=K&size=S&kind=text|binary publishes K messages of S bytes to all of them.
//   ours         pef-front-websocket's queue: router.publish, the default onQueue (framed once)
//   ours-deflate the same with permessage-deflate negotiated (each subscriber compresses for itself)
//   ws-loop      ws: a loop over its clients calling send
//   ws-prepared  ws: the frame built once with WebSocket.Sender.frame, its bytes written to each socket
//   raw          the limit for any Node server: a 101 by hand, each message framed once, a request's
//                frames joined once and written to every socket with one socket.write each
// Prints "listening <port>" once ready. Usage: node --import tsx bench/fanout-server.ts <system>

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import { WebSocketServer } from 'ws';
import { WebSocketHandler, WebSocketRouter } from '../src/index.js';
import { type PayloadKind, acceptRawUpgrade, payload } from './common.js';

const system = process.argv[2] ?? 'ours';
/** ws's frame builder: exported by ws (Sender), though @types/ws does not declare it. */
interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;
/** One message as a server frame, by ws's Sender.frame (header and payload as one Buffer). */
function serverFrame(data: string | Buffer): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat(Sender.frame(bytes, { fin: true, opcode: typeof data === 'string' ? 1 : 2, mask: false, readOnly: true, rsv1: false }));
}
let publish: (data: string | Buffer) => void;
/** Called once a request's messages were all published (raw writes them then); the response waits for it. */
let published: () => void | Promise<void> = () => {};
const server = createServer();

if (system === 'ours' || system === 'ours-deflate') {
  class Subscriber extends WebSocketHandler {
    override onOpen(): Promise<void> {
      return this.subscribe('fan');
    }
  }
  const router = new WebSocketRouter({
    compression: system === 'ours-deflate' ? { threshold: 0 } : false,
    heartbeatInterval: 0,
    maxConnections: 0,
    maxBufferedAmount: 1 << 30,
  }).route('/echo', Subscriber);
  router.attach(server);
  let publishes: Promise<number>[] = [];
  publish = (data) => void publishes.push(router.publish('fan', data));
  // The response once the request's messages are written (raw and Bun write before responding too):
  // answering first would wake the load generator while the server still writes to every socket.
  published = async () => {
    const all = publishes;
    publishes = [];
    await Promise.all(all);
  };
} else if (system === 'ws-loop' || system === 'ws-prepared') {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  if (system === 'ws-loop') {
    publish = (data) => {
      const binary = typeof data !== 'string';
      for (const client of wss.clients) client.send(data, { binary });
    };
  } else {
    publish = (data) => {
      const frame = serverFrame(data);
      // The prepared-frame way: the same bytes to every client's socket (ws keeps it as _socket).
      for (const client of wss.clients) (client as unknown as { _socket: Duplex })._socket.write(frame);
    };
  }
} else if (system === 'raw') {
  const sockets = new Set<Duplex>();
  server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
    acceptRawUpgrade(request, socket);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  let frames: Buffer[] = [];
  publish = (data) => void frames.push(serverFrame(data));
  published = () => {
    const joined = Buffer.concat(frames);
    frames = [];
    for (const socket of sockets) socket.write(joined);
  };
} else {
  throw new Error(`unknown system ${system}`);
}

server.on('request', (request: IncomingMessage, response: ServerResponse) => {
  const url = new URL(request.url ?? '/', 'http://x');
  if (url.pathname !== '/publish') return void response.writeHead(404).end();
  const count = Number(url.searchParams.get('count') ?? 1);
  const size = Number(url.searchParams.get('size') ?? 32);
  const kind = (url.searchParams.get('kind') ?? 'text') as PayloadKind;
  const bytes = payload(size, kind);
  const data = kind === 'binary' ? bytes : bytes.toString('utf8');
  for (let i = 0; i < count; i++) publish(data);
  void Promise.resolve(published()).then(() => response.end('ok'));
});

server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => process.exit(0)); // a clean exit, so that --cpu-prof writes its profile

import { createServer } from 'node:http';
import { Socket } from 'node:net';
import WebSocket from 'ws';
import { WebSocketHandler, WebSocketRouter } from '../src/index.js';
class Sub extends WebSocketHandler { override onOpen() { return this.subscribe('fan'); } }
const router = new WebSocketRouter({ compression: false, heartbeatInterval: 0 }).route('/echo', Sub);
const server = createServer(); router.attach(server);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as any).port;
const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
let got = 0; ws.on('message', () => got++);
await new Promise((r) => ws.once('open', r));
await new Promise((r) => setTimeout(r, 100));
let writes = 0; const w = Socket.prototype.write;
Socket.prototype.write = function (this: any, ...a: any[]) { if (this !== ws['_socket']) writes++; return (w as any).apply(this, a); } as any;
for (let i = 0; i < 20; i++) void router.publish('fan', 'x'.repeat(32));
await new Promise((r) => setTimeout(r, 200));
console.log('writes', writes, 'got', got);
process.exit(0);

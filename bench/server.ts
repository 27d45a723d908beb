// One echo server under test, in its own process (ws reads WS_NO_BUFFER_UTIL when it loads, and
// /proc must see one server's CPU time alone). Started by bench/run.ts with an IPC channel:
//   node --expose-gc --import tsx bench/server.ts <system>
// It sends {port, note} once listening; answers {type: 'memory'} with its memory after a full GC.

import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BENCH_PATH, MAX_PAYLOAD, SYSTEMS, acceptRawUpgrade, type SystemName } from './common.js';

const system = process.argv[2] as SystemName;
if (!SYSTEMS.includes(system)) {
  console.error(`usage: bench/server.ts <${SYSTEMS.join('|')}>`);
  process.exit(2);
}

/**
 * Where our code is loaded from: run.ts transpiles src/ to plain JS first (BENCH_LIB), so that what
 * is measured is what users run, not tsx's transform (whose keepNames wraps every closure created).
 */
const LIB = process.env.BENCH_LIB ?? '../src';

const server = createServer((_req, res) => res.writeHead(426).end());
server.keepAliveTimeout = 0;
let note = '';

const ignore = (): void => {};

// Options that keep every system comparable: the same payload limit, and nothing that would close
// idle benchmark connections or send heartbeats while they are measured.
const ourOptions = { maxPayload: MAX_PAYLOAD };

async function setUp(): Promise<void> {
  switch (system) {
    case 'framework': {
      // The full PEF path: a router and a handler class whose onMessage calls this.send.
      const routerPath = `${LIB}/framework/router.js`;
      const handlerPath = `${LIB}/framework/handler.js`;
      let Router: (new (options?: object) => { route(path: string, cls: unknown): unknown; attach(server: unknown): void }) | undefined;
      let Base: (new () => { send(data: unknown, type: unknown): unknown }) | undefined;
      try {
        Router = ((await import(routerPath)) as { WebSocketRouter?: typeof Router }).WebSocketRouter;
        Base = ((await import(handlerPath)) as { WebSocketHandler?: typeof Base }).WebSocketHandler;
      } catch {
        Router = undefined;
      }
      if (Router !== undefined && Base !== undefined) {
        class Echo extends Base {
          onMessage(message: string | Buffer, type: 'text' | 'binary'): void {
            this.send(message, type);
          }
        }
        const router = new Router(ourOptions);
        router.route(BENCH_PATH, Echo);
        router.attach(server);
        return;
      }
      // The framework is not there yet: a handler object with a bound send, through acceptWebSocket.
      note = 'src/framework/router.ts was missing: the framework path fell back to acceptWebSocket with a handler class';
      const { acceptWebSocket } = (await import(`${LIB}/index.js`)) as typeof import('../src/index.js');
      class Echo {
        send!: (data: string | Buffer, type: 'text' | 'binary') => boolean;
        onMessage(message: string | Buffer, type: 'text' | 'binary'): void {
          this.send(message, type);
        }
      }
      server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        const handler = new Echo();
        const ws = acceptWebSocket(request, socket, head, handler, ourOptions);
        if (ws) handler.send = (data, type) => ws.send(data, type);
      });
      return;
    }
    case 'ours':
    case 'bytes':
    case 'base': {
      const { acceptWebSocket } = (await import(`${LIB}/index.js`)) as typeof import('../src/index.js');
      // bytes: text reaches onMessage as its checked UTF-8 bytes (a Buffer), and goes back as 'text'.
      const options = system === 'bytes' ? { ...ourOptions, decodeText: false } : ourOptions;
      server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        const ws = acceptWebSocket(request, socket, head, { onMessage: (message, type) => void ws!.send(message, type) }, options);
      });
      return;
    }
    case 'ws':
    case 'ws-js': {
      // ws decides at load time whether to use bufferutil (run.ts sets WS_NO_BUFFER_UTIL=1 for ws-js).
      const { WebSocketServer } = await import('ws');
      // BENCH_DEFLATE=1 (the compression echo): ws with its permessage-deflate defaults. Ours has
      // compression on by default; the raw-socket load generator never offers it.
      const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: process.env.BENCH_DEFLATE === '1' });
      server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        wss.handleUpgrade(request, socket, head, (ws) => {
          ws.on('error', ignore);
          // ws's own echo idiom: the received Buffer goes back with its type (text is not decoded).
          ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
        });
      });
      return;
    }
    case 'raw': {
      // The limit for any Node server: node:http's upgrade, a 101, then bytes back as they come.
      server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        acceptRawUpgrade(request, socket);
        if (head.length !== 0) socket.write(head);
        socket.on('data', (chunk: Buffer) => socket.write(chunk));
      });
      return;
    }
  }
}

function memory(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage();
}

await setUp();
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  process.send!({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0, note });
});
process.on('message', (message: { type: string; id: number }) => {
  if (message.type === 'memory') process.send!({ type: 'memory', id: message.id, memory: memory() });
  else if (message.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM (how run.ts stops servers), so that --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));

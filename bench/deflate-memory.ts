// Memory per connection with permessage-deflate, for docs/compression.md: a server process holds
// N connections (default 10,000) and reports its RSS and JS heap after GC, idle and after one
// compressed message each way, with compression off, on with context takeover (the default), and
// on without it. Clients are raw sockets in this process, so the server's numbers are its own.
//   node --import tsx bench/deflate-memory.ts [--connections 10000]
// With --params it instead compares settings (window bits, memLevel, level) on a stream of chat
// messages: compressed size and CPU time per message, with context takeover.

import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { acceptWebSocket } from '../src/node/upgrade.js';
import { PerMessageDeflate, deflateMemory, type PerMessageDeflateOptions } from '../src/protocol/deflate.js';
import type { WebSocketConnection } from '../src/node/transport.js';

interface Sample {
  rss: number;
  heap: number;
  external: number;
  windows: number;
  windowBytes: number;
}

const SELF = fileURLToPath(import.meta.url);

// ------------------------------------------------------------------------------------------ server

async function serve(compression: boolean | PerMessageDeflateOptions | 'ws'): Promise<void> {
  const connections = new Set<WebSocketConnection>();
  const server = createServer((_req, res) => res.writeHead(426).end());
  if (compression === 'ws') {
    // For comparison: ws keeps a zlib stream per direction for the life of the connection.
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 0 } });
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  } else server.on('upgrade', (request, socket, head) => {
    const ws: WebSocketConnection | null = acceptWebSocket(request, socket, head, {
      onMessage: (message, type) => void ws!.send(message, type),
      onClose: () => void connections.delete(ws!),
    }, { compression });
    if (ws) connections.add(ws);
  });
  const gc = (globalThis as { gc?: () => void }).gc!;
  process.on('message', (message) => {
    if (message !== 'measure') return;
    // Several passes: zlib's and the sockets' native memory is released by finalizers.
    for (let i = 0; i < 4; i++) gc();
    setTimeout(() => {
      gc();
      const usage = process.memoryUsage();
      const windows = deflateMemory();
      process.send!({ rss: usage.rss, heap: usage.heapUsed, external: usage.external, windows: windows.windows, windowBytes: windows.bytes });
    }, 200);
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
}

// ------------------------------------------------------------------------------------------ client

const MASK = Buffer.from([0x11, 0x22, 0x33, 0x44]);
const MESSAGE = Buffer.from(
  JSON.stringify({ type: 'chat', room: 'lobby', user: 'alice', text: 'Hello everyone, this is a typical chat message of a few hundred bytes. '.repeat(3) }),
);

function frame(payload: Buffer, rsv1: boolean): Buffer {
  // Client frames are masked (RFC 6455 §5.3); the payload is under 65536 bytes here.
  const header = payload.length < 126 ? Buffer.from([0, 0x80 | payload.length]) : Buffer.from([0, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  header[0] = 0x80 | (rsv1 ? 0x40 : 0) | 0x1;
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= MASK[i & 3]!;
  return Buffer.concat([header, MASK, masked]);
}

function handshake(offer: string | null): string {
  return (
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    (offer === null ? '' : `Sec-WebSocket-Extensions: ${offer}\r\n`) +
    '\r\n'
  );
}

function open(port: number, request: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!seen.startsWith('HTTP/1.1 101')) reject(new Error(seen.split('\r\n')[0]));
      else resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(request);
  });
}

function exchange(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    socket.once('data', () => resolve());
    socket.write(data);
  });
}

async function inBatches<T>(count: number, size: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < count; start += size) {
    results.push(...(await Promise.all(Array.from({ length: Math.min(size, count - start) }, (_, i) => run(start + i)))));
  }
  return results;
}

function measure(child: ChildProcess): Promise<Sample> {
  return new Promise((resolve) => {
    child.once('message', (message) => resolve(message as Sample));
    child.send('measure');
  });
}

interface Scenario {
  name: string;
  compression: boolean | PerMessageDeflateOptions | 'ws';
  offer: string | null;
}

async function run(scenario: Scenario, count: number): Promise<{ idle: Sample; after: Sample; base: Sample; ms: number }> {
  const started = Date.now();
  const child = fork(SELF, ['serve', JSON.stringify(scenario.compression)], { execArgv: ['--import', 'tsx', '--expose-gc'] });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  const base = await measure(child);
  const sockets = await inBatches(count, 250, () => open(port, handshake(scenario.offer)));
  const idle = await measure(child);
  const compressed = deflateRawSync(MESSAGE, { finishFlush: 2 }).subarray(0, -4);
  const message = scenario.offer === null ? frame(MESSAGE, false) : frame(compressed, true);
  await inBatches(count, 250, (i) => exchange(sockets[i]!, message));
  const after = await measure(child);
  for (const socket of sockets) socket.destroy();
  child.kill();
  return { base, idle, after, ms: Date.now() - started };
}

/** Chat-like JSON messages of 60-400 bytes, varied enough that history helps but does not trivialise. */
function chatMessages(count: number): Buffer[] {
  const users = ['alice', 'bob', 'carol', 'dave', 'erin'];
  const words = 'the quick brown fox jumps over lazy dog hello world meeting today tomorrow lunch code review deploy release bug fix ship it'.split(' ');
  let seed = 7;
  const rand = (n: number): number => (seed = (seed * 48271) % 0x7fffffff) % n;
  return Array.from({ length: count }, (_, i) => {
    const text = Array.from({ length: 5 + rand(50) }, () => words[rand(words.length)]).join(' ');
    return Buffer.from(JSON.stringify({ type: 'message', id: 100000 + i, user: users[rand(users.length)], room: 'general', text, ts: 1764150000000 + i * 1000 }));
  });
}

function compareParams(): void {
  const messages = chatMessages(5000);
  const raw = messages.reduce((sum, m) => sum + m.length, 0);
  console.log(`${messages.length} chat messages, ${(raw / messages.length).toFixed(0)} bytes on average, threshold 0`);
  console.log('| context takeover | window bits | memLevel | level | compressed size | µs per message (compress + inflate) | window kept per direction |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const settings = [[true, 10, 5, 6], [true, 12, 5, 6], [true, 12, 8, 6], [true, 12, 5, 1], [true, 12, 5, 9], [true, 15, 5, 6], [true, 15, 8, 6], [false, 12, 5, 6], [false, 15, 8, 6]] as const;
  for (const [takeover, bits, memLevel, level] of settings) {
    const common = { threshold: 0, level, memLevel, ownNoContextTakeover: !takeover, peerNoContextTakeover: !takeover };
    const sender = new PerMessageDeflate({ ...common, ownWindowBits: bits, peerWindowBits: bits });
    const receiver = new PerMessageDeflate({ ...common, ownWindowBits: bits, peerWindowBits: bits });
    let wire = 0;
    const start = process.hrtime.bigint();
    for (const message of messages) {
      const sent = sender.encode(message) ?? message;
      wire += sent.length;
      if (sent !== message) receiver.decode(sent, 1 << 20);
    }
    const us = Number(process.hrtime.bigint() - start) / 1000 / messages.length;
    const kept = takeover ? `${2 ** bits / 1024} KiB` : 'none';
    console.log(`| ${takeover ? 'yes' : 'no'} | ${bits} | ${memLevel} | ${level} | ${((wire / raw) * 100).toFixed(1)} % | ${us.toFixed(1)} | ${kept} |`);
    sender.dispose();
    receiver.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, params: { type: 'boolean', default: false } } });
  if (values.params) return compareParams();
  const count = Number(values.connections);
  const offer = 'permessage-deflate; client_max_window_bits';
  const scenarios: Scenario[] = [
    { name: 'compression off', compression: false, offer: null },
    { name: 'compression on, context takeover (default)', compression: true, offer },
    { name: 'compression on, no context takeover', compression: { serverNoContextTakeover: true, clientNoContextTakeover: true }, offer },
    { name: 'for comparison: ws 8, perMessageDeflate { threshold: 0 }', compression: 'ws', offer },
  ];
  const kib = (bytes: number): string => (bytes / 1024).toFixed(1);
  console.log(`${count} connections, Node ${process.version}; per connection, KiB (RSS / JS heap), over the empty server`);
  console.log('| server | idle RSS | idle heap | after one message RSS | after heap | windows held | window bytes |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const scenario of scenarios) {
    const { base, idle, after, ms } = await run(scenario, count);
    console.log(
      `| ${scenario.name} | ${kib((idle.rss - base.rss) / count)} | ${kib((idle.heap - base.heap) / count)} | ` +
        `${kib((after.rss - base.rss) / count)} | ${kib((after.heap - base.heap) / count)} | ${after.windows} | ${kib(after.windowBytes / count)} KiB/conn |` +
        ` <!-- ${ms} ms -->`,
    );
  }
}

if (process.argv[2] === 'serve') await serve(JSON.parse(process.argv[3]!) as boolean | PerMessageDeflateOptions | 'ws');
else await main();

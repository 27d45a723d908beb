// What an idle connection holds, object by object: a heap snapshot of one server with N idle
// connections against one without, counted by constructor (or by the field that holds each object,
// with --by-holder), per connection. The clients run in a child process, so the snapshot holds the
// server's side only. The bench's memory section gives RSS; this says where the heap part goes.
//   node --expose-gc --import tsx bench/heap-census.ts [ours|framework|ws|raw] [--connections 2000] [--top 30] [--by-holder]
// Count what users run: `npm run build`, then BENCH_LIB=$PWD/dist (as bench/run.ts does with its
// own build): through tsx, src/ is transformed in ways that add to each object.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { WebSocketServer } from 'ws';
import type { WebSocketConnection } from '../src/index.js';
import { BENCH_PATH, acceptRawUpgrade, handshakeRequest } from './common.js';

/** Where our code is loaded from (see above). */
const LIB = process.env.BENCH_LIB ?? '../src';
const SYSTEMS = ['ours', 'framework', 'ws', 'raw'] as const;
type System = (typeof SYSTEMS)[number];

/** The child: opens `count` idle WebSocket connections to `port`, says so, and holds them until disconnected. */
async function clients(port: number, count: number): Promise<void> {
  const sockets: Duplex[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1' });
    await once(socket, 'connect');
    socket.write(handshakeRequest(port).request);
    const [head] = (await once(socket, 'data')) as [Buffer];
    if (!head.toString('latin1').startsWith('HTTP/1.1 101')) throw new Error(`connection ${i} refused: ${head.toString('latin1').split('\r\n')[0]}`);
    sockets.push(socket);
  }
  process.send!({ ready: sockets.length });
  process.on('disconnect', () => process.exit(0));
}

const ignore = (): void => {};

/** One server of `system` on a free port. */
async function serve(system: System): Promise<number> {
  const { WebSocketHandler, WebSocketRouter, acceptWebSocket } = (await import(`${LIB}/index.js`)) as typeof import('../src/index.js');
  const server = createServer((_request, response) => response.writeHead(426).end());
  const options = { maxPayload: 64 * 1024 * 1024 }; // one options object for all, as in bench/server.ts
  // The closures made per connection here are made where tsx's keepNames does not name them: a
  // named one gets a `name` property defined on it, which puts its properties in a dictionary
  // (about 250 B per connection, counted against whichever system made it).
  if (system === 'ours') {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const hooks: { onMessage?: (message: string | Buffer, type: 'text' | 'binary') => void } = {};
      const ws: WebSocketConnection | null = acceptWebSocket(request, socket, head, hooks, options);
      if (ws !== null) hooks.onMessage = [(message: string | Buffer, type: 'text' | 'binary'): void => void ws.send(message, type)][0]!;
    });
  } else if (system === 'framework') {
    class Echo extends WebSocketHandler {
      override onMessage(message: string | Buffer, type: 'text' | 'binary'): void {
        this.send(message, type);
      }
    }
    new WebSocketRouter(options).route(BENCH_PATH, Echo).attach(server);
  } else if (system === 'ws') {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(request, socket, head, (ws) => {
        ws.on('error', ignore);
        ws.on('message', [(data: Buffer, isBinary: boolean): void => ws.send(data, { binary: isBinary })][0]!);
      });
    });
  } else {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
      acceptRawUpgrade(request, socket);
      socket.on('data', [(chunk: Buffer): void => void socket.write(chunk)][0]!);
    });
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

interface HeapSnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Writes a heap snapshot after a full collection, to be counted later (nothing of it stays in this heap). */
function snapshot(file: string): string {
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 3; i++) gc();
  return writeHeapSnapshot(file);
}

/** Objects and bytes of a snapshot, by key (constructor, or holder and field). */
function census(file: string, byHolder: boolean): { total: number; byKey: Map<string, { count: number; bytes: number }> } {
  const heap = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshotJson;
  const meta = heap.snapshot.meta;
  const width = meta.node_fields.length;
  const [typeAt, nameAt, sizeAt, edgesAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number];
  const edgeWidth = meta.edge_fields.length;
  const [edgeTypeAt, edgeNameAt, edgeToAt] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const types = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = heap;
  const label = (node: number): string => {
    const type = types[nodes[node + typeAt]!]!;
    const name = strings[nodes[node + nameAt]!]!;
    if (type === 'object' || type === 'closure') return type === 'closure' ? `closure ${name}` : name;
    if (type.includes('string')) return '(string)';
    return `(${type}) ${name.slice(0, 40)}`;
  };
  // With --by-holder, each object is keyed by the first strong reference to it: "Holder.field".
  const holder = new Map<number, string>();
  if (byHolder) {
    let edge = 0;
    for (let node = 0; node < nodes.length; node += width) {
      for (let k = nodes[node + edgesAt]!; k > 0; k--, edge += edgeWidth) {
        const edgeType = edgeTypes[edges[edge + edgeTypeAt]!]!;
        if (edgeType === 'weak' || edgeType === 'shortcut') continue;
        const to = edges[edge + edgeToAt]!;
        if (holder.has(to)) continue;
        const field = edgeType === 'element' || edgeType === 'hidden' ? `[${edgeType}]` : strings[edges[edge + edgeNameAt]!]!;
        holder.set(to, `${label(node)}.${field}`);
      }
    }
  }
  const byKey = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let node = 0; node < nodes.length; node += width) {
    const key = byHolder ? `${label(node)} <- ${holder.get(node) ?? '(root)'}` : label(node);
    const entry = byKey.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[node + sizeAt]!;
    byKey.set(key, entry);
    total += nodes[node + sizeAt]!;
  }
  return { total, byKey };
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '2000' },
    top: { type: 'string', default: '30' },
    'by-holder': { type: 'boolean', default: false },
    clients: { type: 'string' }, // the child's mode: the port to connect to
  },
});
const count = Number(values.connections);
if (values.clients !== undefined) {
  await clients(Number(values.clients), count);
} else {
  const system = (positionals[0] ?? 'ours') as System;
  if (!SYSTEMS.includes(system) || !(count > 0) || (globalThis as { gc?: unknown }).gc === undefined) {
    console.error(`usage: node --expose-gc --import tsx bench/heap-census.ts [${SYSTEMS.join('|')}] [--connections N] [--top N] [--by-holder]`);
    process.exit(2);
  }
  const byHolder = values['by-holder'];
  const port = await serve(system);
  const folder = mkdtempSync(join(tmpdir(), 'heap-census-'));
  const first = snapshot(join(folder, 'before.heapsnapshot'));
  const child = fork(fileURLToPath(import.meta.url), ['--clients', String(port), '--connections', String(count)], { execArgv: ['--import', 'tsx'] });
  await once(child, 'message');
  await new Promise((resolve) => setTimeout(resolve, 500)); // the last 101s flushed, the last opens run
  const second = snapshot(join(folder, 'after.heapsnapshot'));
  child.disconnect();
  const before = census(first, byHolder);
  const after = census(second, byHolder);
  rmSync(folder, { recursive: true, force: true });
  console.log(`${system}: ${count} idle connections, ${((after.total - before.total) / count).toFixed(0)} B of JS heap each (snapshot self sizes)`);
  const rows: [string, number, number][] = [];
  for (const [key, { count: objects, bytes }] of after.byKey) {
    const was = before.byKey.get(key) ?? { count: 0, bytes: 0 };
    const perConnection = (bytes - was.bytes) / count;
    if (perConnection >= 4) rows.push([key, (objects - was.count) / count, perConnection]);
  }
  rows.sort((a, b) => b[2] - a[2]);
  for (const [key, objects, bytes] of rows.slice(0, Number(values.top))) {
    console.log(`${bytes.toFixed(0).padStart(6)} B ${objects.toFixed(2).padStart(6)}x  ${key.slice(0, 110)}`);
  }
  process.exit(0);
}

// Shared by the benchmark processes: the systems under test, client frames and handshakes, CPU time
// of a process tree read from /proc, and statistics over rounds.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The servers compared. `ws` has its bufferutil addon; `ws-js` is ws with WS_NO_BUFFER_UTIL=1.
 * `bytes` is `ours` with the option decodeText: false (text reaches onMessage as its checked bytes,
 * as with ws), run on the text rows only. `base` is `ours` built from another checkout (run.ts --base DIR), for before/after in one run.
 */
export const SYSTEMS = ['framework', 'ours', 'bytes', 'ws', 'ws-js', 'raw', 'base'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const SYSTEM_LABELS: Record<SystemName, string> = {
  framework: 'ours, framework (router + handler class)',
  ours: 'ours, acceptWebSocket',
  bytes: 'ours, acceptWebSocket, decodeText: false',
  ws: 'ws 8 + bufferutil',
  'ws-js': 'ws 8, no addon',
  raw: 'raw node echo (limit)',
  base: 'ours, acceptWebSocket, from --base',
};

export const OPCODE_TEXT = 1;
export const OPCODE_BINARY = 2;
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const BENCH_PATH = '/echo';
export const MAX_PAYLOAD = 64 * 1024 * 1024;

/**
 * What a message carries: random bytes; ASCII text shaped like JSON (what most text messages are);
 * or UTF-8 text, mostly ASCII with some two- and three-byte characters (any non-ASCII byte takes
 * Node's UTF-8 decoder off its ASCII fast path).
 */
export type PayloadKind = 'binary' | 'text' | 'text-utf8';

export function payload(size: number, kind: PayloadKind): Buffer {
  if (kind === 'binary') return randomBytes(size);
  const unit = Buffer.from(
    kind === 'text'
      ? '{"type":"chat","room":"lobby","from":"user-42","text":"The quick brown fox jumps over the lazy dog"},'
      : 'The quick brown fox jumps over the lazy dog, café ünïcödé ✓ 12345. ',
    'utf8',
  );
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += unit.length) unit.copy(out, i, 0, Math.min(unit.length, size - i));
  // Cutting the unit may split a character at the end: pad the last bytes with ASCII.
  let end = size;
  while (end > 0 && end > size - 4 && (out[end - 1]! & 0x80) !== 0) end--;
  out.fill(0x2e, end);
  return out;
}

/** A client frame (masked, §5.3) carrying `data`. */
export function clientFrame(opcode: number, data: Buffer): Buffer {
  const length = data.length;
  const headerLength = (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + 4;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  const mask = randomBytes(4);
  mask.copy(frame, headerLength - 4);
  for (let i = 0; i < length; i++) frame[headerLength + i] = data[i]! ^ mask[i & 3]!;
  return frame;
}

/** The upgrade request of one client, and the Sec-WebSocket-Accept it must get back. */
export function handshakeRequest(port: number): { request: Buffer; accept: string } {
  const key = randomBytes(16).toString('base64');
  const request = Buffer.from(
    `GET ${BENCH_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    'latin1',
  );
  return { request, accept: acceptKey(key) };
}

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/**
 * The raw systems' upgrade (the limit for any Node server): a 101 by hand on node:http's upgrade
 * socket, no delay, errors ignored, and the socket ended when the client ends (node:http's sockets
 * allow half-open: without it, closed clients pile up in CLOSE_WAIT).
 */
export function acceptRawUpgrade(request: IncomingMessage, socket: Duplex): void {
  socket.on('error', () => {});
  (socket as Duplex & { setNoDelay(v: boolean): void }).setNoDelay(true);
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(request.headers['sec-websocket-key']))}\r\n\r\n`,
  );
  socket.on('end', () => socket.end());
}

// ------------------------------------------------------------------ CPU time from /proc

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux the bench targets (getconf CLK_TCK)

/** Pids of `pid` and all its descendants (from /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length !== 0) {
    const p = stack.pop()!;
    out.push(p);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'latin1');
      } catch {
        continue;
      }
      for (const c of children.split(' ')) if (c.trim() !== '') stack.push(Number(c));
    }
  }
  return out;
}

/** utime + stime, in seconds, of one process (all its threads), from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return 0;
  }
  // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // fields 14 and 15 of stat
}

/** CPU seconds of a process tree: the server and any process it started. */
export function treeCpuSeconds(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) total += processCpuSeconds(p);
  return total;
}

// ------------------------------------------------------------------ statistics

export interface Summary {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n === 0 ? NaN : n % 2 === 1 ? sorted[(n - 1) >> 1]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted[n - 1] ?? NaN, values };
}

/** The systems in round `round`'s order: A B C, then B C A, then C A B, ... */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % Math.max(1, items.length);
  return [...items.slice(k), ...items.slice(0, k)];
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes >> 20} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes >> 10} KiB`;
  return `${bytes} B`;
}

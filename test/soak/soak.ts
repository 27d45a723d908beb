// The soak: hundreds of connections that come and go, tens of thousands of messages of mixed sizes
// (some fragmented, some text with multi-byte characters) through the echo server with its default
// defences. Every echo must come back byte-exact and in order, and when the last connection has
// gone, memory must be back near where it started and no socket or timer may be left.
//   npm run soak -- [--connections 300] [--messages 60000] [--max-bytes 65536] [--seconds 120]
// runSoak() is also what test/soak/soak-short.test.ts runs for a few seconds inside `npm test`.

import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { MiB, handles, memory, random, startEchoServer } from '../hostile/helpers.js';
import type { WebSocketOptions } from '../../src/node/options.js';

export interface SoakOptions {
  /** Connections open at the same time; each one ends after a random number of messages and is replaced. */
  connections: number;
  /** Messages in all. */
  messages: number;
  /** The largest message in bytes (sizes follow a cube law: most are small). */
  maxBytes: number;
  /** Give up (and fail) after this many seconds. */
  seconds: number;
  /** Seed of the generator, so a failing run can be repeated. */
  seed: number;
  /** Options of the echo server (defaults otherwise). */
  server?: WebSocketOptions;
}

export interface SoakResult {
  messages: number;
  bytes: number;
  connections: number;
  fragmented: number;
  text: number;
  terminated: number;
  /** Heap and Buffer memory after a full collection, before the server started and after it closed. */
  memoryBefore: number;
  memoryAfter: number;
  /** The server's side: connections that ended, and those that ended with another code than 1000/1006. */
  serverEnded: number;
  serverUnexpected: { code: number; errors: string[] }[];
  handlesBefore: Record<string, number>;
  handlesAfter: Record<string, number>;
  seconds: number;
}

// Sources that messages are cut from, so building tens of thousands costs little.
const RANDOM_BYTES = (() => {
  const next = random(0xb17e5);
  const bytes = Buffer.allocUnsafe(MiB);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(Math.floor(next() * 0x100000000), i);
  return bytes;
})();
const TEXT = (() => {
  const pieces = ['a', 'Z', ' ', '0', 'é', 'ß', 'κόσμε', '€', '日本語', '😀', '🏳️‍🌈', '\u0000', '\ufffd', '\uffff'];
  const next = random(0x7e47);
  let text = '';
  while (text.length < 300_000) text += pieces[Math.floor(next() * pieces.length)];
  return text;
})();

interface Message {
  data: string | Buffer;
  binary: boolean;
}

function makeMessage(next: () => number, maxBytes: number): Message {
  const size = Math.floor(next() ** 3 * maxBytes);
  if (next() < 0.5) {
    // Text: a slice of multi-byte characters about `size` bytes long, never splitting a surrogate pair.
    let start = Math.floor(next() * (TEXT.length - size - 2));
    if (start > 0 && /[\udc00-\udfff]/.test(TEXT[start]!)) start++;
    let end = start + Math.floor(size / 2);
    if (/[\udc00-\udfff]/.test(TEXT[end] ?? '')) end++;
    return { data: TEXT.slice(start, end), binary: false };
  }
  const start = Math.floor(next() * (RANDOM_BYTES.length - size));
  return { data: RANDOM_BYTES.subarray(start, start + size), binary: true };
}

function equal(received: Buffer, isBinary: boolean, want: Message): boolean {
  if (isBinary !== want.binary) return false;
  if (want.binary) return received.equals(want.data as Buffer);
  return received.toString('utf8') === want.data;
}

/** Runs the soak and returns what it measured; throws on the first echo that differs or comes out of order. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const started = performance.now();
  const handlesBefore = handles();
  const memoryBefore = memory();
  const echo = await startEchoServer(options.server);
  const url = `ws://127.0.0.1:${echo.port}/`;
  const next = random(options.seed);
  const result = {
    messages: 0,
    bytes: 0,
    connections: 0,
    fragmented: 0,
    text: 0,
    terminated: 0,
  };
  let budget = options.messages;
  const deadline = started + options.seconds * 1000;

  /** One connection's life: a random number of messages with a window in flight, then a close (or a terminate). */
  const session = async (): Promise<void> => {
    const count = Math.min(budget, 1 + Math.floor(next() * 100));
    budget -= count;
    if (count <= 0) return;
    const window = 1 + Math.floor(next() * 16);
    const ws = new WebSocket(url, { perMessageDeflate: false });
    result.connections++;
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const expected: Message[] = [];
    let sent = 0;
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (performance.now() > deadline) reject(new Error(`soak: over ${options.seconds} s`));
      }, 250);
      const done = (error?: Error) => {
        clearInterval(timer);
        if (error) reject(error);
        else resolve();
      };
      const pump = () => {
        while (sent < count && sent - received < window) {
          const message = makeMessage(next, options.maxBytes);
          expected.push(message);
          sent++;
          const bytes = typeof message.data === 'string' ? Buffer.from(message.data) : message.data;
          if (next() < 0.2 && bytes.length >= 3) {
            // Fragmented into three frames at random points (text may be split inside a character).
            const a = 1 + Math.floor(next() * (bytes.length - 2));
            const b = a + Math.floor(next() * (bytes.length - a));
            ws.send(bytes.subarray(0, a), { binary: message.binary, fin: false });
            ws.send(bytes.subarray(a, b), { binary: message.binary, fin: false });
            ws.send(bytes.subarray(b), { binary: message.binary, fin: true });
            result.fragmented++;
          } else {
            ws.send(message.data, { binary: message.binary });
          }
          if (!message.binary) result.text++;
          result.bytes += bytes.length;
        }
      };
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const want = expected[received];
        if (want === undefined || !equal(data, isBinary, want)) {
          done(new Error(`soak: echo ${received} of connection ${result.connections} differs from what was sent`));
          return;
        }
        expected[received] = undefined as unknown as Message; // let it go
        received++;
        result.messages++;
        if (received === count) done();
        else pump();
      });
      ws.once('close', (code) => done(new Error(`soak: connection closed with ${code} after ${received} of ${count} echoes`)));
      ws.once('error', (error) => done(error));
      pump();
    });
    ws.removeAllListeners('close');
    ws.removeAllListeners('error');
    ws.on('error', () => {});
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      if (next() < 0.1) {
        result.terminated++;
        ws.terminate(); // gone without a closing handshake
      } else {
        ws.close(1000);
      }
    });
  };

  const lane = async (): Promise<void> => {
    while (budget > 0) await session();
  };
  try {
    await Promise.all(Array.from({ length: options.connections }, lane));
    const ended = await echo.waitEnded(result.connections);
    const serverUnexpected = ended
      .filter((e) => e.code !== 1000 && e.code !== 1006)
      .map((e) => ({ code: e.code, errors: e.errors.map((error) => error.message) }));
    await echo.close();
    // Let the sockets' close callbacks run before counting (at most 15 s: a guard for a busy machine).
    for (let i = 0; i < 750 && Object.entries(handles()).some(([k, n]) => n > (handlesBefore[k] ?? 0)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return {
      ...result,
      memoryBefore,
      memoryAfter: memory(),
      serverEnded: ended.length,
      serverUnexpected,
      handlesBefore,
      handlesAfter: handles(),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await echo.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '300' },
      messages: { type: 'string', default: '60000' },
      'max-bytes': { type: 'string', default: '65536' },
      seconds: { type: 'string', default: '120' },
      seed: { type: 'string', default: '1' },
    },
  });
  const options: SoakOptions = {
    connections: Number(values.connections),
    messages: Number(values.messages),
    maxBytes: Number(values['max-bytes']),
    seconds: Number(values.seconds),
    seed: Number(values.seed),
  };
  console.log(`soak: ${options.connections} connections at a time, ${options.messages} messages up to ${options.maxBytes} bytes, seed ${options.seed}`);
  const result = await runSoak(options);
  const mib = (n: number) => (n / MiB).toFixed(1);
  console.log(
    `soak: ${result.messages} messages (${mib(result.bytes)} MiB; ${result.text} text, ${result.fragmented} fragmented) echoed ` +
      `byte-exact over ${result.connections} connections (${result.terminated} terminated) in ${result.seconds.toFixed(1)} s`,
  );
  console.log(`soak: memory ${mib(result.memoryBefore)} MiB before, ${mib(result.memoryAfter)} MiB after`);
  const problems: string[] = [];
  if (result.messages !== options.messages) problems.push(`${result.messages} of ${options.messages} messages echoed`);
  if (result.serverUnexpected.length !== 0) problems.push(`server-side ends: ${JSON.stringify(result.serverUnexpected.slice(0, 5))}`);
  if (result.memoryAfter - result.memoryBefore > 32 * MiB) problems.push('memory did not return near its start (over 32 MiB more)');
  for (const [kind, n] of Object.entries(result.handlesAfter)) {
    if (n > (result.handlesBefore[kind] ?? 0)) problems.push(`${n} ${kind} left (${result.handlesBefore[kind] ?? 0} before)`);
  }
  if (problems.length !== 0) {
    console.error(`soak: FAILED\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log('soak: ok');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error('soak: FAILED', error);
    process.exitCode = 1;
  });
}

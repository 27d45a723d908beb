// Micro benchmarks, in one process: parsing (frames fed in 64 KiB chunks), frame encoding,
// unmasking and decoding text, ours next to ws's own Receiver, Sender.frame and buffer-util (its JS
// fallback and bufferutil) and V8's UTF-8 decoder, with Buffer.copy as the limit of unmasking. Each
// round runs every contender in a rotated order and keeps its best of three runs; input is rebuilt
// outside the timed part, since parsers unmask in place.
//   node --expose-gc --import tsx bench/micro.ts [--rounds 5] [--quick]   prints JSON on stdout

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FrameSink } from '../src/protocol/parser.js';
import { clientFrame, payload, rotate, sizeLabel } from './common.js';

// Our code as users run it: the plain JS run.ts transpiled (BENCH_LIB), or src/ through tsx.
const LIB = process.env.BENCH_LIB ?? '../src';
const { Connection } = (await import(`${LIB}/protocol/connection.js`)) as typeof import('../src/protocol/connection.js');
const { encodeFrame } = (await import(`${LIB}/protocol/frame.js`)) as typeof import('../src/protocol/frame.js');
const { applyMask, maskImplementation, maskJs } = (await import(`${LIB}/protocol/mask.js`)) as typeof import('../src/protocol/mask.js');
const { FrameParser } = (await import(`${LIB}/protocol/parser.js`)) as typeof import('../src/protocol/parser.js');
const { decodeUtf8, utf8DecoderImplementation } = (await import(`${LIB}/protocol/utf8.js`)) as typeof import('../src/protocol/utf8.js');

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, quick: { type: 'boolean', default: false } } });
const ROUNDS = Number(args.rounds);
const QUICK = args.quick;

// ws's buffer-util decides at load time: load its JS fallback first (with WS_NO_BUFFER_UTIL set),
// then drop it from the cache so the Receiver and Sender below get the bufferutil one.
const require = createRequire(import.meta.url);
// ws's package exports hide lib/: reach its files through the path of its entry point.
const wsLib = join(dirname(require.resolve('ws')), 'lib');
const bufferUtilPath = join(wsLib, 'buffer-util.js');
process.env.WS_NO_BUFFER_UTIL = '1';
const wsJsUtil = require(bufferUtilPath) as { unmask(buffer: Buffer, mask: Buffer): void };
delete require.cache[bufferUtilPath];
delete process.env.WS_NO_BUFFER_UTIL;
const wsUtil = require(bufferUtilPath) as { unmask(buffer: Buffer, mask: Buffer): void };
const bufferutil = require('bufferutil') as { unmask(buffer: Buffer, mask: Buffer): void };
type WsReceiver = {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  write(chunk: Buffer): boolean;
};
const Receiver = require(join(wsLib, 'receiver.js')) as new (options: object) => WsReceiver;
const Sender = require(join(wsLib, 'sender.js')) as { frame(data: Buffer, options: object): Buffer[] };

export interface MicroFigure {
  id: string;
  section: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Values per contender, one per round. */
  systems: Record<string, number[]>;
  /** A second unit derived from the first (e.g. MB/s next to frames/s). */
  secondary?: { unit: string; systems: Record<string, number[]> };
  baseline: string;
}

const figures: MicroFigure[] = [];
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => {});

function time(run: () => void): number {
  const t0 = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Runs each contender `ROUNDS` times, rotating their order every round. `prepare` builds fresh
 * input outside the timed part and returns the timed function and how many units it processes.
 */
function contest(
  names: string[],
  prepare: (name: string) => { run: () => void; units: number },
): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  // One untimed pass each, so that every contender is compiled by the optimizing tier.
  for (const name of names) prepare(name).run();
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of rotate(names, round)) {
      // A round's figure is the best of three runs: on a shared machine a run is only ever slowed down.
      let best = 0;
      for (let i = 0; i < 3; i++) {
        const { run, units } = prepare(name);
        gc();
        best = Math.max(best, units / time(run));
      }
      out[name]!.push(best);
    }
  }
  return out;
}

// ------------------------------------------------------------------ parsing

const CHUNK = 64 * 1024;

/** A stream of masked binary frames of `size` bytes, about `total` bytes long, and how many frames it holds. */
function frameStream(size: number, total: number): { stream: Buffer; frames: number } {
  const data = Buffer.alloc(size, 0x61);
  const frame = clientFrame(2, data);
  const frames = Math.max(4, Math.floor(total / frame.length));
  return { stream: Buffer.concat(Array.from({ length: frames }, () => frame)), frames };
}

/** Fresh 64 KiB chunks of a copy of `stream` (the parsers unmask in place). */
function chunksOf(stream: Buffer): Buffer[] {
  const copy = Buffer.from(stream);
  const chunks: Buffer[] = [];
  for (let i = 0; i < copy.length; i += CHUNK) chunks.push(copy.subarray(i, Math.min(i + CHUNK, copy.length)));
  return chunks;
}

class CountingSink implements FrameSink {
  frames = 0;
  onFrameHeader(): boolean {
    return true;
  }
  onFrameData(): boolean {
    return true;
  }
  onFrameEnd(): boolean {
    this.frames++;
    return true;
  }
  onFrameError(error: Error): void {
    throw error;
  }
}

function parsing(): void {
  const sizes = QUICK ? [16, 64 * 1024] : [16, 1024, 64 * 1024, 1024 * 1024];
  const total = QUICK ? 4 << 20 : 8 << 20;
  for (const size of sizes) {
    const { stream, frames } = frameStream(size, total);
    const names = ['ours Connection', 'ours FrameParser', 'ws Receiver'];
    const systems = contest(names, (name) => {
      const chunks = chunksOf(stream);
      let count = 0;
      if (name === 'ws Receiver') {
        const receiver = new Receiver({ isServer: true, maxPayload: 0, binaryType: 'nodebuffer' });
        receiver.on('message', () => void count++);
        receiver.on('error', (error) => {
          throw error;
        });
        return {
          units: frames,
          run: () => {
            for (const chunk of chunks) receiver.write(chunk);
            if (count !== frames) throw new Error(`ws Receiver: ${count} of ${frames} messages`);
          },
        };
      }
      if (name === 'ours Connection') {
        // The whole protocol core, as a socket read drives it: parse, assemble, hand out events.
        const conn = new Connection({ maxPayload: 64 << 20 });
        return {
          units: frames,
          run: () => {
            for (const chunk of chunks) {
              conn.receiveData(chunk);
              while (conn.nextEvent() !== undefined) count++;
            }
            if (count !== frames) throw new Error(`Connection: ${count} of ${frames} messages`);
          },
        };
      }
      const sink = new CountingSink();
      const parser = new FrameParser(sink);
      return {
        units: frames,
        run: () => {
          for (const chunk of chunks) parser.push(chunk);
          if (sink.frames !== frames) throw new Error(`FrameParser: ${sink.frames} of ${frames} frames`);
        },
      };
    });
    const mb: Record<string, number[]> = {};
    for (const [name, values] of Object.entries(systems)) mb[name] = values.map((v) => (v * size) / 1e6);
    figures.push({
      id: `parse.${size}`,
      section: 'parse',
      label: `parse ${sizeLabel(size)} binary frames (64 KiB chunks)`,
      unit: 'frames/s',
      better: 'higher',
      systems,
      secondary: { unit: 'MB/s', systems: mb },
      baseline: 'ws Receiver',
    });
  }
}

// ------------------------------------------------------------------ encoding

function encoding(): void {
  const sizes = QUICK ? [16, 64 * 1024] : [16, 1024, 64 * 1024];
  for (const size of sizes) {
    const data = Buffer.alloc(size, 0x62);
    const count = Math.max(200, Math.floor((QUICK ? 2e7 : 4e7) / (size + 500)));
    const systems = contest(['ours encodeFrame', 'ours Connection.sendBinary', 'ws Sender.frame'], (name) => {
      let sink = 0;
      if (name === 'ws Sender.frame') {
        const options = { fin: true, rsv1: false, opcode: 2, mask: false, readOnly: false };
        return {
          units: count,
          run: () => {
            for (let i = 0; i < count; i++) sink += Sender.frame(data, options)[0]!.length;
          },
        };
      }
      if (name === 'ours encodeFrame') {
        return {
          units: count,
          run: () => {
            for (let i = 0; i < count; i++) sink += encodeFrame(2, data)[0].length;
          },
        };
      }
      // What a send costs in the core: the frame queued (small payloads copied behind their header) and taken.
      const conn = new Connection();
      return {
        units: count,
        run: () => {
          for (let i = 0; i < count; i++) {
            conn.sendBinary(data);
            sink += conn.takeOutput().length;
          }
        },
      };
    });
    figures.push({
      id: `encode.${size}`,
      section: 'encode',
      label: `encode a ${sizeLabel(size)} server frame`,
      unit: 'frames/s',
      better: 'higher',
      systems,
      baseline: 'ws Sender.frame',
    });
  }
}

// ------------------------------------------------------------------ unmasking

function unmasking(): void {
  const size = 1 << 20;
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  // Odd placement: a payload view rarely starts on an aligned address.
  const data = Buffer.alloc(size + 1).subarray(1);
  const target = Buffer.alloc(size);
  const repeat = QUICK ? 100 : 200;
  const contenders: Record<string, () => void> = {
    [`ours (${maskImplementation()})`]: () => applyMask(data, mask, 0),
    'ours, JS fallback': () => maskJs(data, mask, 0),
    'ws, JS fallback': () => wsJsUtil.unmask(data, mask),
    'ws + bufferutil': () => wsUtil.unmask(data, mask),
    'bufferutil.unmask (addon)': () => bufferutil.unmask(data, mask),
    'Buffer.copy (limit)': () => data.copy(target),
  };
  const systems = contest(Object.keys(contenders), (name) => {
    const f = contenders[name]!;
    const times = name.includes('JS fallback') && name.startsWith('ws') ? Math.max(5, repeat / 20) : repeat;
    return {
      units: times * size,
      run: () => {
        for (let i = 0; i < times; i++) f();
      },
    };
  });
  for (const values of Object.values(systems)) for (let i = 0; i < values.length; i++) values[i] = values[i]! / 1e9;
  figures.push({
    id: 'unmask.1MiB',
    section: 'unmask',
    label: 'unmask 1 MiB in place',
    unit: 'GB/s',
    better: 'higher',
    systems,
    baseline: 'ws + bufferutil',
  });
}

// ------------------------------------------------------------------ decoding text

/**
 * Decoding a text message to the string onMessage gets: the echo bench's text payloads (ASCII shaped
 * like JSON, and UTF-8 with accents and a check mark), through ours' decodeUtf8 and through V8's
 * decoder behind Buffer#toString and TextDecoder. GB/s of UTF-8 input.
 */
function decoding(): void {
  const rows: [number, 'text' | 'text-utf8'][] = QUICK
    ? [[16 * 1024, 'text-utf8']]
    : [[16 * 1024, 'text'], [16 * 1024, 'text-utf8'], [1024 * 1024, 'text-utf8']];
  for (const [size, kind] of rows) {
    const data = payload(size, kind);
    const decoder = new TextDecoder();
    const contenders: Record<string, () => string> = {
      [`ours decodeUtf8 (${utf8DecoderImplementation()})`]: () => decodeUtf8(data),
      'Buffer#toString': () => data.toString('utf8'),
      TextDecoder: () => decoder.decode(data),
    };
    const expected = data.toString('utf8');
    for (const [name, decode] of Object.entries(contenders)) if (decode() !== expected) throw new Error(`${name} decoded another string`);
    const times = Math.max(4, Math.floor((QUICK ? 2 << 20 : 8 << 20) / size));
    const systems = contest(Object.keys(contenders), (name) => {
      const decode = contenders[name]!;
      return {
        units: times * size,
        run: () => {
          let length = 0;
          for (let i = 0; i < times; i++) length += decode().length;
          if (length !== times * expected.length) throw new Error(`${name}: ${length} code units`);
        },
      };
    });
    for (const values of Object.values(systems)) for (let i = 0; i < values.length; i++) values[i] = values[i]! / 1e9;
    figures.push({
      id: `decode.${kind}.${size}`,
      section: 'decode',
      label: `decode ${sizeLabel(size)} of ${kind === 'text' ? 'ASCII text (JSON)' : 'UTF-8 text with accents (non-ASCII)'}`,
      unit: 'GB/s',
      better: 'higher',
      systems,
      baseline: 'Buffer#toString',
    });
  }
}

// ------------------------------------------------------------------ observing frames

/**
 * What watching the wire costs. Tracing and the pef-ws:frame channel reach the core as one frame
 * observer, set when a connection opens only if tracing is on or the channel has subscribers; with
 * nobody watching, what is left on the hot path is the observer's null check. 16 B frames through
 * the whole Connection: without an observer, and with one that does nothing.
 */
function observing(): void {
  const size = 16;
  const { stream, frames } = frameStream(size, QUICK ? 4 << 20 : 8 << 20);
  const names = ['nobody watching', 'a frame observer'];
  const ignore = (): void => {};
  const systems = contest(names, (name) => {
    const chunks = chunksOf(stream);
    const conn = new Connection({ maxPayload: 64 << 20, onFrame: name === 'nobody watching' ? null : ignore });
    let count = 0;
    return {
      units: frames,
      run: () => {
        for (const chunk of chunks) {
          conn.receiveData(chunk);
          while (conn.nextEvent() !== undefined) count++;
        }
        if (count !== frames) throw new Error(`Connection: ${count} of ${frames} messages`);
      },
    };
  });
  figures.push({
    id: 'observe.16',
    section: 'observe',
    label: 'parse 16 B frames through Connection (64 KiB chunks)',
    unit: 'frames/s',
    better: 'higher',
    systems,
    baseline: 'nobody watching',
  });
}

parsing();
encoding();
unmasking();
decoding();
observing();
process.stdout.write(JSON.stringify({ figures }));

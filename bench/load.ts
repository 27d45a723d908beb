// The load generator, its own process, on raw node:net sockets: no WebSocket library on this side.
// Frames are built and masked once before a run; each connection keeps K messages in flight and,
// for every echo that comes back (length and opcode checked), writes the next one. Driven by
// bench/run.ts over IPC; answers each command with {id, ...result}.

import { connect, type Socket } from 'node:net';
import { OPCODE_BINARY, OPCODE_TEXT, type PayloadKind, clientFrame, handshakeRequest, payload, treeCpuSeconds } from './common.js';

let port = 0;
let localCounter = 0;

/** A different local address per connection (127.0.0.2-254), so that TIME_WAIT never runs out of ports. */
function nextLocalAddress(): string {
  localCounter = (localCounter + 1) % 253;
  return `127.0.0.${localCounter + 2}`;
}

interface Run {
  running: boolean;
  opcode: number;
  size: number;
  /** K frames back to back: writing the first n of them sends n messages. */
  block: Buffer;
  frameLength: number;
  msgs: number;
  errors: number;
  inFlight: number;
  onIdle: (() => void) | null;
}

const NO_RUN: Run = {
  running: false, opcode: 0, size: 0, block: Buffer.alloc(0), frameLength: 0, msgs: 0, errors: 0, inFlight: 0, onIdle: null,
};
let run: Run = NO_RUN;

class Client {
  readonly socket: Socket;
  inFlight = 0;
  #remaining = 0;
  #pending: Buffer | null = null;

  constructor(socket: Socket, rest: Buffer) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    if (rest.length !== 0) this.#onData(rest);
  }

  send(count: number): void {
    this.inFlight += count;
    run.inFlight += count;
    this.socket.write(count * run.frameLength === run.block.length ? run.block : run.block.subarray(0, count * run.frameLength));
  }

  #onData(input: Buffer): void {
    let chunk = input;
    if (this.#pending !== null) {
      chunk = Buffer.concat([this.#pending, input]);
      this.#pending = null;
    }
    const end = chunk.length;
    const r = run;
    let pos = 0;
    let done = 0;
    while (pos < end) {
      if (this.#remaining > 0) {
        const take = end - pos < this.#remaining ? end - pos : this.#remaining;
        this.#remaining -= take;
        pos += take;
        if (this.#remaining === 0) done++;
        continue;
      }
      if (end - pos < 2) {
        this.#pending = chunk.subarray(pos);
        break;
      }
      const b0 = chunk[pos]!;
      const b1 = chunk[pos + 1]!;
      const length7 = b1 & 0x7f;
      // The raw echo sends our masked frames back as they were: skip their masking key too.
      const headerLength = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (end - pos < headerLength) {
        this.#pending = chunk.subarray(pos);
        break;
      }
      const length = length7 < 126 ? length7 : length7 === 126 ? chunk.readUInt16BE(pos + 2) : chunk.readUInt32BE(pos + 6);
      if ((b0 & 0x08) !== 0) {
        // A control frame (our heartbeat Pings, every 30 s): not an echo. A Ping gets its Pong, as
        // any client answers it (masked, with a zero key: this client needs no secrecy).
        if (end - pos < headerLength + length) {
          this.#pending = chunk.subarray(pos);
          break;
        }
        if ((b0 & 0x0f) === 0x9) {
          const pong = Buffer.alloc(6 + length);
          pong[0] = 0x8a;
          pong[1] = 0x80 | length;
          chunk.copy(pong, 6, pos + headerLength, pos + headerLength + length);
          this.socket.write(pong);
        }
        pos += headerLength + length;
        continue;
      }
      if (r !== NO_RUN && (b0 !== (0x80 | r.opcode) || length !== r.size)) {
        r.errors++;
        console.error(`load: unexpected frame: byte0 0x${b0.toString(16)}, length ${length}; expected opcode ${r.opcode}, ${r.size} bytes`);
      }
      pos += headerLength;
      this.#remaining = length;
      if (length === 0) done++;
    }
    if (done === 0) return;
    this.inFlight -= done;
    r.inFlight -= done;
    r.msgs += done;
    if (r.running) this.send(done);
    else if (r.inFlight === 0 && r.onIdle) r.onIdle();
  }
}

/** Opens one connection and completes the opening handshake; the 101's Sec-WebSocket-Accept is checked. */
function open(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const { request, accept } = handshakeRequest(port);
    const socket = connect({ port, host: '127.0.0.1', localAddress: nextLocalAddress(), noDelay: true });
    let head: Buffer = Buffer.alloc(0);
    // A handshake that never completes must not hang the run: give up on it after 10 s.
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('handshake timed out after 10 s'));
    }, 10_000);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      const text = head.subarray(0, end).toString('latin1');
      if (!text.startsWith('HTTP/1.1 101') || !text.includes(accept)) {
        socket.destroy();
        reject(new Error(`handshake refused: ${text.split('\r\n')[0]}`));
        return;
      }
      socket.on('error', () => {});
      resolve(new Client(socket, head.subarray(end + 4)));
    };
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    socket.on('error', onError);
    socket.on('connect', () => socket.write(request));
    socket.on('data', onData);
  });
}

let pool: Client[] = [];

/** Grows or shrinks the pool of open connections to `count`, opening up to 256 at a time. */
async function ensureConnections(count: number): Promise<void> {
  while (pool.length > count) pool.pop()!.socket.destroy();
  const missing = count - pool.length;
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < missing) {
      started++;
      pool.push(await open());
    }
  };
  await Promise.all(Array.from({ length: Math.min(256, missing) }, worker));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

interface Window {
  seconds: number;
  count: number;
  clientCpu: number;
  serverCpu: number;
}

/** Counts what happens in `measureMs` after `warmupMs`: events (`count()`), client CPU and the server tree's CPU. */
async function measure(serverPid: number, warmupMs: number, measureMs: number, count: () => number): Promise<Window> {
  await sleep(warmupMs);
  const t0 = process.hrtime.bigint();
  const c0 = count();
  const client0 = cpuSeconds();
  const server0 = treeCpuSeconds(serverPid);
  await sleep(measureMs);
  const server1 = treeCpuSeconds(serverPid);
  const client1 = cpuSeconds();
  const c1 = count();
  const t1 = process.hrtime.bigint();
  return { seconds: Number(t1 - t0) / 1e9, count: c1 - c0, clientCpu: client1 - client0, serverCpu: server1 - server0 };
}

interface EchoCommand {
  connections: number;
  inFlight: number;
  size: number;
  kind: PayloadKind;
  warmupMs: number;
  measureMs: number;
  serverPid: number;
}

async function echo(command: EchoCommand): Promise<object> {
  await ensureConnections(command.connections);
  const opcode = command.kind === 'binary' ? OPCODE_BINARY : OPCODE_TEXT;
  const frame = clientFrame(opcode, payload(command.size, command.kind));
  const block = Buffer.concat(Array.from({ length: command.inFlight }, () => frame));
  run = { running: true, opcode, size: command.size, block, frameLength: frame.length, msgs: 0, errors: 0, inFlight: 0, onIdle: null };
  const r = run;
  for (const client of pool) client.send(command.inFlight);
  const window = await measure(command.serverPid, command.warmupMs, command.measureMs, () => r.msgs);
  // Stop refilling and wait for every message in flight to come back, so the next run starts clean.
  r.running = false;
  if (r.inFlight !== 0) {
    await Promise.race([new Promise<void>((resolve) => (r.onIdle = resolve)), sleep(30_000)]);
  }
  if (r.inFlight !== 0) throw new Error(`${r.inFlight} echoes never came back`);
  if (r.errors !== 0) throw new Error(`${r.errors} echoes had the wrong opcode or length`);
  run = NO_RUN;
  return {
    msgs: window.count,
    seconds: window.seconds,
    msgsPerSecond: window.count / window.seconds,
    mbPerSecond: (window.count * command.size) / window.seconds / 1e6,
    clientCpu: window.clientCpu,
    serverCpu: window.serverCpu,
    serverCpuPerMessageUs: (window.serverCpu / window.count) * 1e6,
    clientCpuPerMessageUs: (window.clientCpu / window.count) * 1e6,
  };
}

/** Upgrades per second: `inFlight` handshakes at a time, each socket destroyed once its 101 is checked. */
async function upgrades(command: { inFlight: number; warmupMs: number; measureMs: number; serverPid: number }): Promise<object> {
  let done = 0;
  let failed = 0;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        const client = await open();
        client.socket.destroy();
        done++;
      } catch {
        failed++;
        await sleep(10);
      }
    }
  };
  const workers = Array.from({ length: command.inFlight }, worker);
  const window = await measure(command.serverPid, command.warmupMs, command.measureMs, () => done);
  stop = true;
  await Promise.all(workers);
  await sleep(200); // let the server finish closing those sockets before the next run
  return {
    upgrades: window.count,
    seconds: window.seconds,
    upgradesPerSecond: window.count / window.seconds,
    failed,
    serverCpuPerUpgradeUs: (window.serverCpu / window.count) * 1e6,
    clientCpu: window.clientCpu,
    serverCpu: window.serverCpu,
  };
}

/** Every pooled connection sends a 64 KiB binary frame but its last byte: the server holds a message in flight. */
async function partial(command: { size: number }): Promise<object> {
  const frame = clientFrame(OPCODE_BINARY, payload(command.size, 'binary'));
  const head = frame.subarray(0, frame.length - 1);
  await Promise.all(pool.map((client) => new Promise<void>((resolve) => client.socket.write(head, () => resolve()))));
  return { connections: pool.length, bytesEach: head.length };
}

type Command =
  | ({ type: 'echo' } & EchoCommand)
  | { type: 'upgrades'; inFlight: number; warmupMs: number; measureMs: number; serverPid: number }
  | { type: 'connect'; count: number }
  | { type: 'partial'; size: number }
  | { type: 'close' };

async function handle(command: Command): Promise<object> {
  switch (command.type) {
    case 'echo':
      return echo(command);
    case 'upgrades':
      return upgrades(command);
    case 'connect': {
      const t0 = process.hrtime.bigint();
      await ensureConnections(command.count);
      return { connections: pool.length, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
    }
    case 'partial':
      return partial(command);
    case 'close':
      for (const client of pool) client.socket.destroy();
      pool = [];
      return {};
  }
}

port = Number(process.argv[2]);
process.on('message', (message: Command & { id: number }) => {
  handle(message).then(
    (result) => process.send!({ id: message.id, result }),
    (error: unknown) => process.send!({ id: message.id, error: String((error as Error)?.stack ?? error) }),
  );
});
process.on('disconnect', () => process.exit(0));

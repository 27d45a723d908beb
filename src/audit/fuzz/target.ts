// The server under fuzzing: a URL, or a command the fuzzer starts itself (`--spawn 'CMD {port}'`)
// on a free port and starts again after each crash, so a crash can be replayed and shrunk like any
// other finding. Also the liveness check: a fresh connection must still open, and answer a Ping.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Opcode } from '../../protocol/constants.js';
import { ConnectError, RawConnection } from '../wire.js';

/** How a spawned server ended. */
export interface ServerExit {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
  /** The last lines it wrote on stdout and stderr. */
  output: string;
}

/** Keeps the last `max` characters of a stream's text. */
function tail(text: string, max: number): string {
  return text.length <= max ? text : text.slice(text.length - max);
}

/** A port nothing listens on right now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** Whether a TCP connection to host:port opens. */
function tcpOpens(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The server being fuzzed. Without a command it is the URL as given. With one, `{port}` in the
 * command is replaced by a free port, the command runs in a shell (in its own process group), and
 * the URL's port becomes that port.
 */
export class Target {
  readonly #url: URL;
  readonly #command: string | null;
  readonly #startTimeout: number;
  #child: ChildProcess | null = null;
  #exit: ServerExit | null = null;
  #output = '';
  #port = 0;
  /** How many times the command was started. */
  starts = 0;

  /**
   * `url`: the server's URL (its port is replaced when spawning); `command`: the spawn command
   * with `{port}`, or null; `startTimeout`: ms a spawned server has to accept TCP connections.
   */
  constructor(url: URL, command: string | null, startTimeout = 15_000) {
    this.#url = new URL(url);
    this.#command = command;
    this.#startTimeout = startTimeout;
  }

  /** Whether the fuzzer starts the server itself. */
  get spawned(): boolean {
    return this.#command !== null;
  }

  /** The URL to connect to (with the spawned server's port once started). */
  get url(): URL {
    return this.#url;
  }

  /** How the spawned server ended, if it did since it was last started. */
  get exited(): ServerExit | null {
    return this.#exit;
  }

  /** Starts the spawned server if it is not running (a no-op without a command). Throws Error when it does not come up. */
  async ensure(): Promise<void> {
    if (this.#command === null || (this.#child !== null && this.#exit === null)) return;
    await this.#start();
  }

  /** Waits up to `timeout` ms for the spawned server to exit; resolves with how it ended, or null. */
  async waitForExit(timeout: number): Promise<ServerExit | null> {
    const child = this.#child;
    if (child !== null && this.#exit === null) {
      const done = new AbortController();
      await Promise.race([once(child, 'exit', { signal: done.signal }), sleep(timeout, undefined, { signal: done.signal })]);
      done.abort();
    }
    return this.#exit;
  }

  /** Stops the spawned server (if it runs) and starts it again. */
  async restart(): Promise<void> {
    await this.stop();
    await this.ensure();
  }

  async #start(): Promise<void> {
    this.#port = await freePort();
    this.#url.port = String(this.#port);
    this.#exit = null;
    this.#output = '';
    this.starts++;
    const command = this.#command!.replaceAll('{port}', String(this.#port));
    const child = spawn(command, { shell: true, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const keep = (chunk: Buffer): void => {
      this.#output = tail(this.#output + chunk.toString('utf8'), 4096);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', (code, signal) => {
      if (this.#child === child) this.#exit = { code, signal, output: tail(this.#output.trimEnd(), 1000) };
    });
    const host = this.#url.hostname.replace(/^\[(.*)\]$/, '$1');
    const deadline = Date.now() + this.#startTimeout;
    while (!(await tcpOpens(host, this.#port))) {
      if (this.#exit !== null) {
        throw new Error(`the server command exited (${describeExit(this.#exit)}) before accepting connections on port ${this.#port}: ${command}`);
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`the server command did not accept connections on port ${this.#port} within ${this.#startTimeout} ms: ${command}`);
      }
      await sleep(25);
    }
  }

  /** Ends the spawned server's process group (SIGKILL: a fuzzed server may ignore SIGTERM). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      await exited;
    }
    child.stdout!.destroy();
    child.stderr!.destroy();
  }
}

/** "exit code 70" or "signal SIGSEGV", and the server's last output. */
export function describeExit(exit: ServerExit): string {
  const how = exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
  return exit.output === '' ? how : `${how}; its last output: ${JSON.stringify(exit.output.slice(-300))}`;
}

/** The outcome of a liveness check. */
export interface Liveness {
  /** Whether a fresh connection opened, upgraded, and answered a Ping with its Pong. */
  alive: boolean;
  /** Whether the server accepted a TCP connection at all. */
  accepts: boolean;
  /** What went wrong, in words; '' when alive. */
  problem: string;
}

const PROBE = Buffer.from('pef-ws fuzz: still there?');

/**
 * "Never a crashed server: the next connection must still work." Opens a fresh connection, upgrades
 * it, sends a Ping and waits for its Pong (§5.5.2), all within `timeout` ms, then closes it.
 */
export async function checkLiveness(url: URL, timeout: number): Promise<Liveness> {
  const deadline = performance.now() + timeout;
  let liveness = await probe(url, timeout);
  // A connection accepted and then dropped may be a server on its way out: the kernel still accepts
  // into the listener's backlog while the process exits. Ask again until it answers, refuses, or the
  // time is up; a server that exits is then seen as down, however slowly it dies.
  while (!liveness.alive && liveness.accepts && liveness.dropped && performance.now() < deadline) {
    await sleep(20);
    liveness = await probe(url, timeout);
  }
  return { alive: liveness.alive, accepts: liveness.accepts, problem: liveness.problem };
}

async function probe(url: URL, timeout: number): Promise<Liveness & { dropped: boolean }> {
  let connection: RawConnection;
  try {
    connection = await RawConnection.open(url, { connectTimeout: timeout });
  } catch (error) {
    const code = error instanceof ConnectError ? error.code : String(error);
    return { alive: false, accepts: false, dropped: false, problem: `the next connection failed (${code})` };
  }
  try {
    const { problem } = await connection.handshake(url, timeout);
    if (problem !== null) return { alive: false, accepts: true, dropped: connection.end !== null, problem: `the next connection was not upgraded: ${problem}` };
    await connection.send({ opcode: Opcode.Ping, payload: PROBE });
    const pong = (c: RawConnection): boolean => c.received.some((f) => f.opcode === Opcode.Pong && f.payload.equals(PROBE));
    await connection.waitFor((c) => pong(c) || c.end !== null, timeout);
    if (pong(connection)) return { alive: true, accepts: true, dropped: false, problem: '' };
    const dropped = connection.end !== null;
    return { alive: false, accepts: true, dropped, problem: dropped ? 'the next connection was closed before it answered a Ping' : `the next connection got no Pong within ${timeout} ms` };
  } finally {
    connection.destroy();
  }
}

// `pef-ws serve` as a user runs it (src/cli.ts under tsx), for the tests that need whole processes
// (workers, two servers on one Redis, the browser), and a `ws` client speaking JSON.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface Served {
  readonly child: ChildProcess;
  /** ws://127.0.0.1:<port> */
  readonly ws: string;
  /** http://127.0.0.1:<port>/ */
  readonly http: string;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `pef-ws serve <args>` on a free port; resolves once its start line is printed. */
export async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), 'serve', ...args, '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /serving http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`pef-ws serve exited before starting: ${stderr}`)));
  });
  return {
    child,
    ws: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}/`,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A `ws` client whose messages are JSON, all kept from the first (none lost before a listener). */
export class JsonClient {
  readonly ws: WebSocket;
  readonly inbox: Record<string, unknown>[] = [];
  readonly closed: Promise<number>;
  #waiters: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      this.inbox.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number) => {
        this.#wake();
        resolve(code);
      }),
    );
  }

  /** Connects; resolves once open. */
  static open(url: string): Promise<JsonClient> {
    const ws = new WebSocket(url);
    const client = new JsonClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(command: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(command));
  }

  /** Resolves once `predicate` holds for what was received (a guard of `guard` ms against hangs). */
  async until(predicate: (inbox: Record<string, unknown>[]) => boolean, guard = 60_000): Promise<void> {
    const deadline = Date.now() + guard;
    while (!predicate(this.inbox)) {
      if (Date.now() > deadline) throw new Error(`gave up waiting; received ${JSON.stringify(this.inbox.slice(-5))} (${this.inbox.length})`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 500).unref();
      });
    }
  }

  /** The queue messages received: { topic, id, msg }. */
  queued(): { id: number; msg: string }[] {
    return this.inbox.filter((m) => 'topic' in m) as unknown as { id: number; msg: string }[];
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

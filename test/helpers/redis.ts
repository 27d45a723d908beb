// A real redis-server for the tests (Debian's redis-server package): started on a free loopback
// port in a temporary folder, with no snapshotting, stopped by the test. Never a mock.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where `apt-get install redis-server` puts it. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** false when redis-server is there, else the reason a Redis test is skipped. */
export const skipWithoutRedis: false | string = existsSync(REDIS_SERVER)
  ? false
  : `no redis-server at ${REDIS_SERVER} (apt-get install redis-server): the Redis test did not run`;

/** A free TCP port on 127.0.0.1 (the kernel picks it; the listener is closed before use). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Shuts Redis down (SIGTERM: it writes its append-only file and exits) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder (the append-only file, if on, brings the data back). */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

/** Starts redis-server on a free port in a new temporary folder; `appendonly` turns on its append-only file. */
export async function startRedis(options: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pef-redis-'));
  let child: ChildProcess | null = null;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', options.appendonly ? 'yes' : 'no'];

  async function start(): Promise<void> {
    const started = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          started.stdout!.off('data', onData);
          started.stdout!.resume();
          resolve();
        }
      };
      started.stdout!.on('data', onData);
      started.stderr!.resume();
      started.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
    });
  }

  async function stop(): Promise<void> {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

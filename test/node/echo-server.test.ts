// The echo server that conformance tools are aimed at, run as its own process: it prints one line
// with the port it listens on (so --port 0 works), echoes text and binary, and stops with exit
// code 0 on SIGTERM, closing open connections with 1001.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { CloseCode } from '../../src/protocol/constants.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Echo {
  child: ChildProcess;
  url: string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/** Starts the echo server on port 0 and reads the URL from its one line of output. */
async function startEcho(...args: string[]): Promise<Echo> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/echo-server.ts', '--port', '0', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let output = '';
  child.stdout!.setEncoding('utf8');
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      const end = output.indexOf('\n');
      if (end !== -1) resolve(output.slice(0, end));
    });
    void exited.then(([code]) => reject(new Error(`echo server exited with ${code} before listening: ${output}`)));
  });
  const match = /^echo server listening on (ws:\/\/127\.0\.0\.1:(\d+)\/)$/.exec(line);
  assert.ok(match, `unexpected first line: ${line}`);
  assert.notEqual(Number(match[2]), 0);
  return { child, url: match[1]!, exited };
}

describe('the echo server', () => {
  test('with --port 0 it prints the real port, echoes text and binary, and on SIGTERM closes with 1001 and exits 0', async () => {
    const echo = await startEcho();
    const ws = new WebSocket(echo.url);
    await once(ws, 'open');
    const next = (): Promise<[Buffer, boolean]> => once(ws, 'message') as Promise<[Buffer, boolean]>;

    let reply = next();
    ws.send('héllo');
    let [data, isBinary] = await reply;
    assert.equal(isBinary, false);
    assert.equal(data.toString('utf8'), 'héllo');

    reply = next();
    ws.send(Buffer.of(0, 1, 2, 255));
    [data, isBinary] = await reply;
    assert.equal(isBinary, true);
    assert.deepEqual(data, Buffer.of(0, 1, 2, 255));

    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    echo.child.kill('SIGTERM');
    const [code, reason] = await closed;
    assert.equal(code, CloseCode.GoingAway);
    assert.equal(reason.toString(), 'server shutting down');
    assert.deepEqual(await echo.exited, [0, null]);
  });

  test('with no connection open, SIGINT stops it at once with exit code 0', async () => {
    const echo = await startEcho();
    echo.child.kill('SIGINT');
    assert.deepEqual(await echo.exited, [0, null]);
  });

  test('a port that is not a number is refused with exit code 2', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/echo-server.ts', '--port', 'many'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    assert.deepEqual(await once(child, 'exit'), [2, null]);
    assert.equal(stderr, 'usage: npm run echo -- [--port N] [--host ADDRESS]\n');
  });
});

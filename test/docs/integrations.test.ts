// The examples behind docs/integrations.md, each started and talked to: node:http, node:https
// (wss), Express, Fastify and Koa serve their own HTTP page and upgrade /wsEcho to the Echo
// handler on the same port; an upgrade request for another path gets 404.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as http from '../../examples/integrations/http.js';
import * as https from '../../examples/integrations/https.js';
import * as express from '../../examples/integrations/express.js';
import * as fastify from '../../examples/integrations/fastify.js';
import * as koa from '../../examples/integrations/koa.js';

type Start = (port?: number, host?: string) => Promise<{ url: string; close(): Promise<void> }>;

const tls = { ca: https.certificate };

/** GET / over HTTP(S): the framework's own page, on the port the WebSockets share. */
async function page(url: string): Promise<string> {
  const target = url.replace(/^ws/, 'http') + '/';
  if (target.startsWith('https:')) {
    const [response] = (await once(httpsGet(target, tls), 'response')) as [NodeJS.ReadableStream & { statusCode: number }];
    let body = '';
    for await (const chunk of response) body += String(chunk);
    return body;
  }
  const response = await fetch(target);
  return response.text();
}

/** Sends one text and one binary message to /wsEcho and returns what came back, then closes with 1000. */
async function echo(url: string): Promise<{ text: string; binary: string; code: number }> {
  const ws = new WebSocket(`${url}/wsEcho`, tls);
  await once(ws, 'open');
  const received: [Buffer, boolean][] = [];
  const two = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      received.push([data, isBinary]);
      if (received.length === 2) resolve();
    }),
  );
  ws.send('hello');
  ws.send(Buffer.of(1, 2, 3));
  await two;
  ws.close(1000);
  const [code] = (await once(ws, 'close')) as [number];
  assert.equal(received[0]![1], false);
  assert.equal(received[1]![1], true);
  return { text: received[0]![0].toString('utf8'), binary: received[1]![0].toString('hex'), code };
}

/** The status an upgrade request for a path that is no route gets. */
async function unknownRoute(url: string): Promise<number> {
  const ws = new WebSocket(`${url}/wsNope`, tls);
  ws.on('error', () => {});
  const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; destroy(): void }];
  response.destroy();
  return response.statusCode;
}

const examples: [string, Start, string][] = [
  ['node:http', http.start, 'hello from node:http\n'],
  ['node:https', https.start, 'hello from node:https\n'],
  ['Express', express.start, 'hello from Express\n'],
  ['Fastify', fastify.start, 'hello from Fastify\n'],
  ['Koa', koa.start, 'hello from Koa\n'],
];

describe('integration examples', () => {
  for (const [name, start, greeting] of examples) {
    test(`${name}: the framework serves its page and /wsEcho echoes on the same port; other paths get 404`, async () => {
      const server = await start(0, '127.0.0.1');
      try {
        assert.equal(await page(server.url), greeting);
        assert.deepEqual(await echo(server.url), { text: 'hello', binary: '010203', code: 1000 });
        assert.equal(await unknownRoute(server.url), 404);
      } finally {
        await server.close();
      }
    });
  }

  test('an example runs on its own with node --import tsx, and stops on SIGTERM', async () => {
    const file = fileURLToPath(new URL('../../examples/integrations/http.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', file, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString('utf8');
          const match = /listening on (ws:\/\/[\d.]+:\d+)\/wsEcho\n/.exec(output);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
      assert.deepEqual(await echo(url), { text: 'hello', binary: '010203', code: 1000 });
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

// The pef-ws command as a user runs it (from src/ under tsx): the start line, static files, bad
// arguments, loading errors, --workers N with node:cluster, and SIGTERM closing with 1001.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { CloseCode } from '../../src/index.js';
import { closed, connect, messages, nextMessage } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src', 'cli.ts');
const fixtures = join(root, 'test', 'framework', 'fixtures');
const demoHandlers = join(root, 'examples', 'wstest', 'app', 'WSTest', 'WebSocket');
const demoTemplates = join(root, 'examples', 'wstest', 'templates');

interface Running {
  readonly child: ChildProcess;
  readonly line: string;
  /** http://127.0.0.1:<port>/ as printed. */
  readonly url: string;
  readonly ws: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(
  args: string[],
  port?: string,
): { child: ChildProcess; exited: Running['exited']; output: () => { stdout: string; stderr: string } } {
  const env = { ...process.env };
  delete env['PORT']; // the tests choose the port
  if (port !== undefined) env['PORT'] = port;
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** Starts `pef-ws serve ...` and resolves with its start line. */
async function start(args: string[], port?: string): Promise<Running> {
  const { child, exited, output } = run(args, port);
  const line = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const first = output().stdout.split('\n');
      if (first.length > 1) {
        child.stdout!.off('data', onData);
        resolve(first[0]!);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code }) => reject(new Error(`pef-ws exited with ${code} before starting: ${output().stderr}`)));
  });
  const match = /^pef-ws: serving (http:\/\/127\.0\.0\.1:(\d+)\/) /.exec(line);
  assert.ok(match, `start line: ${line}`);
  return { child, line, url: match[1]!, ws: `ws://127.0.0.1:${match[2]}`, exited };
}

/** A raw GET, so that the path reaches the server exactly as written (fetch would normalise '..'). */
function get(url: string, path: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(url), { path }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('pef-ws serve', () => {
  test('serves the demo: one start line with the URL and the routes, ws.html at /, the echo at /wsEcho', async () => {
    const server = await start(['serve', demoHandlers, '--port', '0', '--static', demoTemplates]);
    assert.equal(server.line, `pef-ws: serving ${server.url} WebSocket routes /wsChatRoom, /wsEcho, files from ${demoTemplates}`);

    const page = await get(server.url, '/');
    assert.equal(page.status, 200);
    assert.equal(page.type, 'text/html; charset=utf-8');
    assert.ok(page.body.includes('id="blackboard"'));
    assert.deepEqual(await get(server.url, '/%2e%2e/package.json'), {
      status: 404,
      type: 'text/plain; charset=utf-8',
      body: 'not found\n',
    });
    assert.deepEqual(await get(server.url, '/wsEcho'), { status: 426, type: 'text/plain; charset=utf-8', body: 'this path speaks WebSocket\n' });

    const ws = await connect(`${server.ws}/wsEcho`);
    const echoed = nextMessage(ws);
    ws.send('ciao');
    assert.deepEqual(await echoed, { data: 'ciao', isBinary: false });

    // The chat room: a topic per room; JSON lines with their ids (docs/pubsub.md).
    const json = (m: { data: string | Buffer }): Record<string, unknown> => JSON.parse(String(m.data)) as Record<string, unknown>;
    const alice = new WebSocket(`${server.ws}/wsChatRoom?room=test&nick=alice`);
    const aliceFirst = await messages(alice, 2);
    assert.equal(json(aliceFirst[0]!)['welcome'], 'alice');
    assert.deepEqual(json(aliceFirst[1]!), { id: 1, text: '* alice joined' });
    const aliceSees = nextMessage(alice);
    const bob = new WebSocket(`${server.ws}/wsChatRoom?room=test&nick=bob`);
    assert.deepEqual(json((await messages(bob, 2))[1]!), { id: 2, text: '* bob joined' });
    assert.deepEqual(json(await aliceSees), { id: 2, text: '* bob joined' });
    const both = [nextMessage(alice), nextMessage(bob)];
    bob.send('hello');
    assert.deepEqual((await Promise.all(both)).map(json), [1, 2].map(() => ({ id: 3, text: 'bob: hello' })));

    // SIGTERM: every connection gets 1001 Going Away and the process exits 0.
    const closes = Promise.all([ws, alice, bob].map(closed));
    server.child.kill('SIGTERM');
    assert.deepEqual(await closes, [1, 2, 3].map(() => ({ code: CloseCode.GoingAway, reason: 'server shutting down' })));
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  test('index.html is served at / when the static folder has one, and other files with their type', async () => {
    const server = await start(['serve', join(fixtures, 'workers'), '--port', '0', '--static', join(fixtures, 'static')]);
    const page = await get(server.url, '/');
    assert.equal(page.status, 200);
    assert.ok(page.body.includes('the index page'));
    assert.deepEqual(await get(server.url, '/style.css'), { status: 200, type: 'text/css; charset=utf-8', body: 'body { color: black; }\n' });
    assert.equal((await get(server.url, '/missing.html')).status, 404);
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  test('PORT in the environment replaces the default port 8080', async () => {
    const server = await start(['serve', join(fixtures, 'workers')], '0');
    assert.notEqual(server.url, 'http://127.0.0.1:8080/');
    assert.equal(server.line, `pef-ws: serving ${server.url} WebSocket routes /wsPid`);
    server.child.kill('SIGINT');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  test('--help prints the usage and exits 0', async () => {
    const { exited, output } = run(['--help']);
    assert.deepEqual(await exited, { code: 0, signal: null });
    assert.ok(output().stdout.startsWith('usage: pef-ws serve <handlers-dir> [--port 8080] [--host 127.0.0.1] [--workers N] [--static DIR]\n'));
  });

  for (const [args, message] of [
    [[], 'no command given'],
    [['start', 'dir'], 'unknown command "start"'],
    [['serve'], 'serve takes exactly one handlers folder'],
    [['serve', join(fixtures, 'good'), '--port', 'abc'], '--port must be a port number (0-65535), not "abc"'],
    [['serve', join(fixtures, 'good'), '--port', '70000'], '--port must be a port number (0-65535), not "70000"'],
    [['serve', join(fixtures, 'good'), '--workers', '0'], '--workers must be a number of processes (1 or more), not "0"'],
    [['serve', join(fixtures, 'good'), '--bogus'], "Unknown option '--bogus'"],
    [['serve', join(fixtures, 'missing')], `the handlers folder ${join(fixtures, 'missing')} does not exist`],
    [['serve', join(fixtures, 'static', 'index.html')], `the handlers folder ${join(fixtures, 'static', 'index.html')} is not a folder`],
  ] as const) {
    test(`bad arguments print the usage and exit 2: ${args.join(' ') || '(none)'}`, async () => {
      const { exited, output } = run([...args]);
      assert.deepEqual(await exited, { code: 2, signal: null });
      const { stdout, stderr } = output();
      assert.equal(stdout, '');
      assert.ok(stderr.startsWith(`pef-ws: ${message}`), stderr);
      assert.ok(stderr.includes('\nusage: pef-ws serve <handlers-dir> [--port 8080] [--host 127.0.0.1] [--workers N] [--static DIR]\n'));
    });
  }

  test('a handler folder that fails to load stops the command with exit 1 and the file named', async () => {
    const { exited, output } = run(['serve', join(fixtures, 'throws'), '--port', '0']);
    assert.deepEqual(await exited, { code: 1, signal: null });
    // As Node prints it: the file with line and column, then the stack.
    const file = join(fixtures, 'throws', 'Bad.mjs');
    assert.match(output().stderr, new RegExp(`^pef-ws: ${file}:2:7: failed to load: exploded on import\\n\\nError: exploded on import\\n {4}at file://${file}:2:7\\n`));
  });
});

describe('pef-ws serve --workers', () => {
  test('two worker processes share the port and both take connections; SIGTERM closes all with 1001', async () => {
    const server = await start(['serve', join(fixtures, 'workers'), '--port', '0', '--workers', '2']);
    assert.equal(server.line, `pef-ws: serving ${server.url} WebSocket routes /wsPid in 2 workers`);
    const clients: WebSocket[] = [];
    const pids = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const ws = new WebSocket(`${server.ws}/wsPid`);
      clients.push(ws);
      pids.add(String((await nextMessage(ws)).data));
    }
    assert.equal(pids.size, 2, `pids seen: ${[...pids].join(', ')}`);
    assert.ok(!pids.has(String(server.child.pid)), 'the primary serves no connection');

    const closes = Promise.all(clients.map(closed));
    server.child.kill('SIGTERM');
    const codes = await closes;
    assert.deepEqual(codes, clients.map(() => ({ code: CloseCode.GoingAway, reason: 'server shutting down' })));
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });
});

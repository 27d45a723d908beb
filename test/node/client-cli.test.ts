// pef-ws connect as a user runs it, in a child process against a server the test starts: lines in
// become text messages, messages out are printed, --trace prints the frames in NODE_DEBUG's format,
// --protocol, --header and --compression reach the handshake; failures set the exit status.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketRouter } from '../../src/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src', 'cli.ts');

/** Runs `pef-ws connect ...` with `input` on stdin; resolves with its exit status and output. */
async function run(args: string[], input: string | null = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env['NODE_DEBUG'];
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'connect', ...args], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (input !== null) child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

const fixtures = join(root, 'test', 'fixtures', 'tls');

class Echo {
  onMessage(this: { send(m: string | Buffer, t: string): void }, message: string | Buffer, type: string): void {
    this.send(message, type);
    if (message === 'binary please') this.send(Buffer.from([0xde, 0xad]), 'binary');
  }
}

describe('pef-ws connect', () => {
  const server = createServer();
  const requests: IncomingMessage[] = [];
  let url = '';
  before(async () => {
    const router = new WebSocketRouter({ selectProtocol: (offered) => offered.at(-1) ?? null })
      .route('/echo', Echo)
      .route(
        '/bye',
        class {
          onOpen(this: { close(code: number, reason: string): void }) {
            this.close(4001, 'go away');
          }
        },
      );
    server.on('upgrade', (request: IncomingMessage) => void requests.push(request));
    router.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('lines typed are sent as text; messages received are printed; end of input closes with 1000', async () => {
    const { code, stdout, stderr } = await run([`${url}/echo`], 'hello\nbinary please\nlast\n');
    assert.equal(stdout, 'hello\nbinary please\nbinary dead\nlast\n');
    assert.match(stderr, new RegExp(`^connected to ${url}/echo\\n`));
    assert.match(stderr, /closed: 1000\n$/);
    assert.equal(code, 0);
  });

  test('--trace prints every frame both ways in the NODE_DEBUG format', async () => {
    const { code, stderr } = await run([`${url}/echo`, '--trace'], 'hi\n');
    const lines = stderr.split('\n').filter((line) => /^#\d+ /.test(line)).map((line) => line.replace(/^#\d+ /, ''));
    // Each direction in order (when the end of input is read, relative to the echo, is the kernel's choice).
    assert.equal(lines[0], 'handshake 101 url="/echo" protocol="" extensions=""');
    assert.deepEqual(
      lines.filter((line) => line.startsWith('out ')),
      ['out text fin=1 rsv=000 masked=1 len=2 hex=6869', 'out close fin=1 rsv=000 masked=1 len=2 code=1000 reason="" hex=03e8'],
    );
    assert.deepEqual(
      lines.filter((line) => line.startsWith('in ')),
      ['in text fin=1 rsv=000 masked=0 len=2 hex=6869', 'in close fin=1 rsv=000 masked=0 len=2 code=1000 reason="" hex=03e8'],
    );
    assert.equal(lines.at(-1), 'closed code=1000 reason=""');
    assert.equal(lines.length, 6);
    assert.equal(code, 0);
  });

  test('--protocol, --header, --origin and --compression reach the upgrade request', async () => {
    const { code, stderr } = await run([`${url}/echo`, '--protocol', 'a', '--protocol', 'b', '--header', 'X-Debug: yes please', '--origin', url.replace('ws:', 'http:'), '--compression']);
    const request = requests.at(-1)!;
    assert.equal(request.headers['sec-websocket-protocol'], 'a, b');
    assert.equal(request.headers['x-debug'], 'yes please');
    assert.equal(request.headers['origin'], url.replace('ws:', 'http:'));
    assert.equal(request.headers['sec-websocket-extensions'], 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    assert.match(stderr, /, subprotocol b, extensions permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\n/);
    assert.equal(code, 0);
  });

  test('the server closing ends the command, with its code and reason', async () => {
    const { code, stderr } = await run([`${url}/bye`], null);
    assert.match(stderr, /closed: 4001 go away\n$/);
    assert.equal(code, 0);
  });

  test('a refused handshake prints its code, status and body, and exits 1', async () => {
    const { code, stdout, stderr } = await run([`${url}/nowhere`]);
    assert.equal(stdout, '');
    assert.match(stderr, /^pef-ws: WS_ERR_HANDSHAKE_STATUS \(HTTP 404\): the server answered 404 Not Found\n.+\n$/);
    assert.equal(code, 1);
  });

  test('wss:// with --ca trusts a self-signed certificate, --insecure accepts it unchecked', async () => {
    const tls = createHttpsServer({ cert: readFileSync(join(fixtures, 'cert.pem')), key: readFileSync(join(fixtures, 'key.pem')) });
    new WebSocketRouter().route('/echo', Echo).attach(tls);
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    try {
      const wss = `wss://localhost:${(tls.address() as AddressInfo).port}/echo`;
      const trusted = await run([wss, '--ca', join(fixtures, 'cert.pem')], 'secure\n');
      assert.equal(trusted.stdout, 'secure\n');
      assert.equal(trusted.code, 0);
      const insecure = await run([wss, '--insecure'], 'anyway\n');
      assert.equal(insecure.stdout, 'anyway\n');
      assert.equal(insecure.code, 0);
      const refused = await run([wss], '');
      assert.match(refused.stderr, /^pef-ws: DEPTH_ZERO_SELF_SIGNED_CERT: /);
      assert.equal(refused.code, 1);
    } finally {
      tls.closeAllConnections();
      tls.close();
    }
  });

  test('bad arguments print the usage and exit 2', async () => {
    for (const args of [[], ['--nope', url], [url, '--header', 'no colon'], ['ftp://x/']]) {
      const { code, stderr } = await run(args);
      assert.match(stderr, /usage: pef-ws connect <url>/);
      assert.equal(code, 2, args.join(' '));
    }
    const help = await run(['--help']);
    assert.match(help.stdout, /^usage: pef-ws connect/);
    assert.equal(help.code, 0);
  });
});

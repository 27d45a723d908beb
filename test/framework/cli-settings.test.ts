// pef-ws speaks the settings: --version (both `pef-ws --version` and `pef-ws serve --version`),
// --help with the defaults, --max-payload, --origin (repeatable, * with a warning), --heartbeat,
// --idle-timeout, --no-compression; a refused origin is logged with the fix; a syntax error in a
// handler is printed with file:line:column and the code frame. Each through a child process.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { CloseCode } from '../../src/index.js';
import { closed, refused } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src', 'cli.ts');
const echo = join(root, 'examples', 'integrations', 'handlers');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

interface Child {
  readonly exited: Promise<number | null>;
  /** Resolves with the port of the start line. */
  readonly started: Promise<number>;
  stdout(): string;
  stderr(): string;
  /** Resolves once stderr holds `text` (it arrives through a pipe, after the server acted). */
  stderrIncludes(text: string): Promise<void>;
  kill(): void;
}

/** Runs `node --import tsx src/cli.ts ...args` in the project folder. */
function pefWs(args: string[]): Child {
  const env = { ...process.env };
  delete env['PORT'];
  delete env['NODE_DEBUG'];
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const started = new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /^pef-ws: serving http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout);
      if (match !== null) resolve(Number(match[1]));
    });
    void exited.then((code) => reject(new Error(`pef-ws exited with ${code}: ${stderr}`)));
  });
  started.catch(() => {});
  const stderrIncludes = (text: string): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!stderr.includes(text)) return;
        child.stderr.off('data', check);
        resolve();
      };
      child.stderr.on('data', check);
      check();
    });
  return { exited, started, stdout: () => stdout, stderr: () => stderr, stderrIncludes, kill: () => child.kill('SIGTERM') };
}

const tmp = mkdtempSync(join(tmpdir(), 'pef-ws-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('pef-ws --version and --help', () => {
  for (const args of [['--version'], ['serve', '--version']]) {
    test(`pef-ws ${args.join(' ')} prints the package's version and exits 0`, async () => {
      const child = pefWs(args);
      assert.equal(await child.exited, 0);
      assert.deepEqual([child.stdout(), child.stderr()], [`${version}\n`, '']);
    });
  }

  test('serve --help lists every setting with its default, and NODE_DEBUG=pef-ws', async () => {
    const child = pefWs(['serve', '--help']);
    assert.equal(await child.exited, 0);
    const help = child.stdout();
    for (const line of [
      /--origin URL +also accept pages from this origin \(repeatable; default: same host only;/,
      /--max-payload BYTES +largest message accepted \(default 1048576\)/,
      /--heartbeat SECONDS +a Ping every SECONDS, 0 for none \(default 30\)/,
      /--idle-timeout SECONDS +close \(1001\) a connection silent this long, 0 for never \(default 0\)/,
      /--no-compression +do not negotiate permessage-deflate/,
      /--version +print the version and exit/,
      /NODE_DEBUG=pef-ws prints a line per handshake and per frame/,
    ]) {
      assert.match(help, line);
    }
  });
});

describe('pef-ws serve settings', () => {
  test('--max-payload, --origin, --heartbeat and --no-compression reach every connection; a refused origin is logged with the fix', async () => {
    const child = pefWs([
      'serve', echo, '--port', '0',
      '--max-payload', '10', '--origin', 'http://localhost:5173', '--origin', 'https://app.example/', '--heartbeat', '0.05', '--no-compression',
    ]);
    try {
      const port = await child.started;
      const ws = new WebSocket(`ws://127.0.0.1:${port}/wsEcho`, { origin: 'http://localhost:5173' });
      const pinged = once(ws, 'ping'); // listening before 'open': it may come in the 101's packet
      await once(ws, 'open');
      assert.equal(ws.extensions, ''); // ws offers permessage-deflate; --no-compression declines it
      await pinged; // --heartbeat 0.05: a Ping within the first 50 ms interval
      const end = closed(ws);
      ws.send('eleven byte');
      assert.deepEqual(await end, { code: CloseCode.MessageTooBig, reason: 'message over the limit of 10 bytes' });

      const other = new WebSocket(`ws://127.0.0.1:${port}/wsEcho`, { origin: 'https://app.example' });
      await once(other, 'open');
      other.close();
      await closed(other);

      const refusal = await refused(`ws://127.0.0.1:${port}/wsEcho`, undefined, 'http://localhost:3000');
      assert.equal(refusal.status, 403);
      await child.stderrIncludes(
        `pef-front-websocket: origin http://localhost:3000 refused at /wsEcho (the page is not from 127.0.0.1:${port}, ` +
          'the host it connected to): allow it with --origin http://localhost:3000 or the origins option\n',
      );
    } finally {
      child.kill();
      assert.equal(await child.exited, 0);
    }
  });

  test('--idle-timeout closes a silent connection with 1001; --origin * accepts any page, with a warning', async () => {
    const child = pefWs(['serve', echo, '--port', '0', '--idle-timeout', '0.1', '--origin', '*', '--heartbeat', '0']);
    try {
      const port = await child.started;
      await child.stderrIncludes('pef-ws: warning: --origin * lets a page on any site open WebSockets here');
      assert.ok(child.stderr().startsWith('pef-ws: warning: --origin *'));
      const ws = new WebSocket(`ws://127.0.0.1:${port}/wsEcho`, { origin: 'http://anywhere.example' });
      ws.on('ping', () => assert.fail('--heartbeat 0 sends no Ping'));
      const end = closed(ws);
      await once(ws, 'open');
      assert.equal((await end).code, CloseCode.GoingAway);
    } finally {
      child.kill();
      assert.equal(await child.exited, 0);
    }
  });

  for (const [args, message] of [
    [['--max-payload', '0'], '--max-payload must be a number of bytes (1 or more), not "0"'],
    [['--max-payload', '1k'], '--max-payload must be a number of bytes (1 or more), not "1k"'],
    [['--heartbeat=-1'], '--heartbeat must be a number of seconds (0 turns it off), not "-1"'],
    [['--idle-timeout', 'soon'], '--idle-timeout must be a number of seconds (0 turns it off), not "soon"'],
    [['--origin', 'localhost:5173'], '--origin must be an origin such as http://localhost:5173 (scheme, host and port, no path), not "localhost:5173"'],
    [['--origin', 'http://a.example/app'], '--origin must be an origin such as http://localhost:5173 (scheme, host and port, no path), not "http://a.example/app"'],
  ] as const) {
    test(`bad values exit 2 with the reason: ${args.join(' ')}`, async () => {
      const child = pefWs(['serve', echo, '--port', '0', ...args]);
      assert.equal(await child.exited, 2);
      assert.ok(child.stderr().startsWith(`pef-ws: ${message}\nusage: pef-ws serve`), child.stderr());
    });
  }

  test('a handler with a syntax error: file:line:column, the message and the code frame, exit 1', async () => {
    const file = join(tmp, 'Broken.mjs');
    writeFileSync(file, 'export default class Broken {\n  onOpen() {\n    this.send("hi";\n  }\n}\n');
    const child = pefWs(['serve', tmp, '--port', '0']);
    assert.equal(await child.exited, 1);
    assert.equal(child.stderr(), `pef-ws: ${file}:3:15: failed to load: missing ) after argument list\n\n        this.send("hi";\n                  ^\n`);
  });
});

// pef-ws audit as a user runs it (a child process, from src/ under tsx): the summary on stdout, the
// JSON report with the field names, a self-contained HTML report, and the exit status.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acceptWebSocket, type WebSocketConnection } from '../../src/index.js';
import { startBrokenServer } from './broken-servers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src', 'cli.ts');

function pefWs(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

let server: Server;
let url: string;
let dir: string;
before(async () => {
  server = createServer();
  server.on('upgrade', (request, socket, head) => {
    const ws: WebSocketConnection | null = acceptWebSocket(request, socket, head, { onMessage: (m, t) => void ws!.send(m, t) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  dir = await mkdtemp(join(tmpdir(), 'pef-audit-'));
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('pef-ws audit', () => {
  test('audits the cases selected, writes both reports, exits 0 when nothing FAILED', async () => {
    const json = join(dir, 'report.json');
    const html = join(dir, 'report.html');
    const result = await pefWs(['audit', url, '--echo', '--cases', 'ping.*,close.code.1000', '--json', json, '--html', html]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^family\s+OK\s+NON-STRICT\s+FAILED\s+INFORMATIONAL\s+UNIMPLEMENTED\n/);
    assert.match(result.stdout, /\ntotal\s+10\s+0\s+0\s+0\s+0\n/);
    assert.match(result.stdout, new RegExp(`\\n10 cases against ${url.replace(/[./]/g, '\\$&')} in \\d+\\.\\d s\\n`));
    assert.doesNotMatch(result.stdout, /\r|\x1b\[/, 'no progress bar or colours when stdout is not a terminal');

    const report = JSON.parse(await readFile(json, 'utf8'));
    assert.deepEqual(Object.keys(report).slice(0, 3), ['url', 'cases', 'counts']);
    assert.equal(report.url, url);
    assert.deepEqual(report.counts, { OK: 10, 'NON-STRICT': 0, FAILED: 0, INFORMATIONAL: 0, UNIMPLEMENTED: 0 });
    const ping = report.cases.find((c: { id: string }) => c.id === 'ping.text');
    assert.deepEqual(Object.keys(ping).slice(0, 8), ['id', 'title', 'rfc', 'verdict', 'close', 'expected', 'observed', 'wire']);
    assert.equal(ping.rfc, 'RFC 6455 §5.5.2');
    assert.deepEqual(ping.wire.filter((e: { type: string }) => e.type === 'frame').map((e: { direction: string; frame: { opcode: string; text?: string; closeCode?: number } }) => [e.direction, e.frame.opcode, e.frame.text ?? e.frame.closeCode]), [
      ['sent', 'ping', 'Hello, world!'],
      ['received', 'pong', 'Hello, world!'],
      ['sent', 'close', 1000],
      ['received', 'close', 1000],
    ]);
    assert.deepEqual(ping.close, { verdict: 'OK', code: 1000, reason: '', closeFrame: true, serverClosedTcpFirst: true, tcpClosedInTime: true, detail: ping.close.detail });

    const page = await readFile(html, 'utf8');
    assert.match(page, /^<!DOCTYPE html>/);
    assert.match(page, /<span class="v OK">OK<\/span> <code>ping\.text<\/code>/);
    assert.doesNotMatch(page, /<script|<link|src=|https?:\/\//, 'self-contained: nothing to fetch');
  });

  test('exits 1 when a case FAILED, naming it in the summary', async () => {
    const broken = await startBrokenServer('no-pong');
    try {
      const result = await pefWs(['audit', broken.url, '--cases', 'ping.text,framing.text.0', '--timeout', '1000']);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stdout, /\nFAILED\s+ping\.text: the server never sent pong 13 B "Hello, world!" \(§5\.5\.2: a Ping MUST be answered with a Pong\)\n/);
    } finally {
      await broken.close();
    }
  });

  test('--list prints the battery; bad arguments exit 2 with the usage', async () => {
    const list = await pefWs(['audit', '--list', '--cases', 'utf8.split.1?']);
    assert.equal(list.code, 0);
    assert.deepEqual(list.stdout.trim().split('\n').map((line) => line.split('\t')[0]), Array.from({ length: 10 }, (_, i) => `utf8.split.${10 + i}`));
    const noUrl = await pefWs(['audit']);
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /^pef-ws: audit takes exactly one server URL\nusage: pef-ws audit/);
    const http = await pefWs(['audit', 'http://127.0.0.1:1/']);
    assert.equal(http.code, 2);
    assert.match(http.stderr, /the URL must start with ws:\/\/ or wss:\/\/, not http:\/\//);
    const none = await pefWs(['audit', url, '--cases', 'nothing.*']);
    assert.match(none.stderr, /no case matches --cases "nothing\.\*"/);
    const zero = await pefWs(['audit', url, '--concurrency', '0']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--concurrency must be a positive whole number, not "0"/);
    const unknown = await pefWs(['audit', url, '--bogus']);
    assert.equal(unknown.code, 2);
    const help = await pefWs(['audit', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: pef-ws audit <ws:\/\/host:port\/path>/);
    const refused = await pefWs(['audit', 'ws://127.0.0.1:1/']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^pef-ws: cannot connect to 127\.0\.0\.1:1: /);
  });
});

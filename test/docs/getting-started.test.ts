// docs/getting-started.md, followed to the letter on an empty folder: its shell steps run (the
// registry install replaced by the packed tarball, offline), its files are written where it says,
// `npx pef-ws serve` starts, and Chromium opens the page and gets its message echoed back.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import { npmEnv, packTarball } from '../package/tarball.js';
import { extractBlocks } from './markdown.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const doc = 'docs/getting-started.md';
const blocks = extractBlocks(doc, readFileSync(join(root, doc), 'utf8'));

const work = mkdtempSync(join(tmpdir(), 'pef-ws-getting-started-'));
after(() => rmSync(work, { recursive: true, force: true }));


async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}


test('a newcomer following getting-started.md reaches a page that echoes what they type', { skip: skipWithoutChromium }, async () => {
  const { tarball } = await packTarball(work);

  // The shell steps before serving, in order; the registry install is the tarball, offline.
  const serveBlock = blocks.findIndex((b) => b.lang === 'sh' && /^npx pef-ws serve /m.test(b.code));
  assert.notEqual(serveBlock, -1, 'the guide has a `npx pef-ws serve` step');
  const setup = blocks.slice(0, serveBlock).filter((b) => b.lang === 'sh');
  assert.ok(setup.some((b) => b.code.includes('npm install pef-front-websocket')), 'the guide installs the package');
  let cwd = work;
  for (const block of setup) {
    const script = block.code.replace('npm install pef-front-websocket', `npm install --offline --no-audit --no-fund ${tarball}`);
    // Each block runs in the folder the previous one ended in (the guide's `cd`).
    const { stdout: where } = await run('bash', ['-e', '-c', `${script}\npwd`], { cwd, env: npmEnv });
    cwd = where.trim().split('\n').at(-1)!;
  }

  // The files the guide tells the reader to create.
  const files = blocks.filter((b) => b.marker === 'write');
  assert.ok(files.length >= 2, 'the guide writes a handler and a page');
  for (const block of files) {
    const path = join(cwd, block.file!);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, block.code);
  }

  const command = /^npx pef-ws serve .*$/m.exec(blocks[serveBlock]!.code)![0];
  const port = await freePort();
  const server = spawn('bash', ['-c', `exec ${command}`], { cwd, env: { ...npmEnv, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const serving = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('pef-ws: serving')) resolve();
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', onData);
    server.once('exit', (code) => reject(new Error(`pef-ws exited with ${code}:\n${output}`)));
  });
  const browser = await launchChromium();
  try {
    await serving;
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    // Evaluated in the page (a string: this project's types have no DOM).
    const logHas = (text: string) =>
      page.waitForFunction(`document.getElementById('log').textContent.split('\\n').includes(${JSON.stringify(text)})`);
    await logHas('connected');
    await logHas('welcome to /wsEcho');
    await page.locator('#message').fill('hello, WebSocket');
    await page.locator('#message').press('Enter');
    await logHas('echo: hello, WebSocket');
  } finally {
    await browser.close();
    process.kill(-server.pid!, 'SIGTERM');
    if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  }
});

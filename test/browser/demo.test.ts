// The seed's demo in a real browser: Debian's Chromium, driven by playwright-core, loads the page
// that `pef-ws serve` (the `npm start` command, on port 0) serves, types into #testo, clicks
// #invia and sees the echo on #blackboard; page script checks a binary round trip and a close
// with a code; SIGTERM on the server shows up on the page as close 1001.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';


const root = fileURLToPath(new URL('../../', import.meta.url));

/** Starts the demo as `npm start` does, on a free port; resolves with the URL it prints. */
async function startDemo() {
  const env = { ...process.env };
  delete env['PORT'];
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx', join(root, 'src', 'cli.ts'), 'serve', join(root, 'examples', 'wstest', 'app', 'WSTest', 'WebSocket'),
      '--static', join(root, 'examples', 'wstest', 'templates'), '--port', '0',
    ],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stdout = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /^pef-ws: serving (http:\/\/127\.0\.0\.1:\d+\/) /.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`the demo exited with ${code} before starting`)));
  });
  return { child, url, exited };
}

test('the demo page echoes what is typed into #testo on #blackboard, in Chromium', async (t) => {
  if (skipWithoutChromium) {
    t.skip(skipWithoutChromium);
    return;
  }
  const demo = await startDemo();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(demo.url);
    await page.locator('#status', { hasText: /^connected to ws:\/\/127\.0\.0\.1:\d+\/wsEcho$/ }).waitFor();
    // The page says what it is, and leads to the chat room's page.
    assert.equal(await page.locator('h1').textContent(), 'pef-front-websocket: echo');
    assert.equal(await page.locator('#chat-link').getAttribute('href'), 'chat.html');

    await page.fill('#testo', 'ciao, mondo <b>!</b>');
    await page.click('#invia');
    await page.locator('#blackboard div', { hasText: 'ciao, mondo' }).waitFor();
    await page.fill('#testo', 'second, sent with Enter');
    await page.press('#testo', 'Enter');
    await page.locator('#blackboard div', { hasText: 'second' }).waitFor();
    // Messages are text, never markup: the <b> arrives as typed.
    assert.deepEqual(await page.locator('#blackboard div').allTextContents(), [
      'connected !!!',
      'ciao, mondo <b>!</b>',
      'second, sent with Enter',
    ]);
    assert.equal(await page.inputValue('#testo'), '');

    // Page script: a binary round trip, then a close with an application code, on a second socket.
    const result: unknown = await page.evaluate(`(async () => {
      const ws = new WebSocket('ws://' + location.host + '/wsEcho');
      ws.binaryType = 'arraybuffer';
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      const reply = new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
      ws.send(new Uint8Array([0, 1, 127, 128, 255]));
      const data = await reply;
      const closing = new Promise((resolve) => {
        ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
      });
      ws.close(4321, 'bye from the page');
      return { arrayBuffer: data instanceof ArrayBuffer, bytes: Array.from(new Uint8Array(data)), close: await closing };
    })()`);
    // The server answers a Close with the code it received (RFC 6455 §5.5.1).
    assert.deepEqual(result, {
      arrayBuffer: true,
      bytes: [0, 1, 127, 128, 255],
      close: { code: 4321, reason: '', wasClean: true },
    });

    // Shutting the server down reaches the page as 1001 Going Away, shown on the page (no alert()).
    demo.child.kill('SIGTERM');
    await page.locator('#status', { hasText: 'connection closed: code 1001, server shutting down' }).waitFor();
    assert.equal(await page.locator('#blackboard div').last().textContent(), 'connection closed (1001)');
    assert.equal(await demo.exited, 0);
  } finally {
    await browser.close();
    demo.child.kill('SIGKILL');
  }
});

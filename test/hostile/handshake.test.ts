// Attacks on the opening handshake: slowloris, header floods, too many header fields and
// cross-site requests. Each gets an HTTP status (never a hang) while bystanders echo untouched.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { MiB, assertNoLeaks, bystander, handles, memory, startEchoServer } from './helpers.js';
import { cleanup } from './helpers.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function head(port: number, extra = ''): string {
  return (
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}`
  );
}

/**
 * Writes `request` (or trickles it a byte every `trickleMs`) and resolves with everything read
 * until the socket closes; `sent` counts the bytes trickled.
 */
function attack(port: number, request: string, trickleMs = 0, sent?: number[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let timer: NodeJS.Timeout | null = null;
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => {}); // the server may reset while we still write: the status is what counts
    socket.on('close', () => {
      if (timer !== null) clearInterval(timer);
      resolve(received);
    });
    if (trickleMs === 0) {
      socket.write(request);
    } else {
      let i = 0;
      timer = setInterval(() => {
        if (i < request.length && socket.writable) socket.write(request[i++]!);
        if (sent) sent.push(i);
      }, trickleMs);
    }
  });
}

/** The status line and headers of a response, up to the blank line. */
function statusLine(response: string): string {
  return response.slice(0, response.indexOf('\r\n'));
}

describe('Opening handshake under attack', () => {
  afterEach(cleanup);

  test('200 slowloris connections trickling the head a byte at a time get 408 while bystanders echo every message', async () => {
    const before = handles();
    const heap = memory();
    // Node's own timers, shortened from 60 s: headersTimeout is how long the head may take.
    const echo = await startEchoServer({}, { headersTimeout: 2500, requestTimeout: 5000, connectionsCheckingInterval: 250 });
    const trickled: number[][] = Array.from({ length: 200 }, () => []);
    const slow = trickled.map((sent) => attack(echo.port, head(echo.port), 1000, sent));
    const [responses, echoed] = await Promise.all([Promise.all(slow), Promise.all([1, 2, 3].map((seed) => bystander(echo.port, seed, 100)))]);
    for (const response of responses) {
      assert.equal(response, 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    }
    for (const sent of trickled) assert.ok(sent.at(-1)! >= 2, 'each attacker trickled two bytes or more');
    assert.deepEqual(echoed, [100, 100, 100]);
    assert.equal(echo.refused, 0); // none of them reached the WebSocket layer
    await echo.close();
    await assertNoLeaks(before);
    assert.ok(memory() - heap < 16 * MiB, 'heap growth under 16 MiB');
  });

  test('10,000 header fields get 431 from node:http (16 KiB head limit)', async () => {
    const echo = await startEchoServer();
    let request = head(echo.port);
    for (let i = 0; i < 10_000; i++) request += `X-Field-${i}: value\r\n`;
    const response = await attack(echo.port, request + '\r\n');
    assert.equal(statusLine(response), 'HTTP/1.1 431 Request Header Fields Too Large');
    await echo.close();
  });

  test('10,000 empty header fields, small enough for the size limit, get 431 from maxHeaders', async () => {
    const before = handles();
    const echo = await startEchoServer();
    let request = head(echo.port);
    for (let i = 0; i < 10_000; i++) request += 'a:\r\n';
    const response = await attack(echo.port, request + '\r\n');
    assert.equal(statusLine(response), 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.match(response, /\r\n\r\ntoo many header fields \(at most 100\)\n$/);
    assert.equal(echo.refused, 1);
    await echo.close();
    await assertNoLeaks(before);
  });

  test('101 header fields are refused and 100 accepted with the default maxHeaders', async () => {
    const echo = await startEchoServer();
    const base = head(echo.port); // 5 fields
    let ninetyFive = '';
    for (let i = 0; i < 95; i++) ninetyFive += `X-${i}: v\r\n`;
    const accepted = await new Promise<string>((resolve) => {
      const socket = connect(echo.port, '127.0.0.1', () => socket.write(base + ninetyFive + '\r\n'));
      socket.once('data', (chunk) => {
        resolve(chunk.toString('latin1'));
        socket.destroy();
      });
    });
    assert.equal(statusLine(accepted), 'HTTP/1.1 101 Switching Protocols');
    const refused = await attack(echo.port, base + ninetyFive + 'X-last: v\r\n\r\n');
    assert.equal(statusLine(refused), 'HTTP/1.1 431 Request Header Fields Too Large');
    await echo.close();
  });

  test('one 1 MiB header field gets 431 and the connection closes', async () => {
    const before = handles();
    const echo = await startEchoServer();
    const response = await attack(echo.port, head(echo.port, `X-Big: ${'a'.repeat(MiB)}\r\n`) + '\r\n');
    assert.equal(response, 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');
    await echo.close();
    await assertNoLeaks(before);
  });
});

// Cross-site WebSocket hijacking: a browser page on another host must not open a WebSocket that
// carries the user's cookies. Secure by default (403), opened up only by the `origins` option.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { isSameOrigin } from '../../src/node/origin.js';
import { resolveOptions, type WebSocketOptions } from '../../src/node/options.js';
import { assertNoLeaks, handles, startEchoServer } from './helpers.js';
import { cleanup } from './helpers.js';

/** Sends a handshake with these extra header lines and resolves with the whole response head (and body, for a refusal). */
function handshake(port: number, headers: Record<string, string>): Promise<string> {
  const fields: Record<string, string> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  let request = 'GET / HTTP/1.1\r\n';
  for (const [name, value] of Object.entries(fields)) request += `${name}: ${value}\r\n`;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request + '\r\n'));
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      // A 101 leaves the socket open: its head is all we need.
      if (received.startsWith('HTTP/1.1 101') && received.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(received));
  });
}

function status(response: string): number {
  return Number(response.slice(9, 12));
}

async function statusFor(options: WebSocketOptions, headers: Record<string, string>): Promise<number> {
  const echo = await startEchoServer(options);
  try {
    return status(await handshake(echo.port, headers));
  } finally {
    await echo.close();
  }
}

describe('Origin check (secure by default)', () => {
  afterEach(cleanup);

  test('a request from a page on another host is refused with 403 and a one-line reason', async () => {
    const before = handles();
    const echo = await startEchoServer();
    const response = await handshake(echo.port, { Origin: 'http://evil.example' });
    const body = 'origin "http://evil.example" is not allowed\n';
    assert.equal(
      response,
      'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${body.length}\r\n\r\n${body}`,
    );
    assert.equal(echo.refused, 1);
    await echo.close();
    await assertNoLeaks(before);
  });

  test('a request without Origin (not a browser) is accepted', async () => {
    assert.equal(await statusFor({}, {}), 101);
  });

  test('a page on the same host and port is accepted', async () => {
    const echo = await startEchoServer();
    assert.equal(status(await handshake(echo.port, { Origin: `http://127.0.0.1:${echo.port}` })), 101);
    assert.equal(status(await handshake(echo.port, { Origin: `https://127.0.0.1:${echo.port}` })), 101);
    await echo.close();
  });

  test('a page on the same host but another port is refused', async () => {
    const echo = await startEchoServer();
    assert.equal(status(await handshake(echo.port, { Origin: `http://127.0.0.1:${echo.port + 1}` })), 403);
    assert.equal(status(await handshake(echo.port, { Origin: 'http://127.0.0.1' })), 403);
    await echo.close();
  });

  test("Origin 'null' (sandboxed frames, file: pages) and malformed values are refused", async () => {
    assert.equal(await statusFor({}, { Origin: 'null' }), 403);
    assert.equal(await statusFor({}, { Origin: 'not a url' }), 403);
  });

  test('an exact list allows the origins it names, compared without regard to case', async () => {
    const origins = ['https://app.example', 'http://localhost:3000'];
    assert.equal(await statusFor({ origins }, { Origin: 'https://app.example' }), 101);
    assert.equal(await statusFor({ origins }, { Origin: 'HTTPS://APP.EXAMPLE' }), 101);
    assert.equal(await statusFor({ origins }, { Origin: 'http://localhost:3000' }), 101);
    assert.equal(await statusFor({ origins }, { Origin: 'https://app.example.evil' }), 403);
    assert.equal(await statusFor({ origins }, { Origin: 'http://app.example' }), 403);
  });

  test('a function decides with the origin and the request', async () => {
    const seen: [string, string | undefined][] = [];
    const origins = (origin: string, request: IncomingMessage): boolean => {
      seen.push([origin, request.url]);
      return origin.endsWith('.trusted.example');
    };
    assert.equal(await statusFor({ origins }, { Origin: 'https://a.trusted.example' }), 101);
    assert.equal(await statusFor({ origins }, { Origin: 'https://evil.example' }), 403);
    assert.deepEqual(seen, [
      ['https://a.trusted.example', '/'],
      ['https://evil.example', '/'],
    ]);
  });

  test("'*' allows every origin", async () => {
    assert.equal(await statusFor({ origins: '*' }, { Origin: 'http://evil.example' }), 101);
    assert.equal(await statusFor({ origins: '*' }, { Origin: 'null' }), 101);
  });

  test('same host ignores the case of the host and the default port of the scheme', () => {
    assert.equal(isSameOrigin('https://Example.COM', 'example.com'), true);
    assert.equal(isSameOrigin('https://example.com', 'example.com:443'), true);
    assert.equal(isSameOrigin('http://example.com:80', 'example.com'), true);
    assert.equal(isSameOrigin('http://[::1]:8080', '[::1]:8080'), true);
    assert.equal(isSameOrigin('http://example.com:8080', 'example.com'), false);
    assert.equal(isSameOrigin('http://example.com.evil', 'example.com'), false);
    assert.equal(isSameOrigin('http://example.com', undefined), false);
    assert.equal(isSameOrigin('data:text/plain,x', 'example.com'), false, 'an origin without a host');
  });

  test('a bad origins option is refused when the options are resolved', () => {
    assert.throws(() => resolveOptions({ origins: 'evil.example' as '*' }), {
      name: 'TypeError',
      message: "origins must be '*', a list of origins or a function",
    });
  });
});

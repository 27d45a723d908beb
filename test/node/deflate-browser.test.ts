// Chromium interop for permessage-deflate: a page served by the test opens a WebSocket (Chromium
// offers "permessage-deflate; client_max_window_bits"), sends a 1 MiB text message and checks the
// echo. Skipped, with the reason, when /usr/bin/chromium is not installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { acceptWebSocket } from '../../src/node/upgrade.js';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import type { WebSocketConnection } from '../../src/node/transport.js';

const skip = skipWithoutChromium;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>permessage-deflate round trip</title>
<script>
  window.result = new Promise((resolve) => {
    const lines = [];
    for (let i = 0; i < 16384; i++) lines.push(('line ' + String(i).padStart(8, '0') + ' of the big text message ✓').padEnd(61, '.') + '\\n');
    const text = lines.join('');
    const ws = new WebSocket('ws://' + location.host + '/echo');
    ws.onopen = () => ws.send(text);
    ws.onmessage = (event) => {
      resolve({ same: event.data === text, length: new TextEncoder().encode(text).length, extensions: ws.extensions });
      ws.close(1000);
    };
    ws.onerror = () => resolve({ same: false, length: 0, extensions: 'error' });
  });
</script>`;

test('Chromium negotiates permessage-deflate and a 1 MiB text message round-trips compressed both ways', { skip, timeout: 60_000 }, async () => {
  const sockets = new Set<Socket>();
  let server: { request: IncomingMessage; socket: Socket; ws: WebSocketConnection } | null = null;
  let onClosed: (code: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (onClosed = resolve));
  const httpServer = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  httpServer.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  httpServer.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const ws: WebSocketConnection | null = acceptWebSocket(
      request,
      socket,
      head,
      {
        onMessage: (message, type) => void ws!.send(message, type),
        onClose: (code) => onClosed(code),
      },
      { maxPayload: 2 * 1024 * 1024 },
    );
    if (ws) server = { request, socket, ws };
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = (httpServer.address() as AddressInfo).port;

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const result = (await page.evaluate('window.result')) as { same: boolean; length: number; extensions: string };
    assert.equal(await closed, 1000);
    assert.ok(server !== null);
    const { request, socket, ws } = server as { request: IncomingMessage; socket: Socket; ws: WebSocketConnection };
    assert.equal(request.headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits');
    assert.equal(ws.extensions, 'permessage-deflate; client_max_window_bits=12');
    assert.deepEqual(result, { same: true, length: 16384 * 64, extensions: 'permessage-deflate; client_max_window_bits=12' });
    // Both directions went compressed: far fewer bytes than the 1 MiB message crossed the socket.
    assert.ok(socket.bytesRead < 200_000, `read ${socket.bytesRead} bytes`);
    assert.ok(socket.bytesWritten < 200_000, `wrote ${socket.bytesWritten} bytes`);
  } finally {
    await browser.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
  }
});

// router.attach() on the servers people actually run: an Express app's, a Fastify app's, and a
// node:https server with a certificate made for the test. WebSocket routes are upgraded; the
// framework's own HTTP routes keep working beside them.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import WebSocket from 'ws';
import { WebSocketHandler, WebSocketRouter, type MessageType } from '../../src/index.js';
import { closed, connect, nextMessage, refused } from './helpers.js';

class Echo extends WebSocketHandler {
  override onMessage(message: string | Buffer, type: MessageType): void {
    this.send(message, type);
  }
}

/** Opens /wsEcho, checks one text and one binary round trip, and closes. */
async function roundTrip(url: string, options?: WebSocket.ClientOptions): Promise<void> {
  const ws = await new Promise<WebSocket>((resolve, reject) => {
    const client = new WebSocket(url, options);
    client.once('open', () => resolve(client));
    client.once('error', reject);
  });
  const text = nextMessage(ws);
  ws.send('über');
  assert.deepEqual(await text, { data: 'über', isBinary: false });
  const binary = nextMessage(ws);
  ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  assert.deepEqual(await binary, { data: Buffer.from([0xde, 0xad, 0xbe, 0xef]), isBinary: true });
  const close = closed(ws);
  ws.close(1000, 'done');
  // §5.5.1: the server answers with the code it received (the core sends no reason back).
  assert.deepEqual(await close, { code: 1000, reason: '' });
}

describe('attach() on frameworks\' servers', () => {
  test('an Express app\'s server: /wsEcho is upgraded, Express still answers its routes, other upgrades get 404', async () => {
    const app = express();
    app.get('/', (_request, response) => void response.send('from express'));
    app.get('/wsEcho', (_request, response) => void response.status(426).send('use WebSocket'));
    const server: Server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    const router = new WebSocketRouter().route('/wsEcho', Echo).attach(server);
    const port = (server.address() as AddressInfo).port;

    await roundTrip(`ws://127.0.0.1:${port}/wsEcho`);
    const home = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await home.text(), 'from express');
    const plain = await fetch(`http://127.0.0.1:${port}/wsEcho`);
    assert.equal(plain.status, 426);
    assert.equal(await plain.text(), 'use WebSocket');
    assert.deepEqual(await refused(`ws://127.0.0.1:${port}/other`), { status: 404, body: 'no WebSocket handler at this path\n' });

    await router.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a Fastify app\'s server: /wsEcho is upgraded and Fastify still answers its routes', async () => {
    const app = Fastify();
    app.get('/', async () => 'from fastify');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const router = new WebSocketRouter().route('/wsEcho', Echo).attach(app.server);
    const port = (app.server.address() as AddressInfo).port;

    await roundTrip(`ws://127.0.0.1:${port}/wsEcho?from=fastify`);
    const home = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await home.text(), 'from fastify');

    // Graceful shutdown in the order a Fastify app would do it: the router, then the app.
    const ws = await connect(`ws://127.0.0.1:${port}/wsEcho`);
    const close = closed(ws);
    await router.close();
    assert.deepEqual(await close, { code: 1001, reason: 'server shutting down' });
    await app.close();
  });
});

const openssl = spawnSync('which', ['openssl'], { encoding: 'utf8' });
const hasOpenssl = openssl.status === 0 && openssl.stdout.trim() !== '';

describe('attach() on a node:https server', () => {
  test('wss:// works with a self-signed certificate made for the test', async (t) => {
    if (!hasOpenssl) {
      t.skip('openssl is not installed: cannot make a certificate for the https test');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'pef-ws-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
          '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      const key = readFileSync(join(dir, 'key.pem'));
      const cert = readFileSync(join(dir, 'cert.pem'));
      const server = createHttpsServer({ key, cert }, (_request, response) => response.end('over tls\n'));
      const router = new WebSocketRouter().route('/wsEcho', Echo).attach(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;

      // The client trusts exactly this certificate: the TLS handshake is verified, not skipped.
      await roundTrip(`wss://127.0.0.1:${port}/wsEcho`, { ca: cert });

      await router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The option decodeText: false (docs/handlers.md): a text message reaches onMessage as a Buffer of
// its UTF-8 bytes, checked (RFC 6455 §8.1) but never decoded, with type 'text'; sending that Buffer
// back as 'text' sends the same bytes. Per class through `static options`, over real sockets.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Opcode } from '../../src/protocol/constants.js';
import { WebSocketHandler, WebSocketRouter, type MessageType } from '../../src/index.js';
import { RawClient, closePayload } from '../helpers/net.js';

interface Received {
  path: string;
  isBuffer: boolean;
  type: MessageType;
  hex: string;
}

async function serve(): Promise<{ server: Server; port: number; received: Received[]; errors: string[] }> {
  const received: Received[] = [];
  const errors: string[] = [];
  class Echo extends WebSocketHandler {
    override onMessage(message: string | Buffer, type: MessageType): void {
      received.push({ path: this.request.url, isBuffer: Buffer.isBuffer(message), type, hex: Buffer.from(message).toString('hex') });
      this.send(message, type);
    }
    override onError(error: Error): void {
      errors.push((error as { code?: string }).code ?? error.message);
    }
  }
  class Bytes extends Echo {
    static options = { decodeText: false };
  }
  const router = new WebSocketRouter({ heartbeatInterval: 0 });
  router.route('/bytes', Bytes);
  router.route('/strings', Echo);
  const server = createServer();
  router.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, received, errors };
}

describe('decodeText: false', () => {
  test('onMessage gets the bytes of a text message as a Buffer with type text, and the echo is the same text frame', async () => {
    const { server, port, received } = await serve();
    try {
      const bytes = Buffer.from('café ✓', 'utf8');
      for (const path of ['/bytes', '/strings']) {
        const { client } = await RawClient.open(port, { path });
        client.sendFrame(Opcode.Text, bytes);
        const echo = await client.readFrame();
        assert.deepEqual({ fin: echo.fin, opcode: echo.opcode, payload: echo.payload.toString('hex') }, { fin: true, opcode: Opcode.Text, payload: bytes.toString('hex') });
        client.destroy();
      }
      assert.deepEqual(received, [
        { path: '/bytes', isBuffer: true, type: 'text', hex: bytes.toString('hex') },
        { path: '/strings', isBuffer: false, type: 'text', hex: bytes.toString('hex') },
      ]);
    } finally {
      server.close();
    }
  });

  test('invalid UTF-8 still fails the connection with 1007 and reaches onError as WS_ERR_INVALID_UTF8', async () => {
    const { server, port, received, errors } = await serve();
    try {
      const { client } = await RawClient.open(port, { path: '/bytes' });
      client.sendFrame(Opcode.Text, Uint8Array.of(0x61, 0xc3, 0x28));
      const close = await client.readFrame();
      assert.equal(close.opcode, Opcode.Close);
      assert.equal(close.payload.toString('hex'), closePayload(1007, 'invalid UTF-8 in a text message').toString('hex'));
      await client.expectEnd();
      assert.deepEqual(received, []);
      assert.deepEqual(errors, ['WS_ERR_INVALID_UTF8']);
    } finally {
      server.close();
    }
  });

  test('an option that is not a boolean is refused when the route is made', () => {
    const router = new WebSocketRouter();
    class Bad extends WebSocketHandler {
      static options = { decodeText: 'no' };
    }
    assert.throws(() => router.route('/bad', Bad as unknown as typeof WebSocketHandler), { name: 'TypeError', message: 'decodeText must be true or false' });
  });
});

// handshakeHeaders (src/node/limits.ts): the handshake's header fields read from rawHeaders agree
// with node:http's own request.headers (its oracle: names in lower case, a repeated Host keeps the
// first, other repeats joined with ', '), and reading them leaves request.headers unbuilt.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { handshakeHeaders } from '../../src/node/limits.js';

function request(rawHeaders: string[]): IncomingMessage {
  const message = new IncomingMessage(new Socket());
  message.rawHeaders = rawHeaders;
  (message as unknown as { [key: symbol]: number })[kHeadersCount()] = rawHeaders.length;
  return message;
}

/** node:http's private count of raw header entries, which its lazy `headers` getter walks. */
function kHeadersCount(): symbol {
  const probe = new IncomingMessage(new Socket());
  const symbol = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'kHeadersCount');
  assert.ok(symbol, 'node:http keeps kHeadersCount on IncomingMessage');
  return symbol;
}

const FIELDS = ['host', 'upgrade', 'connection', 'origin', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions'];

describe('handshakeHeaders', () => {
  test('agrees with request.headers for every handshake field, with repeats and mixed case', () => {
    const raw = [
      'HOST', 'a.example', 'Host', 'b.example',
      'upgrade', 'websocket', 'Connection', 'keep-alive', 'connection', 'Upgrade',
      'Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version', '13',
      'Sec-WebSocket-Protocol', 'chat', 'sec-websocket-protocol', 'superchat',
      'Sec-WebSocket-Extensions', 'permessage-deflate', 'Origin', 'https://a.example', 'ORIGIN', 'https://c.example',
      'X-Other', 'ignored',
    ];
    const headers = handshakeHeaders(request(raw));
    const node = request(raw).headers;
    for (const field of FIELDS) assert.equal(headers[field], node[field], field);
    assert.deepEqual(Object.keys(headers).sort(), FIELDS.slice().sort());
  });

  test('absent fields stay absent', () => {
    assert.deepEqual(handshakeHeaders(request(['Host', 'a.example'])), { host: 'a.example' });
  });

  test('request.headers is not built by reading the handshake fields', () => {
    const message = request(['Host', 'a.example', 'Upgrade', 'websocket']);
    handshakeHeaders(message);
    const built = Object.getOwnPropertySymbols(message).find((s) => s.description === 'kHeaders');
    assert.ok(built === undefined || (message as unknown as Record<symbol, unknown>)[built] == null);
  });
});

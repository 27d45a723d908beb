// Properties of the opening handshake (RFC 6455 §4.2): arbitrary request heads never throw, are
// refused only with 400, 405, 426 (or 500 for a hook's bad choice), and an accepted handshake's
// 101 response is well-formed: nothing from the request reaches it but the checked key and an
// offered, token-shaped subprotocol.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HandshakeError } from '../src/protocol/errors.js';
import { acceptHandshake, acceptKey, parseProtocolHeader, rejectResponse } from '../src/protocol/handshake.js';
import { params } from './config.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Header values near the valid ones, or anything (CR LF, commas, non-ASCII included). */
function near(valid: readonly string[]): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...valid), weight: 8 },
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: fc.string({ maxLength: 30 }), weight: 1 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 1 },
  );
}

const requestArb = fc.record({
  method: fc.oneof(fc.constant('GET'), fc.constantFrom('POST', 'get', 'HEAD', ''), fc.constant(undefined)),
  httpVersion: fc.oneof(fc.constantFrom('1.1', '2.0'), fc.constantFrom('1.0', '0.9', 'x', ''), fc.constant(undefined)),
  headers: fc.record({
    host: near(['example.com', 'localhost:8080']),
    upgrade: near(['websocket', 'WebSocket', 'h2c, websocket']),
    connection: near(['Upgrade', 'keep-alive, Upgrade', 'upgrade']),
    'sec-websocket-key': near(['dGhlIHNhbXBsZSBub25jZQ==', 'AAAAAAAAAAAAAAAAAAAAAA==', '+/+/+/+/+/+/+/+/+/+/+w==']),
    'sec-websocket-version': near(['13', ' 13']),
    'sec-websocket-protocol': near(['chat', 'chat, superchat', 'a,b,,c']),
    'sec-websocket-extensions': near(['permessage-deflate', 'x-foo; a=1']),
  }),
});

describe('property: opening handshake', () => {
  test('any request is accepted with a well-formed 101 or refused with its status, never thrown at', () => {
    fc.assert(
      fc.property(
        requestArb,
        fc.oneof(fc.constant(null), fc.constant('first'), fc.string({ maxLength: 20 })),
        (request, choice) => {
          const result = acceptHandshake(request, {
            selectProtocol: (offered) => {
              for (const name of offered) assert.match(name, TOKEN, 'only tokens are offered to the hook');
              return choice === 'first' ? (offered[0] ?? null) : choice;
            },
          });
          if (result instanceof HandshakeError) {
            assert.ok([400, 405, 426, 500].includes(result.status), `status ${result.status}`);
            const response = rejectResponse(result).toString('latin1');
            const [head, body] = response.split('\r\n\r\n');
            assert.equal(body, `${result.message}\n`);
            assert.ok(!body!.slice(0, -1).includes('\n'), 'a one-line body');
            assert.equal(head!.split('\r\n').length, 4 + Object.keys(result.headers).length);
            return;
          }
          const lines = result.response.toString('latin1').split('\r\n');
          assert.deepEqual(lines.slice(0, 3), ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade']);
          assert.equal(lines[3], `Sec-WebSocket-Accept: ${acceptKey(result.key)}`);
          assert.deepEqual(lines.slice(-2), ['', '']);
          assert.equal(lines.length, 6 + (result.protocol === '' ? 0 : 1));
          if (result.protocol !== '') {
            assert.ok(parseProtocolHeader(request.headers['sec-websocket-protocol']).includes(result.protocol));
            assert.equal(lines[4], `Sec-WebSocket-Protocol: ${result.protocol}`);
          }
          assert.equal(Buffer.from(result.key, 'base64').length, 16);
        },
      ),
      params(),
    );
  });
});

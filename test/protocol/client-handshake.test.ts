// RFC 6455 §4.1 opening handshake, client side: the request bytes, the response head parser, and
// each check of the 101 (§4.1 items 1-6) with its exact HandshakeError code; the permessage-deflate
// offer and the check of the server's answer (RFC 7692 §7.1, client side).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError, type HandshakeErrorCode } from '../../src/protocol/errors.js';
import {
  MAX_RESPONSE_HEAD,
  checkResponse,
  clientRequestBytes,
  generateKey,
  isRedirect,
  parseResponseHead,
  type HandshakeResponse,
} from '../../src/protocol/client-handshake.js';
import { PerMessageDeflate, PerMessageDeflateOffer, compressionOffer, permessageDeflate } from '../../src/protocol/deflate.js';
import { parseExtensionsHeader } from '../../src/protocol/extensions.js';

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function response(headers: Record<string, string>, status = 101): HandshakeResponse {
  return {
    status,
    statusText: status === 101 ? 'Switching Protocols' : 'Other',
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': SAMPLE_ACCEPT, ...headers },
  };
}

function failure(result: unknown): HandshakeError {
  assert.ok(result instanceof HandshakeError, `expected a HandshakeError, got ${JSON.stringify(result)}`);
  return result;
}

function code(result: unknown): HandshakeErrorCode {
  return failure(result).code;
}

function head(text: string): ReturnType<typeof parseResponseHead> {
  return parseResponseHead(Buffer.from(text, 'latin1'));
}

describe('4.1 the upgrade request', () => {
  test('has the request line, Host, Upgrade, Connection, the key and version 13, then the offers and extra fields', () => {
    const bytes = clientRequestBytes({
      host: '[::1]:8080',
      path: '/chat?room=1',
      key: SAMPLE_KEY,
      protocols: ['chat', 'superchat'],
      extensions: 'permessage-deflate; client_max_window_bits',
      origin: 'http://example.com',
      headers: { Authorization: 'Bearer x' },
    });
    assert.equal(
      bytes.toString('latin1'),
      'GET /chat?room=1 HTTP/1.1\r\n' +
        'Host: [::1]:8080\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Protocol: chat, superchat\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
        'Origin: http://example.com\r\n' +
        'Authorization: Bearer x\r\n' +
        '\r\n',
    );
  });

  test('leaves out the optional fields when nothing is offered', () => {
    const bytes = clientRequestBytes({ host: 'h', path: '/', key: SAMPLE_KEY, protocols: [] });
    assert.equal(
      bytes.toString('latin1'),
      `GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });

  test('a key is 16 random bytes in base64, fresh each time (§4.1 item 7)', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const key = generateKey();
      assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
      assert.equal(Buffer.from(key, 'base64').length, 16);
      keys.add(key);
    }
    assert.equal(keys.size, 100);
  });
});

describe('the response head', () => {
  test('is incomplete until the blank line', () => {
    assert.equal(head('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'), null);
  });

  test('parses the status, the reason and the fields; names in lower case, repeats joined, values trimmed', () => {
    const text = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade:  websocket \r\nX-A: 1\r\nx-a: 2\r\nEmpty:\r\n\r\nframes';
    const parsed = head(text);
    assert.ok(parsed !== null && !(parsed instanceof HandshakeError));
    assert.deepEqual(parsed.response, { status: 101, statusText: 'Switching Protocols', headers: { upgrade: 'websocket', 'x-a': '1, 2', empty: '' } });
    assert.equal(parsed.headLength, text.length - 'frames'.length);
  });

  test('a status line without a reason phrase is read', () => {
    const parsed = head('HTTP/1.1 404\r\n\r\n');
    assert.ok(parsed !== null && !(parsed instanceof HandshakeError));
    assert.equal(parsed.response.status, 404);
    assert.equal(parsed.response.statusText, '');
  });

  for (const [name, text] of [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['HTTP/2', 'HTTP/2 101 Switching Protocols\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 10 Switching\r\n\r\n'],
    ['a field line without a colon', 'HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n'],
    ['white space before the colon (RFC 9112 §5.1)', 'HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n'],
    ['an obsolete line fold (RFC 9112 §5.2)', 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n folded\r\n\r\n'],
    ['a bare LF inside a line', 'HTTP/1.1 101 OK\r\nUpgrade: web\nsocket\r\n\r\n'],
    ['a NUL in a value', 'HTTP/1.1 101 OK\r\nUpgrade: web\0socket\r\n\r\n'],
    ['more than 100 fields', `HTTP/1.1 101 OK\r\n${'X: 1\r\n'.repeat(101)}\r\n`],
  ] as const) {
    test(`is malformed with ${name}: WS_ERR_HANDSHAKE_RESPONSE`, () => {
      const error = failure(head(text));
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_RESPONSE');
      assert.equal(error.status, 0);
      assert.deepEqual(error.body, Buffer.from(text, 'latin1').subarray(0, 512));
    });
  }

  test('is malformed once it is over 16 KiB, ended or not', () => {
    const long = `HTTP/1.1 101 OK\r\nX: ${'a'.repeat(MAX_RESPONSE_HEAD)}`;
    assert.equal(code(head(long)), 'WS_ERR_HANDSHAKE_RESPONSE');
    assert.equal(code(head(`${long}\r\n\r\n`)), 'WS_ERR_HANDSHAKE_RESPONSE');
    assert.match(failure(head(long)).message, /over 16384 bytes/);
  });
});

describe('4.1 the checks of the 101', () => {
  test('a 101 by the letter is accepted: no subprotocol, no extension', () => {
    assert.deepEqual(checkResponse(response({}), { key: SAMPLE_KEY }), { protocol: '', extensions: '', extension: null });
  });

  test('item 1: another status is WS_ERR_HANDSHAKE_STATUS with the status, the fields and the body', () => {
    const body = Buffer.from('x'.repeat(600));
    const error = failure(checkResponse({ status: 403, statusText: 'Forbidden', headers: { 'content-type': 'text/plain' } }, { key: SAMPLE_KEY }, body));
    assert.equal(error.code, 'WS_ERR_HANDSHAKE_STATUS');
    assert.equal(error.status, 403);
    assert.equal(error.message, 'the server answered 403 Forbidden');
    assert.deepEqual(error.headers, { 'content-type': 'text/plain' });
    assert.deepEqual(error.body, body.subarray(0, 512));
  });

  test('item 1: a redirect with a Location is WS_ERR_HANDSHAKE_REDIRECT; without one, a status like any other', () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const redirect = { status, statusText: '', headers: { location: 'ws://elsewhere/' } };
      assert.ok(isRedirect(redirect));
      const error = failure(checkResponse(redirect, { key: SAMPLE_KEY }));
      assert.equal(error.code, 'WS_ERR_HANDSHAKE_REDIRECT');
      assert.equal(error.headers['location'], 'ws://elsewhere/');
    }
    assert.equal(code(checkResponse({ status: 302, statusText: 'Found', headers: {} }, { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_STATUS');
    assert.equal(isRedirect({ status: 300, statusText: '', headers: { location: '/' } }), false);
  });

  test('item 2: Upgrade missing or not "websocket" is WS_ERR_HANDSHAKE_UPGRADE; its case does not matter', () => {
    const { upgrade: _, ...rest } = response({}).headers;
    assert.equal(code(checkResponse({ status: 101, statusText: '', headers: rest }, { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_UPGRADE');
    assert.equal(code(checkResponse(response({ upgrade: 'h2c' }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_UPGRADE');
    assert.equal(code(checkResponse(response({ upgrade: 'websocket, h2c' }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_UPGRADE');
    assert.ok(!(checkResponse(response({ upgrade: 'WebSocket' }), { key: SAMPLE_KEY }) instanceof HandshakeError));
  });

  test('item 3: Connection without the token Upgrade is WS_ERR_HANDSHAKE_CONNECTION; a list holding it passes', () => {
    assert.equal(code(checkResponse(response({ connection: 'keep-alive' }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_CONNECTION');
    assert.equal(code(checkResponse(response({ connection: 'upgraded' }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_CONNECTION');
    assert.ok(!(checkResponse(response({ connection: 'keep-alive, UPGRADE' }), { key: SAMPLE_KEY }) instanceof HandshakeError));
  });

  test('item 4: Sec-WebSocket-Accept missing, wrong or repeated is WS_ERR_HANDSHAKE_ACCEPT', () => {
    const { 'sec-websocket-accept': _, ...rest } = response({}).headers;
    assert.equal(code(checkResponse({ status: 101, statusText: '', headers: rest }, { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_ACCEPT');
    assert.equal(code(checkResponse(response({}), { key: generateKey() })), 'WS_ERR_HANDSHAKE_ACCEPT');
    assert.equal(code(checkResponse(response({ 'sec-websocket-accept': `${SAMPLE_ACCEPT}, ${SAMPLE_ACCEPT}` }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_ACCEPT');
    assert.equal(failure(checkResponse(response({ 'sec-websocket-accept': 'x' }), { key: SAMPLE_KEY })).message, 'Sec-WebSocket-Accept "x" does not match the key sent');
  });

  test('item 5: an extension not offered is WS_ERR_HANDSHAKE_EXTENSION', () => {
    assert.equal(code(checkResponse(response({ 'sec-websocket-extensions': 'permessage-deflate' }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_EXTENSION');
    const deflate = new PerMessageDeflateOffer();
    assert.equal(code(checkResponse(response({ 'sec-websocket-extensions': 'x-webkit-deflate-frame' }), { key: SAMPLE_KEY, deflate })), 'WS_ERR_HANDSHAKE_EXTENSION');
    assert.equal(code(checkResponse(response({ 'sec-websocket-extensions': 'permessage-deflate;;' }), { key: SAMPLE_KEY, deflate })), 'WS_ERR_HANDSHAKE_EXTENSION');
    assert.equal(
      code(checkResponse(response({ 'sec-websocket-extensions': 'permessage-deflate, permessage-deflate' }), { key: SAMPLE_KEY, deflate })),
      'WS_ERR_HANDSHAKE_EXTENSION',
    );
  });

  test('item 5: permessage-deflate answered is applied; an empty answer means none', () => {
    const deflate = new PerMessageDeflateOffer();
    const accepted = checkResponse(response({ 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits=10' }), { key: SAMPLE_KEY, deflate });
    assert.ok(!(accepted instanceof HandshakeError));
    assert.equal(accepted.extensions, 'permessage-deflate; client_max_window_bits=10');
    assert.ok(accepted.extension instanceof PerMessageDeflate);
    assert.equal(accepted.extension.params.ownWindowBits, 10);
    const none = checkResponse(response({ 'sec-websocket-extensions': ' ' }), { key: SAMPLE_KEY, deflate });
    assert.deepEqual(none, { protocol: '', extensions: '', extension: null });
  });

  test('item 6: a subprotocol not offered, or a list of them, is WS_ERR_HANDSHAKE_PROTOCOL; none at all is accepted', () => {
    const protocols = ['chat', 'superchat'];
    assert.equal(code(checkResponse(response({ 'sec-websocket-protocol': 'other' }), { key: SAMPLE_KEY, protocols })), 'WS_ERR_HANDSHAKE_PROTOCOL');
    assert.equal(code(checkResponse(response({ 'sec-websocket-protocol': 'chat' }), { key: SAMPLE_KEY })), 'WS_ERR_HANDSHAKE_PROTOCOL');
    assert.equal(code(checkResponse(response({ 'sec-websocket-protocol': 'chat, superchat' }), { key: SAMPLE_KEY, protocols })), 'WS_ERR_HANDSHAKE_PROTOCOL');
    assert.equal(code(checkResponse(response({ 'sec-websocket-protocol': '' }), { key: SAMPLE_KEY, protocols })), 'WS_ERR_HANDSHAKE_PROTOCOL');
    assert.equal((checkResponse(response({ 'sec-websocket-protocol': 'superchat' }), { key: SAMPLE_KEY, protocols }) as { protocol: string }).protocol, 'superchat');
    assert.equal((checkResponse(response({}), { key: SAMPLE_KEY, protocols }) as { protocol: string }).protocol, '');
  });
});

describe('RFC 7692 §7.1 permessage-deflate, client side', () => {
  test('the offer follows the settings: defaults ask for a 12-bit server window and allow a smaller client window', () => {
    assert.equal(new PerMessageDeflateOffer().header, 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12');
    assert.equal(new PerMessageDeflateOffer({ serverMaxWindowBits: 15, clientMaxWindowBits: 15 }).header, 'permessage-deflate; client_max_window_bits');
    assert.equal(
      new PerMessageDeflateOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 8 }).header,
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8',
    );
    assert.equal(compressionOffer(false), null);
    assert.equal(compressionOffer(true)!.header, new PerMessageDeflateOffer().header);
    assert.equal(compressionOffer({ threshold: 0 })!.options.threshold, 0);
    assert.throws(() => compressionOffer('yes' as never), TypeError);
    assert.throws(() => new PerMessageDeflateOffer({ serverMaxWindowBits: 16 }), RangeError);
  });

  /** The extension for a response element, or the failure reason. */
  function accept(offer: PerMessageDeflateOffer, element: string): PerMessageDeflate | string {
    return offer.accept(parseExtensionsHeader(element)![0]!.params);
  }

  test('what the server answers sets both directions', () => {
    const offer = new PerMessageDeflateOffer({ serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
    const plain = accept(offer, 'permessage-deflate');
    assert.ok(plain instanceof PerMessageDeflate);
    assert.deepEqual(plain.params, {
      ownWindowBits: 15,
      ownNoContextTakeover: false,
      peerWindowBits: 15,
      peerNoContextTakeover: false,
      threshold: 96,
      level: 6,
      memLevel: 5,
    });
    const all = accept(offer, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9');
    assert.ok(all instanceof PerMessageDeflate);
    assert.deepEqual(
      [all.params.ownWindowBits, all.params.ownNoContextTakeover, all.params.peerWindowBits, all.params.peerNoContextTakeover],
      [9, true, 10, true],
    );
  });

  for (const [element, reason] of [
    ['permessage-deflate; x=1', 'unknown parameter x'],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', 'parameter server_no_context_takeover repeated'],
    ['permessage-deflate; server_no_context_takeover=1', 'parameter server_no_context_takeover takes no value'],
    ['permessage-deflate; client_max_window_bits', 'parameter client_max_window_bits needs a value from 8 to 15'],
    ['permessage-deflate; server_max_window_bits=16', 'parameter server_max_window_bits needs a value from 8 to 15'],
    ['permessage-deflate; server_max_window_bits=13', 'server_max_window_bits=13 is more than the 12 offered'],
  ] as const) {
    test(`fails on "${element}": ${reason}`, () => {
      assert.equal(accept(new PerMessageDeflateOffer(), element), reason);
    });
  }

  test('a client window larger than offered is the server ignoring our value: we keep ours (regression: Autobahn 13.4, 13.6)', () => {
    const answered = accept(new PerMessageDeflateOffer(), 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=15');
    assert.ok(answered instanceof PerMessageDeflate, String(answered));
    assert.equal(answered.params.ownWindowBits, 12);
    const smaller = accept(new PerMessageDeflateOffer(), 'permessage-deflate; client_max_window_bits=9');
    assert.ok(smaller instanceof PerMessageDeflate);
    assert.equal(smaller.params.ownWindowBits, 9);
  });

  test('server_no_context_takeover offered must be in the answer', () => {
    const offer = new PerMessageDeflateOffer({ serverNoContextTakeover: true });
    assert.equal(accept(offer, 'permessage-deflate'), 'server_no_context_takeover was offered and not accepted');
    assert.ok(accept(offer, 'permessage-deflate; server_no_context_takeover') instanceof PerMessageDeflate);
  });

  test('our server answers our offer, and each side compresses what the other inflates', () => {
    for (const settings of [{}, { serverNoContextTakeover: true, clientNoContextTakeover: true }, { serverMaxWindowBits: 8, clientMaxWindowBits: 8 }]) {
      const offer = new PerMessageDeflateOffer({ ...settings, threshold: 0 });
      const server = permessageDeflate({ ...settings, threshold: 0 }).negotiate(offer.header);
      assert.ok(server !== null);
      const client = accept(offer, server.response);
      assert.ok(client instanceof PerMessageDeflate, String(client));
      const text = Buffer.from('hello hello hello hello '.repeat(50));
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(server.extension.decode(client.encode(text)!, 1 << 20), text);
        assert.deepEqual(client.decode(server.extension.encode(text)!, 1 << 20), text);
      }
    }
  });
});

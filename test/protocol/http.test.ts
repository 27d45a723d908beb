// The HTTP fields we write by hand (RFC 9110 §5.1, §5.5, §15): names are tokens, values hold no
// CR, LF or NUL, fields the server writes itself cannot be set, and every status carries the
// fields the RFCs require of it (one table, REQUIRED_FIELDS, checked whenever a head is built).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACCEPT_FIELDS,
  HANDSHAKE_FIELDS,
  REFUSAL_FIELDS,
  REQUIRED_FIELDS,
  checkHeaderFields,
  checkRefusal,
  checkRequiredFields,
  isFieldValue,
  responseHead,
} from '../../src/protocol/http.js';
import { HandshakeError } from '../../src/protocol/errors.js';
import { acceptResponse, rejectResponse } from '../../src/protocol/handshake.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

describe('RFC 9110 §5.1, §5.5: header fields written by hand', () => {
  test('field values with CR, LF, NUL or a character above U+00FF cannot be written; tabs and latin1 can', () => {
    assert.deepEqual(
      ['a\r\nSet-Cookie: injected=1', 'a\rb', 'a\nb', 'a\0b', '€', 'a\tb', 'café', ''].map(isFieldValue),
      [false, false, false, false, false, true, true, true],
    );
  });

  test('a value carrying a CR LF and a Set-Cookie line is a TypeError ERR_INVALID_CHAR, not response splitting', () => {
    assert.throws(() => checkHeaderFields({ 'X-Trace': 'a\r\nSet-Cookie: injected=1' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_CHAR',
      message: 'invalid character in the value of header "X-Trace"',
    });
  });

  test('a name that is not a token is a TypeError ERR_INVALID_HTTP_TOKEN', () => {
    for (const name of ['', 'X Trace', 'X:Trace', 'X-Tr\u00e9', 'a\r\nb']) {
      assert.throws(() => checkHeaderFields({ [name]: 'v' }), {
        name: 'TypeError',
        code: 'ERR_INVALID_HTTP_TOKEN',
        message: `header name must be a token: ${JSON.stringify(name)}`,
      });
    }
  });

  test('a value that is not a string is a TypeError ERR_INVALID_CHAR', () => {
    assert.throws(() => checkHeaderFields({ 'X-Count': 3 as unknown as string }), { name: 'TypeError', code: 'ERR_INVALID_CHAR' });
  });

  test('headers that are not an object are a TypeError', () => {
    assert.throws(() => checkHeaderFields(null as unknown as Record<string, string>), {
      name: 'TypeError',
      message: 'headers must be an object of field names to string values',
    });
  });

  test('fields the handshake writes cannot be set, in any case', () => {
    for (const name of ['Sec-WebSocket-Accept', 'UPGRADE', 'connection', 'Sec-WebSocket-Protocol', 'sec-websocket-extensions']) {
      assert.throws(() => checkHeaderFields({ [name]: 'x' }), {
        name: 'TypeError',
        code: 'ERR_HANDSHAKE_FIELD',
        message: `header "${name}" is written by the server itself and cannot be set`,
      });
    }
    checkHeaderFields({ 'X-Powered-By': 'pef', 'Set-Cookie': 'a=1' });
  });

  test('the owned lists: the 101 also owns content framing; a refusal owns its framing, not Upgrade', () => {
    assert.deepEqual(ACCEPT_FIELDS, [...HANDSHAKE_FIELDS, 'content-length', 'transfer-encoding']);
    assert.deepEqual(REFUSAL_FIELDS, ['connection', 'content-length', 'content-type', 'transfer-encoding', 'sec-websocket-accept']);
  });
});

describe('RFC 9110 §15: the fields each status requires', () => {
  test('the table: 101 the handshake, redirects Location, 401 WWW-Authenticate, 405 Allow, 407 Proxy-Authenticate, 426 Upgrade and our version', () => {
    assert.deepEqual(REQUIRED_FIELDS, {
      101: { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-accept': null },
      301: { location: null },
      302: { location: null },
      303: { location: null },
      307: { location: null },
      308: { location: null },
      401: { 'www-authenticate': null },
      405: { allow: null },
      407: { 'proxy-authenticate': null },
      426: { upgrade: 'websocket', 'sec-websocket-version': '13' },
    });
  });

  test('a missing field, an empty one, or one that lacks its token is a TypeError ERR_REQUIRED_FIELD', () => {
    assert.throws(() => checkRequiredFields(405, {}), { code: 'ERR_REQUIRED_FIELD', message: 'a 405 response requires the allow header field' });
    assert.throws(() => checkRequiredFields(401, { 'WWW-Authenticate': ' ' }), {
      code: 'ERR_REQUIRED_FIELD',
      message: 'a 401 response requires the www-authenticate header field',
    });
    assert.throws(() => checkRequiredFields(426, { Upgrade: 'h2c', 'Sec-WebSocket-Version': '13' }), {
      name: 'TypeError',
      code: 'ERR_REQUIRED_FIELD',
      message: 'a 426 response requires upgrade to list "websocket"',
    });
    assert.throws(() => checkRequiredFields(426, { Upgrade: 'websocket' }), {
      message: 'a 426 response requires the sec-websocket-version header field',
    });
  });

  // Found by a review helper: two empty fields of one name were joined into ', ', which is not
  // empty, so a 405 with `Allow: ''` twice passed the check.
  test('a field with only empty list elements counts as missing: "" twice in two cases, " , "', () => {
    for (const headers of [{ Allow: '', allow: '' }, { Allow: ' , ' }, { Allow: ',', ALLOW: ' ' }] as Record<string, string>[]) {
      assert.throws(() => checkRequiredFields(405, headers), { code: 'ERR_REQUIRED_FIELD', message: 'a 405 response requires the allow header field' });
    }
    checkRequiredFields(405, { Allow: '', allow: 'GET' });
    checkRequiredFields(405, { Allow: ', GET' });
  });

  test('names match without regard to case, tokens inside lists count, and statuses not in the table require nothing', () => {
    checkRequiredFields(426, { UPGRADE: 'h2c, WebSocket', 'sec-websocket-version': '13' });
    checkRequiredFields(101, { Upgrade: 'websocket', Connection: 'keep-alive, Upgrade', 'Sec-WebSocket-Accept': ACCEPT });
    checkRequiredFields(400, {});
    checkRequiredFields(503, {});
  });

  test('responseHead writes the status line with its reason and the fields in order, after checking the table', () => {
    assert.equal(responseHead(100, {}), 'HTTP/1.1 100 Continue\r\n\r\n');
    assert.equal(responseHead(405, { Allow: 'GET' }), 'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n\r\n');
    assert.equal(responseHead(417, {}), 'HTTP/1.1 417 Expectation Failed\r\n\r\n');
    assert.equal(responseHead(599, {}), 'HTTP/1.1 599 Error\r\n\r\n');
    assert.throws(() => responseHead(101, { Upgrade: 'websocket', Connection: 'Upgrade' }), {
      message: 'a 101 response requires the sec-websocket-accept header field',
    });
  });

  test('checkRefusal: a status outside 300-599 is a RangeError ERR_HTTP_INVALID_STATUS_CODE', () => {
    for (const status of [101, 200, 299, 600, 404.5, Number.NaN]) {
      assert.throws(() => checkRefusal(status, {}), {
        name: 'RangeError',
        code: 'ERR_HTTP_INVALID_STATUS_CODE',
        message: `a refusal's status must be a whole number from 300 to 599, not ${String(status)}`,
      });
    }
    checkRefusal(307, { Location: '/elsewhere' });
    checkRefusal(599, {});
  });
});

describe('every head we build goes through the checks', () => {
  // Root cause: acceptResponse appended the application's fields as they were, so these went on
  // the wire twice (ws refuses such a 101) and a CR LF in a value added a Set-Cookie line.
  test('extra 101 headers naming Sec-WebSocket-Accept, Upgrade or Connection were written twice; now a TypeError', () => {
    for (const headers of [{ 'Sec-WebSocket-Accept': ACCEPT } as Record<string, string>, { Upgrade: 'h2c' }, { Connection: 'keep-alive' }, { 'Content-Length': '0' }]) {
      assert.throws(() => acceptResponse(KEY, '', '', headers), { name: 'TypeError', code: 'ERR_HANDSHAKE_FIELD' });
    }
    assert.throws(() => acceptResponse(KEY, '', '', { 'X-A': 'a\r\nSet-Cookie: injected=1' }), { name: 'TypeError', code: 'ERR_INVALID_CHAR' });
    assert.equal(
      acceptResponse(KEY, '', '', { 'X-Server': 'pef' }).toString('latin1'),
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\nX-Server: pef\r\n\r\n`,
    );
  });

  test('a HandshakeError is checked when it is made: status, field names and values, owned and required fields', () => {
    assert.throws(() => new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 401, 'who are you?'), {
      name: 'TypeError',
      code: 'ERR_REQUIRED_FIELD',
      message: 'a 401 response requires the www-authenticate header field',
    });
    assert.throws(() => new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 403, 'no', { 'X-Why': 'a\r\nSet-Cookie: injected=1' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_CHAR',
    });
    assert.throws(() => new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 403, 'no', { 'Content-Length': '0' }), {
      name: 'TypeError',
      code: 'ERR_HANDSHAKE_FIELD',
    });
    assert.throws(() => new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 200, 'fine'), { name: 'RangeError', code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    const ok = new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 401, 'who are you?', { 'WWW-Authenticate': 'Bearer' });
    assert.equal(ok.headers['WWW-Authenticate'], 'Bearer');
  });

  test('rejectResponse checks a plain refusal too: nothing is built for a 405 without Allow or a value with LF', () => {
    assert.throws(() => rejectResponse({ status: 405, message: 'no', headers: {} }), { code: 'ERR_REQUIRED_FIELD' });
    assert.throws(() => rejectResponse({ status: 400, message: 'no', headers: { 'X-A': '\n' } }), { code: 'ERR_INVALID_CHAR' });
    assert.throws(() => rejectResponse({ status: 200, message: 'no', headers: {} }), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
  });

  test('a refusal carrying Upgrade lists "upgrade" in Connection too (RFC 9110 §7.8)', () => {
    assert.equal(
      rejectResponse({ status: 426, message: 'v13', headers: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } }).toString('latin1'),
      'HTTP/1.1 426 Upgrade Required\r\nConnection: Upgrade, close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 4\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\nv13\n',
    );
  });
});

// RFC 6455 §4.2 opening handshake, server side: every rejection with its status, code, headers and
// the exact response bytes; the 101 response bytes; subprotocol and extension negotiation hooks.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError, type HandshakeErrorCode } from '../../src/protocol/errors.js';
import {
  acceptHandshake,
  acceptKey,
  acceptResponse,
  headerHasToken,
  parseProtocolHeader,
  rejectResponse,
  type ExtensionNegotiator,
  type UpgradeRequest,
} from '../../src/protocol/handshake.js';
import type { MessageExtension } from '../../src/protocol/connection.js';

/** The key of RFC 6455 §1.3 and §4.2.2's example, and its Sec-WebSocket-Accept. */
const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

const SAMPLE_101 =
  'HTTP/1.1 101 Switching Protocols\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
  '\r\n';

function request(headers: Record<string, string | string[] | undefined> = {}, rest: Partial<UpgradeRequest> = {}): UpgradeRequest {
  return {
    method: 'GET',
    httpVersion: '1.1',
    ...rest,
    headers: {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': SAMPLE_KEY,
      'sec-websocket-version': '13',
      ...headers,
    },
  };
}

function accepted(result: ReturnType<typeof acceptHandshake>) {
  assert.ok(!(result instanceof HandshakeError), `expected acceptance, got ${result instanceof HandshakeError ? result.message : ''}`);
  return result;
}

/** Asserts the request is refused with this error and these exact response bytes. */
function assertRejected(
  result: ReturnType<typeof acceptHandshake>,
  expected: { status: number; code: HandshakeErrorCode; message: string; headers?: Record<string, string>; response: string },
): void {
  assert.ok(result instanceof HandshakeError, 'a HandshakeError');
  assert.equal(result.name, 'HandshakeError');
  assert.deepEqual(
    { status: result.status, code: result.code, message: result.message, headers: { ...result.headers } },
    { status: expected.status, code: expected.code, message: expected.message, headers: expected.headers ?? {} },
  );
  assert.equal(rejectResponse(result).toString('latin1'), expected.response);
}

/** The exact refusal: status line, fixed headers, extra headers, and the message as a one-line body. */
function refusal(statusLine: string, message: string, extra = '', connection = 'close'): string {
  return (
    `HTTP/1.1 ${statusLine}\r\n` +
    `Connection: ${connection}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${message.length + 1}\r\n` +
    extra +
    '\r\n' +
    `${message}\n`
  );
}

const BAD_UPGRADE = 'Upgrade header must include "websocket"';
const BAD_CONNECTION = 'Connection header must include "Upgrade"';
const BAD_KEY = 'Sec-WebSocket-Key must be base64 of 16 bytes';
const BAD_VERSION = 'unsupported Sec-WebSocket-Version; this server speaks 13';

describe('4.2 Opening handshake', () => {
  test('the key of RFC 6455 §1.3 gives the accept value s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', () => {
    assert.equal(acceptKey(SAMPLE_KEY), SAMPLE_ACCEPT);
  });

  test('a valid request is accepted with the exact 101 response bytes', () => {
    const result = accepted(acceptHandshake(request()));
    assert.equal(result.key, SAMPLE_KEY);
    assert.equal(result.protocol, '');
    assert.equal(result.extensions, '');
    assert.equal(result.extension, null);
    assert.equal(result.response.toString('latin1'), SAMPLE_101);
  });

  test('acceptResponse adds the protocol, the extensions and extra headers in that order', () => {
    assert.equal(
      acceptResponse(SAMPLE_KEY, 'chat', 'permessage-deflate', { 'X-Served-By': 'test' }).toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        'Sec-WebSocket-Protocol: chat\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate\r\n' +
        'X-Served-By: test\r\n' +
        '\r\n',
    );
  });

  test('extra headers from the options go into the 101 response', () => {
    const result = accepted(acceptHandshake(request(), { headers: { 'Set-Cookie': 'a=b' } }));
    assert.equal(result.response.toString('latin1'), SAMPLE_101.replace(/\r\n$/, 'Set-Cookie: a=b\r\n\r\n'));
  });

  for (const method of ['POST', 'HEAD', 'get']) {
    test(`method ${method} is refused with 405 and Allow: GET`, () => {
      assertRejected(acceptHandshake(request({}, { method })), {
        status: 405,
        code: 'WS_ERR_HANDSHAKE_METHOD',
        message: 'WebSocket upgrade requires GET',
        headers: { Allow: 'GET' },
        response: refusal('405 Method Not Allowed', 'WebSocket upgrade requires GET', 'Allow: GET\r\n'),
      });
    });
  }

  for (const httpVersion of ['1.0', '0.9', 'x']) {
    test(`HTTP/${httpVersion} is refused with 400`, () => {
      const message = 'WebSocket upgrade requires HTTP/1.1 or later';
      assertRejected(acceptHandshake(request({}, { httpVersion })), {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_HTTP_VERSION',
        message,
        response: refusal('400 Bad Request', message),
      });
    });
  }

  test('HTTP/2.0 and HTTP/1.2 pass the version check; a request without method or version is not refused for them', () => {
    accepted(acceptHandshake(request({}, { httpVersion: '2.0' })));
    accepted(acceptHandshake(request({}, { httpVersion: '1.2' })));
    accepted(acceptHandshake({ headers: request().headers }));
  });

  for (const host of [undefined, '', '  ']) {
    test(`a missing or empty Host (${JSON.stringify(host)}) is refused with 400`, () => {
      assertRejected(acceptHandshake(request({ host })), {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_HOST',
        message: 'missing Host header',
        response: refusal('400 Bad Request', 'missing Host header'),
      });
    });
  }

  for (const upgrade of [undefined, '', 'h2c', 'websocket2', 'web socket']) {
    test(`Upgrade: ${JSON.stringify(upgrade)} is refused with 400`, () => {
      assertRejected(acceptHandshake(request({ upgrade })), {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_UPGRADE',
        message: BAD_UPGRADE,
        response: refusal('400 Bad Request', BAD_UPGRADE),
      });
    });
  }

  for (const connection of [undefined, 'keep-alive', 'Upgraded', 'Upgrade-Insecure']) {
    test(`Connection: ${JSON.stringify(connection)} is refused with 400`, () => {
      assertRejected(acceptHandshake(request({ connection })), {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_CONNECTION',
        message: BAD_CONNECTION,
        response: refusal('400 Bad Request', BAD_CONNECTION),
      });
    });
  }

  for (const version of [undefined, '', '8', '12', '13, 8', '14']) {
    test(`Sec-WebSocket-Version: ${JSON.stringify(version)} is refused with 426 and Sec-WebSocket-Version: 13`, () => {
      assertRejected(acceptHandshake(request({ 'sec-websocket-version': version })), {
        status: 426,
        code: 'WS_ERR_HANDSHAKE_VERSION',
        message: BAD_VERSION,
        headers: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' },
        response: refusal('426 Upgrade Required', BAD_VERSION, 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n', 'Upgrade, close'),
      });
    });
  }

  for (const [name, key] of [
    ['missing', undefined],
    ['empty', ''],
    ['15 bytes', Buffer.alloc(15, 1).toString('base64')],
    ['17 bytes', Buffer.alloc(17, 1).toString('base64')],
    ['16 bytes without padding', 'dGhlIHNhbXBsZSBub25jZQ'],
    ['not base64', 'dGhlIHNhbXBsZSBub25j!Q=='],
    ['base64url', 'dGhlIHNhbXBsZSBub25j_Q=='],
    ['a space inside', 'dGhlIHNhbXBs ZSBub25jZQ=='],
    ['padding three', 'dGhlIHNhbXBsZSBub25jZ==='],
  ] as const) {
    test(`a Sec-WebSocket-Key that is ${name} is refused with 400`, () => {
      assertRejected(acceptHandshake(request({ 'sec-websocket-key': key })), {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_KEY',
        message: BAD_KEY,
        response: refusal('400 Bad Request', BAD_KEY),
      });
    });
  }

  test('a key with surrounding spaces is trimmed and accepted', () => {
    assert.equal(accepted(acceptHandshake(request({ 'sec-websocket-key': ` ${SAMPLE_KEY} ` }))).key, SAMPLE_KEY);
  });

  test('Upgrade and Connection are case-insensitive comma lists', () => {
    accepted(acceptHandshake(request({ upgrade: 'WebSocket', connection: 'keep-alive, Upgrade' })));
    accepted(acceptHandshake(request({ upgrade: 'h2c,  WEBSOCKET ', connection: 'upgrade,keep-alive' })));
    accepted(acceptHandshake(request({ connection: ['keep-alive', 'UPGRADE'] })));
    accepted(acceptHandshake(request({ 'sec-websocket-version': ' 13 ' })));
  });

  test('headerHasToken matches whole tokens only', () => {
    assert.equal(headerHasToken('keep-alive, Upgrade', 'upgrade'), true);
    assert.equal(headerHasToken('keep-alive,upgrade2', 'upgrade'), false);
    assert.equal(headerHasToken('', 'upgrade'), false);
    assert.equal(headerHasToken(undefined, 'upgrade'), false);
  });

  test('rejectResponse names unknown statuses "Error" and counts the body in bytes', () => {
    const error = new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 418, 'naïve', { 'Retry-After': '1' });
    assert.equal(
      rejectResponse(error).toString('utf8'),
      'HTTP/1.1 418 Error\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 7\r\nRetry-After: 1\r\n\r\nnaïve\n',
    );
    assert.equal(
      rejectResponse({ status: 404, message: 'no route', headers: {} }).toString('latin1'),
      refusal('404 Not Found', 'no route'),
    );
  });
});

describe('4.2.2 Subprotocol selection', () => {
  test('the hook sees the offered protocols in order and its choice goes into the response', () => {
    let seen: readonly string[] = [];
    const result = accepted(
      acceptHandshake(request({ 'sec-websocket-protocol': 'chat, superchat' }), {
        selectProtocol: (offered) => {
          seen = offered;
          return 'superchat';
        },
      }),
    );
    assert.deepEqual(seen, ['chat', 'superchat']);
    assert.equal(result.protocol, 'superchat');
    assert.equal(result.response.toString('latin1'), SAMPLE_101.replace(/\r\n$/, 'Sec-WebSocket-Protocol: superchat\r\n\r\n'));
  });

  test('a hook returning null (or undefined) chooses none: no Sec-WebSocket-Protocol header', () => {
    for (const choice of [null, undefined]) {
      const result = accepted(acceptHandshake(request({ 'sec-websocket-protocol': 'chat' }), { selectProtocol: () => choice }));
      assert.equal(result.protocol, '');
      assert.equal(result.response.toString('latin1'), SAMPLE_101);
    }
  });

  test('the hook sees an empty list when nothing is offered', () => {
    let seen: readonly string[] | null = null;
    accepted(acceptHandshake(request(), { selectProtocol: (offered) => ((seen = offered), null) }));
    assert.deepEqual(seen, []);
  });

  test('a hook returning a HandshakeError refuses the request with it', () => {
    const refusalError = new HandshakeError('WS_ERR_HANDSHAKE_PROTOCOL', 400, 'no supported subprotocol');
    assertRejected(
      acceptHandshake(request({ 'sec-websocket-protocol': 'mqtt' }), { selectProtocol: () => refusalError }),
      {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_PROTOCOL',
        message: 'no supported subprotocol',
        response: refusal('400 Bad Request', 'no supported subprotocol'),
      },
    );
  });

  test('a hook choosing a protocol the client did not offer is refused with 500, keeping its value out of the response', () => {
    // Regression: the choice went into the 101 response unchecked; RFC 6455 §4.2.2 requires one of
    // the offered values, and a value with CR LF could inject header lines.
    const message = 'the selected subprotocol was not one the client offered';
    for (const choice of ['superchat', 'chat\r\nSet-Cookie: a=b', 'Chat']) {
      assertRejected(acceptHandshake(request({ 'sec-websocket-protocol': 'chat' }), { selectProtocol: () => choice }), {
        status: 500,
        code: 'WS_ERR_HANDSHAKE_PROTOCOL',
        message,
        response: refusal('500 Internal Server Error', message),
      });
    }
  });

  test('without a hook an offered protocol is ignored', () => {
    assert.equal(accepted(acceptHandshake(request({ 'sec-websocket-protocol': 'chat' }))).protocol, '');
  });

  test('parseProtocolHeader keeps tokens in order, once each, and drops what is not a token', () => {
    assert.deepEqual(parseProtocolHeader(undefined), []);
    assert.deepEqual(parseProtocolHeader(''), []);
    assert.deepEqual(parseProtocolHeader('chat, superchat,chat , ,v2.json'), ['chat', 'superchat', 'v2.json']);
    assert.deepEqual(parseProtocolHeader('a b, "quoted", ok, x/y, ü'), ['ok']);
  });

  test('repeated Sec-WebSocket-Protocol headers (an array) are read as one list', () => {
    let seen: readonly string[] = [];
    accepted(acceptHandshake(request({ 'sec-websocket-protocol': ['a, b', 'c'] }), { selectProtocol: (o) => ((seen = o), null) }));
    assert.deepEqual(seen, ['a', 'b', 'c']);
  });

  test('parseProtocolHeader on 1 MB pathological headers returns the right answer (linear, cf. CVE-2021-32640)', () => {
    // Regression: duplicates were dropped with Array.includes, quadratic in the number of distinct
    // names: a 1 MB header of distinct names took about 30 s.
    const names: string[] = [];
    for (let i = 0, length = 0; length < 1 << 20; i++) {
      const name = `p${i.toString(36)}`;
      names.push(name);
      length += name.length + 1;
    }
    const parsed = parseProtocolHeader(names.join(','));
    assert.equal(parsed.length, names.length);
    assert.equal(parsed[0], 'p0');
    assert.equal(parsed.at(-1), names.at(-1));
    // Whitespace runs and separators without names.
    assert.deepEqual(parseProtocolHeader('a' + ' '.repeat(1 << 20) + 'b'), []);
    assert.deepEqual(parseProtocolHeader('x' + ','.repeat(1 << 20) + 'y'), ['x', 'y']);
    assert.deepEqual(parseProtocolHeader(' '.repeat(1 << 20) + 'z' + '\t'.repeat(1 << 20)), ['z']);
  });
});

describe('9.1 Extension negotiation plug point', () => {
  const fakeExtension: MessageExtension = { rsv: 0x40, decode: (d) => d, encode: () => null };

  function negotiator(name: string, accept: boolean, calls: string[]): ExtensionNegotiator {
    return {
      name,
      negotiate(header) {
        calls.push(`${name}:${header}`);
        return accept ? { response: `${name}; agreed`, extension: fakeExtension } : null;
      },
    };
  }

  test('the first negotiator, in server preference order, that accepts the offer wins', () => {
    const calls: string[] = [];
    const result = accepted(
      acceptHandshake(request({ 'sec-websocket-extensions': 'x-b, x-a; p=1' }), {
        extensions: [negotiator('x-none', false, calls), negotiator('x-a', true, calls), negotiator('x-b', true, calls)],
      }),
    );
    assert.deepEqual(calls, ['x-none:x-b, x-a; p=1', 'x-a:x-b, x-a; p=1']);
    assert.equal(result.extensions, 'x-a; agreed');
    assert.equal(result.extension, fakeExtension);
    assert.equal(result.response.toString('latin1'), SAMPLE_101.replace(/\r\n$/, 'Sec-WebSocket-Extensions: x-a; agreed\r\n\r\n'));
  });

  test('no negotiator accepting means no extension and no header', () => {
    const calls: string[] = [];
    const result = accepted(
      acceptHandshake(request({ 'sec-websocket-extensions': 'x-a' }), { extensions: [negotiator('x-a', false, calls)] }),
    );
    assert.equal(result.extension, null);
    assert.equal(result.response.toString('latin1'), SAMPLE_101);
  });

  test('negotiators are not asked when the client offers nothing', () => {
    for (const offer of [undefined, '', '  ']) {
      const calls: string[] = [];
      const result = accepted(acceptHandshake(request({ 'sec-websocket-extensions': offer }), { extensions: [negotiator('x-a', true, calls)] }));
      assert.deepEqual(calls, []);
      assert.equal(result.extension, null);
    }
  });

  test('an offer is ignored when the server has no negotiators', () => {
    assert.equal(accepted(acceptHandshake(request({ 'sec-websocket-extensions': 'permessage-deflate' }))).extensions, '');
  });
});

describe('RFC 9110 §7.8, RFC 9112 §3.2: HTTP at the protocol switch', () => {
  const CONTENT = 'an upgrade request cannot carry content';
  for (const [name, headers] of [
    ['Content-Length: 14', { 'content-length': '14' }],
    ['Content-Length: 12', { 'content-length': '12' }],
    ['Transfer-Encoding: chunked', { 'transfer-encoding': 'chunked' }],
    ['Transfer-Encoding: identity', { 'transfer-encoding': 'identity' }],
  ] as const) {
    test(`a request with ${name} is refused with 400 WS_ERR_HANDSHAKE_CONTENT`, () => {
      assertRejected(acceptHandshake(request(headers)), {
        status: 400,
        code: 'WS_ERR_HANDSHAKE_CONTENT',
        message: CONTENT,
        response: refusal('400 Bad Request', CONTENT),
      });
    });
  }

  test('Content-Length: 0 is no content and is accepted', () => {
    assert.equal(accepted(acceptHandshake(request({ 'content-length': '0' }))).response.toString('latin1'), SAMPLE_101);
  });

  test('two Host fields (seen in rawHeaders; headers kept the first) are refused with 400 WS_ERR_HANDSHAKE_HOST_DUPLICATE', () => {
    const rawHeaders = ['Host', 'server.example.com', 'Upgrade', 'websocket', 'host', 'evil.example'];
    assertRejected(acceptHandshake({ ...request(), rawHeaders }), {
      status: 400,
      code: 'WS_ERR_HANDSHAKE_HOST_DUPLICATE',
      message: 'more than one Host header',
      response: refusal('400 Bad Request', 'more than one Host header'),
    });
    accepted(acceptHandshake({ ...request(), rawHeaders: ['Host', 'server.example.com', 'Upgrade', 'websocket'] }));
  });

  test('Expect: 100-continue gets 100 Continue before the 101, in one buffer', () => {
    for (const expect of ['100-continue', '100-Continue']) {
      const result = accepted(acceptHandshake(request({ expect })));
      assert.equal(result.response.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n' + SAMPLE_101);
    }
  });

  test('any other expectation is refused with 417 WS_ERR_HANDSHAKE_EXPECT', () => {
    const message = 'the only expectation supported is 100-continue';
    assertRejected(acceptHandshake(request({ expect: '100-continue, x-fast' })), {
      status: 417,
      code: 'WS_ERR_HANDSHAKE_EXPECT',
      message,
      response: refusal('417 Expectation Failed', message),
    });
  });
});

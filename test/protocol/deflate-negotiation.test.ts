// permessage-deflate negotiation (RFC 7692 §5, §7.1) and the Sec-WebSocket-Extensions grammar
// (RFC 6455 §9.1): each parameter, combinations, declined offers, malformed headers.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PerMessageDeflateNegotiator, permessageDeflate, type DeflateParams, type PerMessageDeflateOptions } from '../../src/protocol/deflate.js';
import { parseExtensionsHeader } from '../../src/protocol/extensions.js';
import { acceptHandshake } from '../../src/protocol/handshake.js';
import { HandshakeError } from '../../src/protocol/errors.js';

function agree(header: string, options: PerMessageDeflateOptions = {}): { response: string; params: DeflateParams } | null {
  const agreed = permessageDeflate(options).negotiate(header);
  return agreed === null ? null : { response: agreed.response, params: agreed.extension.params };
}

const DEFAULTS: DeflateParams = {
  ownWindowBits: 12,
  ownNoContextTakeover: false,
  peerWindowBits: 15,
  peerNoContextTakeover: false,
  threshold: 96,
  level: 6,
  memLevel: 5,
};

describe('Sec-WebSocket-Extensions parsing (RFC 6455 §9.1)', () => {
  test('parses several offers with parameters with and without values, in order', () => {
    assert.deepEqual(parseExtensionsHeader('permessage-deflate; client_max_window_bits, permessage-deflate;server_max_window_bits=10 , x-foo'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
      { name: 'x-foo', params: [] },
    ]);
  });

  test('unquotes quoted values, with quoted-pairs', () => {
    assert.deepEqual(parseExtensionsHeader('a; b="10"; c="1\\2"'), [{ name: 'a', params: [['b', '10'], ['c', '12']] }]);
  });

  test('lower-cases names and skips empty list elements and spaces around = and ;', () => {
    assert.deepEqual(parseExtensionsHeader(' , Permessage-Deflate ;\tClient_Max_Window_Bits = 9 ,, '), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '9']] },
    ]);
  });

  test('an empty header is an empty list', () => {
    assert.deepEqual(parseExtensionsHeader(''), []);
  });

  for (const header of [
    ';',
    'permessage-deflate;',
    'permessage-deflate; =1',
    'permessage-deflate; a=',
    'permessage-deflate; a="b',
    'permessage-deflate; a="b\\',
    'permessage-deflate; a=""',
    'permessage-deflate; a="b c"',
    'permessage-deflate; a="1,2"',
    'permessage-deflate x',
    'permessage-deflate; a=b c',
    '"permessage-deflate"',
    'permessage-deflate; a==1',
    'permessage-deflate\u00ff',
  ]) {
    test(`a header breaking the grammar is null, not thrown: ${JSON.stringify(header)}`, () => {
      assert.equal(parseExtensionsHeader(header), null);
    });
  }
});

describe('permessage-deflate negotiation: each parameter (RFC 7692 §7.1)', () => {
  test('a bare offer is accepted with a bare response; we compress with 12 bits, the client may use 15', () => {
    assert.deepEqual(agree('permessage-deflate'), { response: 'permessage-deflate', params: DEFAULTS });
  });

  test('§7.1.1.1 server_no_context_takeover is honoured and echoed', () => {
    assert.deepEqual(agree('permessage-deflate; server_no_context_takeover'), {
      response: 'permessage-deflate; server_no_context_takeover',
      params: { ...DEFAULTS, ownNoContextTakeover: true },
    });
  });

  test('§7.1.1.2 client_no_context_takeover is accepted and echoed', () => {
    assert.deepEqual(agree('permessage-deflate; client_no_context_takeover'), {
      response: 'permessage-deflate; client_no_context_takeover',
      params: { ...DEFAULTS, peerNoContextTakeover: true },
    });
  });

  for (const [offered, agreed] of [
    [8, 8],
    [9, 9],
    [10, 10],
    [12, 12],
    [15, 12],
  ] as const) {
    test(`§7.1.2.1 server_max_window_bits=${offered} is answered with ${agreed} (ours is 12 at most)`, () => {
      assert.deepEqual(agree(`permessage-deflate; server_max_window_bits=${offered}`), {
        response: `permessage-deflate; server_max_window_bits=${agreed}`,
        params: { ...DEFAULTS, ownWindowBits: agreed },
      });
    });
  }

  test('§7.1.2.2 client_max_window_bits without a value is answered with our 12', () => {
    assert.deepEqual(agree('permessage-deflate; client_max_window_bits'), {
      response: 'permessage-deflate; client_max_window_bits=12',
      params: { ...DEFAULTS, peerWindowBits: 12 },
    });
  });

  for (const [offered, agreed] of [
    [8, 8],
    [10, 10],
    [15, 12],
  ] as const) {
    test(`§7.1.2.2 client_max_window_bits=${offered} is answered with ${agreed}`, () => {
      assert.deepEqual(agree(`permessage-deflate; client_max_window_bits=${offered}`), {
        response: `permessage-deflate; client_max_window_bits=${agreed}`,
        params: { ...DEFAULTS, peerWindowBits: agreed },
      });
    });
  }

  test('a quoted window bits value counts as the token it holds', () => {
    assert.equal(agree('permessage-deflate; client_max_window_bits="10"')?.response, 'permessage-deflate; client_max_window_bits=10');
  });
});

describe('permessage-deflate negotiation: combinations and our settings', () => {
  test('all four parameters together are answered together', () => {
    assert.deepEqual(
      agree('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10'),
      {
        response:
          'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10',
        params: { ...DEFAULTS, ownNoContextTakeover: true, peerNoContextTakeover: true, ownWindowBits: 9, peerWindowBits: 10 },
      },
    );
  });

  test("Chromium's offer (permessage-deflate; client_max_window_bits) gets client_max_window_bits=12", () => {
    assert.equal(agree('permessage-deflate; client_max_window_bits')?.response, 'permessage-deflate; client_max_window_bits=12');
  });

  test('serverNoContextTakeover and clientNoContextTakeover are added to the response even when not offered', () => {
    assert.deepEqual(agree('permessage-deflate', { serverNoContextTakeover: true, clientNoContextTakeover: true }), {
      response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      params: { ...DEFAULTS, ownNoContextTakeover: true, peerNoContextTakeover: true },
    });
  });

  test('serverMaxWindowBits is used without being announced when the client did not offer server_max_window_bits', () => {
    assert.deepEqual(agree('permessage-deflate', { serverMaxWindowBits: 9 }), {
      response: 'permessage-deflate',
      params: { ...DEFAULTS, ownWindowBits: 9 },
    });
  });

  test('clientMaxWindowBits bounds what the client offered', () => {
    assert.equal(
      agree('permessage-deflate; client_max_window_bits=14', { clientMaxWindowBits: 15 })?.response,
      'permessage-deflate; client_max_window_bits=14',
    );
    assert.equal(agree('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 9 })?.response, 'permessage-deflate; client_max_window_bits=9');
  });

  test('threshold, level and memLevel go to the extension', () => {
    assert.deepEqual(agree('permessage-deflate', { threshold: 0, level: 1, memLevel: 9 })?.params, { ...DEFAULTS, threshold: 0, level: 1, memLevel: 9 });
  });

  test('settings out of range are refused when the negotiator is made', () => {
    assert.throws(() => permessageDeflate({ serverMaxWindowBits: 7 }), { name: 'RangeError', message: 'compression.serverMaxWindowBits must be an integer from 8 to 15' });
    assert.throws(() => permessageDeflate({ clientMaxWindowBits: 16 }), { name: 'RangeError', message: 'compression.clientMaxWindowBits must be an integer from 8 to 15' });
    assert.throws(() => permessageDeflate({ level: 10 }), { name: 'RangeError', message: 'compression.level must be an integer from -1 to 9' });
    assert.throws(() => permessageDeflate({ memLevel: 0 }), { name: 'RangeError', message: 'compression.memLevel must be an integer from 1 to 9' });
    assert.throws(() => permessageDeflate({ threshold: -1 }), { name: 'RangeError', message: 'compression.threshold must be a number of bytes' });
    assert.throws(() => permessageDeflate({ serverNoContextTakeover: 'yes' as unknown as boolean }), { name: 'TypeError' });
  });
});

describe('permessage-deflate negotiation: declined offers', () => {
  for (const offer of [
    'permessage-deflate; foo',
    'permessage-deflate; foo=1',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=08',
    'permessage-deflate; server_max_window_bits=1a',
    'permessage-deflate; client_max_window_bits=0',
    'permessage-deflate; client_max_window_bits="16"',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; client_no_context_takeover="true"',
  ]) {
    test(`declines ${JSON.stringify(offer)} and accepts the next offer`, () => {
      assert.equal(agree(offer), null);
      assert.equal(agree(`${offer}, permessage-deflate; client_max_window_bits`)?.response, 'permessage-deflate; client_max_window_bits=12');
    });
  }

  test('other extensions are passed over', () => {
    assert.equal(agree('x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover')?.response, 'permessage-deflate; server_no_context_takeover');
    assert.equal(agree('x-webkit-deflate-frame; no_context_takeover'), null);
  });

  for (const header of ['permessage-deflate; a="b', 'permessage-deflate, ;', 'permessage-deflate; client_max_window_bits x', '\u0000']) {
    test(`a malformed header declines every offer without throwing: ${JSON.stringify(header)}`, () => {
      assert.equal(agree(header), null);
    });
  }
});

describe('permessage-deflate in the opening handshake', () => {
  const request = (extensions?: string) => ({
    method: 'GET',
    httpVersion: '1.1',
    headers: {
      host: 'example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      ...(extensions === undefined ? {} : { 'sec-websocket-extensions': extensions }),
    },
  });

  test('the 101 response carries the agreed Sec-WebSocket-Extensions', () => {
    const accepted = acceptHandshake(request('permessage-deflate; client_max_window_bits'), { extensions: [new PerMessageDeflateNegotiator()] });
    assert.ok(!(accepted instanceof HandshakeError));
    assert.equal(accepted.extensions, 'permessage-deflate; client_max_window_bits=12');
    assert.ok(accepted.extension !== null);
    assert.match(accepted.response.toString('latin1'), /\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\n/);
  });

  test('without an offer there is no extension and no header', () => {
    const accepted = acceptHandshake(request(), { extensions: [new PerMessageDeflateNegotiator()] });
    assert.ok(!(accepted instanceof HandshakeError));
    assert.equal(accepted.extension, null);
    assert.doesNotMatch(accepted.response.toString('latin1'), /Sec-WebSocket-Extensions/);
  });

  test('a malformed offer is declined and the handshake still succeeds', () => {
    const accepted = acceptHandshake(request('permessage-deflate; ="'), { extensions: [new PerMessageDeflateNegotiator()] });
    assert.ok(!(accepted instanceof HandshakeError));
    assert.equal(accepted.extension, null);
  });
});

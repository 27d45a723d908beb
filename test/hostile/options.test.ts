// The defaults of the defences are the ones docs/security.md lists, and a bad value is refused
// when the options are resolved, not at the first connection.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { resolveOptions, type WebSocketOptions } from '../../src/node/options.js';
import { WebSocketRouter } from '../../src/framework/router.js';

describe('Defaults and validation of the defences', () => {
  test('the defaults are the documented ones', () => {
    const options = resolveOptions();
    assert.deepEqual(
      {
        maxPayload: options.maxPayload,
        maxHeaders: options.maxHeaders,
        origins: options.origins,
        heartbeatInterval: options.heartbeatInterval,
        heartbeatTimeout: options.heartbeatTimeout,
        idleTimeout: options.idleTimeout,
        maxBufferedAmount: options.maxBufferedAmount,
        slowConsumer: options.slowConsumer,
        closeTimeout: options.closeTimeout,
        maxConnections: options.maxConnections,
        maxConnectionsPerIp: options.maxConnectionsPerIp,
      },
      {
        maxPayload: 1024 * 1024,
        maxHeaders: 100,
        origins: undefined,
        heartbeatInterval: 30_000,
        heartbeatTimeout: 30_000,
        idleTimeout: 0,
        maxBufferedAmount: 4 * 1024 * 1024,
        slowConsumer: 'close',
        closeTimeout: 10_000,
        maxConnections: 10_000,
        maxConnectionsPerIp: 0,
      },
    );
  });

  test('a later layer overrides an earlier one, as a class overrides its router', () => {
    const options = resolveOptions({ maxConnections: 5, slowConsumer: 'drop' }, { maxConnections: 1 });
    assert.deepEqual([options.maxConnections, options.slowConsumer], [1, 'drop']);
  });

  const bad: [WebSocketOptions, string, string][] = [
    [{ heartbeatInterval: -1 }, 'RangeError', 'heartbeatInterval must be a number of milliseconds (0 turns it off)'],
    [{ heartbeatTimeout: 2 ** 31 }, 'RangeError', 'heartbeatTimeout must be a number of milliseconds (0 turns it off)'],
    [{ idleTimeout: Number.NaN }, 'RangeError', 'idleTimeout must be a number of milliseconds (0 turns it off)'],
    [{ maxBufferedAmount: -1 }, 'RangeError', 'maxBufferedAmount must be a number of bytes'],
    [{ slowConsumer: 'block' as 'drop' }, 'RangeError', "slowConsumer must be 'close' or 'drop'"],
    [{ maxHeaders: 1.5 }, 'RangeError', 'maxHeaders must be a whole number (0: no limit)'],
    [{ maxConnections: -1 }, 'RangeError', 'maxConnections must be a whole number (0: no limit)'],
    [{ maxConnectionsPerIp: Number.POSITIVE_INFINITY }, 'RangeError', 'maxConnectionsPerIp must be a whole number (0: no limit)'],
    [{ origins: 'https://a.example' as '*' }, 'TypeError', "origins must be '*', a list of origins or a function"],
    [{ headers: { Upgrade: 'h2c' } }, 'TypeError', 'header "Upgrade" is written by the server itself and cannot be set'],
    [{ headers: { 'Content-Length': '0' } }, 'TypeError', 'header "Content-Length" is written by the server itself and cannot be set'],
    [{ headers: { 'X-A': 'a\r\nSet-Cookie: injected=1' } }, 'TypeError', 'invalid character in the value of header "X-A"'],
    [{ headers: { 'X A': 'b' } }, 'TypeError', 'header name must be a token: "X A"'],
  ];
  for (const [options, name, message] of bad) {
    test(`${inspect(options)} is refused with ${name}: ${message}`, () => {
      assert.throws(() => resolveOptions(options), { name, message });
      // The router resolves its options when it is made, and a class's when it is routed.
      assert.throws(() => new WebSocketRouter(options), { name, message });
      assert.throws(() => new WebSocketRouter().route('/wsBad', class Bad { static options = options; }), { name, message });
    });
  }
});

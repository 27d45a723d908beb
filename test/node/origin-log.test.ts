// A page refused by the Origin check must say why: the server logs the origin, the path and the
// fix, once per origin and path, and at most ORIGIN_LOG_LIMIT lines a minute (the Origin header is
// the client's to choose). Counted from a logger passed in, never by waiting.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { WebSocketHandler, WebSocketRouter } from '../../src/index.js';
import { ORIGIN_LOG_LIMIT, ORIGIN_LOG_WINDOW, reportRefusedOrigin } from '../../src/node/origin.js';
import { upgradeRequest } from '../helpers/net.js';
import { listen } from '../framework/helpers.js';

function refused(port: number, origin: string, path = '/wsEcho'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(upgradeRequest(port, { path, headers: { Origin: origin } })));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

function warnings(): { warn(...args: unknown[]): void; error(...args: unknown[]): void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (line: unknown) => void lines.push(String(line)), error: () => assert.fail('warnings go to warn') };
}

describe('refused origins are logged with the reason and the fix, rate-limited', () => {
  test('one line per origin and path, naming the host it connected to and --origin / the origins option', async () => {
    const logger = warnings();
    class Echo extends WebSocketHandler {}
    const server = await listen(new WebSocketRouter({ logger }).route('/wsEcho', Echo));
    try {
      const response = await refused(server.port, 'http://localhost:5173');
      assert.match(response, /^HTTP\/1\.1 403 Forbidden\r\n/);
      await refused(server.port, 'http://localhost:5173');
      await refused(server.port, 'http://localhost:5173', '/wsEcho?again=1');
      assert.deepEqual(logger.lines, [
        `pef-front-websocket: origin http://localhost:5173 refused at /wsEcho (the page is not from 127.0.0.1:${server.port}, ` +
          'the host it connected to): allow it with --origin http://localhost:5173 or the origins option',
      ]);
    } finally {
      await server.close();
    }
  });

  test(`at most ${ORIGIN_LOG_LIMIT} lines per window, whatever origins a client makes up; then a count of the rest`, async () => {
    const logger = warnings();
    class Echo extends WebSocketHandler {}
    const server = await listen(new WebSocketRouter({ logger }).route('/wsEcho', Echo));
    try {
      for (let i = 0; i < ORIGIN_LOG_LIMIT + 5; i++) await refused(server.port, `http://attacker-${i}.example`);
      assert.equal(logger.lines.length, ORIGIN_LOG_LIMIT);
      assert.match(logger.lines.at(-1)!, new RegExp(`^pef-front-websocket: origin http://attacker-${ORIGIN_LOG_LIMIT - 1}\\.example refused`));
    } finally {
      await server.close();
    }
    // The next window (its start given, not waited for) opens with the count of what was not logged.
    const request = { headers: { origin: 'http://later.example', host: 'h:1' }, url: '/wsEcho' } as unknown as IncomingMessage;
    reportRefusedOrigin(request, logger, Date.now() + ORIGIN_LOG_WINDOW);
    assert.deepEqual(logger.lines.slice(ORIGIN_LOG_LIMIT), [
      `pef-front-websocket: 5 more refused origins were not logged (at most ${ORIGIN_LOG_LIMIT} a minute)`,
      'pef-front-websocket: origin http://later.example refused at /wsEcho (the page is not from h:1, the host it connected to): ' +
        'allow it with --origin http://later.example or the origins option',
    ]);
  });

  test('an origin with spaces or control characters is quoted, and a logger without warn gets it through error', () => {
    const lines: unknown[] = [];
    const logger = { error: (line: unknown) => void lines.push(line) };
    const request = { headers: { origin: 'http://a b\n', host: 'h' }, url: '/x' } as unknown as IncomingMessage;
    reportRefusedOrigin(request, logger);
    assert.deepEqual(lines, [
      'pef-front-websocket: origin "http://a b\\n" refused at /x (the page is not from h, the host it connected to): ' +
        'allow it with --origin "http://a b\\n" or the origins option',
    ]);
  });
});

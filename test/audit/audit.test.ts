// The whole battery against our echo server (everything OK), and against ws's echo server with its
// defaults (what ws is known to do: UTF-8 checked at the end of a message, not fail-fast; a few
// handshake rules it does not enforce; no permessage-deflate unless configured).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { acceptWebSocket, type WebSocketConnection } from '../../src/index.js';
import { ALL_CASES, selectCases } from '../../src/audit/cases/index.js';
import { runAudit } from '../../src/audit/runner.js';

/** The upgrade listener of examples/echo-server.ts, in this process. */
async function startOurEcho(): Promise<{ server: Server; url: string }> {
  const server = createServer((_request, response) => {
    response.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' }).end('WebSocket echo server\n');
  });
  server.on('upgrade', (request, socket, head) => {
    // Reading waits while replies wait to be written, as in the example: ten 1 MiB messages sent at
    // once by a client that reads slowly under load never reach maxBufferedAmount (4 MiB).
    const hooks = {
      onMessage: (message: string | Buffer, type: 'text' | 'binary') => {
        if (!ws!.send(message, type)) ws!.pause();
      },
      onDrain: () => ws!.resume(),
      onError: () => {},
    };
    const ws: WebSocketConnection | null = acceptWebSocket(request, socket, head, hooks, { maxPayload: 64 * 1024 * 1024 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** An echo server on ws's WebSocketServer, with its defaults or with permessage-deflate on. */
async function startWsEcho(perMessageDeflate: boolean): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate });
  wss.on('connection', (socket) => {
    socket.on('error', () => {});
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  return { wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/` };
}

// Deadlines generous enough that a busy 2-core machine cannot turn a correct server into a
// NON-STRICT one: they only cost time when a server does not react.
const PATIENT = { concurrency: 4, timeout: 120_000, closeDeadline: 10_000, failFastWait: 5_000 };

describe('the battery against our echo server', () => {
  let ours: { server: Server; url: string };
  before(async () => (ours = await startOurEcho()));
  after(() => new Promise<void>((resolve) => ours.server.close(() => resolve())));

  test('every case is OK', async (t) => {
    const report = await runAudit(ours.url, ALL_CASES, PATIENT);
    t.diagnostic(`${report.cases.length} cases in ${(report.duration / 1000).toFixed(1)} s: ${JSON.stringify(report.counts)}`);
    assert.equal(report.cases.length, ALL_CASES.length);
    const notOk = report.cases.filter((c) => c.verdict !== 'OK').map((c) => `${c.id}: ${c.verdict}: ${c.reason}`);
    assert.deepEqual(notOk, []);
    assert.equal(report.cases.find((c) => c.id === 'handshake.expect-continue')!.reason, 'accepted after 100, and the 101 is right (§4.2.2)');
    for (const result of report.cases.filter((c) => c.close !== null)) {
      assert.equal(result.close!.serverClosedTcpFirst, true, `${result.id}: ${result.close!.detail}`);
    }
  });
});

describe('the battery against ws with its defaults', () => {
  let ws: { wss: WebSocketServer; url: string };
  let url: string;
  before(async () => ({ url } = ws = await startWsEcho(false)));
  after(() => new Promise<void>((resolve) => ws.wss.close(() => resolve())));

  test('UTF-8 is checked only when a message is complete: the four fail-fast cases are NON-STRICT, and 1007 still comes', async () => {
    const report = await runAudit(url, selectCases('utf8.fail-fast.*'), { ...PATIENT, failFastWait: 1000 });
    for (const result of report.cases) {
      assert.equal(result.verdict, 'NON-STRICT', result.id);
      assert.match(result.reason, /^invalid UTF-8 was detected only after the rest of the message arrived, not at the first invalid byte \(fail fast, §8\.1\); the server waited \d+ ms without reacting$/);
      assert.equal(result.close!.verdict, 'OK');
      assert.equal(result.close!.code, 1007);
      assert.ok(result.wire.some((e) => e.type === 'pause'), 'the audit paused at the invalid byte');
    }
    assert.equal(report.cases.length, 4);
  });

  test('the handshake rules ws leaves to the HTTP layer, and no permessage-deflate by default', async () => {
    const report = await runAudit(url, selectCases('handshake.*,deflate.default.64,deflate.rsv1-ping'), PATIENT);
    const notOk = Object.fromEntries(report.cases.filter((c) => c.verdict !== 'OK').map((c) => [c.id, c.verdict]));
    assert.deepEqual(notOk, {
      'handshake.version-8': 'INFORMATIONAL',
      'handshake.http-1.0': 'FAILED',
      'handshake.host-missing': 'FAILED',
      'handshake.host-twice': 'FAILED',
      'handshake.body': 'FAILED',
      'handshake.expect-continue': 'FAILED',
      'deflate.default.64': 'UNIMPLEMENTED',
      'deflate.rsv1-ping': 'UNIMPLEMENTED',
    });
    assert.equal(report.cases.find((c) => c.id === 'deflate.default.64')!.reason, 'the server declined "permessage-deflate" (RFC 7692 §5)');
  });

  test('everything else that does not depend on its limits is OK', async () => {
    const report = await runAudit(url, selectCases('!handshake.*,!deflate.*,!limits.*,!utf8.fail-fast.*'), PATIENT);
    assert.deepEqual(report.cases.filter((c) => c.verdict !== 'OK').map((c) => `${c.id}: ${c.reason}`), []);
  });
});

describe('the battery against ws with permessage-deflate on', () => {
  let ws: { wss: WebSocketServer; url: string };
  let url: string;
  before(async () => ({ url } = ws = await startWsEcho(true)));
  after(() => new Promise<void>((resolve) => ws.wss.close(() => resolve())));

  test('every parameter set works; an offer it should decline is refused with 400 instead (NON-STRICT)', async () => {
    const report = await runAudit(url, selectCases('deflate.default.*,deflate.*-window-8.*,deflate.no-context-takeover.*,deflate.fragmented,deflate.rsv1-*,deflate.not-deflate,handshake.deflate-*'), PATIENT);
    const notOk = Object.fromEntries(report.cases.filter((c) => c.verdict !== 'OK').map((c) => [c.id, `${c.verdict}: ${c.reason}`]));
    const declined = 'NON-STRICT: refused with 400: RFC 7692 §5 asks the server to decline such an offer (a 101 without the extension), not to refuse the handshake';
    assert.deepEqual(notOk, {
      'handshake.deflate-unknown-param': declined,
      'handshake.deflate-bad-window': declined,
      'handshake.deflate-repeated-param': declined,
    });
    assert.equal(report.cases.length, 26);
  });
});

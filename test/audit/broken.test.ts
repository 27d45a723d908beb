// The battery against servers broken on purpose (test/audit/broken-servers.ts): each fault is
// found, in the cases that check for it, and named in the reason or the close field.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { selectCases } from '../../src/audit/cases/index.js';
import { runAudit, type AuditReport } from '../../src/audit/runner.js';
import { startBrokenServer, type Fault } from './broken-servers.js';

async function audit(fault: Fault, cases: string, options: { timeout?: number; closeDeadline?: number } = {}): Promise<AuditReport> {
  const server = await startBrokenServer(fault);
  try {
    return await runAudit(server.url, selectCases(cases), { concurrency: 4, timeout: options.timeout ?? 10_000, closeDeadline: options.closeDeadline ?? 5000 });
  } finally {
    await server.close();
  }
}

const verdicts = (report: AuditReport): Record<string, string> => Object.fromEntries(report.cases.map((c) => [c.id, c.verdict]));
const find = (report: AuditReport, id: string) => report.cases.find((c) => c.id === id)!;

describe('the audit finds and names each fault', () => {
  test('a server that accepts unmasked frames: the framing.unmasked cases are FAILED, naming §5.1', async () => {
    const report = await audit('accepts-unmasked', 'framing.unmasked*,framing.text.1,ping.text', { timeout: 2000 });
    assert.deepEqual(verdicts(report), {
      'framing.text.1': 'OK',
      'framing.unmasked': 'FAILED',
      'framing.unmasked-after-echo': 'FAILED',
      'framing.unmasked-ping': 'FAILED',
      'ping.text': 'OK',
    });
    assert.equal(find(report, 'framing.unmasked').reason, 'the server sent text 8 B "unmasked" where it must fail the connection: unmasked client frame (§5.1)');
    assert.equal(find(report, 'framing.unmasked-ping').reason, 'the server did not fail the connection (unmasked client frame (§5.1)); expected a Close with 1002');
  });

  test('a server that does not answer Pings: every case with a Ping is FAILED, naming the missing Pong', async () => {
    const report = await audit('no-pong', 'ping.empty,ping.text,ping.ten,fragment.ping-between,framing.text.125', { timeout: 1500 });
    assert.deepEqual(verdicts(report), { 'framing.text.125': 'OK', 'ping.empty': 'FAILED', 'ping.text': 'FAILED', 'ping.ten': 'FAILED', 'fragment.ping-between': 'FAILED' });
    assert.equal(find(report, 'ping.text').reason, 'the server never sent pong 13 B "Hello, world!" (§5.5.2: a Ping MUST be answered with a Pong)');
    assert.match(find(report, 'ping.ten').reason, /^the server never sent pong 9 B "payload-0" \(§5\.5\.2: a Ping MUST be answered with a Pong\) \(and 9 more replies\)$/);
  });

  test('a server that echoes invalid UTF-8: the invalid-text cases are FAILED, valid text is OK', async () => {
    const report = await audit('echoes-invalid-utf8', 'utf8.valid.greek,utf8.invalid.byte-ff,utf8.invalid.surrogate-d800,utf8.invalid-split.7');
    assert.deepEqual(verdicts(report), { 'utf8.valid.greek': 'OK', 'utf8.invalid.byte-ff': 'FAILED', 'utf8.invalid.surrogate-d800': 'FAILED', 'utf8.invalid-split.7': 'FAILED' });
    assert.equal(find(report, 'utf8.invalid.byte-ff').reason, 'the server sent a text message that is not UTF-8 (§8.1): 18 B cebacf8ccf83cebcceb5ff2d65646974...');
  });

  test('a server that puts 1005 on the wire: close.empty is FAILED in its close field', async () => {
    const report = await audit('close-1005', 'close.empty,close.code-only');
    assert.deepEqual(verdicts(report), { 'close.empty': 'FAILED', 'close.code-only': 'OK' });
    const close = find(report, 'close.empty').close!;
    assert.equal(close.verdict, 'FAILED');
    assert.equal(close.code, 1005);
    assert.equal(close.detail, 'the server put close code 1005 on the wire (§7.4.1: 1005, 1006 and 1015 never go on the wire)');
  });

  test('a server that never closes TCP: the close field says TCP was left open past the deadline', async () => {
    const report = await audit('never-closes-tcp', 'close.code-only,framing.text.0', { closeDeadline: 300 });
    assert.deepEqual(verdicts(report), { 'close.code-only': 'FAILED', 'framing.text.0': 'FAILED' });
    for (const result of report.cases) {
      assert.equal(result.close!.verdict, 'FAILED');
      assert.equal(result.close!.code, 1000);
      assert.equal(result.close!.serverClosedTcpFirst, false);
      assert.equal(result.close!.detail, 'the server answered with 1000; the server left TCP open more than 300 ms after the closing handshake (§7.1.1)');
      assert.equal(result.wire.some((e) => e.direction === 'received' && (e.type === 'fin' || e.type === 'reset')), false);
    }
  });

  test('a server that answers with a wrong Sec-WebSocket-Accept: the handshake and every frame case are FAILED', async () => {
    const report = await audit('wrong-accept', 'handshake.valid,framing.text.1');
    assert.deepEqual(verdicts(report), { 'handshake.valid': 'FAILED', 'framing.text.1': 'FAILED' });
    assert.match(find(report, 'handshake.valid').reason, /^the 101 is wrong: Sec-WebSocket-Accept is "[A-Za-z0-9+/=]{28}", expected "[A-Za-z0-9+/=]{28}" \(§4\.1 item 4\)$/);
    assert.match(find(report, 'framing.text.1').reason, /^opening handshake: Sec-WebSocket-Accept is /);
  });

  test('a server that does not answer the handshake in time: FAILED at the case deadline, not a hang', async () => {
    const report = await audit('silent', 'handshake.valid,framing.text.0', { timeout: 300 });
    assert.deepEqual(verdicts(report), { 'handshake.valid': 'FAILED', 'framing.text.0': 'FAILED' });
    assert.equal(find(report, 'handshake.valid').reason, 'no response within 300 ms');
    assert.equal(find(report, 'framing.text.0').reason, 'opening handshake: no response within 300 ms');
  });
});

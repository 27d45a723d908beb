// The audit over TLS (wss://, the example's self-signed certificate), and its reports: the HTML
// page escapes what the server sent, the summary table, the progress bar only on a terminal.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { certificate, start } from '../../examples/integrations/https.js';
import { selectCases } from '../../src/audit/cases/index.js';
import { runAudit, type AuditReport, type CaseResult } from '../../src/audit/runner.js';
import { ProgressBar, summaryTable, toHtml, toJson } from '../../src/audit/report.js';

describe('auditing a wss:// server', () => {
  test('the battery runs over TLS with the certificate authority given', async () => {
    const server = await start(0);
    try {
      const report = await runAudit(`${server.url}/wsEcho`, selectCases('ping.text,utf8.valid.greek,close.code.3000'), { tls: { ca: certificate } });
      assert.deepEqual(report.cases.map((c) => [c.id, c.verdict]), [['ping.text', 'OK'], ['utf8.valid.greek', 'OK'], ['close.code.3000', 'OK']]);
      const refused = await runAudit(`${server.url}/wsEcho`, selectCases('ping.text'));
      assert.equal(refused.cases[0]!.verdict, 'FAILED');
      assert.match(refused.cases[0]!.reason, /^cannot connect to 127\.0\.0\.1:\d+: self.signed certificate/);
    } finally {
      await server.close();
    }
  });
});

function sample(): AuditReport {
  const bad: CaseResult = {
    id: 'close.empty',
    title: 'a <Close> without payload',
    rfc: 'RFC 6455 §5.5.1',
    verdict: 'FAILED',
    reason: 'the server put close code 1005 on the wire',
    close: { verdict: 'FAILED', code: 1005, reason: '<b>x</b>', closeFrame: true, serverClosedTcpFirst: true, tcpClosedInTime: true, detail: 'the server put close code 1005 on the wire' },
    expected: 'a Close',
    observed: 'Close 1005',
    wire: [
      { at: 0.5, direction: 'sent', type: 'handshake', detail: 'GET / HTTP/1.1' },
      { at: 1, direction: 'sent', type: 'frame', frame: { opcode: 'close', fin: true, rsv: 0, masked: true, length: 0, payload: '' } },
      { at: 2, direction: 'received', type: 'frame', frame: { opcode: 'close', fin: true, rsv: 0, masked: false, length: 2, payload: '03ed', closeCode: 1005, closeReason: '' } },
      { at: 3, direction: 'received', type: 'frame', frame: { opcode: '0x3', fin: false, rsv: 0x40, masked: false, length: 200, payload: 'ff', problems: ['length 3 in the 16-bit form'] } },
      { at: 4, direction: 'received', type: 'fin' },
    ],
    duration: 5,
  };
  const ok: CaseResult = { ...bad, id: 'ping.text', title: 'ping', verdict: 'OK', reason: 'fine', close: null, wire: [{ at: 1, direction: 'sent', type: 'frame', frame: { opcode: 'ping', fin: true, rsv: 0, masked: true, length: 5, payload: '3c62', text: '<b>' } }], note: 'a <note>' };
  return { url: 'ws://127.0.0.1:1/', cases: [ok, bad], counts: { OK: 1, 'NON-STRICT': 0, FAILED: 1, INFORMATIONAL: 0, UNIMPLEMENTED: 0 }, duration: 1234, started: '2026-11-30T18:00:00.000Z' };
}

describe('reports', () => {
  test('the HTML report escapes everything the server sent and opens the wire log of a FAILED case', () => {
    const page = toHtml(sample());
    assert.doesNotMatch(page, /<b>x<\/b>|<Close>|<note>/);
    assert.match(page, /"&lt;b&gt;x&lt;\/b&gt;"/);
    assert.match(page, /a &lt;Close&gt; without payload/);
    assert.match(page, /<details open><summary>Wire log \(5 entries/);
    assert.match(page, /0x3 no FIN RSV 0x40 200 B <code>ff…<\/code> <b>length 3 in the 16-bit form<\/b>/);
    assert.match(page, /close FIN 2 B <code>code 1005<\/code>/);
    assert.match(page, /n\/a \(no WebSocket was opened\)/);
  });

  test('the JSON report keeps the fixed field names first', () => {
    const json = JSON.parse(toJson(sample()));
    assert.deepEqual(Object.keys(json.cases[1]), ['id', 'title', 'rfc', 'verdict', 'close', 'expected', 'observed', 'wire', 'reason', 'duration']);
    assert.equal(json.cases[0].note, 'a <note>');
  });

  test('the summary colours verdicts on a terminal and cuts the list of cases that are not OK', () => {
    const table = summaryTable(sample(), { color: true, listLimit: 0 });
    assert.equal(
      table,
      [
        'family  OK  NON-STRICT  FAILED  INFORMATIONAL  UNIMPLEMENTED',
        'ping     1           0       0              0              0',
        'close    0           0       1              0              0',
        'total    1           0       1              0              0',
        '',
        '... and 1 more (see the JSON or HTML report)',
        '',
        '2 cases against ws://127.0.0.1:1/ in 1.2 s',
      ].join('\n'),
    );
    assert.match(summaryTable(sample(), { color: true }), /\x1b\[31mFAILED {7}\x1b\[0m close\.empty: the server put close code 1005 on the wire/);
  });

  test('the progress bar draws on a terminal only', () => {
    const [ok, bad] = sample().cases as [CaseResult, CaseResult];
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 60 }) as unknown as NodeJS.WriteStream;
    let drawn = '';
    (terminal as unknown as PassThrough).on('data', (chunk: Buffer) => (drawn += chunk.toString()));
    const bar = new ProgressBar(terminal);
    bar.update(1, 2, ok);
    bar.update(2, 2, bad);
    bar.finish();
    assert.match(drawn, /^\r\[#{15}\.{15}\] 1\/2 ping\.text {0,10}\r\[#{30}\] 2\/2 1 FAILED close\.empty/);
    assert.match(drawn, /\r {59}\r$/);
    const pipe = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    let piped = '';
    (pipe as unknown as PassThrough).on('data', (chunk: Buffer) => (piped += chunk.toString()));
    const quiet = new ProgressBar(pipe);
    quiet.update(1, 1, ok);
    quiet.finish();
    assert.equal(piped, '');
  });
});

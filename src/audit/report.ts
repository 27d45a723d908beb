// The audit's reports: the JSON report (field names fixed: outside tools read them), one
// self-contained HTML page (inline CSS, no script, nothing fetched) with the verdict table and each
// case's wire log, and for a terminal the summary table and a progress bar.

import { VERDICTS, type Verdict } from './model.js';
import type { AuditReport, CaseResult, WireLogEntry } from './runner.js';

/**
 * The JSON report: `{ url, cases: [{ id, title, rfc, verdict, close, expected, observed, wire, ... }],
 * counts: { OK, NON-STRICT, FAILED, INFORMATIONAL, UNIMPLEMENTED }, ... }` (docs/auditing.md gives
 * every field).
 */
export function toJson(report: AuditReport): string {
  return JSON.stringify(
    {
      url: report.url,
      cases: report.cases.map((c) => ({
        id: c.id,
        title: c.title,
        rfc: c.rfc,
        verdict: c.verdict,
        close: c.close,
        expected: c.expected,
        observed: c.observed,
        wire: c.wire,
        reason: c.reason,
        duration: c.duration,
        ...(c.note === undefined ? {} : { note: c.note }),
      })),
      counts: report.counts,
      duration: report.duration,
      started: report.started,
    },
    null,
    2,
  );
}

// ------------------------------------------------------------------------------------------ HTML

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; vertical-align: top; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; }
.v { font-weight: 600; white-space: nowrap; border-radius: 3px; padding: 0 4px; }
.OK { background: #d8f0d8; } .NON-STRICT { background: #fff1c2; } .FAILED { background: #f8c8c8; }
.INFORMATIONAL { background: #d8e6f8; } .UNIMPLEMENTED { background: #e4e4e4; }
code, pre, .wire td { font-family: ui-monospace, monospace; font-size: 12px; }
pre { white-space: pre-wrap; margin: 0; }
details { margin: .5em 0 1em; } summary { cursor: pointer; }
.sent { color: #0550ae; } .received { color: #116329; }
.case { border-top: 1px solid #ccc; padding-top: .5em; }
`;

function verdictSpan(verdict: Verdict | string): string {
  return `<span class="v ${escapeHtml(verdict)}">${escapeHtml(verdict)}</span>`;
}

function wireRow(entry: WireLogEntry): string {
  let what = '';
  if (entry.frame) {
    const f = entry.frame;
    const bits = [`${f.opcode}`, f.fin ? 'FIN' : 'no FIN', f.rsv ? `RSV 0x${f.rsv.toString(16)}` : '', f.masked ? 'masked' : '', `${f.length} B`].filter(Boolean).join(' ');
    const shown = f.closeCode !== undefined ? `code ${f.closeCode}${f.closeReason ? ` "${f.closeReason}"` : ''}` : f.text !== undefined ? JSON.stringify(f.text) : f.payload;
    what = `${escapeHtml(bits)}${f.length > 0 || f.closeCode !== undefined ? ` <code>${escapeHtml(shown)}${f.length > 64 ? '…' : ''}</code>` : ''}${f.problems ? ` <b>${escapeHtml(f.problems.join('; '))}</b>` : ''}`;
  } else if (entry.type === 'handshake') {
    what = `<pre>${escapeHtml(entry.detail ?? '')}</pre>`;
  } else {
    what = escapeHtml(`${entry.type}${entry.detail ? `: ${entry.detail}` : ''}`);
  }
  return `<tr class="${entry.direction}"><td>${entry.at.toFixed(1)}</td><td>${entry.direction === 'sent' ? '→' : '←'}</td><td>${what}</td></tr>`;
}

function caseSection(c: CaseResult): string {
  const close = c.close
    ? `${verdictSpan(c.close.verdict)} code ${c.close.code ?? '(none)'}${c.close.reason ? ` "${escapeHtml(c.close.reason)}"` : ''}; ${c.close.serverClosedTcpFirst ? 'server closed TCP first' : 'server did not close TCP first'}; ${c.close.tcpClosedInTime ? 'in time' : 'not in time'} — ${escapeHtml(c.close.detail)}`
    : 'n/a (no WebSocket was opened)';
  return `<div class="case" id="${escapeHtml(c.id)}">
<h3>${verdictSpan(c.verdict)} <code>${escapeHtml(c.id)}</code> ${escapeHtml(c.title)}</h3>
<table>
<tr><th>RFC</th><td>${escapeHtml(c.rfc)}</td></tr>
<tr><th>Reason</th><td>${escapeHtml(c.reason)}</td></tr>
<tr><th>Expected</th><td>${escapeHtml(c.expected)}</td></tr>
<tr><th>Observed</th><td>${escapeHtml(c.observed)}</td></tr>
<tr><th>Close</th><td>${close}</td></tr>
${c.note ? `<tr><th>Note</th><td>${escapeHtml(c.note)}</td></tr>` : ''}
<tr><th>Time</th><td>${c.duration} ms</td></tr>
</table>
<details${c.verdict === 'FAILED' ? ' open' : ''}><summary>Wire log (${c.wire.length} entries; ms since TCP connect)</summary>
<table class="wire">${c.wire.map(wireRow).join('\n')}</table></details>
</div>`;
}

/** The HTML report: one page, inline CSS, no script and nothing fetched. */
export function toHtml(report: AuditReport): string {
  const counts = VERDICTS.map((v) => `${verdictSpan(v)} ${report.counts[v]}`).join(' &nbsp; ');
  const rows = report.cases
    .map((c) => `<tr><td><a href="#${escapeHtml(c.id)}"><code>${escapeHtml(c.id)}</code></a></td><td>${verdictSpan(c.verdict)}</td><td>${c.close ? verdictSpan(c.close.verdict) + ` ${c.close.code ?? ''}` : ''}</td><td>${escapeHtml(c.title)}</td><td>${escapeHtml(c.rfc)}</td><td>${c.duration}</td></tr>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WebSocket audit of ${escapeHtml(report.url)}</title>
<style>${CSS}</style></head>
<body>
<h1>WebSocket audit of <code>${escapeHtml(report.url)}</code></h1>
<p>${report.cases.length} cases, ${(report.duration / 1000).toFixed(1)} s, started ${escapeHtml(report.started)}. ${counts}</p>
<h2>Verdicts</h2>
<table><tr><th>Case</th><th>Verdict</th><th>Close</th><th>What it checks</th><th>RFC</th><th>ms</th></tr>
${rows}
</table>
<h2>Cases</h2>
${report.cases.map(caseSection).join('\n')}
</body></html>
`;
}

// ------------------------------------------------------------------------------------- terminal

const COLORS: Readonly<Record<Verdict, string>> = { OK: '32', 'NON-STRICT': '33', FAILED: '31', INFORMATIONAL: '36', UNIMPLEMENTED: '90' };

/** The summary for a terminal: verdict counts per family, the total, the time, and each case that is not OK. */
export function summaryTable(report: AuditReport, options: { color?: boolean; listLimit?: number } = {}): string {
  const paint = (verdict: Verdict, text: string): string => (options.color ? `\x1b[${COLORS[verdict]}m${text}\x1b[0m` : text);
  const families = new Map<string, Record<Verdict, number>>();
  for (const c of report.cases) {
    const family = c.id.split('.')[0]!;
    const counts = families.get(family) ?? (Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>);
    counts[c.verdict]++;
    families.set(family, counts);
  }
  const columns: Verdict[] = ['OK', 'NON-STRICT', 'FAILED', 'INFORMATIONAL', 'UNIMPLEMENTED'];
  const width = Math.max(6, ...[...families.keys()].map((f) => f.length));
  const line = (name: string, values: (number | string)[]): string => `${name.padEnd(width)}  ${values.map((v, i) => String(v).padStart(columns[i]!.length)).join('  ')}`;
  const out = [line('family', columns)];
  for (const [family, counts] of families) out.push(line(family, columns.map((v) => counts[v])));
  out.push(line('total', columns.map((v) => report.counts[v])));
  // Each case that is not OK, worst first; UNIMPLEMENTED ones are counted per family instead (a server
  // without permessage-deflate has a hundred of them, all for the same reason).
  const notOk = report.cases.filter((c) => c.verdict !== 'OK' && c.verdict !== 'UNIMPLEMENTED').sort((a, b) => VERDICTS.indexOf(b.verdict) - VERDICTS.indexOf(a.verdict));
  const limit = options.listLimit ?? 40;
  if (notOk.length > 0 || report.counts.UNIMPLEMENTED > 0) out.push('');
  for (const c of notOk.slice(0, limit)) out.push(`${paint(c.verdict, c.verdict.padEnd(13))} ${c.id}: ${c.reason}`);
  if (notOk.length > limit) out.push(`... and ${notOk.length - limit} more (see the JSON or HTML report)`);
  for (const [family, counts] of families) {
    if (counts.UNIMPLEMENTED === 0) continue;
    const first = report.cases.find((c) => c.verdict === 'UNIMPLEMENTED' && c.id.startsWith(`${family}.`))!;
    out.push(`${paint('UNIMPLEMENTED', 'UNIMPLEMENTED')} ${counts.UNIMPLEMENTED} case${counts.UNIMPLEMENTED > 1 ? 's' : ''} of ${family}.*, e.g. ${first.id}: ${first.reason}`);
  }
  out.push('', `${report.cases.length} cases against ${report.url} in ${(report.duration / 1000).toFixed(1)} s`);
  return out.join('\n');
}

/** A one-line progress bar for a terminal (redrawn in place); write nothing when the stream is not a TTY. */
export class ProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #enabled: boolean;
  #failed = 0;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
    this.#enabled = stream.isTTY === true;
  }

  /** Redraws the bar after a case finished. */
  update(done: number, total: number, last: CaseResult): void {
    if (last.verdict === 'FAILED') this.#failed++;
    if (!this.#enabled) return;
    const width = 30;
    const filled = Math.round((done / total) * width);
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${this.#failed ? `${this.#failed} FAILED ` : ''}${last.id}`;
    const columns = this.#stream.columns || 100;
    this.#stream.write(`\r${text.slice(0, columns - 1).padEnd(Math.min(columns - 1, text.length + 10))}`);
  }

  /** Clears the bar's line. */
  finish(): void {
    if (this.#enabled) this.#stream.write(`\r${' '.repeat((this.#stream.columns || 100) - 1)}\r`);
  }
}

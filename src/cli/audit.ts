// pef-ws audit: runs the conformance battery (src/audit/) against any WebSocket server and reports
// the verdicts: a progress bar and a summary table on the terminal, a JSON and an HTML report on
// request. Exits 1 when any case FAILED, so it drops into CI.

import { writeFile } from 'node:fs/promises';
import { parseCommandLine, usageError as commandLineError } from './args.js';
import { ALL_CASES, selectCases } from '../audit/cases/index.js';
import { runAudit } from '../audit/runner.js';
import { ProgressBar, summaryTable, toHtml, toJson } from '../audit/report.js';
import { RawConnection } from '../audit/wire.js';

export const USAGE = `usage: pef-ws audit <ws://host:port/path> [--cases GLOBS] [--echo] [--concurrency N] [--timeout MS] [--json FILE] [--html FILE] [--list]

  <url>            the server to audit: ws:// or wss://
  --cases GLOBS    only the cases whose id matches: 'utf8.*,close.*'; '!limits.*' leaves some out
  --echo           the server echoes every message (as Autobahn's test servers do); without it only
                   Pongs, the closing handshake and failures are checked
  --concurrency N  cases run at once, each on its own connection (default 4)
  --timeout MS     each case's deadline (default 10000; large-payload cases take more)
  --json FILE      write the JSON report (schema in docs/auditing.md)
  --html FILE      write a self-contained HTML report with every case's wire log
  --insecure       wss://: accept any certificate
  --list           print the case ids and titles, run nothing`;

function usageError(message: string): never {
  return commandLineError(USAGE, message);
}

function positiveInteger(text: string, name: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) usageError(`--${name} must be a positive whole number, not "${text}"`);
  return Number(text);
}

/** Runs `pef-ws audit` with the arguments after the command word. */
export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv, USAGE, {
    cases: { type: 'string' },
    echo: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '4' },
    timeout: { type: 'string', default: '10000' },
    json: { type: 'string' },
    html: { type: 'string' },
    insecure: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
  });
  const cases = selectCases(values.cases, ALL_CASES);
  if (values.list) {
    for (const c of cases) console.log(`${c.id}\t${c.rfc}\t${c.title}`);
    return;
  }
  if (positionals.length !== 1) usageError('audit takes exactly one server URL');
  const url = positionals[0]!;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    usageError(`"${url}" is not a URL`);
  }
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') usageError(`the URL must start with ws:// or wss://, not ${target.protocol}//`);
  if (cases.length === 0) usageError(`no case matches --cases "${values.cases}"`);
  const concurrency = positiveInteger(values.concurrency, 'concurrency');
  const timeout = positiveInteger(values.timeout, 'timeout');
  const tls = values.insecure ? { rejectUnauthorized: false } : undefined;

  // One connection first: a server that is not there is one clear error, not N FAILED cases.
  try {
    (await RawConnection.open(target, { connectTimeout: timeout, ...(tls ? { tls } : {}) })).destroy();
  } catch (error) {
    console.error(`pef-ws: ${(error as Error).message}`);
    process.exit(2);
  }

  const bar = new ProgressBar(process.stdout);
  const report = await runAudit(url, cases, {
    echo: values.echo,
    concurrency,
    timeout,
    ...(tls ? { tls } : {}),
    onResult: (result, done, total) => bar.update(done, total, result),
  });
  bar.finish();
  if (values.json) await writeFile(values.json, toJson(report));
  if (values.html) await writeFile(values.html, toHtml(report));
  console.log(summaryTable(report, { color: process.stdout.isTTY === true }));
  if (values.json) console.log(`JSON report: ${values.json}`);
  if (values.html) console.log(`HTML report: ${values.html}`);
  if (report.counts.FAILED > 0) process.exitCode = 1;
}

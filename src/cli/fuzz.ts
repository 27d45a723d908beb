// pef-ws fuzz: a network fuzzer with an RFC 6455 oracle. Sends generated frame sequences, valid and
// invalid, to a server, holds what comes back against the audit's model, shrinks the first fault to
// the smallest sequence that shows it, prints it as hex frames and saves it as a replay file.
// fast-check (an optional peer dependency) generates and shrinks; it is loaded only here.

import { writeFile, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseReplay, replayFile, type Finding, type FuzzCase } from '../audit/fuzz/case.js';
import { FuzzError, runFuzzCase } from '../audit/fuzz/exchange.js';
import type { FastCheckModule } from '../audit/fuzz/generate.js';
import { Target } from '../audit/fuzz/target.js';
import { parseCommandLine, usageError as exitWithUsage } from './args.js';

export const USAGE = `usage: pef-ws fuzz <ws://host:port/path> [--seed N] [--runs N | --time SECONDS] [--echo] [--spawn 'CMD {port}']
                    [--timeout MS] [--shrink-time SECONDS] [--no-compression] [--json FILE] [--save FILE]
       pef-ws fuzz --replay FILE [<url>] [--spawn 'CMD {port}'] [--timeout MS] [--echo]

  <url>               the server to fuzz: ws:// or wss:// (with --spawn its port is replaced)
  --seed N            the seed of the generated cases (default: a fresh one, printed)
  --runs N            how many cases to send (default 500)
  --time SECONDS      send cases for this long instead of a number of runs
  --echo              the server echoes every message: valid messages must come back unchanged
  --spawn 'CMD'       start the server with this shell command, {port} replaced by a free port;
                      it is started again after each crash, so crashes are shrunk too
  --timeout MS        how long the server has to react, and to close TCP after a Close (default 2000)
  --shrink-time S     how long shrinking a fault may take (default 300)
  --no-compression    never offer permessage-deflate
  --json FILE         write { url, seed, runs, findings: [{ kind, frames, expected, observed }] }
  --save FILE         where to save the replay file of a fault (default pef-ws-fuzz-<seed>.json)
  --replay FILE       send a saved case again and say whether the fault is still there
  --insecure          wss://: accept any certificate

Kinds of fault: crash, hang, wrong-close, wrong-echo, no-close. Exit status 1 when a fault is
found (or replayed), 2 on a usage error or when the server cannot be fuzzed.`;

const DEFAULTS = { runs: 500, timeout: 2000, shrinkTime: 300 };

function usageError(message: string): never {
  return exitWithUsage(USAGE, message);
}

function fatal(message: string): never {
  console.error(`pef-ws fuzz: ${message}`);
  process.exit(2);
}

function wholeNumber(text: string, name: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    usageError(`--${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, not "${text}"`);
  }
  return Number(text);
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    usageError(`"${text}" is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') usageError(`the URL must start with ws:// or wss://, not ${url.protocol}//`);
  return url;
}

/** Loads fast-check, the optional peer dependency, or exits with what to install. */
async function loadFastCheck(): Promise<FastCheckModule> {
  try {
    const module = (await import('fast-check')) as FastCheckModule & { default?: FastCheckModule };
    return module.default ?? module;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      fatal('fuzzing needs fast-check, an optional peer dependency of pef-front-websocket: npm install --save-dev fast-check');
    }
    throw error;
  }
}

/** A frame's hex for the terminal: long payloads shortened. */
function showHex(hex: string): string {
  return hex.length <= 160 ? hex : `${hex.slice(0, 160)}... (${hex.length / 2} bytes)`;
}

function printFinding(finding: Finding, fuzzCase: FuzzCase): void {
  console.log(`  ${finding.frames.length} frame${finding.frames.length === 1 ? '' : 's'}${fuzzCase.extensions ? `, after offering "${fuzzCase.extensions}"` : ''}${fuzzCase.splitAt.length > 0 ? `, written in ${fuzzCase.splitAt.length + 1} pieces (cut at ${fuzzCase.splitAt.join(', ')})` : ''}:`);
  finding.frames.forEach((hex, i) => console.log(`    ${String(i + 1).padStart(2)}  ${showHex(hex)}`));
  console.log(`  expected: ${finding.expected}`);
  console.log(`  observed: ${finding.observed}`);
}

/** Stops a spawned server when the process is interrupted, so no server is left behind. */
function stopOnSignal(target: Target): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    void target.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** Runs `body` against the target, then stops a spawned server (also on SIGINT/SIGTERM); a FuzzError exits 2. */
async function withTarget(target: Target, body: () => Promise<void>): Promise<void> {
  const release = stopOnSignal(target);
  try {
    await body();
  } catch (error) {
    if (!(error instanceof FuzzError)) throw error;
    console.error(`pef-ws fuzz: ${error.message}`);
    process.exitCode = 2;
  } finally {
    release();
    await target.stop();
  }
}

/** Runs `pef-ws fuzz` with the arguments after the command word. */
export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv, USAGE, {
    seed: { type: 'string' },
    runs: { type: 'string' },
    time: { type: 'string' },
    echo: { type: 'boolean', default: false },
    spawn: { type: 'string' },
    timeout: { type: 'string', default: String(DEFAULTS.timeout) },
    'shrink-time': { type: 'string', default: String(DEFAULTS.shrinkTime) },
    'no-compression': { type: 'boolean', default: false },
    json: { type: 'string' },
    save: { type: 'string' },
    replay: { type: 'string' },
    insecure: { type: 'boolean', default: false },
  });
  if (positionals.length > 1) usageError('fuzz takes one server URL');
  const timeout = wholeNumber(values.timeout, 'timeout', 1);
  const tls = values.insecure ? { rejectUnauthorized: false } : undefined;
  const spawn = values.spawn ?? null;
  if (spawn !== null && !spawn.includes('{port}')) usageError('--spawn needs {port} in the command, where the port goes');

  if (values.replay !== undefined) {
    let loaded;
    try {
      loaded = parseReplay(await readFile(values.replay, 'utf8'));
    } catch (error) {
      fatal(`${values.replay}: ${(error as Error).message}`);
    }
    const url = parseUrl(positionals[0] ?? loaded.url);
    const echo = values.echo || loaded.echo === true;
    const target = new Target(url, spawn);
    await withTarget(target, async () => {
      console.log(`pef-ws fuzz: replaying ${loaded.fuzzCase.frames.length} frames (a ${loaded.finding.kind} found with seed ${loaded.seed ?? '?'}) against ${url.href}${echo ? ', echo' : ''}`);
      const outcome = await runFuzzCase(target, loaded.fuzzCase, { echo, timeout, ...(tls ? { tls } : {}) });
      if (values.json !== undefined) {
        const report = { url: url.href, seed: loaded.seed, runs: 1, findings: outcome.finding === null ? [] : [outcome.finding] };
        await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
      }
      if (outcome.finding === null) {
        console.log(`not reproduced: the server did what RFC 6455 requires (verdict ${outcome.verdict})`);
        return;
      }
      console.log(`reproduced: ${outcome.finding.kind}${outcome.finding.kind === loaded.finding.kind ? '' : ` (the file records ${loaded.finding.kind})`}`);
      printFinding(outcome.finding, loaded.fuzzCase);
      process.exitCode = 1;
    });
    return;
  }

  if (positionals.length !== 1) usageError('fuzz takes exactly one server URL');
  const url = parseUrl(positionals[0]!);
  if (values.runs !== undefined && values.time !== undefined) usageError('give --runs or --time, not both');
  const runs = values.runs === undefined ? DEFAULTS.runs : wholeNumber(values.runs, 'runs', 1);
  const time = values.time === undefined ? null : wholeNumber(values.time, 'time', 1);
  const shrinkTime = wholeNumber(values['shrink-time'], 'shrink-time', 0);
  const seed = values.seed === undefined ? (Date.now() ^ (Math.random() * 0x100000000)) | 0 : Number(values.seed);
  if (values.seed !== undefined && !(/^-?\d+$/.test(values.seed) && Number.isSafeInteger(seed))) usageError(`--seed must be a whole number, not "${values.seed}"`);
  const fc = await loadFastCheck();
  const { fuzz } = await import('../audit/fuzz/fuzzer.js');

  const target = new Target(url, spawn);
  const progress = process.stderr.isTTY;
  await withTarget(target, async () => {
    console.log(`pef-ws fuzz: ${url.href}, seed ${seed}, ${time === null ? `${runs} runs` : `${time} s`}${values.echo ? ', echo' : ''}${spawn ? `, spawning: ${spawn}` : ''}`);
    const started = Date.now();
    const result = await fuzz(fc, target, {
      seed,
      runs,
      time,
      shrinkTime,
      echo: values.echo,
      timeout,
      compression: !values['no-compression'],
      ...(tls ? { tls } : {}),
      ...(progress ? { onProgress: (phase: string, n: number) => void process.stderr.write(`\r\x1b[K${phase === 'search' ? 'cases run' : 'shrinking, cases run'}: ${n}`) } : {}),
    });
    if (progress) process.stderr.write('\r\x1b[K');
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (values.json !== undefined) {
      const report = { url: url.href, seed, runs: result.runs, findings: result.findings.map((f) => f.finding) };
      await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
    }
    if (result.findings.length === 0) {
      console.log(`no fault found in ${result.runs} runs (${seconds} s, seed ${seed})`);
      return;
    }
    for (const found of result.findings) {
      const how = found.shrunk
        ? `shrunk in ${found.shrinkRuns} runs`
        : found.finding.kind === 'crash' && !target.spawned
          ? 'not shrunk: the server is down (use --spawn to shrink crashes); the frames sent until the connection died'
          : found.reproduced ? 'no smaller case fails the same way' : 'not shrunk: it did not happen again when replayed';
      console.log(`FAULT ${found.finding.kind} after ${result.runs} runs (seed ${seed}, ${seconds} s); ${how}`);
      printFinding(found.finding, found.fuzzCase);
      const save = resolve(values.save ?? `pef-ws-fuzz-${seed}.json`);
      await writeFile(save, JSON.stringify(replayFile(url.href, seed, values.echo, found.fuzzCase, found.finding), null, 2) + '\n');
      console.log(`  replay: pef-ws fuzz --replay ${save}${spawn ? ` --spawn '${spawn}'` : ''}`);
    }
    process.exitCode = 1;
  });
}

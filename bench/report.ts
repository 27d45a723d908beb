// Turns benchmark results into the console summary, docs/benchmarks.md and docs/benchmarks.svg
// (the chart is drawn here, as plain SVG text: no plotting dependency).
//   node --import tsx bench/report.ts [bench/results/latest.json]   regenerates the docs from saved results

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SYSTEM_LABELS, type SystemName, summarize } from './common.js';

export interface Figure {
  id: string;
  section: string;
  metric: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** The system ratios are taken against. */
  baseline: string;
  size?: number;
  /** One value per round, per system. */
  systems: Record<string, number[]>;
}

export interface BenchResults {
  command: string;
  date: string;
  durationSeconds: number;
  rounds: number;
  quick: boolean;
  systems: string[];
  machine: { cpu: string; cores: number; memoryGB: number; node: string; kernel: string; ws: string; bufferutil: string };
  setup: Record<string, string | number>;
  notes: string[];
  figures: Figure[];
}

export function formatValue(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return '–';
  if (unit === '%') return value.toFixed(0);
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(abs >= 1e8 ? 0 : 2)} M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(abs >= 1e6 ? 0 : 1)} k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** The fan-out bench's systems (bench/fanout-server.ts, bench/fanout-bun.mjs). */
const FANOUT_LABELS: Record<string, string> = {
  'ours-deflate': 'ours, permessage-deflate',
  'ws-loop': 'ws 8, send per client',
  'ws-prepared': 'ws 8, frame once (Sender.frame)',
  bun: "Bun, server.publish",
  raw: 'raw node loop (limit)',
};

function label(system: string, section = ''): string {
  if (section.startsWith('fanout')) return system === 'ours' ? 'ours, queue (framed once)' : (FANOUT_LABELS[system] ?? system);
  return SYSTEM_LABELS[system as SystemName] ?? system;
}

/** "median (min–max)", and "×r" against the baseline's median. */
function cell(figure: Figure, system: string): string {
  const values = figure.systems[system];
  if (!values || values.length === 0) return '';
  const s = summarize(values);
  const range = values.length > 1 ? ` (${formatValue(s.min, figure.unit)}–${formatValue(s.max, figure.unit)})` : '';
  const base = figure.systems[figure.baseline];
  const ratio = base && base.length !== 0 && system !== figure.baseline ? ` ×${(s.median / summarize(base).median).toFixed(2)}` : '';
  return `${formatValue(s.median, figure.unit)}${range}${ratio}`;
}

export function printFigure(figure: Figure): void {
  const parts = Object.keys(figure.systems).map((system) => `${system} ${cell(figure, system)}`);
  console.log(`${figure.metric} | ${figure.label} [${figure.unit}]: ${parts.join(' | ')}`);
}

const median = (figure: Figure | undefined, system: string): number =>
  figure?.systems[system]?.length ? summarize(figure.systems[system]!).median : NaN;

// ------------------------------------------------------------------ markdown

/** The systems of a group of figures, in the order of the run's system list, then any others (micro). */
function columns(figures: Figure[], order: string[]): string[] {
  const seen = new Set<string>();
  for (const f of figures) for (const s of Object.keys(f.systems)) seen.add(s);
  return [...order.filter((s) => seen.has(s)), ...[...seen].filter((s) => !order.includes(s))];
}

function table(figures: Figure[], order: string[], first: string): string {
  if (figures.length === 0) return '';
  const cols = columns(figures, order);
  const lines = [
    `| ${first} | ${cols.map((c) => label(c, figures[0]!.section)).join(' | ')} |`,
    `| --- | ${cols.map(() => '---').join(' | ')} |`,
    ...figures.map((f) => `| ${f.label} | ${cols.map((c) => cell(f, c)).join(' | ')} |`),
  ];
  return lines.join('\n') + '\n';
}

interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

function targets(results: BenchResults): Target[] {
  const get = (id: string): Figure | undefined => results.figures.find((f) => f.id === id);
  const out: Target[] = [];
  const ours = results.systems.includes('ours') ? 'ours' : 'framework';
  const ratioToWs = (f: Figure): number => median(f, ours) / median(f, 'ws');
  const echoRows = results.figures.filter((f) => f.id.startsWith('echo.cpu.') && Number.isFinite(ratioToWs(f)));
  if (echoRows.length !== 0) {
    const over = echoRows.filter((f) => ratioToWs(f) > 1);
    const worst = echoRows.reduce((a, b) => (ratioToWs(b) > ratioToWs(a) ? b : a));
    out.push({
      what: `every echo row, server CPU per message (${ours})`,
      goal: '≤ ws + bufferutil',
      measured: over.length === 0 ? `all ${echoRows.length} rows; highest ${worst.label} ×${ratioToWs(worst).toFixed(2)}` : `${echoRows.length - over.length} of ${echoRows.length} rows; over: ${over.map((f) => `${f.label} ×${ratioToWs(f).toFixed(2)}`).join(', ')}`,
      met: over.length === 0,
    });
  }
  const bytesRows = results.figures.filter((f) => f.id.startsWith('echo.cpu.text') && Number.isFinite(median(f, 'bytes') / median(f, 'ws')));
  if (bytesRows.length !== 0) {
    const toWs = (f: Figure): number => median(f, 'bytes') / median(f, 'ws');
    const over = bytesRows.filter((f) => toWs(f) > 1);
    const worst = bytesRows.reduce((a, b) => (toWs(b) > toWs(a) ? b : a));
    out.push({
      what: 'every text echo row with decodeText: false (bytes), server CPU per message',
      goal: '≤ ws + bufferutil',
      measured: over.length === 0 ? `all ${bytesRows.length} rows; highest ${worst.label} ×${toWs(worst).toFixed(2)}` : `${bytesRows.length - over.length} of ${bytesRows.length} rows; over: ${over.map((f) => `${f.label} ×${toWs(f).toFixed(2)}`).join(', ')}`,
      met: over.length === 0,
    });
  }
  for (const id of ['echo.cpu.binary.32', 'echo.cpu.binary.1024']) {
    const f = get(id);
    if (f && Number.isFinite(ratioToWs(f))) {
      out.push({ what: `${f.label} echo, server CPU per message (${ours})`, goal: '≤ 0.25× ws (4 times better)', measured: `×${ratioToWs(f).toFixed(2)} (${formatValue(median(f, ours))} vs ${formatValue(median(f, 'ws'))} µs)`, met: ratioToWs(f) <= 0.25 });
    }
  }
  for (const [id, goal] of [['echo.cpu.binary.32', 1.3], [`echo.cpu.binary.${256 * 1024}`, 1.15], [`echo.cpu.binary.${1024 * 1024}`, 1.15]] as const) {
    const f = get(id);
    const ratio = f ? median(f, ours) / median(f, 'raw') : NaN;
    if (f && Number.isFinite(ratio)) {
      out.push({ what: `${f.label} echo against the raw echo (${ours})`, goal: `≤ ${goal}× raw`, measured: `×${ratio.toFixed(2)} (${formatValue(median(f, ours))} vs ${formatValue(median(f, 'raw'))} µs)`, met: ratio <= goal });
    }
  }
  const rss = get('memory.idle.rss');
  if (rss && Number.isFinite(median(rss, ours)) && Number.isFinite(median(rss, 'ws'))) {
    const v = median(rss, ours);
    const raw = median(rss, 'raw');
    out.push({ what: `idle connection, RSS per connection (${ours})`, goal: `≤ ws; aim raw + 1 KB${Number.isFinite(raw) ? ` (${formatValue(raw + 1)} KB)` : ''}`, measured: `${v.toFixed(2)} KB (ws ${formatValue(median(rss, 'ws'))}, raw ${formatValue(raw)} KB)`, met: v <= median(rss, 'ws') });
  }
  const deflate1k = get('deflate.cpu.1024');
  if (deflate1k && Number.isFinite(ratioToWs(deflate1k))) {
    out.push({ what: `compressed 1 KiB JSON echo, server CPU per message (${ours})`, goal: '≤ ws (keep the lead)', measured: `×${ratioToWs(deflate1k).toFixed(2)} (${formatValue(median(deflate1k, ours))} vs ${formatValue(median(deflate1k, 'ws'))} µs)`, met: ratioToWs(deflate1k) <= 1 });
  }
  const unmask = get('unmask.1MiB');
  if (unmask) {
    const oursKey = Object.keys(unmask.systems).find((k) => k.startsWith('ours ('))!;
    const v = median(unmask, oursKey);
    out.push({ what: `unmasking 1 MiB, ${oursKey}`, goal: '≥ 8 GB/s, no addon', measured: `${v.toFixed(1)} GB/s (ws JS fallback ${formatValue(median(unmask, 'ws, JS fallback'))}, bufferutil ${formatValue(median(unmask, 'ws + bufferutil'))})`, met: v >= 8 });
  }
  const parse = get('parse.16');
  if (parse) {
    const ratio = median(parse, 'ours Connection') / median(parse, 'ws Receiver');
    out.push({ what: 'parsing 16 B frames in 64 KiB chunks (our Connection vs ws Receiver)', goal: '≥ 2× ws', measured: `${ratio.toFixed(2)}× (${formatValue(median(parse, 'ours Connection'))} vs ${formatValue(median(parse, 'ws Receiver'))} frames/s)`, met: ratio >= 2 });
  }
  const fanout = results.figures.filter((f) => f.id.startsWith('fanout.cpu.') && Number.isFinite(median(f, 'ours')) && Number.isFinite(median(f, 'bun')));
  if (fanout.length !== 0) {
    const toBun = (f: Figure): number => median(f, 'ours') / median(f, 'bun');
    const toWs = (f: Figure): number => median(f, 'ours') / median(f, 'ws-loop');
    const worst = fanout.reduce((a, b) => (toBun(b) > toBun(a) ? b : a));
    out.push({
      what: 'fan-out, server CPU per delivery (ours, the queue)',
      goal: '< ws (send per client) and ≤ 1.5× Bun, every row',
      measured: `×${Math.max(...fanout.map(toWs)).toFixed(2)} ws at most; ×${toBun(worst).toFixed(2)} Bun at most (${worst.label}: ${formatValue(median(worst, 'ours'))} vs ${formatValue(median(worst, 'bun'))} µs)`,
      met: fanout.every((f) => toWs(f) < 1 && toBun(f) <= 1.5),
    });
  }
  const up = get('upgrades.rate');
  if (up && Number.isFinite(median(up, 'ws'))) {
    const ratio = median(up, ours) / median(up, 'ws');
    out.push({ what: `upgrades per second (${ours}, 32 in flight)`, goal: '≥ 1.25× ws', measured: `${ratio.toFixed(2)}× (${formatValue(median(up, ours))} vs ${formatValue(median(up, 'ws'))} /s)`, met: ratio >= 1.25 });
  }
  return out;
}

/**
 * What the decoding micro benchmark measured, as a sentence ending in a space (empty when the run
 * had no micro section): V8's rates on ASCII and non-ASCII text, and ours' on non-ASCII.
 */
function decodingRates(results: BenchResults): string {
  const ascii = results.figures.find((f) => f.id === `decode.text.${16 * 1024}`);
  const utf8 = results.figures.find((f) => f.id === `decode.text-utf8.${16 * 1024}`);
  if (!utf8) return '';
  const ours = Object.keys(utf8.systems).find((k) => k.startsWith('ours '))!;
  const rate = (figure: Figure | undefined, system: string): string => `${formatValue(median(figure, system))} GB/s`;
  return (
    `Node 20 decodes 16 KiB of this bench's UTF-8 text with accents and a check mark at ${rate(utf8, 'Buffer#toString')} (Buffer#toString; TextDecoder ${rate(utf8, 'TextDecoder')})` +
    (ascii ? `, against ${rate(ascii, 'Buffer#toString')} for its ASCII text` : '') +
    `; ours decodes it at ${rate(utf8, ours)} with ${ours.includes('wasm') ? 'its own WebAssembly SIMD decoder' : "V8's decoder (WebAssembly SIMD is unavailable here)"} (measured in this run: "Decoding text to a string" below). `
  );
}

/** Notes that put the targets next to what bounds them, with this run's figures. */
function readingNotes(results: BenchResults): string[] {
  const get = (id: string): Figure | undefined => results.figures.find((f) => f.id === id);
  const notes: string[] = [];
  const f = (v: number): string => formatValue(v);
  const cpu32 = get('echo.cpu.binary.32');
  if (cpu32 && Number.isFinite(median(cpu32, 'raw'))) {
    notes.push(
      `32 B echo: the raw echo, which does no framing at all, costs ${f(median(cpu32, 'raw'))} µs per message here; about half of ours is the same read and write system calls ` +
        '(under `perf record` on this machine, `write` alone was about 30 % of our server time at 32 B), the rest is parsing, the message event, the hook call and the frame written back, in JS. ' +
        `With many messages per read it falls further: ${f(median(get('scaling.cpu.1'), 'ours'))} µs at 400 in flight on one connection.`,
    );
  }
  const rss = get('memory.idle.rss');
  if (rss && Number.isFinite(median(rss, 'raw'))) {
    notes.push(
      `Idle memory: a socket that node:http upgraded and that nothing else holds already takes ${f(median(rss, 'raw'))} KB of RSS (${f(median(get('memory.idle.heap'), 'raw'))} KB of JS heap) per connection, ` +
        'more than the 3 KB target (which the issue measured for Bun, 1.85 KB, not for any Node server). On top of that ours keeps what it needs of the upgrade request (`this.request`, ' +
        "PEF's `$self->{_request}`: an UpgradeRequest with the URL, the header fields and the socket, not node:http's IncomingMessage), a heartbeat (a Ping every 30 s, PEF's default; one timer for all connections) " +
        'and the parser and connection state; what only some connections need (a trace, a message buffer, the masking-key buffer, a handler\'s queue) is made on first use. ws keeps no request and no timer.',
    );
  }
  const text = get(`echo.cpu.text-utf8.${16 * 1024}`);
  if (text) {
    notes.push(
      'Text: onMessage gets a string, so ours decodes every text message (sending that same string back reuses its checked bytes, with no encoding). ' +
        decodingRates(results) +
        `That decoding is the difference: ours' 16 KiB non-ASCII echo costs ${f(median(text, 'ours'))} µs against ${f(median(text, 'ws'))} µs for ws, which echoes the bytes without decoding them (a ws application that wants the string pays for V8's decoding too).` +
        (Number.isFinite(median(text, 'bytes'))
          ? ` With the option \`decodeText: false\` ours hands out the checked bytes as ws does, and the same echo costs ${f(median(text, 'bytes'))} µs.`
          : ''),
    );
  }
  const up = get('upgrades.cpu');
  if (up && Number.isFinite(median(up, 'raw'))) {
    notes.push(
      `Upgrades: the raw echo's ${f(median(up, 'raw'))} µs of server CPU per upgrade is Node's own work (accept, the HTTP parser, socket streams, teardown) and a bare 101, the same under every library; ` +
        "the rest is the library's handshake: validation, the response, the connection's state and timers. Upgrades per second also depend on latency with 32 in flight, and the load generator shares the 2 cores.",
    );
  }
  const fanout = results.figures.filter((x) => x.id.startsWith('fanout.cpu.') && ['ours', 'raw', 'bun'].every((k) => Number.isFinite(median(x, k))));
  if (fanout.length !== 0) {
    const range = (ratio: (x: Figure) => number): string => {
      const values = fanout.map(ratio);
      return `×${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
    };
    notes.push(
      `Fan-out: the raw node loop (a request's frames joined once, one socket.write per subscriber, no library) costs ${range((x) => median(x, 'raw') / median(x, 'bun'))} of Bun's publish per delivery: ` +
        "Node's own write path (its stream machinery and one write system call per socket, most of it the kernel's) is the floor for any Node server. " +
        `Ours costs ${range((x) => median(x, 'ours') / median(x, 'raw'))} of that floor; the rest is its delivery in order and once per subscription, and each subscriber's own backpressure accounting.`,
    );
  }
  return notes;
}

function markdown(results: BenchResults): string {
  const order = results.systems;
  const bySection = (section: string): Figure[] => results.figures.filter((f) => f.section === section);
  const m = results.machine;
  const out: string[] = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(
    `Generated by \`${results.command}\` (bench/run.ts) on ${results.date.slice(0, 16).replace('T', ' ')} UTC; it took ${results.durationSeconds} s. ` +
      `Do not edit by hand: run \`npm run bench\` again.`,
  );
  out.push('');
  out.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB; ${m.kernel}; Node ${m.node}; ws ${m.ws}, bufferutil ${m.bufferutil}.`);
  out.push('');
  out.push(
    `Every figure is the median of ${results.rounds} rounds, with the lowest and highest in parentheses; in each round the systems run in a rotated order (A B C, B C A, ...). ` +
      '**×r** is the ratio of the median to the median of ws with bufferutil (for µs and KB lower is better, for rates higher is better).',
  );
  out.push('');
  out.push('Systems: each server runs in its own process; the load generator is another process on raw `node:net` sockets.');
  out.push('');
  for (const s of order) out.push(`- **${label(s)}**${systemNote(s)}`);
  out.push('');
  if (results.notes.length !== 0) {
    out.push('Notes from this run:');
    out.push('');
    for (const note of results.notes) out.push(`- ${note}`);
    out.push('');
  }

  const t = targets(results);
  if (t.length !== 0) {
    out.push('## Targets');
    out.push('');
    out.push('| figure | target | measured | met |');
    out.push('| --- | --- | --- | --- |');
    for (const x of t) out.push(`| ${x.what} | ${x.goal} | ${x.measured} | ${x.met ? 'yes' : 'no'} |`);
    out.push('');
  }
  if (results.figures.some((f) => f.id.startsWith('echo.cpu.'))) {
    out.push('![Server CPU per echoed message, by size and system](benchmarks.svg)');
    out.push('');
  }
  if (results.figures.some((f) => f.id.startsWith('echo.cpu.text'))) {
    out.push('![Text echo: server CPU per message against message size, log-log](benchmarks-text.svg)');
    out.push('');
  }
  const reading = readingNotes(results);
  if (reading.length !== 0) {
    out.push('### What bounds the figures');
    out.push('');
    for (const line of reading) out.push(`- ${line}`);
    out.push('');
  }

  const s = results.setup;
  const echoIntro =
    `${s.connections} connections, ${s.inFlight}; each echo's opcode and length are checked. ` +
    `Each server first gets about a second of untimed traffic (so its code is optimized), then each figure has ${s.warmupMs} ms of warm-up and ${s.measureMs} ms measured. Server CPU is utime + stime of the server's process tree from /proc/<pid>/stat; ` +
    'binary payloads are random bytes; text payloads are ASCII shaped like JSON, and in one row UTF-8 with some two- and three-byte characters ' +
    "(ours validates text, decodes it to the string onMessage gets and encodes it again on send; ws validates it and sends the same bytes back: a ws application that wants the string pays for the decoding too).";
  const sections: [string, string, string, string][] = [
    ['echo-binary', 'Echo, binary: server CPU per message (µs)', echoIntro, 'message'],
    ['echo-text', 'Echo, text: server CPU per message (µs)', 'As above, with text messages. ' + decodingRates(results) + 'Decoding text to the string onMessage gets is what puts ours above ws in the non-ASCII rows.', 'message'],
    ['echo-deflate', 'Echo with permessage-deflate: server CPU per message (µs)', "20 ws clients offering permessage-deflate (as browsers do), 4 text messages in flight on each, every echo's length checked. Both servers inflate and compress every message (ws's threshold is 1 KiB, ours 96 B). ws runs zlib on libuv's thread pool, ours synchronously on the main thread; both count, as CPU of the server's process (docs/compression.md).", 'message'],
    ['echo-deflate-rate', 'Echo with permessage-deflate: messages per second', '', 'message'],
    ['echo-binary-rate', 'Echo, binary: messages per second', '', 'message'],
    ['echo-text-rate', 'Echo, text: messages per second', '', 'message'],
    ['echo-binary-mb', 'Echo, binary: payload MB/s (each way)', '', 'message'],
    ['echo-text-mb', 'Echo, text: payload MB/s (each way)', '', 'message'],
    ['echo-binary-servercpu', 'Echo, binary: server CPU use (% of one core)', '', 'message'],
    ['echo-binary-client', 'Echo, binary: load generator CPU per message (µs)', 'What the client spends; it must stay below the server for the figures above to mean anything.', 'message'],
    ['scaling', 'Scaling: server CPU per 32 B message (µs) by number of connections', `The same load, about ${s.scalingInFlight} messages in flight in all, spread over more and more connections (at 1,000 and more, one in flight on each).`, 'connections'],
    ['scaling-rate', 'Scaling: messages per second', '', 'connections'],
    ['upgrades', 'Upgrades', `Opening handshakes with ${s.upgradesInFlight} in flight: connect, send the request, check the 101 and its Sec-WebSocket-Accept, destroy the socket.${s.upgradesJitMs ? ` Each server first answers ${s.upgradesJitMs} ms of untimed handshakes (the echo traffic does not optimize the upgrade path).` : ''} The raw system is node:http's upgrade event answering a 101 by hand.`, 'figure'],
    ['memory', 'Memory per connection (KB)', `The server's RSS and JS heap after a full GC, before and after ${Number(s.memoryConnections).toLocaleString('en-US')} connections, divided by their number; then with each connection holding a 64 KiB binary message but its last byte.`, 'figure'],
    ['parse', 'Parsing, frames per second', 'In one process, masked binary frames fed in 64 KiB chunks, a fresh copy of the input per run (parsers unmask in place); each round keeps the best of three runs. "ours Connection" is the whole protocol core (parse, assemble, hand out each message as an event), comparable to ws\'s Receiver, which emits each message; "ours FrameParser" is the frame layer alone.', 'frames'],
    ['parse-secondary', 'Parsing, payload MB/s', '', 'frames'],
    ['encode', 'Encoding a server frame, frames per second', '"ours encodeFrame" is the pure [header, payload] encoder, like ws\'s Sender.frame; "ours Connection.sendBinary" is a send queued and taken from the core (binary payloads under 4 KiB are copied behind their header, larger ones follow it as a view).', 'payload'],
    ['observe', 'Watching the wire: what tracing and the diagnostics channels cost', "16 B frames through the whole protocol core. Tracing and the pef-ws:frame channel reach the core as one frame observer, set at open only when tracing is on or the channel has subscribers: with nobody watching, a null check per frame is all that remains; the second column is what a subscriber adds before it does any work of its own.", 'frames'],
    ['unmask', 'Unmasking 1 MiB (GB/s)', 'In place, on a payload at an odd address. Buffer.copy of 1 MiB is the limit.', 'payload'],
    ['decode', 'Decoding text to a string (GB/s of UTF-8)', "The echo bench's text payloads, decoded to the string onMessage gets: ours' decodeUtf8 against V8's decoder behind Buffer#toString and TextDecoder. Text longer than 32 KiB comes from decodeUtf8 as a V8 rope of 32 KiB pieces (flattened by V8 when first indexed), from the others as one flat string.", 'payload'],
    ['fanout', 'Fan-out: server CPU per delivery (µs)', 'One publisher, every subscriber on one topic, in 4 client processes; each system publishes messages in batches of 20 (the next batch once every subscriber has the last) from an HTTP request to its own server: 100 untimed, then at least 200 and for at least 2 s; each figure is the median of 3 rounds with the systems in a rotated order. Ours is `router.publish` with the default onQueue: the frame is built once and the same bytes are written to each socket (the deflate column compresses per subscriber, RFC 7692 §7.2.3). Ratios are to ws sending per client. The raw column is the limit for any Node server: the frames of a request joined once and one socket.write per subscriber, with no library (bench/fanout.ts).', 'subscribers, message'],
    ['fanout-rate', 'Fan-out: deliveries per second', '', 'subscribers, message'],
  ];
  for (const [section, title, intro, first] of sections) {
    const list = bySection(section);
    if (list.length === 0) continue;
    out.push(`## ${title}`);
    out.push('');
    if (intro) {
      out.push(intro);
      out.push('');
    }
    out.push(table(list, order, first));
  }
  out.push('## How to run');
  out.push('');
  out.push('```sh');
  out.push('npm run bench                                   # everything (and these docs), about 18 minutes on 2 cores');
  out.push('npm run bench -- --quick                        # fewer rounds and sizes, under 3 minutes');
  out.push('npm run bench -- --systems ours,ws --sections echo,memory');
  out.push('npm run bench -- --systems ours,ws,raw --sections echo --echo 16384:text,1048576:text-utf8   # chosen echo rows');
  out.push('npm run bench -- --systems base,ours,ws --base ../main   # another checkout (base) beside this one, in one run');
  out.push('npm run bench -- --systems ours,ws --sections echo --profile /tmp/prof   # servers under --cpu-prof');
  out.push('node --import tsx bench/fanout.ts --systems ours,raw,bun --rounds 3   # fan-out alone');
  out.push('node --import tsx bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile   # self time by function, as shares');
  out.push('node --import tsx bench/report.ts bench/results/latest.json   # redraw these docs from saved results');
  out.push('```');
  out.push('');
  out.push('Results are saved as JSON under bench/results/ (not committed). Only a full run rewrites these docs; a narrowed one (any of the options above) leaves them as they are unless given `--docs`.');
  out.push('');
  return out.join('\n');
}

function systemNote(system: string): string {
  switch (system) {
    case 'framework':
      return ': WebSocketRouter with a WebSocketHandler class whose onMessage calls this.send(message, type).';
    case 'ours':
      return ': acceptWebSocket on node:http\'s upgrade event, onMessage calls ws.send(message, type).';
    case 'bytes':
      return ': the same with the option `decodeText: false`: a text message reaches onMessage as its UTF-8 bytes, checked but not decoded (as ws hands it out), and goes back as \'text\'. Text rows only.';
    case 'ws':
      return ': WebSocketServer({ noServer: true }), handleUpgrade, `ws.send(data, { binary: isBinary })`, with the bufferutil addon.';
    case 'ws-js':
      return ': the same with WS_NO_BUFFER_UTIL=1 (its JS masking loop).';
    case 'raw':
      return ': node:http upgrade, a 101 by hand, then each chunk written back as it came, with no framing work: the limit for any Node server.';
    default:
      return '';
  }
}

// ------------------------------------------------------------------ SVG chart

const COLORS: Record<string, string> = {
  framework: '#1b9e77',
  ours: '#66a61e',
  bytes: '#a6d854',
  ws: '#d95f02',
  'ws-js': '#e6ab02',
  raw: '#7570b3',
  base: '#a6761d',
};

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One panel per echo figure (server CPU per message): a bar per system at its median, a whisker from min to max. */
export function svg(results: BenchResults): string {
  const panels = results.figures.filter((f) => f.id.startsWith('echo.cpu.'));
  const systems = columns(panels, results.systems);
  const perRow = 4;
  const pw = 230;
  const ph = 190;
  const top = 60;
  const rows = Math.ceil(panels.length / perRow);
  const width = perRow * pw + 20;
  const height = top + rows * ph + 20;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="10" y="18" font-size="14" font-weight="bold">Server CPU per echoed message (µs, lower is better): median, whisker min–max over ${results.rounds} rounds</text>`);
  systems.forEach((s, i) => {
    const x = 10 + i * 185;
    parts.push(`<rect x="${x}" y="30" width="12" height="12" fill="${COLORS[s] ?? '#999'}"/>`);
    parts.push(`<text x="${x + 16}" y="40">${escapeXml(label(s).replace(/ \(.*\)$/, ''))}</text>`);
  });
  panels.forEach((figure, index) => {
    const px = 10 + (index % perRow) * pw;
    const py = top + Math.floor(index / perRow) * ph;
    const plotTop = py + 22;
    const plotHeight = ph - 60;
    const plotLeft = px + 8;
    const plotWidth = pw - 24;
    const max = Math.max(...systems.flatMap((s) => figure.systems[s] ?? [0])) * 1.1 || 1;
    parts.push(`<text x="${px + pw / 2 - 10}" y="${py + 12}" text-anchor="middle" font-weight="bold">${escapeXml(figure.label)}</text>`);
    parts.push(`<line x1="${plotLeft}" y1="${plotTop + plotHeight}" x2="${plotLeft + plotWidth}" y2="${plotTop + plotHeight}" stroke="#333"/>`);
    const slot = plotWidth / systems.length;
    systems.forEach((s, i) => {
      const values = figure.systems[s];
      if (!values || values.length === 0) return;
      const sum = summarize(values);
      const y = (v: number): number => plotTop + plotHeight - (v / max) * plotHeight;
      const x = plotLeft + i * slot + slot * 0.15;
      const w = slot * 0.7;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y(sum.median).toFixed(1)}" width="${w.toFixed(1)}" height="${(plotTop + plotHeight - y(sum.median)).toFixed(1)}" fill="${COLORS[s] ?? '#999'}"><title>${escapeXml(`${label(s)}: ${formatValue(sum.median)} µs (${formatValue(sum.min)}–${formatValue(sum.max)})`)}</title></rect>`);
      const cx = (x + w / 2).toFixed(1);
      parts.push(`<line x1="${cx}" y1="${y(sum.min).toFixed(1)}" x2="${cx}" y2="${y(sum.max).toFixed(1)}" stroke="#000"/>`);
      parts.push(`<text x="${cx}" y="${(plotTop + plotHeight + 14).toFixed(1)}" text-anchor="middle" font-size="10" transform="rotate(30 ${cx} ${(plotTop + plotHeight + 14).toFixed(1)})">${escapeXml(formatValue(sum.median))}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/**
 * Server CPU per text message against message size, both axes logarithmic: a line per system, solid
 * for ASCII text and dashed for UTF-8 with non-ASCII characters. Returns '' without text rows.
 */
export function textSvg(results: BenchResults): string {
  const rows = results.figures.filter((f) => f.id.startsWith('echo.cpu.text') && f.size !== undefined);
  if (rows.length === 0) return '';
  const systems = columns(rows, results.systems);
  const kinds = [
    { prefix: 'echo.cpu.text.', name: 'ASCII', dash: '' },
    { prefix: 'echo.cpu.text-utf8.', name: 'UTF-8, non-ASCII', dash: ' stroke-dasharray="6 4"' },
  ];
  const points = rows.flatMap((f) => systems.map((s) => median(f, s)).filter((v) => Number.isFinite(v) && v > 0));
  const sizes = rows.map((f) => f.size!);
  const [x0, x1] = [Math.log10(Math.min(...sizes)), Math.log10(Math.max(...sizes))];
  const [y0, y1] = [Math.floor(Math.log10(Math.min(...points))), Math.ceil(Math.log10(Math.max(...points)))];
  const width = 760;
  const height = 480;
  const left = 70;
  const top = 70;
  const plotWidth = width - left - 30;
  const plotHeight = height - top - 60;
  const x = (size: number): number => left + ((Math.log10(size) - x0) / (x1 - x0 || 1)) * plotWidth;
  const y = (us: number): number => top + plotHeight - ((Math.log10(us) - y0) / (y1 - y0 || 1)) * plotHeight;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="10" y="18" font-size="14" font-weight="bold">Text echo: server CPU per message (µs) by message size, log-log (medians of ${results.rounds} rounds)</text>`);
  systems.forEach((s, i) => {
    const lx = 10 + i * 150;
    parts.push(`<rect x="${lx}" y="30" width="12" height="12" fill="${COLORS[s] ?? '#999'}"/>`);
    parts.push(`<text x="${lx + 16}" y="40">${escapeXml(label(s).replace(/ \(.*\)$/, ''))}</text>`);
  });
  parts.push(`<line x1="10" y1="54" x2="40" y2="54" stroke="#333" stroke-width="2"/><text x="44" y="58">ASCII</text>`);
  parts.push(`<line x1="100" y1="54" x2="130" y2="54" stroke="#333" stroke-width="2" stroke-dasharray="6 4"/><text x="134" y="58">UTF-8, non-ASCII</text>`);
  for (let e = y0; e <= y1; e++) {
    const gy = y(10 ** e).toFixed(1);
    parts.push(`<line x1="${left}" y1="${gy}" x2="${left + plotWidth}" y2="${gy}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${gy}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatValue(10 ** e))}</text>`);
  }
  for (const size of [...new Set(sizes)].sort((a, b) => a - b)) {
    const gx = x(size).toFixed(1);
    parts.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${top + plotHeight}" stroke="#eee"/>`);
    parts.push(`<text x="${gx}" y="${top + plotHeight + 16}" text-anchor="middle">${escapeXml(sizeText(size))}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${left + plotWidth / 2}" y="${height - 14}" text-anchor="middle">message size</text>`);
  parts.push(`<text x="16" y="${top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + plotHeight / 2})">µs of server CPU per message</text>`);
  for (const kind of kinds) {
    const series = rows.filter((f) => f.id.startsWith(kind.prefix)).sort((a, b) => a.size! - b.size!);
    for (const s of systems) {
      const pts = series.map((f) => [f.size!, median(f, s)] as const).filter(([, v]) => Number.isFinite(v) && v > 0);
      if (pts.length === 0) continue;
      const color = COLORS[s] ?? '#999';
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${kind.dash} points="${pts.map(([sz, v]) => `${x(sz).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`);
      for (const [sz, v] of pts) {
        parts.push(`<circle cx="${x(sz).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"><title>${escapeXml(`${label(s)}, ${sizeText(sz)} ${kind.name}: ${formatValue(v)} µs`)}</title></circle>`);
      }
    }
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function sizeText(bytes: number): string {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

export function writeDocs(results: BenchResults, root: string): void {
  writeFileSync(join(root, 'docs/benchmarks.md'), markdown(results));
  writeFileSync(join(root, 'docs/benchmarks.svg'), svg(results));
  const text = textSvg(results);
  if (text !== '') writeFileSync(join(root, 'docs/benchmarks-text.svg'), text);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const file = process.argv[2] ?? join(root, 'bench/results/latest.json');
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  writeDocs(results, root);
  for (const figure of results.figures) printFigure(figure);
  console.log('wrote docs/benchmarks.md and docs/benchmarks.svg');
}

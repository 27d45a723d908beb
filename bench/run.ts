// `npm run bench`: every benchmark, ours next to ws, each figure over several rounds that rotate the
// order of the systems (A B C, B C A, ...). Prints median (min-max) and the ratio to ws, saves the
// results as JSON and regenerates docs/benchmarks.md and docs/benchmarks.svg.
//   npm run bench -- [--quick] [--systems ours,ws,...] [--sections micro,echo,scaling,upgrades,memory,fanout]
//                    [--rounds N] [--out FILE] [--no-docs | --docs] [--echo 16384:text,262144:text-utf8,...]
// Only a full run (none of the options that narrow it) rewrites the docs, unless --docs is given.
// --echo keeps only the listed echo rows (size in bytes : binary | text | text-utf8), for focused runs;
// --no-jit skips the untimed warm-up traffic; --profile DIR runs each server under `node --cpu-prof`
// and leaves its .cpuprofile in DIR (summarize with bench/profile-summary.ts); --base DIR adds the
// system `base`: acceptWebSocket from DIR/src (another checkout, e.g. a git worktree of main), so
// that before and after are measured in the same run.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { type PayloadKind, SYSTEMS, type SystemName, payload, rotate, sizeLabel, treeCpuSeconds } from './common.js';
import type { MicroFigure } from './micro.js';
import { type BenchResults, type Figure, formatValue, printFigure, writeDocs } from './report.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECTIONS = ['micro', 'echo', 'deflate', 'scaling', 'upgrades', 'memory', 'fanout'] as const;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    systems: { type: 'string' },
    sections: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    docs: { type: 'boolean', default: false },
    echo: { type: 'string' },
    profile: { type: 'string' },
    base: { type: 'string' },
    'no-jit': { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const systems = (args.systems ? args.systems.split(',') : SYSTEMS.filter((s) => s !== 'base' || args.base !== undefined)) as SystemName[];
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s}: one of ${SYSTEMS.join(', ')}`);
const sections = args.sections ? args.sections.split(',') : [...SECTIONS];
for (const s of sections) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section ${s}: one of ${SECTIONS.join(', ')}`);
const rounds = Number(args.rounds ?? (quick ? 3 : 5));
if (systems.includes('base') !== (args.base !== undefined)) throw new Error('--base DIR and the system base go together');

interface Echo {
  size: number;
  kind: PayloadKind;
}

/** The plan: what each mode runs. */
const plan = quick
  ? {
      echo: [
        { size: 32, kind: 'binary' },
        { size: 16 * 1024, kind: 'binary' },
        { size: 32, kind: 'text' },
      ] as Echo[],
      scaling: [1, 1000],
      memoryConnections: 2000,
      jit: [[32, 400], [16 * 1024, 200]] as [number, number][],
      upgradesJitMs: 400,
      warmupMs: 200,
      measureMs: 500,
    }
  : {
      echo: [
        ...[32, 1024, 16 * 1024, 256 * 1024, 1024 * 1024].flatMap((size): Echo[] => [
          { size, kind: 'binary' },
          { size, kind: 'text' },
        ]),
        ...[1024, 16 * 1024, 1024 * 1024].map((size): Echo => ({ size, kind: 'text-utf8' })),
      ] as Echo[],
      scaling: [1, 100, 1000, 10_000],
      memoryConnections: 10_000,
      jit: [[32, 700], [16 * 1024, 300]] as [number, number][],
      upgradesJitMs: 2000,
      warmupMs: 300,
      measureMs: 1000,
    };
if (args.echo) {
  plan.echo = args.echo.split(',').map((item) => {
    const [size, kind] = item.split(':');
    if (!['binary', 'text', 'text-utf8'].includes(kind ?? '') || !(Number(size) > 0)) throw new Error(`--echo ${item}: want <bytes>:binary|text|text-utf8`);
    return { size: Number(size), kind: kind as PayloadKind };
  });
}
const CONNECTIONS = 50;
/** Messages in flight per connection; 1 MiB messages keep one each, so a measured second holds many round trips. */
const inFlightFor = (size: number): number => (size >= 1 << 20 ? 1 : 8);
/** Scaling keeps about this many messages in flight in all, however many connections carry them. */
const SCALING_IN_FLIGHT = 400;
const UPGRADES_IN_FLIGHT = 32;

// ------------------------------------------------------------------ child processes

/**
 * Starts a node process with a raised open-file limit (10,000 connections need more than the
 * usual 1,024): through sh, whose `ulimit -n` can go up to the hard limit, or beyond as root.
 * `exec` keeps the pid, so /proc/<pid> is node itself.
 */
function node(script: string, scriptArgs: string[], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []): ChildProcess {
  const wrapper = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  // A .js script runs on plain node: tsx would transform what it imports (its keepNames gives every
  // closure a name property of its own, about 260 bytes each), which is not what users run.
  const loader = script.endsWith('.js') ? [] : ['--import', 'tsx'];
  return spawn('/bin/sh', ['-c', wrapper, 'sh', process.execPath, '--expose-gc', ...nodeFlags, ...loader, script, ...scriptArgs], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

class Peer {
  readonly child: ChildProcess;
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  #exited: Promise<void>;

  constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (message: { id?: number; result?: Record<string, unknown>; error?: string; memory?: object }) => {
      const waiter = message.id === undefined ? undefined : this.#waiting.get(message.id);
      if (!waiter) return;
      this.#waiting.delete(message.id!);
      if (message.error) waiter.reject(new Error(message.error));
      else waiter.resolve((message.result ?? message) as Record<string, unknown>);
    });
    this.#exited = new Promise((resolve) => child.on('exit', () => resolve()));
    child.on('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`process exited with ${code}`));
      this.#waiting.clear();
    });
  }

  request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.child.send({ ...message, id });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.#exited;
  }
}

const notes = new Set<string>();

/**
 * Transpiles src/ to plain JavaScript under bench/results/lib (imports already end in .js), so the
 * servers run our code as users get it from dist/, not through tsx. Type-stripping only: fast.
 */
async function transpileSources(srcRoot = root, out = join(root, 'bench/results/lib')): Promise<string> {
  const ts = (await import('typescript')).default;
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  // src/ as the library, and the echo server with what it imports from bench/, beside it in out/bench.
  const files = [...walk(join(srcRoot, 'src')), join(root, 'bench/server.ts'), join(root, 'bench/common.ts')];
  for (const file of files) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true },
      fileName: file,
    });
    const fromSrc = relative(join(srcRoot, 'src'), file);
    const target = (fromSrc.startsWith('..') ? join(out, 'bench', relative(join(root, 'bench'), file)) : join(out, fromSrc)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  return out;
}
let benchLib = '';
let baseLib = '';

async function startServer(system: SystemName, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ peer: Peer; port: number; pid: number }> {
  const lib = system === 'base' ? baseLib : benchLib;
  const env: NodeJS.ProcessEnv = { BENCH_LIB: lib, ...extraEnv };
  if (system === 'ws-js') env.WS_NO_BUFFER_UTIL = '1';
  const profile = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [];
  // BENCH_SERVER_FLAGS: more node flags for the servers (--perf-basic-prof, to read them under perf).
  const extraFlags = process.env.BENCH_SERVER_FLAGS ? process.env.BENCH_SERVER_FLAGS.split(' ') : [];
  const child = node(join(lib, 'bench/server.js'), [system], env, [...profile, ...extraFlags]);
  const peer = new Peer(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { type?: string; port?: number; note?: string }) => {
      if (m.type !== 'listening') return;
      if (m.note) notes.add(m.note);
      resolve(m.port!);
    });
    child.on('exit', (code) => reject(new Error(`server ${system} exited with ${code}`)));
  });
  return { peer, port, pid: child.pid! };
}

function startLoad(port: number): Peer {
  return new Peer(node('bench/load.ts', [String(port)]));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ collecting figures

const figures = new Map<string, Figure>();

function record(
  id: string,
  meta: Omit<Figure, 'id' | 'systems'>,
  system: string,
  value: number,
): void {
  let figure = figures.get(id);
  if (!figure) {
    figure = { id, ...meta, systems: {} };
    figures.set(id, figure);
  }
  (figure.systems[system] ??= []).push(value);
}

const echoLabel = (size: number, kind: PayloadKind): string =>
  `${sizeLabel(size)} ${kind === 'binary' ? 'binary' : kind === 'text' ? 'text (ASCII)' : 'text (UTF-8, non-ASCII)'}`;

async function loadRounds(): Promise<void> {
  const wantEcho = sections.includes('echo');
  const wantScaling = sections.includes('scaling');
  const wantUpgrades = sections.includes('upgrades');
  if (!wantEcho && !wantScaling && !wantUpgrades) return;
  for (let round = 0; round < rounds; round++) {
    for (const system of rotate(systems, round)) {
      const t0 = Date.now();
      const server = await startServer(system);
      const load = startLoad(server.port);
      const common = { serverPid: server.pid, warmupMs: plan.warmupMs, measureMs: plan.measureMs };
      try {
        // Untimed traffic first, so that every system's code is optimized before anything is measured.
        for (const [size, ms] of args['no-jit'] ? [] : plan.jit) {
          await load.request({ type: 'echo', ...common, warmupMs: 0, measureMs: ms, connections: CONNECTIONS, inFlight: 8, size, kind: 'binary' });
        }
        if (wantEcho) {
          // `bytes` differs from `ours` in text only: it runs the text rows.
          for (const { size, kind } of system === 'bytes' ? plan.echo.filter((e) => e.kind !== 'binary') : plan.echo) {
            const r = await load.request({ type: 'echo', ...common, connections: CONNECTIONS, inFlight: inFlightFor(size), size, kind });
            const key = `${kind}.${size}`;
            const group = kind === 'binary' ? 'echo-binary' : 'echo-text';
            const label = echoLabel(size, kind);
            record(`echo.cpu.${key}`, { section: `${group}`, metric: 'server CPU per message', label, unit: 'µs', better: 'lower', baseline: 'ws', size }, system, r.serverCpuPerMessageUs as number);
            record(`echo.rate.${key}`, { section: `${group}-rate`, metric: 'messages per second', label, unit: 'msg/s', better: 'higher', baseline: 'ws', size }, system, r.msgsPerSecond as number);
            record(`echo.mb.${key}`, { section: `${group}-mb`, metric: 'payload MB/s each way', label, unit: 'MB/s', better: 'higher', baseline: 'ws', size }, system, r.mbPerSecond as number);
            record(`echo.client.${key}`, { section: `${group}-client`, metric: 'client CPU per message', label, unit: 'µs', better: 'lower', baseline: 'ws', size }, system, r.clientCpuPerMessageUs as number);
            record(`echo.servercpu.${key}`, { section: `${group}-servercpu`, metric: 'server CPU use', label, unit: '%', better: 'lower', baseline: 'ws', size }, system, ((r.serverCpu as number) / (r.seconds as number)) * 100);
          }
        }
        if (wantScaling && system !== 'bytes') {
          for (const connections of plan.scaling) {
            const inFlight = Math.max(1, Math.round(SCALING_IN_FLIGHT / connections));
            await load.request({ type: 'connect', count: connections });
            const r = await load.request({ type: 'echo', ...common, connections, inFlight, size: 32, kind: 'binary' });
            const label = `${connections.toLocaleString('en-US')} × ${inFlight} in flight`;
            record(`scaling.cpu.${connections}`, { section: 'scaling', metric: 'server CPU per message, 32 B binary', label, unit: 'µs', better: 'lower', baseline: 'ws' }, system, r.serverCpuPerMessageUs as number);
            record(`scaling.rate.${connections}`, { section: 'scaling-rate', metric: 'messages per second, 32 B binary', label, unit: 'msg/s', better: 'higher', baseline: 'ws' }, system, r.msgsPerSecond as number);
          }
          await load.request({ type: 'close' });
        }
        if (wantUpgrades && system !== 'bytes') {
          await load.request({ type: 'close' });
          // Untimed handshakes first: the echo traffic above does not run (nor optimize) the upgrade path.
          if (!args['no-jit']) await load.request({ type: 'upgrades', ...common, warmupMs: 0, measureMs: plan.upgradesJitMs, inFlight: UPGRADES_IN_FLIGHT });
          const r = await load.request({ type: 'upgrades', ...common, inFlight: UPGRADES_IN_FLIGHT });
          if ((r.failed as number) !== 0) notes.add(`upgrades, ${system}, round ${round + 1}: ${String(r.failed)} handshakes failed or timed out`);
          record('upgrades.rate', { section: 'upgrades', metric: 'upgrades per second', label: `${UPGRADES_IN_FLIGHT} handshakes in flight`, unit: '/s', better: 'higher', baseline: 'ws' }, system, r.upgradesPerSecond as number);
          record('upgrades.cpu', { section: 'upgrades', metric: 'server CPU per upgrade', label: 'server CPU per upgrade', unit: 'µs', better: 'lower', baseline: 'ws' }, system, r.serverCpuPerUpgradeUs as number);
        }
      } catch (error) {
        console.error(`round ${round + 1}, ${system}: ${(error as Error).message}`);
        notes.add(`${system}, round ${round + 1}: ${(error as Error).message.split('\n')[0]}`);
      } finally {
        await load.stop();
        await server.peer.stop();
      }
      console.error(`round ${round + 1}/${rounds} ${system}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
}

// ------------------------------------------------------------------ echo with permessage-deflate

/** Text sizes of the compression echo: a chat-sized JSON message and a large one. */
const DEFLATE_SIZES = [1024, 16 * 1024];
const DEFLATE_CONNECTIONS = 20;
const DEFLATE_IN_FLIGHT = 4;

/**
 * Echoes compressed text for `ms` over `clients` (ws clients offering permessage-deflate, as
 * browsers do), `DEFLATE_IN_FLIGHT` messages in flight on each; every echo's length is checked.
 * Returns the number of echoes.
 */
async function deflateEcho(clients: WebSocket[], message: Buffer, ms: number): Promise<number> {
  let echoes = 0;
  let running = true;
  const text = message.toString('utf8');
  const done = clients.map(
    (client) =>
      new Promise<void>((resolve, reject) => {
        let outstanding = 0;
        const onMessage = (data: Buffer, isBinary: boolean): void => {
          if (isBinary || data.length !== message.length) {
            reject(new Error(`deflate echo: got ${isBinary ? 'binary' : 'text'} of ${data.length} bytes, sent text of ${message.length}`));
            return;
          }
          echoes++;
          outstanding--;
          if (running) {
            outstanding++;
            client.send(text);
          } else if (outstanding === 0) {
            client.off('message', onMessage);
            resolve();
          }
        };
        client.on('message', onMessage);
        for (let i = 0; i < DEFLATE_IN_FLIGHT; i++) {
          outstanding++;
          client.send(text);
        }
      }),
  );
  await sleep(ms);
  running = false;
  await Promise.all(done);
  return echoes;
}

async function deflateRounds(): Promise<void> {
  if (!sections.includes('deflate')) return;
  const deflateSystems = systems.filter((s) => s === 'ours' || s === 'base' || s === 'framework' || s === 'ws');
  for (let round = 0; round < rounds; round++) {
    for (const system of rotate(deflateSystems, round)) {
      const server = await startServer(system, { BENCH_DEFLATE: '1' });
      const clients: WebSocket[] = [];
      try {
        for (let i = 0; i < DEFLATE_CONNECTIONS; i++) {
          const client = new WebSocket(`ws://127.0.0.1:${server.port}/echo`, { perMessageDeflate: true });
          await new Promise<void>((resolve, reject) => {
            client.once('open', resolve);
            client.once('error', reject);
          });
          if (!client.extensions.includes('permessage-deflate')) throw new Error(`${system} did not negotiate permessage-deflate`);
          clients.push(client);
        }
        for (const size of DEFLATE_SIZES) {
          const message = payload(size, 'text');
          await deflateEcho(clients, message, plan.warmupMs);
          const cpu0 = treeCpuSeconds(server.pid);
          const t0 = process.hrtime.bigint();
          const echoes = await deflateEcho(clients, message, plan.measureMs);
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          const cpu = treeCpuSeconds(server.pid) - cpu0;
          const label = `${sizeLabel(size)} text (ASCII JSON)`;
          record(`deflate.cpu.${size}`, { section: 'echo-deflate', metric: 'server CPU per message', label, unit: 'µs', better: 'lower', baseline: 'ws', size }, system, (cpu / echoes) * 1e6);
          record(`deflate.rate.${size}`, { section: 'echo-deflate-rate', metric: 'messages per second', label, unit: 'msg/s', better: 'higher', baseline: 'ws', size }, system, echoes / seconds);
        }
      } catch (error) {
        console.error(`deflate round ${round + 1}, ${system}: ${(error as Error).message}`);
        notes.add(`deflate, ${system}, round ${round + 1}: ${(error as Error).message.split('\n')[0]}`);
      } finally {
        for (const client of clients) client.terminate();
        await server.peer.stop();
      }
    }
  }
}

async function memoryRounds(): Promise<void> {
  if (!sections.includes('memory')) return;
  const memSystems = systems.filter((s) => s !== 'ws-js' && s !== 'bytes'); // ws-js holds what ws holds, bytes what ours holds
  const n = plan.memoryConnections;
  for (let round = 0; round < rounds; round++) {
    for (const system of rotate(memSystems, round)) {
      const server = await startServer(system);
      const load = startLoad(server.port);
      try {
        const base = (await server.peer.request({ type: 'memory' })).memory as NodeJS.MemoryUsage;
        await load.request({ type: 'connect', count: n });
        await sleep(300);
        const idle = (await server.peer.request({ type: 'memory' })).memory as NodeJS.MemoryUsage;
        await load.request({ type: 'partial', size: 64 * 1024 });
        await sleep(quick ? 300 : 700);
        const busy = (await server.peer.request({ type: 'memory' })).memory as NodeJS.MemoryUsage;
        const per = (after: NodeJS.MemoryUsage, key: 'rss' | 'heapUsed'): number => (after[key] - base[key]) / n / 1000;
        const label = `${n.toLocaleString('en-US')} connections`;
        record('memory.idle.rss', { section: 'memory', metric: 'RSS per idle connection', label: `idle, ${label}: RSS`, unit: 'KB', better: 'lower', baseline: 'ws' }, system, per(idle, 'rss'));
        record('memory.idle.heap', { section: 'memory', metric: 'JS heap per idle connection', label: `idle, ${label}: JS heap`, unit: 'KB', better: 'lower', baseline: 'ws' }, system, per(idle, 'heapUsed'));
        record('memory.busy.rss', { section: 'memory', metric: 'RSS per connection, 64 KiB message in flight', label: `64 KiB in flight, ${label}: RSS`, unit: 'KB', better: 'lower', baseline: 'ws' }, system, per(busy, 'rss'));
        record('memory.busy.heap', { section: 'memory', metric: 'JS heap per connection, 64 KiB message in flight', label: `64 KiB in flight, ${label}: JS heap`, unit: 'KB', better: 'lower', baseline: 'ws' }, system, per(busy, 'heapUsed'));
      } catch (error) {
        console.error(`memory round ${round + 1}, ${system}: ${(error as Error).message}`);
        notes.add(`memory, ${system}, round ${round + 1}: ${(error as Error).message.split('\n')[0]}`);
      } finally {
        await load.stop();
        await server.peer.stop();
      }
    }
    console.error(`memory round ${round + 1}/${rounds} done`);
  }
}

async function microRounds(): Promise<void> {
  if (!sections.includes('micro')) return;
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/micro.ts', '--rounds', String(rounds), ...(quick ? ['--quick'] : [])], {
    cwd: root,
    env: { ...process.env, BENCH_LIB: benchLib },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) {
    notes.add(`micro benchmarks exited with ${code}`);
    return;
  }
  for (const f of (JSON.parse(out) as { figures: MicroFigure[] }).figures) {
    figures.set(f.id, { id: f.id, section: f.section, metric: f.unit, label: f.label, unit: f.unit, better: f.better, baseline: f.baseline, systems: f.systems });
    if (f.secondary) {
      figures.set(`${f.id}.secondary`, { id: `${f.id}.secondary`, section: `${f.section}-secondary`, metric: f.secondary.unit, label: f.label, unit: f.secondary.unit, better: f.better, baseline: f.baseline, systems: f.secondary.systems });
    }
  }
  console.error('micro done');
}

function machine(): BenchResults['machine'] {
  const list = cpus();
  let kernel = '';
  try {
    kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim();
  } catch {
    kernel = process.platform;
  }
  let bufferutilVersion = '';
  let wsVersion = '';
  try {
    bufferutilVersion = (JSON.parse(readFileSync(join(root, 'node_modules/bufferutil/package.json'), 'utf8')) as { version: string }).version;
    wsVersion = (JSON.parse(readFileSync(join(root, 'node_modules/ws/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // reported as unknown
  }
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryGB: Math.round(Number(execFileSync('sh', ['-c', "awk '/MemTotal/ {print $2}' /proc/meminfo"], { encoding: 'utf8' })) / 1e6),
    node: process.version,
    kernel,
    ws: wsVersion,
    bufferutil: bufferutilVersion,
  };
}

const started = Date.now();
const command = `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
console.error(`${command}: ${rounds} rounds, systems ${systems.join(', ')}, sections ${sections.join(', ')}`);
benchLib = await transpileSources();
if (args.base !== undefined) baseLib = await transpileSources(args.base, join(root, 'bench/results/base-lib'));
await microRounds();
await loadRounds();
await deflateRounds();
await memoryRounds();

const results: BenchResults = {
  command,
  date: new Date(started).toISOString(),
  durationSeconds: Math.round((Date.now() - started) / 1000),
  rounds,
  quick,
  systems,
  machine: machine(),
  setup: {
    connections: CONNECTIONS,
    inFlight: 'K = 8 messages per connection (1 for 1 MiB)',
    warmupMs: plan.warmupMs,
    measureMs: plan.measureMs,
    scalingInFlight: SCALING_IN_FLIGHT,
    upgradesInFlight: UPGRADES_IN_FLIGHT,
    upgradesJitMs: args['no-jit'] ? 0 : plan.upgradesJitMs,
    memoryConnections: plan.memoryConnections,
  },
  notes: [...notes],
  figures: [...figures.values()],
};

for (const figure of results.figures) printFigure(figure);
// Fan-out (PEF's queue against ws and Bun): bench/fanout.ts, its figures kept with the others.
if (sections.includes('fanout')) {
  const { defaultSettings, runFanout } = await import('./fanout.js');
  const fanout = await runFanout(defaultSettings(quick));
  const kept = new Map<string, Figure>();
  for (const f of fanout) {
    const row = `${f.subscribers.toLocaleString('en-US')} subscribers, ${sizeLabel(f.size)}`;
    for (const [id, section, metric, unit, better, value] of [
      [`fanout.cpu.${f.subscribers}.${f.size}`, 'fanout', 'fan-out server CPU per delivery', 'µs', 'lower', f.cpuMicrosPerDelivery],
      [`fanout.rate.${f.subscribers}.${f.size}`, 'fanout-rate', 'fan-out deliveries per second', '/s', 'higher', f.deliveriesPerSecond],
    ] as const) {
      let figure = kept.get(id);
      if (figure === undefined) kept.set(id, (figure = { id, section, metric, label: row, unit, better, baseline: 'ws-loop', size: f.size, systems: {} }));
      (figure.systems[f.system] ??= []).push(value);
    }
  }
  for (const figure of kept.values()) {
    results.figures.push(figure);
    printFigure(figure);
  }
  results.durationSeconds = Math.round((Date.now() - started) / 1000);
}
for (const note of results.notes) console.log(`note: ${note}`);

const out = args.out ?? join(root, 'bench/results', `bench-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(dirname(out), { recursive: true });
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
writeFileSync(join(root, 'bench/results/latest.json'), JSON.stringify(results, null, 1) + '\n');
console.log(`results: ${relative(process.cwd(), out)} (and bench/results/latest.json)`);
// Only a full run replaces the docs: a focused one (--sections, --systems, --echo, --quick, ...)
// would overwrite every figure with a few. --docs writes them anyway.
const partial = args.sections !== undefined || args.systems !== undefined || args.echo !== undefined ||
  quick || args['no-jit'] || args.profile !== undefined || args.base !== undefined;
if (args['no-docs'] || (partial && !args.docs)) {
  console.log(`docs not written${partial ? ' (a partial run; --docs writes them anyway)' : ''}: node --import tsx bench/report.ts ${relative(process.cwd(), out)} writes them from these results`);
} else {
  writeDocs(results, root);
  console.log('wrote docs/benchmarks.md and docs/benchmarks.svg');
}
console.log(`took ${formatValue(results.durationSeconds, 's')} s`);

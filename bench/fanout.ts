// `npm run bench` section "fanout" (or alone: node --import tsx bench/fanout.ts [--quick]): one
// publisher, many subscribers in client processes. Each server is its own process; per system and
// size it publishes `warmup` messages untimed, then at least `publishes` and for at least `seconds`,
// in batches (the next batch once every subscriber has the last), and reports deliveries per second
// and the server's CPU time per delivery (from /proc).
// Systems: ours (the queue, framed once), ours-deflate (each subscriber compresses for itself),
// ws-loop (ws, send per client), ws-prepared (ws, Sender.frame once, same bytes per socket), bun
// (Bun's server.publish, from the npm package `bun`), raw (the limit for any Node server: a
// request's frames joined once, one socket.write per subscriber, no library).
//   --subscribers 1000,5000 --sizes 32,1024 --systems ... --processes 4 --publishes 200 --batch 20 --warmup 100 --seconds 2

import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rotate, treeCpuSeconds } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
const bun = join(here, '..', 'node_modules', '.bin', 'bun');
const ALL = ['ours', 'ours-deflate', 'ws-loop', 'ws-prepared', 'bun', 'raw'] as const;

export interface FanoutFigure {
  system: string;
  subscribers: number;
  size: number;
  deliveries: number;
  deliveriesPerSecond: number;
  cpuMicrosPerDelivery: number;
}

export interface Settings {
  subscribers: number[];
  sizes: number[];
  systems: string[];
  processes: number;
  publishes: number;
  batch: number;
  /** Timed publishes go on until this many seconds have passed (at least `publishes` of them). */
  seconds: number;
  /** Publishes sent untimed before each measurement (in batches). */
  warmup: number;
  /** Rounds, each with the systems in a rotated order (default 1). */
  rounds?: number;
}

// Extra node flags for our servers, e.g. FANOUT_SERVER_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile them.
const serverNodeArgs = (process.env['FANOUT_SERVER_ARGS'] ?? '').split(' ').filter((arg) => arg !== '');

async function startServer(system: string): Promise<{ child: ChildProcess; port: number }> {
  const child =
    system === 'bun'
      ? spawn(bun, [join(here, 'fanout-bun.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(process.execPath, [...serverNodeArgs, '--import', 'tsx', join(here, 'fanout-server.ts'), system], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${system} server exited (${code})`)));
  });
  return { child, port };
}

function request(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (response) => {
      response.resume();
      response.on('end', resolve);
    }).on('error', reject);
  });
}

function ask<T>(child: ChildProcess, message: object, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (reply: Record<string, T>): void => {
      if (!(key in reply)) return;
      child.off('message', onMessage);
      resolve(reply[key]!);
    };
    child.on('message', onMessage);
    child.send(message);
  });
}

async function receivedBy(clients: ChildProcess[]): Promise<number> {
  const counts = await Promise.all(clients.map((client) => ask<number>(client, { count: true }, 'received')));
  return counts.reduce((a, b) => a + b, 0);
}

async function waitFor(clients: ChildProcess[], total: number): Promise<void> {
  const guard = Date.now() + 120_000;
  while ((await receivedBy(clients)) < total) {
    if (Date.now() > guard) throw new Error(`subscribers stopped short of ${total} deliveries`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function measure(system: string, subscribers: number, settings: Settings): Promise<FanoutFigure[]> {
  const server = await startServer(system);
  const clients = Array.from({ length: settings.processes }, () =>
    fork(join(here, 'fanout-clients.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' }),
  );
  try {
    const share = Math.ceil(subscribers / settings.processes);
    await Promise.all(
      clients.map((client, i) =>
        ask(client, { connect: { port: server.port, count: Math.min(share, subscribers - i * share), deflate: system === 'ours-deflate' } }, 'connected'),
      ),
    );
    // Every subscriber is subscribed once a first message reached them all.
    let expected = 0;
    const figures: FanoutFigure[] = [];
    for (const size of settings.sizes) {
      await request(server.port, `/publish?count=1&size=${size}`);
      expected += subscribers;
      await waitFor(clients, expected);
      // One batch published, and waited for until every subscriber has it.
      const publishBatch = async (): Promise<void> => {
        await request(server.port, `/publish?count=${settings.batch}&size=${size}`);
        expected += settings.batch * subscribers;
        await waitFor(clients, expected);
      };
      // Untimed warm-up batches: the server's code optimized and its heap settled after the
      // connections, which otherwise cost 200 timed publishes about twice their steady-state CPU.
      for (let sent = 0; sent < settings.warmup; sent += settings.batch) await publishBatch();
      const cpu = treeCpuSeconds(server.child.pid!);
      const started = process.hrtime.bigint();
      const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
      // At least `publishes`, and on for at least `seconds`: /proc counts CPU in 10 ms ticks, so a
      // fast system needs more than 200 publishes for its figure to be more than a few ticks.
      let sent = 0;
      while (sent < settings.publishes || elapsed() < settings.seconds) {
        await publishBatch();
        sent += settings.batch;
      }
      const seconds = elapsed();
      const deliveries = sent * subscribers;
      figures.push({
        system,
        subscribers,
        size,
        deliveries,
        deliveriesPerSecond: deliveries / seconds,
        cpuMicrosPerDelivery: ((treeCpuSeconds(server.child.pid!) - cpu) * 1e6) / deliveries,
      });
    }
    return figures;
  } finally {
    for (const client of clients) client.disconnect();
    // SIGTERM: our servers exit cleanly on it (a --cpu-prof profile is written); SIGKILL if one lingers.
    const exited = once(server.child, 'exit').catch(() => {});
    server.child.kill('SIGTERM');
    const lingering = setTimeout(() => server.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(lingering);
  }
}

/** The settings of a full run (npm run bench, and this file alone), or of a --quick one. */
export function defaultSettings(quick: boolean): Settings {
  return {
    subscribers: quick ? [200] : [1000, 5000],
    sizes: [32, 1024],
    systems: [...ALL],
    processes: 4,
    publishes: quick ? 40 : 200,
    batch: 20,
    warmup: quick ? 20 : 100,
    seconds: quick ? 0.5 : 2,
    // Medians of rotated rounds, as in the other sections: one round moved by 10-20 % from run to
    // run. (ws's send per client at 5,000 subscribers takes a minute a round.)
    rounds: quick ? 1 : 3,
  };
}

/** Runs the fan-out bench and prints a table; returns the figures. */
export async function runFanout(settings: Settings): Promise<FanoutFigure[]> {
  const systems = settings.systems.filter((system) => system !== 'bun' || existsSync(bun));
  if (systems.length < settings.systems.length) console.log('fanout: no bun in node_modules/.bin (npm install -D bun): Bun left out');
  const figures: FanoutFigure[] = [];
  const rounds = settings.rounds ?? 1;
  for (let round = 0; round < rounds; round++) {
    for (const subscribers of settings.subscribers) {
      for (const system of rotate(systems, round)) figures.push(...(await measure(system, subscribers, settings)));
    }
  }
  console.log('\nfan-out: one publisher, deliveries/s and server CPU µs per delivery (ratio to ws-loop)');
  for (const subscribers of settings.subscribers) {
    for (const size of settings.sizes) {
      const row = figures.filter((f) => f.subscribers === subscribers && f.size === size);
      const base = row.find((f) => f.system === 'ws-loop');
      console.log(`  ${subscribers} subscribers, ${size} B${rounds > 1 ? ' (every round)' : ''}:`);
      for (const f of row) {
        const ratio = base ? ` (${(f.cpuMicrosPerDelivery / base.cpuMicrosPerDelivery).toFixed(2)}x CPU)` : '';
        console.log(`    ${f.system.padEnd(13)} ${Math.round(f.deliveriesPerSecond).toLocaleString('en').padStart(11)} /s  ${f.cpuMicrosPerDelivery.toFixed(3)} µs CPU${ratio}`);
      }
    }
  }
  return figures;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      subscribers: { type: 'string' },
      sizes: { type: 'string' },
      systems: { type: 'string' },
      processes: { type: 'string' },
      publishes: { type: 'string' },
      batch: { type: 'string' },
      warmup: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
    },
  });
  const list = (text: string | undefined): number[] | undefined => text?.split(',').map(Number);
  const number = (text: string | undefined): number | undefined => (text === undefined ? undefined : Number(text));
  const defaults = defaultSettings(values.quick);
  await runFanout({
    subscribers: list(values.subscribers) ?? defaults.subscribers,
    sizes: list(values.sizes) ?? defaults.sizes,
    systems: values.systems?.split(',') ?? defaults.systems,
    processes: number(values.processes) ?? defaults.processes,
    publishes: number(values.publishes) ?? defaults.publishes,
    batch: number(values.batch) ?? defaults.batch,
    warmup: number(values.warmup) ?? defaults.warmup,
    seconds: number(values.seconds) ?? defaults.seconds,
    rounds: number(values.rounds) ?? defaults.rounds,
  });
}

// pef-ws serve: serves a folder of handler classes (and optionally a folder of static files), in one
// process or in N worker processes sharing the port through node:cluster, as uWSGI's
// `processes = 4` did for PEF.

import cluster from 'node:cluster';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { parseCommandLine, usageError as commandLineError } from './args.js';
import { WebSocketRouter } from '../framework/router.js';
import { HandlerLoadError } from '../framework/discover.js';
import type { WebSocketOptions } from '../node/options.js';
import { packageVersion } from './version.js';
import type { Broker } from '../pubsub/broker.js';
import { brokerFor, checkRedisUrl, startClusterHub } from '../pubsub/serve.js';

export const USAGE = `usage: pef-ws serve <handlers-dir> [--port 8080] [--host 127.0.0.1] [--workers N] [--static DIR]
         [--origin URL]... [--max-payload BYTES] [--heartbeat SECONDS] [--idle-timeout SECONDS] [--no-compression]
         [--redis URL]

  <handlers-dir>        folder of handler modules: Echo.js (or Echo.ts under tsx) serves /wsEcho;
                        files and folders starting with _ are helpers, not handlers
  --port N              port to listen on (default: $PORT, else 8080; 0 picks a free one)
  --host ADDRESS        address to listen on (default 127.0.0.1)
  --workers N           run N worker processes on the same port (node:cluster; default 1)
  --static DIR          serve the files of DIR over HTTP: index.html at /, or ws.html if there is no index.html
  --origin URL          also accept pages from this origin (repeatable; default: same host only;
                        * accepts any page, with a warning)
  --max-payload BYTES   largest message accepted (default 1048576); larger ones close with 1009
  --heartbeat SECONDS   a Ping every SECONDS, 0 for none (default 30)
  --idle-timeout SECONDS  close (1001) a connection silent this long, 0 for never (default 0)
  --no-compression      do not negotiate permessage-deflate (default: on when the client offers it)
  --redis URL           topics on Redis Streams (redis://host:port), shared by every process using it;
                        without it, topics are shared by the workers of this server (docs/pubsub.md)
  --version             print the version and exit
  -h, --help            print this and exit

  NODE_DEBUG=pef-ws prints a line per handshake and per frame to stderr.`;

interface Settings {
  handlers: string;
  port: number;
  host: string;
  workers: number;
  staticDir: string | null;
  /** The router's options from --origin, --max-payload, --heartbeat, --idle-timeout, --no-compression. */
  options: WebSocketOptions;
  /** --redis: the Redis server of the topics, or null for this server's own broker. */
  redis: string | null;
}

function usageError(message: string): never {
  return commandLineError(USAGE, message);
}

/** Why `path` cannot be used as a folder, or null when it can. */
async function notAFolder(path: string): Promise<string | null> {
  try {
    return (await stat(path)).isDirectory() ? null : 'is not a folder';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
  }
}

/** A number of seconds from the command line, in ms: 0 or more, below 2^31 ms. */
function seconds(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0) || value * 1000 >= 2 ** 31) usageError(`--${flag} must be a number of seconds (0 turns it off), not "${text}"`);
  return Math.round(value * 1000);
}

/** The origins of --origin: each an origin such as http://localhost:5173, or '*' for any. */
function origins(values: string[] | undefined): WebSocketOptions['origins'] {
  if (values === undefined || values.length === 0) return undefined;
  if (values.includes('*')) {
    console.error("pef-ws: warning: --origin * lets a page on any site open WebSockets here with its visitors' cookies; list the origins you trust instead");
    return '*';
  }
  return values.map((value) => {
    let url: URL | null = null;
    try {
      url = new URL(value);
    } catch {
      // reported below
    }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.href !== `${url.origin}/`) {
      usageError(`--origin must be an origin such as http://localhost:5173 (scheme, host and port, no path), not "${value}"`);
    }
    return url.origin;
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Parses the command line; bad arguments print the usage and exit 2. */
async function parseSettings(argv: string[]): Promise<Settings> {
  const { values, positionals } = parseCommandLine(argv, USAGE, {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '1' },
    static: { type: 'string' },
    origin: { type: 'string', multiple: true },
    'max-payload': { type: 'string' },
    heartbeat: { type: 'string' },
    'idle-timeout': { type: 'string' },
    'no-compression': { type: 'boolean' },
    redis: { type: 'string' },
    version: { type: 'boolean' },
  });
  if (values.version) {
    console.log(packageVersion());
    process.exit(0);
  }
  if (positionals.length !== 1) usageError('serve takes exactly one handlers folder');
  const portText = values.port ?? (process.env['PORT'] || '8080');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) usageError(`--port must be a port number (0-65535), not "${portText}"`);
  const workers = Number(values.workers);
  if (!/^\d+$/.test(values.workers) || workers < 1 || workers > 1024) {
    usageError(`--workers must be a number of processes (1 or more), not "${values.workers}"`);
  }
  const handlers = resolve(positionals[0]!);
  const handlersProblem = await notAFolder(handlers);
  if (handlersProblem !== null) usageError(`the handlers folder ${handlers} ${handlersProblem}`);
  let staticDir: string | null = null;
  if (values.static !== undefined) {
    staticDir = resolve(values.static);
    const staticProblem = await notAFolder(staticDir);
    if (staticProblem !== null) usageError(`the --static folder ${staticDir} ${staticProblem}`);
  }
  const options: WebSocketOptions = {};
  const maxPayload = values['max-payload'];
  if (maxPayload !== undefined) {
    if (!/^\d+$/.test(maxPayload) || Number(maxPayload) < 1 || !Number.isSafeInteger(Number(maxPayload))) {
      usageError(`--max-payload must be a number of bytes (1 or more), not "${maxPayload}"`);
    }
    options.maxPayload = Number(maxPayload);
  }
  const heartbeat = seconds('heartbeat', values.heartbeat);
  if (heartbeat !== undefined) options.heartbeatInterval = heartbeat;
  const idle = seconds('idle-timeout', values['idle-timeout']);
  if (idle !== undefined) options.idleTimeout = idle;
  if (values['no-compression']) options.compression = false;
  const allowed = origins(values.origin);
  if (allowed !== undefined) options.origins = allowed;
  const redis = values.redis ?? null;
  const redisError = redis === null ? null : checkRedisUrl(redis);
  if (redisError !== null) usageError(redisError);
  return { handlers, port, host: values.host, workers, staticDir, options, redis };
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
};

function plain(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** The HTTP side: static files (when --static), 426 on a WebSocket route, 404 elsewhere. */
async function makeRequestHandler(
  settings: Settings,
  routes: readonly string[],
): Promise<(request: IncomingMessage, response: ServerResponse) => void> {
  const root = settings.staticDir;
  let indexFile: string | null = null;
  if (root !== null) {
    if (await isFile(join(root, 'index.html'))) indexFile = 'index.html';
    else if (await isFile(join(root, 'ws.html'))) indexFile = 'ws.html';
  }
  const routeSet = new Set(routes);

  async function serveFile(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<void> {
    if (root === null) return plain(response, 404, 'not found\n');
    let relative: string;
    try {
      relative = decodeURIComponent(pathname);
    } catch {
      return plain(response, 400, 'bad request path\n');
    }
    if (relative === '/' && indexFile !== null) relative = `/${indexFile}`;
    let file = resolve(root, `.${relative}`);
    // No way out of the static folder: not through '..', not through an encoded separator.
    if (relative.includes('\0') || (file !== root && !file.startsWith(root + sep))) return plain(response, 404, 'not found\n');
    let info = await stat(file).catch(() => null);
    if (info?.isDirectory()) {
      file = join(file, 'index.html');
      info = await stat(file).catch(() => null);
    }
    if (info === null || !info.isFile()) return plain(response, 404, 'not found\n');
    response.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': info.size,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    createReadStream(file)
      .on('error', () => response.destroy())
      .pipe(response);
  }

  return (request, response) => {
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const pathname = query === -1 ? url : url.slice(0, query);
    if (routeSet.has(pathname)) return plain(response, 426, 'this path speaks WebSocket\n', { Upgrade: 'websocket' });
    if (request.method !== 'GET' && request.method !== 'HEAD') return plain(response, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    if (root === null && pathname === '/') return plain(response, 200, `pef-ws: WebSocket routes ${routes.join(', ')}\n`);
    serveFile(request, response, pathname).catch(() => response.destroy());
  };
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}

function startLine(settings: Settings, port: number, routes: readonly string[]): string {
  const processes = settings.workers > 1 ? ` in ${settings.workers} workers` : '';
  const files = settings.staticDir !== null ? `, files from ${settings.staticDir}` : '';
  return `pef-ws: serving ${urlOf(settings.host, port)} WebSocket routes ${routes.join(', ')}${files}${processes}`;
}

/**
 * The router of the handlers folder. A load error is printed as Node would print it (the file
 * with line and column, then the code frame or the stack) and ends the process with 1.
 */
async function load(settings: Settings, broker?: Broker | null): Promise<WebSocketRouter> {
  try {
    return await WebSocketRouter.fromDirectory(settings.handlers, broker ? { ...settings.options, broker } : settings.options);
  } catch (error) {
    if (!(error instanceof HandlerLoadError)) throw error;
    console.error(`pef-ws: ${error.message}${error.details === '' ? '' : `\n\n${error.details}`}`);
    process.exit(1);
  }
}

/** One serving process: the single process, or one worker. */
async function serve(settings: Settings, printStartLine: boolean): Promise<void> {
  const broker = await brokerFor(settings.redis, cluster.isWorker, (line) => console.error(line));
  const router = await load(settings, broker);
  // A request head must arrive within 10 s (node's default is 60 s, checked every 30 s): sockets
  // that trickle it (slowloris) get 408 and are closed. See docs/security.md.
  const server = createServer(
    { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 2_000 },
    await makeRequestHandler(settings, router.routes),
  );
  router.attach(server);
  server.on('error', (error) => {
    console.error(`pef-ws: ${error.message}`);
    process.exit(1);
  });

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeIdleConnections();
    // 1001 Going Away to every connection, their closing handshakes, then exit.
    void router.close().then(() => {
      server.closeAllConnections();
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  cluster.worker?.on('disconnect', stop);

  server.listen(settings.port, settings.host, () => {
    if (printStartLine) console.log(startLine(settings, (server.address() as AddressInfo).port, router.routes));
  });
}

/** The primary of --workers N: forks, prints the start line once all listen, relays shutdown. */
async function supervise(settings: Settings): Promise<void> {
  // Load once here too, so a broken handler folder fails with one message instead of N.
  const { routes } = await load(settings);
  let listening = 0;
  let started = false;
  let stopping = false;
  cluster.on('listening', (_worker, address) => {
    if (++listening === settings.workers && !started) {
      started = true;
      console.log(startLine(settings, address.port, routes));
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    console.error(`pef-ws: worker ${worker.process.pid} exited (${signal ?? code})`);
    if (!started) process.exit(1); // it could not start: neither will a replacement
    listening--;
    cluster.fork(); // keep N processes, as uWSGI's master did
  });
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(0);
    for (const worker of workers) worker?.process.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  startClusterHub(cluster, settings.redis);
  for (let i = 0; i < settings.workers; i++) cluster.fork();
}

/** `pef-ws serve <handlers-dir> [options]`; `argv` is what follows the word serve. */
export async function run(argv: string[]): Promise<void> {
  const settings = await parseSettings(argv);
  if (cluster.isPrimary && settings.workers > 1) await supervise(settings);
  else await serve(settings, cluster.isPrimary);
}

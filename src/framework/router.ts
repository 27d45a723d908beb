// Routes upgrade requests to handler classes by path, PEF's `/ws<Class>` scheme: attach() to any
// node:http or node:https server (plain, Express, Fastify, Koa), or call handleUpgrade() from
// code that owns the 'upgrade' event. Tracks live connections for a graceful close().

import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { ConnectionOwner, WebSocketConnection } from '../node/transport.js';
import { resolveOptions, type WebSocketOptions } from '../node/options.js';
import { rejectUpgrade } from '../node/upgrade.js';
import type { PendingUpgrade } from '../node/upgrade-hook.js';
import { traceRefusal } from '../node/trace.js';
import { Admission, type AdmissionSlot } from '../node/limits.js';
import { CloseCode } from '../protocol/constants.js';
import { HandshakeError } from '../protocol/errors.js';
import { isToken } from '../protocol/extensions.js';
import { HandlerLoadError, loadHandlerModules } from './discover.js';
import { openHandler, type DispatchTarget } from './dispatch.js';
import { adoptHandler, type HandlerClass } from './handler.js';
import type { Broker, PublishOptions } from '../pubsub/broker.js';
import { MemoryBroker } from '../pubsub/memory.js';

/** Options of a router: those of every connection, and where the queue's messages travel. */
export interface RouterOptions extends WebSocketOptions {
  /**
   * The broker of `subscribe`/`publish` (docs/pubsub.md): a ClusterBroker across node:cluster
   * workers, a RedisBroker across machines. Default: a MemoryBroker of this router's own, closed
   * by `close()` (a broker passed in is not).
   */
  broker?: Broker;
}

/** A server the router can attach to: node:http's or node:https's (what Express and Fastify run on). */
export type UpgradeServer = HttpServer | HttpsServer;

/** A route a module or a route() call registers. */
interface Route extends DispatchTarget {
  /** The module that registered it, when loaded from a folder. */
  readonly file: string | undefined;
}

/**
 * The `selectProtocol` of a class with `static protocols`: the first of the class's list that the
 * client offered; none when the client offered none; 400 naming the list when it offered others.
 */
function chooseFrom(protocols: readonly string[]): NonNullable<WebSocketOptions['selectProtocol']> {
  const message = `unsupported subprotocol; this endpoint speaks ${protocols.join(', ')}`;
  return (offered) => {
    if (offered.length === 0) return null;
    for (const protocol of protocols) {
      if (offered.includes(protocol)) return protocol;
    }
    return new HandshakeError('WS_ERR_HANDSHAKE_PROTOCOL', 400, message);
  };
}

/** The path of a request target, without its query: '/wsEcho?room=1' -> '/wsEcho'. */
function pathnameOf(url: string): string {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  if (path.charCodeAt(0) === 0x2f /* '/' */) return path;
  // The absolute form (RFC 7230 §5.3.2), which proxies send.
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/**
 * Maps paths to handler classes and upgrades matching requests, one handler instance per
 * connection.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { WebSocketRouter } from 'pef-front-websocket';
 *
 * const router = await WebSocketRouter.fromDirectory('app/WSTest/WebSocket', { maxPayload: 1 << 20 });
 * const server = createServer(httpApp); // plain, Express, Fastify, Koa: any node:http(s) server
 * router.attach(server);                // its routes are upgraded; other upgrade requests get 404
 * server.listen(8080);
 * process.on('SIGTERM', () => void router.close().then(() => server.close()));
 * ```
 *
 * Options are set on the router and overridden per class by `static options`.
 */
export class WebSocketRouter {
  readonly #options: WebSocketOptions;
  readonly #routes = new Map<string, Route>();
  /** The open (or opening) connections, each with its place in the admission counts. */
  readonly #live = new Map<WebSocketConnection, AdmissionSlot>();
  /** Told by each connection when it is over (one object for all, no closure per connection). */
  readonly #owner: ConnectionOwner = { connectionEnded: (connection) => this.#forget(connection) };
  /** Requests whose upgrade hook is still running. */
  readonly #holding = new Set<PendingUpgrade>();
  readonly #servers = new Set<UpgradeServer>();
  #closing: Promise<void> | null = null;
  #closed: (() => void) | null = null;
  #closeTimer: NodeJS.Timeout | null = null;
  readonly #admission: Admission;
  readonly #broker: Broker;
  readonly #ownBroker: boolean;

  /** A router with no routes yet. `options` apply to every route (see WebSocketOptions), `broker` to its queue. */
  constructor(routerOptions: RouterOptions = {}) {
    const { broker, ...options } = routerOptions;
    // Resolved now to fail on a bad value, not at the first connection.
    this.#admission = new Admission(resolveOptions(options));
    this.#options = options;
    this.#ownBroker = broker === undefined;
    this.#broker = broker ?? new MemoryBroker();
  }

  /**
   * Loads every handler module directly in `dir` (see {@link WebSocketRouter.loadDirectory}) into a
   * new router with `options`.
   */
  static async fromDirectory(dir: string, options: RouterOptions = {}): Promise<WebSocketRouter> {
    const router = new WebSocketRouter(options);
    await router.loadDirectory(dir);
    return router;
  }

  /**
   * Loads every handler module directly in `dir`: `.js`, `.mjs`, `.cjs`, and `.ts`/`.mts` when
   * this Node can import TypeScript (under tsx, or with type stripping); not `.d.ts` files, not
   * `*.test.*`/`*.spec.*`. Each module's default export, or the export named like the file, must
   * be a class; it serves `/ws` + the file's base name (`Echo.ts` -> `/wsEcho`) unless it has a
   * `static path`. A class that does not extend WebSocketHandler gets it put into its prototype
   * chain.
   *
   * Files and folders whose names start with `_` are not handlers (`_helpers.ts` beside
   * `Echo.ts`). `.ts` files skipped because this process cannot import TypeScript are named in a
   * warning to the logger.
   *
   * Fails fast, registering nothing, with a HandlerLoadError naming the file (with line and
   * column when known) and the cause: a module with a syntax error, that throws on import,
   * exports no class, has invalid statics, or claims a route that is taken; or naming the folder
   * when it does not exist, cannot be read or holds no handler module.
   */
  async loadDirectory(dir: string): Promise<this> {
    const logger = resolveOptions(this.#options).logger;
    const modules = await loadHandlerModules(dir, { warn: (line) => (logger.warn ?? logger.error).call(logger, line) });
    const routes = new Map<string, Route>();
    for (const { file, name, Class } of modules) {
      let route: Route;
      try {
        const path: unknown = Class.path;
        route = this.#makeRoute(path === undefined ? `/ws${name}` : (path as string), Class, file);
      } catch (error) {
        throw new HandlerLoadError(file, (error as Error).message, { cause: error });
      }
      const taken = routes.get(route.path) ?? this.#routes.get(route.path);
      if (taken !== undefined) {
        const owner = taken.file ?? `${taken.Class.name || 'a class'} (registered by route())`;
        throw new HandlerLoadError(file, `claims the route ${route.path}, which ${owner} has already`);
      }
      routes.set(route.path, route);
    }
    for (const [path, route] of routes) this.#routes.set(path, route);
    return this;
  }

  /**
   * Registers `Class` at `path` (which must start with `/`; the class's `static path` is not
   * consulted here). A class that does not extend WebSocketHandler gets it put into its prototype
   * chain. Throws if the path is taken, the class is not a class, or its statics are invalid.
   */
  route(path: string, Class: HandlerClass): this {
    const taken = this.#routes.get(path);
    if (taken !== undefined) throw new Error(`the route ${path} is taken by ${taken.file ?? (taken.Class.name || 'another class')}`);
    this.#routes.set(path, this.#makeRoute(path, Class, undefined));
    return this;
  }

  /** The registered paths, in registration order. */
  get routes(): string[] {
    return [...this.#routes.keys()];
  }

  /**
   * Publishes `message` to `topic` for code outside a connection (an HTTP route, a job): as
   * WebSocketHandler.publish, through this router's broker. Resolves with the id; rejects with
   * QueueError.
   */
  publish(topic: string, message: string | Buffer, options?: PublishOptions): Promise<number> {
    return this.#broker.publish(topic, message, options);
  }

  /** How many connections are open (or opening) on this router. */
  get connectionCount(): number {
    return this.#live.size;
  }

  /**
   * Listens to `'upgrade'` on `server`: requests for a route become WebSocket connections, other
   * upgrade requests get an HTTP 404 response. Plain HTTP requests are never touched.
   */
  attach(server: UpgradeServer): this {
    if (!this.#servers.has(server)) {
      this.#servers.add(server);
      server.on('upgrade', this.#onUpgrade);
    }
    return this;
  }

  /** Stops listening to `server`'s `'upgrade'` event. Open connections are not affected. */
  detach(server: UpgradeServer): this {
    if (this.#servers.delete(server)) server.off('upgrade', this.#onUpgrade);
    return this;
  }

  /**
   * Handles one upgrade request, for code that owns the `'upgrade'` event. Returns false, touching
   * nothing, when the path (the URL without its query string) is not a route; true when it is,
   * and then the request has been answered: upgraded, or refused with an HTTP error (400/405/426
   * for a bad handshake, 400 for unsupported subprotocols, 500 when the constructor threw, 503
   * once the router is closing or holds maxConnections, 429 past maxConnectionsPerIp), or is held
   * while the class's `static upgrade` hook decides (its refusal, 500 if it throws, 503 past
   * `upgradeTimeout`).
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const route = this.#routes.get(pathnameOf(request.url ?? '/'));
    if (route === undefined) return false;
    if (this.#closing !== null) {
      rejectUpgrade(socket, { status: 503, message: 'the server is shutting down', headers: {} });
      return true;
    }
    // maxConnections (503) and maxConnectionsPerIp (429): the router's, then the class's own.
    const slot = this.#admission.admit(request, route.Class, (route.Class as { options?: WebSocketOptions }).options);
    if (slot instanceof HandshakeError) {
      traceRefusal(request, route.options.trace, slot);
      rejectUpgrade(socket, slot);
      return true;
    }
    let pending: PendingUpgrade | null = null;
    pending = openHandler(route, request, socket, head, this.#owner, (connection) => {
      if (pending !== null) this.#holding.delete(pending);
      if (connection === null) return slot.release();
      this.#live.set(connection, slot); // until the connection tells #owner it is over
    });
    if (pending !== null) this.#holding.add(pending);
    return true;
  }

  /**
   * Shuts down gracefully: stops accepting (upgrade requests for its routes get 503 from now on),
   * stops reading and lets pending async hooks finish (up to the close timeout) so every message
   * that reached a handler has its reply written, sends 1001 Going Away to every connection, waits
   * for their closing handshakes up to the close timeout, destroys the sockets that remain, and
   * resolves once no connection is left. Calling
   * it again returns the same promise. The servers themselves are not closed.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    for (const pending of this.#holding) pending.cancel(new HandshakeError('WS_ERR_HANDSHAKE_REJECTED', 503, 'the server is shutting down'));
    this.#closing = new Promise<void>((resolve) => {
      if (this.#ownBroker) void this.#broker.close();
      if (this.#live.size === 0) return resolve();
      this.#closed = resolve;
      let timeout = resolveOptions(this.#options).closeTimeout;
      for (const route of this.#routes.values()) timeout = Math.max(timeout, route.options.closeTimeout);
      // Each connection destroys its socket after its own close timeout; this is the backstop
      // (hooks settling, then the closing handshake: a close timeout each).
      this.#closeTimer = setTimeout(() => {
        for (const connection of this.#live.keys()) connection.terminate();
      }, 2 * timeout);
      this.#closeTimer.unref();
      for (const connection of this.#live.keys()) connection.shutdown(CloseCode.GoingAway, 'server shutting down');
    });
    return this.#closing;
  }

  readonly #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.handleUpgrade(request, socket, head)) return;
    const error = new HandshakeError('WS_ERR_HANDSHAKE_NOT_FOUND', 404, 'no WebSocket handler at this path');
    traceRefusal(request, this.#options.trace, error);
    rejectUpgrade(socket, error);
  };

  /** A connection is over: its admission slot goes back, and a close() waiting for the last one may end. */
  #forget(connection: WebSocketConnection): void {
    const slot = this.#live.get(connection);
    if (slot === undefined) return;
    this.#live.delete(connection);
    slot.release();
    if (this.#closed !== null && this.#live.size === 0) {
      if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
      this.#closeTimer = null;
      const resolve = this.#closed;
      this.#closed = null;
      resolve();
    }
  }

  #makeRoute(path: string, Class: HandlerClass, file: string | undefined): Route {
    if (typeof path !== 'string' || path.charCodeAt(0) !== 0x2f || path.includes('?') || path.includes('#')) {
      throw new TypeError(`a route must be a path starting with "/" without query or fragment, not ${describe(path)}`);
    }
    if (typeof Class !== 'function' || typeof Class.prototype !== 'object' || Class.prototype === null) {
      throw new TypeError(`the handler for ${path} must be a class, not ${describe(Class)}`);
    }
    const statics = Class as Partial<Record<'options' | 'protocols' | 'selectProtocol' | 'upgrade', unknown>>;
    const classOptions = statics.options;
    if (classOptions !== undefined && (typeof classOptions !== 'object' || classOptions === null)) {
      throw new TypeError(`static options of ${Class.name} must be an object, not ${describe(classOptions)}`);
    }
    const protocols = statics.protocols;
    if (
      protocols !== undefined &&
      (!Array.isArray(protocols) || protocols.length === 0 || !protocols.every((p) => typeof p === 'string' && isToken(p)))
    ) {
      throw new TypeError(`static protocols of ${Class.name} must be a non-empty list of subprotocol tokens`);
    }
    if (statics.selectProtocol !== undefined && typeof statics.selectProtocol !== 'function') {
      throw new TypeError(`static selectProtocol of ${Class.name} must be a function`);
    }
    if (statics.upgrade !== undefined && typeof statics.upgrade !== 'function') {
      throw new TypeError(`static upgrade of ${Class.name} must be a function`);
    }
    adoptHandler(Class);
    let selectProtocol: WebSocketOptions['selectProtocol'];
    if (statics.selectProtocol !== undefined) {
      selectProtocol = (offered, request) => Class.selectProtocol!(offered, request);
    } else if (protocols !== undefined) {
      selectProtocol = chooseFrom(protocols as string[]);
    }
    const options = resolveOptions(this.#options, classOptions as WebSocketOptions | undefined, selectProtocol && { selectProtocol });
    return { path, Class, options, file, broker: this.#broker };
  }
}

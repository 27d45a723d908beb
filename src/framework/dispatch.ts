// One handler instance bound to one connection. The transport calls hooks on a small binding
// object that forwards to the instance; the binding has only the hooks the class overrides, so
// the transport skips the others (no write callbacks when onDrain is the base's no-op, no calls
// to empty functions per message).

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ResolvedOptions } from '../node/options.js';
import type { ConnectionOwner, WebSocketConnection } from '../node/transport.js';
import type { MessageType, WebSocketHooks } from '../node/types.js';
import { rejectUpgrade, upgradeWith } from '../node/upgrade.js';
import type { PendingUpgrade } from '../node/upgrade-hook.js';
import type { Broker } from '../pubsub/broker.js';
import { CONNECTION, QUEUE, WebSocketHandler, queueOf, type BoundHandler, type HandlerClass } from './handler.js';

/** A registered route: what dispatch needs to open a connection on it. */
export interface DispatchTarget {
  readonly path: string;
  readonly Class: HandlerClass;
  /** The router's options merged with the class's (`static options`, `protocols`, `selectProtocol`). */
  readonly options: ResolvedOptions;
  /** Where the handler's publish and subscribe go (the router's broker). */
  readonly broker: Broker;
}

/** The hooks object the transport calls (`this` = the binding): forwards to the handler instance. */
interface Binding extends WebSocketHooks {
  handler: WebSocketHandler;
  target: DispatchTarget;
}

const HOOKS = ['onOpen', 'onMessage', 'onDrain', 'onError', 'onClose'] as const;
type HookName = (typeof HOOKS)[number];

const FORWARDERS: Required<WebSocketHooks> & ThisType<Binding> = {
  onOpen(this: Binding) {
    return this.handler.onOpen();
  },
  onMessage(this: Binding, message: string | Buffer, type: MessageType) {
    return this.handler.onMessage(message, type);
  },
  onDrain(this: Binding) {
    return this.handler.onDrain();
  },
  onError(this: Binding, error: Error) {
    return this.handler.onError(error);
  },
  onClose(this: Binding, code: number, reason: string) {
    // Subscriptions end first: no onQueue after onClose (a queue never used is made closed, so a
    // later subscribe does nothing, as for one that was used).
    queueOf(this.handler).close();
    return this.handler.onClose(code, reason);
  },
};

/**
 * onError of a class that does not define one: what its other hooks threw is logged, so a bug
 * never shows up only as a 1011. Errors from the peer (ProtocolError) and the socket (system
 * errors, which carry `syscall`) are the peer's doing and are not logged.
 */
function reportUncaught(this: Binding, error: Error): void {
  if (error.name === 'ProtocolError' || 'syscall' in error) return;
  const { Class, path, options } = this.target;
  options.logger.error(`pef-front-websocket: a hook of ${Class.name || 'the handler'} (${path}) threw; define onError to handle it`, error);
}

/** One prototype per combination of overridden hooks (bit i = HOOKS[i]), made on first use. */
const bindingPrototypes: (object | undefined)[] = [];

function bindingPrototype(mask: number): object {
  let prototype = bindingPrototypes[mask];
  if (prototype === undefined) {
    const hooks: WebSocketHooks = {};
    for (let i = 0; i < HOOKS.length; i++) {
      const name = HOOKS[i]!;
      if ((mask & (1 << i)) !== 0) (hooks as Record<HookName, unknown>)[name] = FORWARDERS[name];
    }
    if (hooks.onError === undefined) hooks.onError = reportUncaught as WebSocketHooks['onError'];
    prototype = bindingPrototypes[mask] = hooks;
  }
  return prototype;
}

/** Which hooks the instance has other than the base class's no-ops (own fields included). */
function overriddenHooks(handler: WebSocketHandler): number {
  const base = WebSocketHandler.prototype;
  let mask = 0;
  if (handler.onOpen !== base.onOpen) mask |= 1;
  if (handler.onMessage !== base.onMessage) mask |= 2;
  if (handler.onDrain !== base.onDrain) mask |= 4;
  if (handler.onError !== base.onError) mask |= 8;
  if (handler.onClose !== base.onClose) mask |= 16;
  return mask;
}

/**
 * Runs the handshake for an upgrade request on `target`: the checks, the class's upgrade hook (if
 * any), then the handler instance and the connection. `done` gets the connection, or null when
 * the request was answered with an HTTP error (refused, or the class's constructor threw: 500,
 * logged) or the client left; `owner` is told when an opened connection is over. Returns the hook
 * while it runs.
 */
export function openHandler(
  target: DispatchTarget,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  owner: ConnectionOwner,
  done: (connection: WebSocketConnection | null) => void,
): PendingUpgrade | null {
  const { Class, path, options } = target;
  let handler: WebSocketHandler | undefined;
  const makeHooks = (): WebSocketHooks | null => {
    try {
      handler = new Class() as WebSocketHandler;
    } catch (error) {
      options.logger.error(`pef-front-websocket: new ${Class.name || 'handler'}() threw (${path})`, error);
      rejectUpgrade(socket, { status: 500, message: 'the WebSocket handler could not be created', headers: {} });
      return null;
    }
    // onClose always: it ends the queue's subscriptions.
    const hooks = Object.create(bindingPrototype(overriddenHooks(handler) | 16)) as Binding;
    hooks.handler = handler;
    hooks.target = target;
    return hooks;
  };
  const upgrade = Class.upgrade;
  return upgradeWith(request, socket, head, options, {
    hook: upgrade && ((request, context) => upgrade.call(Class, request, context)),
    label: `the upgrade hook of ${Class.name || 'the handler'} (${path})`,
    makeHooks,
    owner,
    done(connection) {
      // Hooks run only once the 101 response is flushed, which is later: binding here is in time.
      if (connection !== null && handler !== undefined) {
        (handler as BoundHandler)[CONNECTION] = connection;
        (handler as BoundHandler)[QUEUE] = target; // the queue is made on first use (queueOf)
      }
      done(connection);
    },
  });
}

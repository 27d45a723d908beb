// A handler's side of PEF's queue: its subscriptions go to the router's broker, and what the broker
// delivers becomes the hooks onQueue, onQueueGap and onQueueError, with the same error handling as
// the connection's own hooks (a throw or rejection: onError, then 1011).

import type { WebSocketConnection } from '../node/transport.js';
import type { Logger, MaybePromise } from '../node/types.js';
import { CloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Broker, PublishOptions, QueueError, QueueMessage, QueueSubscriber } from '../pubsub/broker.js';

/** Marks the base class's onQueue, which sends each message on as it is (framed once for all subscribers). */
export const FORWARDS_QUEUE: unique symbol = Symbol.for('pef-front-websocket.forwards-queue') as never;

/** The hooks of a handler instance that the queue calls. */
export interface QueueHooks {
  onQueue(topic: string, message: string | Buffer, id: number): MaybePromise<void>;
  onQueueGap(topic: string, firstId: number): MaybePromise<void>;
  onQueueError(error: QueueError): MaybePromise<void>;
  onError(error: Error): MaybePromise<void>;
}

/**
 * What a bound handler holds until it first subscribes or publishes: its route, which has what a
 * queue is made of. So a connection that never uses the queue holds none. @internal
 */
export interface QueueSource {
  readonly broker: Broker;
  readonly options: { readonly logger: Logger };
}

/** The queue of one handler instance: its subscriptions, ended with its connection. @internal */
export class HandlerQueue implements QueueSubscriber {
  readonly #handler: QueueHooks;
  readonly #connection: WebSocketConnection;
  readonly #broker: Broker;
  readonly #logger: Logger;
  /** The class's own onError, or null when it has the base's no-op (then errors are logged). */
  readonly #ownOnError: boolean;
  #closed = false;

  constructor(handler: QueueHooks, connection: WebSocketConnection, broker: Broker, logger: Logger, ownOnError: boolean) {
    this.#handler = handler;
    this.#connection = connection;
    this.#broker = broker;
    this.#logger = logger;
    this.#ownOnError = ownOnError;
  }

  subscribe(topic: string, lastId: number | undefined): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#broker.subscribe(this, topic, lastId);
  }

  unsubscribe(topic: string): void {
    this.#broker.unsubscribe(this, topic);
  }

  publish(topic: string, message: string | Buffer, options: PublishOptions | undefined): Promise<number> {
    const published = this.#broker.publish(topic, message, options);
    // A publish nobody awaits must not crash the process with an unhandled rejection; awaiting it still sees the error.
    published.catch(() => {});
    return published;
  }

  /** The connection closed: every subscription ends, no queue hook runs after. */
  close(): void {
    this.#closed = true;
    this.#broker.unsubscribeAll(this);
  }

  queueMessage(topic: string, message: QueueMessage): void {
    const handler = this.#handler;
    const onQueue = handler.onQueue;
    if ((onQueue as { [FORWARDS_QUEUE]?: boolean })[FORWARDS_QUEUE] === true) {
      this.#connection.sendPrepared(message.prepared);
      return;
    }
    this.#call(() => onQueue.call(handler, topic, message.data, message.id));
  }

  queueGap(topic: string, firstId: number): void {
    this.#call(() => this.#handler.onQueueGap(topic, firstId));
  }

  queueError(error: QueueError): void {
    this.#call(() => this.#handler.onQueueError(error));
  }

  #call(hook: () => MaybePromise<void>): void {
    if (this.#closed) return;
    let result: MaybePromise<void>;
    try {
      result = hook();
    } catch (error) {
      return this.#failed(error);
    }
    if (result !== undefined && typeof (result as PromiseLike<void>).then === 'function') {
      (result as PromiseLike<void>).then(undefined, (error: unknown) => this.#failed(error));
    }
  }

  /** A queue hook threw or rejected: as for the connection's hooks, onError gets it, then 1011 (WS_ERR_HANDLER). */
  #failed(error: unknown): void {
    const reported = error instanceof Error ? error : new Error(String(error));
    if (this.#closed) return this.#logger.error('pef-front-websocket: a queue hook failed after onClose', reported);
    if (!this.#ownOnError) {
      this.#logger.error('pef-front-websocket: a queue hook threw; define onError to handle it', reported);
    } else {
      try {
        const result = this.#handler.onError(reported);
        if (result !== undefined) result.catch((thrown: unknown) => this.#logger.error('pef-front-websocket: onError rejected', thrown));
      } catch (thrown) {
        this.#logger.error('pef-front-websocket: onError threw', thrown);
      }
    }
    // WS_ERR_HANDLER: the connection does not hand this one to onError again.
    this.#connection.fail(new ProtocolError('WS_ERR_HANDLER', CloseCode.InternalError, 'a handler hook threw', { cause: error }));
  }
}

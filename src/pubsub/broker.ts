// PEF's queue: the contract every broker keeps (in one process, through the cluster primary, on
// Redis Streams), its typed error, and the bounds on history with their defaults (docs/pubsub.md,
// docs/security.md).

import { PreparedMessage } from '../node/prepared.js';

/** Stable codes of {@link QueueError}. */
export type QueueErrorCode =
  /** A topic that is not a string of 1 to 256 characters. */
  | 'WS_ERR_QUEUE_TOPIC'
  /** An id or lastId that is not a positive safe integer, or an id together with `store: false`. */
  | 'WS_ERR_QUEUE_ID'
  /** A publisher-supplied id not greater than the topic's last id: ids must increase. */
  | 'WS_ERR_QUEUE_ID_ORDER'
  /** A message that is neither a string nor a Buffer. */
  | 'WS_ERR_QUEUE_MESSAGE'
  /** The broker cannot be reached (Redis down past publishTimeout, the cluster primary gone). */
  | 'WS_ERR_QUEUE_UNAVAILABLE'
  /** The broker was closed. */
  | 'WS_ERR_QUEUE_CLOSED';

/** An error of the queue: `code` says which, and never changes between versions. */
export class QueueError extends Error {
  /** Which error this is. */
  readonly code: QueueErrorCode;

  /** A queue error with its stable `code`; `options.cause` keeps what caused it. */
  constructor(code: QueueErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'QueueError';
    this.code = code;
  }
}

/** Options of `publish`. */
export interface PublishOptions {
  /**
   * The message's id, a positive safe integer greater than the topic's last id (a database row id,
   * say). Default: the broker assigns the topic's last id + 1. A smaller or equal id is refused
   * with WS_ERR_QUEUE_ID_ORDER.
   */
  id?: number;
  /** false: deliver to current subscribers only, never store or replay it (PEF's id 0). Default true. */
  store?: boolean;
}

/** Bounds on each topic's history; every broker keeps them (docs/security.md). */
export interface QueueLimits {
  /** At most this many stored messages per topic; older ones are dropped first. Default 1,000. */
  historySize?: number;
  /** Stored messages older than this many ms are dropped (PEF: 3,600 s). Default 3,600,000. */
  historyAge?: number;
  /** A topic with no subscriber and no publish for this many ms is dropped with its history and ids (PEF: 900 s). Default 900,000. */
  topicIdleTimeout?: number;
}

/** {@link QueueLimits} with every default filled in. */
export type ResolvedQueueLimits = Required<QueueLimits>;

/** The defaults of {@link QueueLimits}. */
export const DEFAULT_QUEUE_LIMITS: Readonly<ResolvedQueueLimits> = {
  historySize: 1000,
  historyAge: 3_600_000,
  topicIdleTimeout: 900_000,
};

/** Fills in the defaults; RangeError for a bound that is not a positive integer. */
export function resolveQueueLimits(limits: QueueLimits = {}): ResolvedQueueLimits {
  const resolved = { ...DEFAULT_QUEUE_LIMITS };
  for (const key of Object.keys(DEFAULT_QUEUE_LIMITS) as (keyof ResolvedQueueLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${key} must be a positive integer, not ${String(value)}`);
    resolved[key] = value;
  }
  return resolved;
}

/**
 * A message as delivered: the same object goes to every subscriber of one process for one
 * publish, so its frame is built once ({@link QueueMessage.prepared}).
 */
export class QueueMessage {
  /** The id: a positive integer, increasing per topic; 0 for a message published with `store: false`. */
  readonly id: number;
  /** The message: a string (text) or a Buffer (binary). */
  readonly data: string | Buffer;
  #prepared: PreparedMessage | null = null;

  /** A message with its id. */
  constructor(id: number, data: string | Buffer) {
    this.id = id;
    this.data = data;
  }

  /** The message framed once for every subscriber (see PreparedMessage). */
  get prepared(): PreparedMessage {
    return (this.#prepared ??= new PreparedMessage(this.data));
  }
}

/** What a broker delivers to: one per connection in the framework (the handler's hooks). */
export interface QueueSubscriber {
  /** A message of `topic`, in id order; never one this subscription delivered already. */
  queueMessage(topic: string, message: QueueMessage): void;
  /** Replay could not reach back to the lastId given: `firstId` is the oldest id still kept (or the next one to come). */
  queueGap(topic: string, firstId: number): void;
  /** The broker lost its backend (the subscription stays and resumes once it is back). */
  queueError(error: QueueError): void;
}

/**
 * Where messages travel: MemoryBroker (one process), ClusterBroker (the workers of `--workers N`
 * through the primary), RedisBroker (many machines on Redis Streams). Guarantees in
 * docs/pubsub.md.
 */
export interface Broker {
  /**
   * Publishes `message` to `topic`; resolves with its id (0 for `store: false`) once the broker
   * has it. Rejects with QueueError: WS_ERR_QUEUE_TOPIC, WS_ERR_QUEUE_ID, WS_ERR_QUEUE_ID_ORDER,
   * WS_ERR_QUEUE_MESSAGE, WS_ERR_QUEUE_UNAVAILABLE, WS_ERR_QUEUE_CLOSED.
   */
  publish(topic: string, message: string | Buffer, options?: PublishOptions): Promise<number>;
  /**
   * Subscribes `subscriber` to `topic` (again: the earlier subscription is replaced). With
   * `lastId`, the stored messages after it are delivered first, preceded by `queueGap` when
   * history no longer reaches back to it; without, only messages published from now on. Resolves
   * once the replay is delivered (after the backend came back, if it was down). Throws QueueError
   * (WS_ERR_QUEUE_TOPIC, WS_ERR_QUEUE_ID, WS_ERR_QUEUE_CLOSED) for bad arguments.
   */
  subscribe(subscriber: QueueSubscriber, topic: string, lastId?: number): Promise<void>;
  /** Ends `subscriber`'s subscription to `topic`; nothing of it is delivered afterwards. */
  unsubscribe(subscriber: QueueSubscriber, topic: string): void;
  /** Ends every subscription of `subscriber` (its connection closed). */
  unsubscribeAll(subscriber: QueueSubscriber): void;
  /** Stops the broker: later calls fail with WS_ERR_QUEUE_CLOSED. Clients passed in are not closed. */
  close(): Promise<void>;
}

/** Throws WS_ERR_QUEUE_TOPIC unless `topic` is a string of 1 to 256 characters. */
export function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256) {
    throw new QueueError('WS_ERR_QUEUE_TOPIC', `a topic is a string of 1 to 256 characters, not ${typeof topic === 'string' ? JSON.stringify(topic.slice(0, 40)) : typeof topic}`);
  }
}

/** Throws WS_ERR_QUEUE_ID unless `id` is a positive safe integer (or, with `zero`, 0). */
export function checkId(id: unknown, what: string, zero = false): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < (zero ? 0 : 1)) {
    throw new QueueError('WS_ERR_QUEUE_ID', `${what} must be a ${zero ? 'non-negative' : 'positive'} safe integer, not ${String(id)}`);
  }
}

/** Checks subscribe's arguments: WS_ERR_QUEUE_TOPIC, WS_ERR_QUEUE_ID (lastId not an integer >= 0), WS_ERR_QUEUE_CLOSED. */
export function checkSubscribe(topic: unknown, lastId: unknown, closed: boolean): asserts topic is string {
  checkTopic(topic);
  if (lastId !== undefined) checkId(lastId, 'lastId', true);
  if (closed) throw new QueueError('WS_ERR_QUEUE_CLOSED', 'the broker is closed');
}

/** Checks publish's arguments; returns the id asked for (undefined: the broker assigns) and whether to store. */
export function checkPublish(topic: unknown, message: unknown, options: PublishOptions | undefined): { id: number | undefined; store: boolean } {
  checkTopic(topic);
  if (typeof message !== 'string' && !Buffer.isBuffer(message)) {
    throw new QueueError('WS_ERR_QUEUE_MESSAGE', `a message is a string or a Buffer, not ${typeof message}`);
  }
  const store = options?.store !== false;
  const id = options?.id;
  if (id !== undefined) {
    checkId(id, 'a message id');
    if (!store) throw new QueueError('WS_ERR_QUEUE_ID', 'a message published with store: false has id 0; give no id');
  }
  return { id, store };
}

/** `error` as the order error for `id` on `topic` whose last id is `last`. */
export function idOrderError(topic: string, id: number, last: number): QueueError {
  return new QueueError('WS_ERR_QUEUE_ID_ORDER', `id ${id} on topic ${JSON.stringify(topic)} is not greater than its last id ${last}`);
}

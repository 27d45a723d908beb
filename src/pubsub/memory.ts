// The broker of one process, the default: topics, ids and history in this process's memory.

import {
  QueueError,
  QueueMessage,
  checkPublish,
  checkSubscribe,
  resolveQueueLimits,
  type Broker,
  type PublishOptions,
  type QueueLimits,
  type QueueSubscriber,
} from './broker.js';
import { LocalTopics } from './local.js';
import { TopicStore } from './store.js';

/** Throws WS_ERR_QUEUE_CLOSED when `closed`. */
export function checkOpen(closed: boolean): void {
  if (closed) throw new QueueError('WS_ERR_QUEUE_CLOSED', 'the broker is closed');
}

/**
 * Topics in this process (each router has one unless given another broker). Delivery is
 * synchronous: `publish` has handed the message to every subscriber when it resolves. Messages
 * live as long as the process (bounded by {@link QueueLimits}).
 */
export class MemoryBroker implements Broker {
  readonly #store: TopicStore;
  readonly #local = new LocalTopics();
  #closed = false;

  /** A broker with history bounded by `limits` (defaults in docs/security.md). RangeError for a bad bound. */
  constructor(limits: QueueLimits = {}) {
    this.#store = new TopicStore(resolveQueueLimits(limits));
  }

  async publish(topic: string, message: string | Buffer, options?: PublishOptions): Promise<number> {
    const { id, store } = checkPublish(topic, message, options);
    checkOpen(this.#closed);
    const assigned = this.#store.append(topic, message, id, store);
    this.#local.deliver(topic, new QueueMessage(assigned, message));
    return assigned;
  }

  subscribe(subscriber: QueueSubscriber, topic: string, lastId?: number): Promise<void> {
    checkSubscribe(topic, lastId, this.#closed);
    const { subscription, replaced } = this.#local.add(subscriber, topic, lastId);
    if (replaced === null) this.#store.count(topic, 1);
    this.#local.replayed(subscription, this.#store.replay(topic, lastId));
    return subscription.ready;
  }

  unsubscribe(subscriber: QueueSubscriber, topic: string): void {
    if (this.#local.remove(subscriber, topic) !== null) this.#store.count(topic, -1);
  }

  unsubscribeAll(subscriber: QueueSubscriber): void {
    for (const topic of this.#local.topicsOf(subscriber)) this.unsubscribe(subscriber, topic);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#local.clear();
    this.#store.close();
  }
}

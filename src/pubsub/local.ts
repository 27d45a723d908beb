// The subscriptions of one process, shared by the three brokers: which subscriber wants which
// topic, the last id each was given (nothing is delivered twice, nothing out of order), and the
// messages that arrive while a subscription's replay is still on its way.

import { QueueMessage, type QueueError, type QueueSubscriber } from './broker.js';
import type { Replay, StoredMessage } from './store.js';

/** One subscriber's subscription to one topic. */
export class Subscription {
  readonly subscriber: QueueSubscriber;
  readonly topic: string;
  /** The id asked to replay from (undefined: none). */
  readonly from: number | undefined;
  /** The last id delivered: later messages only. */
  lastId = 0;
  /** Live messages that came while the replay was pending; null once it was delivered. */
  pending: QueueMessage[] | null = [];
  /** Settles subscribe()'s promise once the replay is delivered. */
  readonly ready: Promise<void>;
  resolve!: () => void;

  constructor(subscriber: QueueSubscriber, topic: string, from: number | undefined) {
    this.subscriber = subscriber;
    this.topic = topic;
    this.from = from;
    this.ready = new Promise((resolve) => (this.resolve = resolve));
  }

  get active(): boolean {
    return this.pending === null;
  }
}

/** The subscriptions of this process, by topic and by subscriber. */
export class LocalTopics {
  readonly #byTopic = new Map<string, Map<QueueSubscriber, Subscription>>();
  readonly #bySubscriber = new Map<QueueSubscriber, Map<string, Subscription>>();

  /**
   * Adds a subscription (replacing the subscriber's earlier one to the topic, which is returned
   * as `replaced`); `first` says whether the topic had no subscriber here before.
   */
  add(subscriber: QueueSubscriber, topic: string, from: number | undefined): { subscription: Subscription; first: boolean; replaced: Subscription | null } {
    let subscribers = this.#byTopic.get(topic);
    const first = subscribers === undefined;
    if (subscribers === undefined) this.#byTopic.set(topic, (subscribers = new Map()));
    let topics = this.#bySubscriber.get(subscriber);
    if (topics === undefined) this.#bySubscriber.set(subscriber, (topics = new Map()));
    const replaced = subscribers.get(subscriber) ?? null;
    replaced?.resolve();
    const subscription = new Subscription(subscriber, topic, from);
    subscribers.set(subscriber, subscription);
    topics.set(topic, subscription);
    return { subscription, first, replaced };
  }

  /** Removes a subscription; returns it and whether it was the topic's last here (null when there was none). */
  remove(subscriber: QueueSubscriber, topic: string): { subscription: Subscription; last: boolean } | null {
    const subscribers = this.#byTopic.get(topic);
    const subscription = subscribers?.get(subscriber);
    if (subscribers === undefined || subscription === undefined) return null;
    subscribers.delete(subscriber);
    const topics = this.#bySubscriber.get(subscriber)!;
    topics.delete(topic);
    if (topics.size === 0) this.#bySubscriber.delete(subscriber);
    subscription.pending = null;
    subscription.resolve();
    const last = subscribers.size === 0;
    if (last) this.#byTopic.delete(topic);
    return { subscription, last };
  }

  /** The topics `subscriber` is subscribed to. */
  topicsOf(subscriber: QueueSubscriber): string[] {
    return [...(this.#bySubscriber.get(subscriber)?.keys() ?? [])];
  }

  /** Whether `subscription` is still the current one (not unsubscribed, not replaced). */
  isCurrent(subscription: Subscription): boolean {
    return this.#byTopic.get(subscription.topic)?.get(subscription.subscriber) === subscription;
  }

  /** Topics with at least one subscriber here. */
  topics(): IterableIterator<string> {
    return this.#byTopic.keys();
  }

  /** The subscriptions of `topic` here. */
  subscriptionsOf(topic: string): Iterable<Subscription> {
    return this.#byTopic.get(topic)?.values() ?? [];
  }

  /** Delivers one published message to every subscription of its topic here: one QueueMessage for all. */
  deliver(topic: string, message: QueueMessage): void {
    const subscribers = this.#byTopic.get(topic);
    if (subscribers === undefined) return;
    for (const subscription of subscribers.values()) {
      if (subscription.pending !== null) subscription.pending.push(message);
      else this.#give(subscription, message);
    }
  }

  /**
   * Delivers a subscription's replay: the gap first, then stored messages after its lastId, then
   * what came live meanwhile and is newer. Does nothing for a subscription no longer current.
   */
  replayed(subscription: Subscription, replay: Replay): void {
    if (!this.isCurrent(subscription) || subscription.pending === null) return;
    const pending = subscription.pending;
    subscription.pending = null;
    const { subscriber, topic } = subscription;
    if (subscription.from === undefined) {
      subscription.lastId = replay.last;
    } else {
      subscription.lastId = subscription.from;
      if (replay.gap !== null) {
        subscription.lastId = 0;
        subscriber.queueGap(topic, replay.gap);
      }
      for (const stored of replay.messages) {
        if (!this.isCurrent(subscription)) break;
        if (stored.id > subscription.lastId) this.#give(subscription, new QueueMessage(stored.id, stored.data));
      }
    }
    for (const message of pending) {
      if (!this.isCurrent(subscription)) break;
      // A message kept back while replaying: store:false ones (id 0) went to nobody else before it, so they go too.
      this.#give(subscription, message);
    }
    subscription.resolve();
  }

  /**
   * The backend lost what follows the topic's last delivered messages (trimmed while it was away,
   * or begun anew): every active subscription gets `queueGap`, then `messages`.
   */
  gap(topic: string, firstId: number, messages: readonly StoredMessage[]): void {
    for (const subscription of [...this.subscriptionsOf(topic)]) {
      if (!subscription.active || !this.isCurrent(subscription)) continue;
      subscription.lastId = 0;
      subscription.subscriber.queueGap(topic, firstId);
    }
    for (const stored of messages) this.deliver(topic, new QueueMessage(stored.id, stored.data));
  }

  /** Tells every subscriber here, once each, that the broker lost its backend. */
  errorAll(error: QueueError): void {
    for (const subscriber of [...this.#bySubscriber.keys()]) subscriber.queueError(error);
  }

  /** Ends every subscription (the broker closes). */
  clear(): void {
    for (const subscriptions of this.#byTopic.values()) for (const subscription of subscriptions.values()) subscription.resolve();
    this.#byTopic.clear();
    this.#bySubscriber.clear();
  }

  #give(subscription: Subscription, message: QueueMessage): void {
    if (message.id !== 0) {
      if (message.id <= subscription.lastId) return; // delivered already (replay and tail overlap)
      subscription.lastId = message.id;
    }
    subscription.subscriber.queueMessage(subscription.topic, message);
  }
}

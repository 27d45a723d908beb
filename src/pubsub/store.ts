// Topics kept in this process's memory: each topic's last id, its history bounded by count and age,
// and the largest id it dropped (so a replay knows when it cannot reach back). The MemoryBroker
// keeps one; so does the cluster primary, for all its workers.

import { idOrderError, type ResolvedQueueLimits } from './broker.js';

/** One stored message. */
export interface StoredMessage {
  readonly id: number;
  readonly data: string | Buffer;
  /** When it was published, ms since the epoch. */
  readonly time: number;
}

/** What a subscription gets first: the stored messages after its lastId, and whether history fell short. */
export interface Replay {
  /** The oldest id still kept (or the next to come) when history no longer reaches back to lastId; else null. */
  gap: number | null;
  /** Stored messages after lastId (all of them after a gap), oldest first. */
  messages: StoredMessage[];
  /** The topic's last id: where a subscription without lastId starts. */
  last: number;
}

class Topic {
  /** Stored messages from `start` on (a head index instead of shift(): dropping the oldest is O(1)). */
  messages: StoredMessage[] = [];
  start = 0;
  last = 0;
  /** The largest id dropped from history. */
  dropped = 0;
  subscribers = 0;
  /** Last publish, or when the last subscriber left. */
  active: number;

  constructor(now: number) {
    this.active = now;
  }

  get size(): number {
    return this.messages.length - this.start;
  }

  dropOldest(): void {
    this.dropped = this.messages[this.start]!.id;
    this.start++;
    if (this.start > 1024 && this.start * 2 > this.messages.length) {
      this.messages = this.messages.slice(this.start);
      this.start = 0;
    }
  }
}

/** The topics of one process, with their bounds (QueueLimits). */
export class TopicStore {
  readonly #limits: ResolvedQueueLimits;
  readonly #topics = new Map<string, Topic>();
  #sweeper: NodeJS.Timeout | null = null;

  constructor(limits: ResolvedQueueLimits) {
    this.#limits = limits;
  }

  /** Stores (or, `store` false, only numbers with 0) a message; returns its id. Throws WS_ERR_QUEUE_ID_ORDER. */
  append(topicName: string, data: string | Buffer, id: number | undefined, store: boolean, now = Date.now()): number {
    const topic = this.#topic(topicName, now);
    topic.active = now;
    if (!store) return 0;
    if (id === undefined) id = topic.last + 1;
    else if (id <= topic.last) throw idOrderError(topicName, id, topic.last);
    topic.last = id;
    topic.messages.push({ id, data, time: now });
    if (topic.size > this.#limits.historySize) topic.dropOldest();
    this.#expire(topic, now);
    return id;
  }

  /** The replay for a subscription from `lastId` (undefined: none wanted, only the last id). */
  replay(topicName: string, lastId: number | undefined, now = Date.now()): Replay {
    const topic = this.#topic(topicName, now);
    this.#expire(topic, now);
    if (lastId === undefined) return { gap: null, messages: [], last: topic.last };
    const first = topic.size === 0 ? topic.last + 1 : topic.messages[topic.start]!.id;
    // Messages after lastId were dropped, or lastId is beyond this topic's ids (the topic was dropped and began anew).
    const gap = topic.dropped > lastId || lastId > topic.last ? first : null;
    const messages: StoredMessage[] = [];
    for (let i = topic.start; i < topic.messages.length; i++) {
      const message = topic.messages[i]!;
      if (gap !== null || message.id > lastId) messages.push(message);
    }
    return { gap, messages, last: topic.last };
  }

  /** One more (+1) or one fewer (-1) subscriber of the topic, anywhere: a topic with none may go idle. */
  count(topicName: string, change: 1 | -1, now = Date.now()): void {
    const topic = this.#topic(topicName, now);
    topic.subscribers += change;
    topic.active = now;
  }

  /** Drops idle topics and expired messages; stops the sweep timer. */
  close(): void {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    this.#sweeper = null;
    this.#topics.clear();
  }

  /** How many topics are held (for tests and metrics). */
  get size(): number {
    return this.#topics.size;
  }

  /** The topic, made anew when absent or idle past topicIdleTimeout (the old one's ids and history are gone). */
  #topic(name: string, now: number): Topic {
    let topic = this.#topics.get(name);
    if (topic !== undefined && this.#idle(topic, now)) topic = undefined;
    if (topic === undefined) {
      topic = new Topic(now);
      this.#topics.set(name, topic);
      this.#sweeper ??= setInterval(this.#sweep, Math.max(1000, Math.min(this.#limits.topicIdleTimeout, this.#limits.historyAge) / 4)).unref();
    }
    return topic;
  }

  #idle(topic: Topic, now: number): boolean {
    return topic.subscribers <= 0 && now - topic.active >= this.#limits.topicIdleTimeout;
  }

  #expire(topic: Topic, now: number): void {
    const oldest = now - this.#limits.historyAge;
    while (topic.size !== 0 && topic.messages[topic.start]!.time < oldest) topic.dropOldest();
  }

  readonly #sweep = (): void => {
    const now = Date.now();
    for (const [name, topic] of this.#topics) {
      if (this.#idle(topic, now)) this.#topics.delete(name);
      else this.#expire(topic, now);
    }
    if (this.#topics.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
  };
}

// The broker of `--workers N`: topics, ids and history live in the primary process (a ClusterHub),
// and each worker's ClusterBroker reaches it over the node:cluster IPC channel. One channel per
// worker keeps messages in order; a worker that dies loses only its own unanswered publishes.

import type { Cluster, Worker } from 'node:cluster';
import {
  QueueError,
  QueueMessage,
  checkPublish,
  checkSubscribe,
  resolveQueueLimits,
  type Broker,
  type PublishOptions,
  type QueueErrorCode,
  type QueueLimits,
  type QueueSubscriber,
} from './broker.js';
import { LocalTopics, type Subscription } from './local.js';
import { checkOpen } from './memory.js';
import { TopicStore, type Replay } from './store.js';

/** An IPC channel: a cluster Worker or a ChildProcess seen from the primary, `process` seen from the worker. */
export interface IpcChannel {
  /** Sends one message over the channel (undefined: this process has no channel). */
  send?: ((message: object) => boolean) | undefined;
  /** False once the channel is closed. */
  readonly connected?: boolean | undefined;
  /** 'message': a message from the other side; 'disconnect': the channel closed. */
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
  /** Removes a 'message' listener. */
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** A message's data on the wire: JSON carries strings, so bytes go as base64. */
type WireData = [data: string, binary: boolean];

/** What a worker sends the primary. */
type ToPrimary =
  | { pefQueue: 1; op: 'publish'; req: number; topic: string; data: WireData; id?: number; store: boolean }
  | { pefQueue: 1; op: 'subscribe'; req: number; topic: string; from?: number }
  | { pefQueue: 1; op: 'unsubscribe'; topic: string };

/** What the primary sends a worker. */
type ToWorker =
  | { pefQueue: 1; op: 'published'; req: number; id: number }
  | { pefQueue: 1; op: 'failed'; req: number; code: QueueErrorCode; message: string }
  | { pefQueue: 1; op: 'replay'; req: number; gap: number | null; messages: [number, ...WireData][]; last: number }
  | { pefQueue: 1; op: 'message'; topic: string; id: number; data: WireData };

function toWire(data: string | Buffer): WireData {
  return typeof data === 'string' ? [data, false] : [data.toString('base64'), true];
}

function fromWire([data, binary]: WireData): string | Buffer {
  return binary ? Buffer.from(data, 'base64') : data;
}

function isQueueMessage<T>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && (message as { pefQueue?: unknown }).pefQueue === 1;
}

function trySend(channel: IpcChannel, message: ToPrimary | ToWorker): boolean {
  if (channel.send === undefined || channel.connected === false) return false;
  try {
    return channel.send(message) || true;
  } catch {
    return false; // the channel closed between the check and the send
  }
}

/**
 * The primary's side: holds every topic for all workers (bounded by {@link QueueLimits}) and
 * relays each message to the workers subscribed to its topic. `pef-ws serve --workers N` makes
 * one; with your own node:cluster setup, call {@link ClusterHub.forCluster} in the primary and use
 * {@link ClusterBroker} in the workers.
 */
export class ClusterHub {
  readonly #store: TopicStore;
  /** Topic -> the channels of workers with subscribers to it. */
  readonly #interest = new Map<string, Set<IpcChannel>>();

  /** A hub with history bounded by `limits`. RangeError for a bad bound. */
  constructor(limits: QueueLimits = {}) {
    this.#store = new TopicStore(resolveQueueLimits(limits));
  }

  /** A hub attached to every worker `cluster` forks from now on (call it in the primary, before forking). */
  static forCluster(cluster: Cluster, limits: QueueLimits = {}): ClusterHub {
    const hub = new ClusterHub(limits);
    cluster.on('fork', (worker: Worker) => hub.attach(worker));
    return hub;
  }

  /** Serves one worker's channel until it disconnects; its subscriptions end then. */
  attach(channel: IpcChannel): void {
    const topics = new Set<string>();
    const onMessage = (message: unknown): void => {
      if (isQueueMessage<ToPrimary>(message)) this.#handle(channel, topics, message);
    };
    channel.on('message', onMessage);
    channel.on('disconnect', () => {
      channel.off('message', onMessage);
      for (const topic of topics) this.#drop(channel, topic);
    });
  }

  /** Drops every topic and stops the sweep timer. */
  close(): void {
    this.#store.close();
    this.#interest.clear();
  }

  #handle(channel: IpcChannel, topics: Set<string>, message: ToPrimary): void {
    switch (message.op) {
      case 'publish': {
        let id: number;
        try {
          id = this.#store.append(message.topic, fromWire(message.data), message.id, message.store);
        } catch (error) {
          const { code, message: text } = error as QueueError;
          trySend(channel, { pefQueue: 1, op: 'failed', req: message.req, code, message: text });
          return;
        }
        const relay: ToWorker = { pefQueue: 1, op: 'message', topic: message.topic, id, data: message.data };
        for (const worker of this.#interest.get(message.topic) ?? []) trySend(worker, relay);
        trySend(channel, { pefQueue: 1, op: 'published', req: message.req, id });
        return;
      }
      case 'subscribe': {
        if (!topics.has(message.topic)) {
          topics.add(message.topic);
          let workers = this.#interest.get(message.topic);
          if (workers === undefined) this.#interest.set(message.topic, (workers = new Set()));
          workers.add(channel);
          this.#store.count(message.topic, 1);
        }
        const replay = this.#store.replay(message.topic, message.from);
        const messages = replay.messages.map(({ id, data }): [number, ...WireData] => [id, ...toWire(data)]);
        trySend(channel, { pefQueue: 1, op: 'replay', req: message.req, gap: replay.gap, messages, last: replay.last });
        return;
      }
      case 'unsubscribe':
        if (topics.delete(message.topic)) this.#drop(channel, message.topic);
        return;
    }
  }

  #drop(channel: IpcChannel, topic: string): void {
    const workers = this.#interest.get(topic);
    if (workers === undefined || !workers.delete(channel)) return;
    if (workers.size === 0) this.#interest.delete(topic);
    this.#store.count(topic, -1);
  }
}

/**
 * A worker's broker under node:cluster (what `pef-ws serve --workers N` gives every router):
 * topics live in the primary's {@link ClusterHub}, so a message published in any worker reaches
 * the subscribers of every worker, with one order and one history. Throws when this process has
 * no IPC channel.
 */
export class ClusterBroker implements Broker {
  readonly #channel: IpcChannel;
  readonly #local = new LocalTopics();
  #nextRequest = 1;
  readonly #publishes = new Map<number, { resolve: (id: number) => void; reject: (error: QueueError) => void }>();
  readonly #replays = new Map<number, Subscription>();
  #closed = false;

  /** A broker talking to the primary over `channel` (default: this worker's `process`). */
  constructor(channel: IpcChannel = process) {
    if (channel.send === undefined) throw new Error('ClusterBroker needs an IPC channel: run it in a node:cluster worker');
    this.#channel = channel;
    channel.on('message', this.#onMessage);
    channel.on('disconnect', this.#onDisconnect);
  }

  publish(topic: string, message: string | Buffer, options?: PublishOptions): Promise<number> {
    return new Promise((resolve, reject) => {
      const { id, store } = checkPublish(topic, message, options);
      checkOpen(this.#closed);
      const req = this.#nextRequest++;
      const request: ToPrimary = { pefQueue: 1, op: 'publish', req, topic, data: toWire(message), store };
      if (id !== undefined) request.id = id;
      if (!trySend(this.#channel, request)) throw unavailable();
      this.#publishes.set(req, { resolve, reject });
    });
  }

  subscribe(subscriber: QueueSubscriber, topic: string, lastId?: number): Promise<void> {
    checkSubscribe(topic, lastId, this.#closed);
    const { subscription } = this.#local.add(subscriber, topic, lastId);
    const req = this.#nextRequest++;
    const request: ToPrimary = { pefQueue: 1, op: 'subscribe', req, topic };
    if (lastId !== undefined) request.from = lastId;
    this.#replays.set(req, subscription);
    if (!trySend(this.#channel, request)) {
      this.#replays.delete(req);
      subscriber.queueError(unavailable());
    }
    return subscription.ready;
  }

  unsubscribe(subscriber: QueueSubscriber, topic: string): void {
    const removed = this.#local.remove(subscriber, topic);
    if (removed?.last) trySend(this.#channel, { pefQueue: 1, op: 'unsubscribe', topic });
  }

  unsubscribeAll(subscriber: QueueSubscriber): void {
    for (const topic of this.#local.topicsOf(subscriber)) this.unsubscribe(subscriber, topic);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const topic of [...this.#local.topics()]) trySend(this.#channel, { pefQueue: 1, op: 'unsubscribe', topic });
    this.#local.clear();
    this.#channel.off('message', this.#onMessage);
    this.#failPublishes(new QueueError('WS_ERR_QUEUE_CLOSED', 'the broker is closed'));
  }

  readonly #onMessage = (message: unknown): void => {
    if (!isQueueMessage<ToWorker>(message)) return;
    switch (message.op) {
      case 'message':
        this.#local.deliver(message.topic, new QueueMessage(message.id, fromWire(message.data)));
        return;
      case 'replay': {
        const subscription = this.#replays.get(message.req);
        if (subscription === undefined) return;
        this.#replays.delete(message.req);
        const replay: Replay = {
          gap: message.gap,
          last: message.last,
          messages: message.messages.map(([id, data, binary]) => ({ id, data: fromWire([data, binary]), time: 0 })),
        };
        this.#local.replayed(subscription, replay);
        return;
      }
      case 'published':
      case 'failed': {
        const pending = this.#publishes.get(message.req);
        if (pending === undefined) return;
        this.#publishes.delete(message.req);
        if (message.op === 'published') pending.resolve(message.id);
        else pending.reject(new QueueError(message.code, message.message));
      }
    }
  };

  readonly #onDisconnect = (): void => {
    const error = unavailable();
    this.#failPublishes(error);
    this.#local.errorAll(error);
  };

  #failPublishes(error: QueueError): void {
    for (const { reject } of this.#publishes.values()) reject(error);
    this.#publishes.clear();
  }
}

function unavailable(): QueueError {
  return new QueueError('WS_ERR_QUEUE_UNAVAILABLE', 'the cluster primary cannot be reached');
}

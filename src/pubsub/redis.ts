// The broker across machines: each topic is a Redis stream (a key under the prefix). Publishing is
// one script (XADD, trimming by count and age with XTRIM MINID, PEXPIRE for idle topics, atomic id checks);
// replay is XRANGE; the tail is XREAD BLOCK on a connection of its own (a duplicate of the client
// the user passed in: the `redis` package, node-redis, an optional peer dependency).

import { createHash } from 'node:crypto';
import {
  QueueError,
  QueueMessage,
  checkPublish,
  checkSubscribe,
  idOrderError,
  resolveQueueLimits,
  type Broker,
  type PublishOptions,
  type QueueLimits,
  type QueueSubscriber,
  type ResolvedQueueLimits,
} from './broker.js';
import { LocalTopics, type Subscription } from './local.js';
import { checkOpen } from './memory.js';
import type { Replay, StoredMessage } from './store.js';

/**
 * The part of a node-redis client (`createClient()` of the `redis` package, v4 or v5) this broker
 * uses; pass the client itself.
 */
export interface RedisClientLike {
  /** Sends one command; resolves with its raw reply. */
  sendCommand(args: readonly string[]): Promise<unknown>;
  /** A new client with the same options, not connected yet (the tail's blocking connection). */
  duplicate(): RedisClientLike;
  /** Connects a client made by duplicate(). */
  connect(): Promise<unknown>;
  /** Closes a client at once (the duplicate, when the broker closes). */
  destroy(): unknown;
  /** True while connected and ready for commands. */
  readonly isReady: boolean;
  /** node-redis's events: 'ready' (connected, again after a reconnect) and 'error'. */
  on(event: 'ready' | 'error', listener: (...args: unknown[]) => void): unknown;
  /** Removes a listener added with on(). */
  off(event: 'ready' | 'error', listener: (...args: unknown[]) => void): unknown;
}

/** Options of a RedisBroker: the bounds of each topic's stream and how long a publish waits. */
export interface RedisBrokerOptions extends QueueLimits {
  /** Each topic is the stream at this prefix + the topic. Default `'pef:queue:'`. */
  prefix?: string;
  /** While Redis is unreachable, a publish waits this many ms for the reconnect, then fails with WS_ERR_QUEUE_UNAVAILABLE. Default 5,000. */
  publishTimeout?: number;
}

// A message is a stream entry `<id>-0` with fields d (data, base64 when binary), b ('1': binary),
// t (publish time, ms, Redis's clock). A `store: false` message takes `<last id>-<n>` (n > 0): it
// keeps its place in the order without taking an id, and replay skips it.
const LIB = `
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$') return tonumber(ms), tonumber(seq) end
local function fmt(n) return string.format('%.0f', n) end
local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local function info(key)
  local last, seq, deleted, lastId = 0, 0, 0, '0-0'
  if redis.call('EXISTS', key) == 1 then
    local fields = redis.call('XINFO', 'STREAM', key)
    for i = 1, #fields, 2 do
      if fields[i] == 'last-generated-id' then lastId = fields[i + 1]; last, seq = parse(lastId)
      elseif fields[i] == 'max-deleted-entry-id' then deleted = parse(fields[i + 1]) end
    end
  end
  return last, seq, deleted, lastId
end
-- Drops the front of the stream up to the entry \`last\`, and records it as the largest id deleted
-- (Redis's trimming does not; XSETID MAXDELETEDID does): replay knows history fell short.
local function drop(key, last)
  local ms, seq = parse(last)
  redis.call('XTRIM', key, 'MINID', fmt(ms) .. '-' .. fmt(seq + 1))
  local _, _, _, lastId = info(key)
  redis.call('XSETID', key, lastId, 'MAXDELETEDID', last)
end
-- Keeps at most \`size\` entries and none published before \`cutoff\`.
local function bound(key, size, cutoff)
  local over = redis.call('XLEN', key) - size
  if over > 0 then
    local head = redis.call('XRANGE', key, '-', '+', 'COUNT', over)
    drop(key, head[#head][1])
  end
  while true do
    local head = redis.call('XRANGE', key, '-', '+', 'COUNT', 64)
    local old = nil
    for i = 1, #head do
      local f, young = head[i][2], false
      for j = 1, #f, 2 do if f[j] == 't' and tonumber(f[j + 1]) >= cutoff then young = true end end
      if young then break end
      old = head[i][1]
    end
    if old ~= nil then drop(key, old) end
    if old == nil or old ~= head[#head][1] then return end
  end
end
`;

// KEYS[1] stream; ARGV: id ('' = assign), store ('1'/'0'), data, binary, historySize, historyAge, topicIdleTimeout.
const PUBLISH = `${LIB}
local key = KEYS[1]
local last, seq = info(key)
local time = now()
local id, entry
if ARGV[2] == '1' then
  if ARGV[1] == '' then id = last + 1 else id = tonumber(ARGV[1]) end
  if id <= last then return redis.error_reply('PEFORDER ' .. fmt(last)) end
  entry = fmt(id) .. '-0'
else
  id = 0
  entry = fmt(last) .. '-' .. fmt(seq + 1)
end
redis.call('XADD', key, entry, 'd', ARGV[3], 'b', ARGV[4], 't', time)
bound(key, tonumber(ARGV[5]), time - tonumber(ARGV[6]))
redis.call('PEXPIRE', key, ARGV[7])
return id
`;

// KEYS[1] stream; ARGV: from ('' = none), historySize, historyAge, topicIdleTimeout.
// Returns { last id, gap (-1: none), last entry id, id1, d1, b1, id2, ... } (stored entries only).
const REPLAY = `${LIB}
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  bound(key, tonumber(ARGV[2]), now() - tonumber(ARGV[3]))
  redis.call('PEXPIRE', key, ARGV[4])
end
local last, seq, deleted, lastId = info(key)
local out = { last, -1, lastId }
if ARGV[1] == '' then return out end
local from = tonumber(ARGV[1])
local gap = deleted > from or from > last
local start = fmt(from + 1) .. '-0'
if gap then start = '-' end
for _, e in ipairs(redis.call('XRANGE', key, start, '+')) do
  local ms, s = parse(e[1])
  if s == 0 then
    local f = e[2]
    local d, b = '', '0'
    for j = 1, #f, 2 do if f[j] == 'd' then d = f[j + 1] elseif f[j] == 'b' then b = f[j + 1] end end
    if gap and out[2] == -1 then out[2] = ms end
    out[#out + 1] = ms; out[#out + 1] = d; out[#out + 1] = b
  end
end
if gap and out[2] == -1 then out[2] = last + 1 end
return out
`;

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');
const SCRIPTS = { publish: { text: PUBLISH, sha: sha1(PUBLISH) }, replay: { text: REPLAY, sha: sha1(REPLAY) } };

/** How long the tail blocks in one XREAD, ms: a topic subscribed meanwhile joins within this at worst. */
const BLOCK_MS = 2000;

function decode(data: string, binary: string): string | Buffer {
  return binary === '1' ? Buffer.from(data, 'base64') : data;
}

function unavailable(cause?: unknown): QueueError {
  return new QueueError('WS_ERR_QUEUE_UNAVAILABLE', 'Redis cannot be reached', cause === undefined ? undefined : { cause });
}

/**
 * Topics on Redis Streams, shared by every process and machine using the same Redis and prefix.
 * Takes a connected node-redis client (`createClient({ url })` of the `redis` package, then
 * `await client.connect()`; attach your own 'error' listener to it) and opens one more connection
 * (its duplicate) for the blocking tail. While Redis is down, connections stay open, each
 * subscriber's onQueueError runs once, publishes wait up to `publishTimeout`, and when Redis is
 * back every subscription resumes from the last id it delivered.
 */
export class RedisBroker implements Broker {
  readonly #client: RedisClientLike;
  readonly #reader: RedisClientLike;
  readonly #limits: ResolvedQueueLimits;
  readonly #prefix: string;
  readonly #publishTimeout: number;
  readonly #local = new LocalTopics();
  /** Topic -> the last stream entry id the tail read (or the replay saw) for it. */
  readonly #cursors = new Map<string, string>();
  #readerId: string | null = null;
  #reading: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #outage = false;
  #refreshed = 0;
  #closed = false;

  /** A broker on `client` (connected). RangeError for a bad bound. */
  constructor(client: RedisClientLike, options: RedisBrokerOptions = {}) {
    const { prefix = 'pef:queue:', publishTimeout = 5000, ...limits } = options;
    this.#limits = resolveQueueLimits(limits);
    if (!Number.isSafeInteger(publishTimeout) || publishTimeout < 0) throw new RangeError(`publishTimeout must be a number of ms, not ${String(publishTimeout)}`);
    this.#client = client;
    this.#prefix = prefix;
    this.#publishTimeout = publishTimeout;
    this.#reader = client.duplicate();
    this.#reader.on('error', this.#onReaderError);
  }

  async publish(topic: string, message: string | Buffer, options?: PublishOptions): Promise<number> {
    const { id, store } = checkPublish(topic, message, options);
    checkOpen(this.#closed);
    if (!(await this.#ready(this.#client, this.#publishTimeout))) throw unavailable();
    const data = typeof message === 'string' ? message : message.toString('base64');
    const { historySize, historyAge, topicIdleTimeout } = this.#limits;
    try {
      const args = [id === undefined ? '' : String(id), store ? '1' : '0', data, typeof message === 'string' ? '0' : '1'];
      return Number(await this.#eval('publish', topic, [...args, String(historySize), String(historyAge), String(topicIdleTimeout)]));
    } catch (error) {
      const order = /PEFORDER (\d+)/.exec(String((error as Error).message));
      if (order !== null) throw idOrderError(topic, id!, Number(order[1]));
      throw unavailable(error);
    }
  }

  subscribe(subscriber: QueueSubscriber, topic: string, lastId?: number): Promise<void> {
    checkSubscribe(topic, lastId, this.#closed);
    const { subscription } = this.#local.add(subscriber, topic, lastId);
    void this.#replay(subscription);
    return subscription.ready;
  }

  unsubscribe(subscriber: QueueSubscriber, topic: string): void {
    if (this.#local.remove(subscriber, topic)?.last) this.#cursors.delete(topic);
  }

  unsubscribeAll(subscriber: QueueSubscriber): void {
    for (const topic of this.#local.topicsOf(subscriber)) this.unsubscribe(subscriber, topic);
  }

  /** Stops the tail and closes its connection; the client passed in stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#local.clear();
    this.#cursors.clear();
    this.#wake?.();
    this.#reader.off('error', this.#onReaderError);
    this.#reader.on('error', () => {}); // a late socket error of the closing duplicate goes nowhere
    try {
      this.#reader.destroy();
    } catch {
      // never connected
    }
    await this.#reading?.catch(() => {});
  }

  /** Fetches a subscription's replay (again after an outage, until it succeeds) and delivers it. */
  async #replay(subscription: Subscription): Promise<void> {
    for (;;) {
      if (this.#closed || !this.#local.isCurrent(subscription)) return;
      try {
        await this.#ready(this.#client, Infinity);
        const replay = await this.#fetchReplay(subscription.topic, subscription.from);
        if (!this.#local.isCurrent(subscription)) return;
        if (!this.#cursors.has(subscription.topic)) this.#cursors.set(subscription.topic, replay.cursor);
        this.#local.replayed(subscription, replay);
        this.#startReading();
        return;
      } catch (error) {
        if (this.#closed) return;
        subscription.subscriber.queueError(unavailable(error));
        await this.#ready(this.#client, Infinity);
      }
    }
  }

  async #fetchReplay(topic: string, from: number | undefined): Promise<Replay & { cursor: string }> {
    const { historySize, historyAge, topicIdleTimeout } = this.#limits;
    const args = [from === undefined ? '' : String(from), String(historySize), String(historyAge), String(topicIdleTimeout)];
    const reply = (await this.#eval('replay', topic, args)) as unknown[];
    const messages: StoredMessage[] = [];
    for (let i = 3; i < reply.length; i += 3) messages.push({ id: Number(reply[i]), data: decode(String(reply[i + 1]), String(reply[i + 2])), time: 0 });
    const gap = Number(reply[1]);
    return { last: Number(reply[0]), gap: gap === -1 ? null : gap, cursor: String(reply[2]), messages };
  }

  /** EVALSHA, or EVAL when Redis does not have the script (first use, or after a restart). */
  async #eval(name: keyof typeof SCRIPTS, topic: string, args: string[]): Promise<unknown> {
    const script = SCRIPTS[name];
    const key = this.#prefix + topic;
    try {
      return await this.#client.sendCommand(['EVALSHA', script.sha, '1', key, ...args]);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return await this.#client.sendCommand(['EVAL', script.text, '1', key, ...args]);
    }
  }

  /** Resolves true once `client` is ready, false when `timeout` ms pass first (or the broker closes). */
  #ready(client: RedisClientLike, timeout: number): Promise<boolean> {
    if (client.isReady) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        client.off('ready', onReady);
        if (timer !== undefined) clearTimeout(timer);
        resolve(ready);
      };
      const onReady = (): void => done(true);
      client.on('ready', onReady);
      const timer = Number.isFinite(timeout) ? setTimeout(() => done(false), timeout) : undefined;
    });
  }

  readonly #onReaderError = (): void => {
    // Reported through the failing XREAD; node-redis reconnects by itself.
  };

  /** Starts the tail, or makes a running one pick up a new topic (CLIENT UNBLOCK ends its XREAD early). */
  #startReading(): void {
    if (this.#wake !== null) {
      this.#wake();
    } else if (this.#readerId !== null) {
      this.#client.sendCommand(['CLIENT', 'UNBLOCK', this.#readerId]).catch(() => {});
    }
    this.#reading ??= this.#read().finally(() => (this.#reading = null));
  }

  /** The tail: XREAD BLOCK on every subscribed topic from its cursor, delivering in stream order. */
  async #read(): Promise<void> {
    const reader = this.#reader;
    reader.connect().catch(() => {}); // node-redis retries by itself; 'ready' tells when it is up
    while (!this.#closed) {
      if (this.#cursors.size === 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = null;
        continue;
      }
      if (!reader.isReady) {
        await this.#ready(reader, Infinity);
        continue;
      }
      try {
        if (this.#outage) await this.#resume();
        this.#readerId ??= String(await reader.sendCommand(['CLIENT', 'ID']));
        const topics = [...this.#cursors.keys()];
        const reply = (await reader.sendCommand([
          'XREAD', 'BLOCK', String(BLOCK_MS), 'STREAMS',
          ...topics.map((topic) => this.#prefix + topic),
          ...topics.map((topic) => this.#cursors.get(topic)!),
        ])) as [string, [string, string[]][]][] | null;
        for (const [key, entries] of reply ?? []) this.#deliver(key.slice(this.#prefix.length), entries);
        this.#refresh();
      } catch (error) {
        if (this.#closed) return;
        this.#readerId = null;
        if (!this.#outage) {
          this.#outage = true;
          this.#local.errorAll(unavailable(error));
        }
        // Not a lost connection (a key of another type, say): try again after a pause, not in a loop.
        if (reader.isReady) await new Promise((resolve) => setTimeout(resolve, BLOCK_MS));
        await this.#ready(reader, Infinity);
      }
    }
  }

  #deliver(topic: string, entries: [string, string[]][]): void {
    if (!this.#cursors.has(topic)) return; // unsubscribed meanwhile
    for (const [entryId, fields] of entries) {
      this.#cursors.set(topic, entryId);
      let data = '';
      let binary = '0';
      for (let i = 0; i < fields.length; i += 2) {
        if (fields[i] === 'd') data = fields[i + 1]!;
        else if (fields[i] === 'b') binary = fields[i + 1]!;
      }
      const dash = entryId.indexOf('-');
      const stored = entryId.slice(dash + 1) === '0';
      this.#local.deliver(topic, new QueueMessage(stored ? Number(entryId.slice(0, dash)) : 0, decode(data, binary)));
    }
  }

  /**
   * Back after an outage: each topic's tail goes on from its cursor, unless Redis no longer has
   * what follows it (trimmed, or the stream began anew after a restart without persistence): then
   * its subscribers get onQueueGap and what Redis has.
   */
  async #resume(): Promise<void> {
    for (const [topic, cursor] of [...this.#cursors]) {
      const replay = await this.#fetchReplay(topic, Number(cursor.slice(0, cursor.indexOf('-'))));
      if (replay.gap === null || !this.#cursors.has(topic)) continue;
      this.#cursors.set(topic, replay.cursor);
      this.#local.gap(topic, replay.gap, replay.messages);
    }
    this.#outage = false;
  }

  /** Subscribed topics are not idle: their expiry moves on a quarter of topicIdleTimeout at a time. */
  #refresh(): void {
    const now = Date.now();
    if (now - this.#refreshed < this.#limits.topicIdleTimeout / 4) return;
    this.#refreshed = now;
    for (const topic of this.#cursors.keys()) {
      this.#client.sendCommand(['PEXPIRE', this.#prefix + topic, String(this.#limits.topicIdleTimeout)]).catch(() => {});
    }
  }
}

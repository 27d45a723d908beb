// One suite, run against each broker (as crossws runs one suite against every adapter): ordering,
// replay from a last id, the gap when history is gone, store: false, publisher ids, unsubscribe,
// subscriptions dropped with their connection, typed errors. The cluster broker talks to a real
// ClusterHub in a child process over a real IPC channel; the Redis broker to a real redis-server.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { QueueError, type Broker, type QueueLimits } from '../../src/pubsub/broker.js';
import { ClusterBroker } from '../../src/pubsub/cluster.js';
import { MemoryBroker } from '../../src/pubsub/memory.js';
import { RedisBroker } from '../../src/pubsub/redis.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';
import { clockPast, Recorder } from './recorder.js';

interface Backend {
  name: string;
  skip: false | string;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** A broker with these limits on a backend of its own (no topic shared with other tests). */
  open(limits?: QueueLimits): Promise<Broker>;
}

let topicCount = 0;
const fresh = (): string => `topic-${process.pid}-${++topicCount}`;

const expectCode = (code: string) => (error: unknown) => error instanceof QueueError && error.code === code;

function brokerSuite(backend: Backend): void {
  describe(`${backend.name}`, { skip: backend.skip }, () => {
    const opened: Broker[] = [];
    const open = async (limits?: QueueLimits): Promise<Broker> => {
      const broker = await backend.open(limits);
      opened.push(broker);
      return broker;
    };
    if (backend.setup) before(() => backend.setup!());
    after(async () => {
      for (const broker of opened) await broker.close();
      await backend.teardown?.();
    });

    test('every subscriber gets every message once, in id order, the same object for all', async () => {
      const broker = await open();
      const topic = fresh();
      const a = new Recorder();
      const b = new Recorder();
      await broker.subscribe(a, topic);
      await broker.subscribe(b, topic);
      const ids: number[] = [];
      for (let i = 1; i <= 50; i++) ids.push(await broker.publish(topic, `m${i}`));
      assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => i + 1));
      const expected = ids.map((id) => [topic, id, `m${id}`]);
      assert.deepEqual(await a.until(50), expected);
      assert.deepEqual(await b.until(50), expected);
      // One QueueMessage per publish in a process: framed once for every local subscriber.
      assert.ok(a.objects.every((message, i) => message === b.objects[i]));
    });

    test('a binary message arrives as a Buffer with the same bytes', async () => {
      const broker = await open();
      const topic = fresh();
      const a = new Recorder();
      await broker.subscribe(a, topic);
      await broker.publish(topic, Buffer.from([0, 1, 0xff, 0x80]));
      await broker.publish(topic, '');
      assert.deepEqual(await a.until(2), [
        [topic, 1, Buffer.from([0, 1, 0xff, 0x80])],
        [topic, 2, ''],
      ]);
    });

    test('subscribe with a last id replays the stored messages after it, then goes on live', async () => {
      const broker = await open();
      const topic = fresh();
      for (let i = 1; i <= 5; i++) await broker.publish(topic, `m${i}`);
      const a = new Recorder();
      await broker.subscribe(a, topic, 2);
      assert.deepEqual(a.events, [
        [topic, 3, 'm3'],
        [topic, 4, 'm4'],
        [topic, 5, 'm5'],
      ]);
      await broker.publish(topic, 'm6');
      assert.deepEqual((await a.until(4))[3], [topic, 6, 'm6']);
      // lastId 0: everything stored.
      const b = new Recorder();
      await broker.subscribe(b, topic, 0);
      assert.deepEqual(b.events.map((event) => event[1]), [1, 2, 3, 4, 5, 6]);
    });

    test('subscribe without a last id gets only what is published afterwards', async () => {
      const broker = await open();
      const topic = fresh();
      await broker.publish(topic, 'before');
      const a = new Recorder();
      await broker.subscribe(a, topic);
      await broker.publish(topic, 'after');
      assert.deepEqual(await a.until(1), [[topic, 2, 'after']]);
    });

    test('when history no longer reaches back to the last id, onQueueGap comes first with the oldest id kept', async () => {
      const broker = await open({ historySize: 3 });
      const topic = fresh();
      for (let i = 1; i <= 6; i++) await broker.publish(topic, `m${i}`);
      const a = new Recorder();
      await broker.subscribe(a, topic, 1);
      assert.deepEqual(a.events, [
        ['gap', topic, 4],
        [topic, 4, 'm4'],
        [topic, 5, 'm5'],
        [topic, 6, 'm6'],
      ]);
      // History that still reaches back: no gap.
      const b = new Recorder();
      await broker.subscribe(b, topic, 3);
      assert.deepEqual(b.events.map((event) => event[1]), [4, 5, 6]);
      // A last id beyond the topic's ids (it was dropped and began anew): a gap too.
      const c = new Recorder();
      await broker.subscribe(c, topic, 99);
      assert.deepEqual(c.events, [['gap', topic, 4], [topic, 4, 'm4'], [topic, 5, 'm5'], [topic, 6, 'm6']]);
    });

    test('messages older than historyAge are dropped: replay reports the gap', async () => {
      const broker = await open({ historyAge: 50 });
      const topic = fresh();
      await broker.publish(topic, 'old1');
      await broker.publish(topic, 'old2');
      await clockPast(Date.now() + 80);
      const a = new Recorder();
      await broker.subscribe(a, topic, 0);
      assert.deepEqual(a.events, [['gap', topic, 3]]);
      assert.equal(await broker.publish(topic, 'new'), 3);
      assert.deepEqual(await a.until(2), [['gap', topic, 3], [topic, 3, 'new']]);
    });

    test('a topic without subscribers idle past topicIdleTimeout is dropped with its ids', async () => {
      const broker = await open({ topicIdleTimeout: 50 });
      const topic = fresh();
      await broker.publish(topic, 'a');
      await broker.publish(topic, 'b');
      await clockPast(Date.now() + 80);
      assert.equal(await broker.publish(topic, 'anew'), 1);
      const a = new Recorder();
      await broker.subscribe(a, topic, 2);
      assert.deepEqual(a.events, [['gap', topic, 1], [topic, 1, 'anew']]);
    });

    test('store: false delivers in order with id 0, stores nothing and returns 0', async () => {
      const broker = await open();
      const topic = fresh();
      const a = new Recorder();
      await broker.subscribe(a, topic);
      assert.equal(await broker.publish(topic, 'one'), 1);
      assert.equal(await broker.publish(topic, 'fleeting', { store: false }), 0);
      assert.equal(await broker.publish(topic, 'two'), 2);
      assert.deepEqual(await a.until(3), [
        [topic, 1, 'one'],
        [topic, 0, 'fleeting'],
        [topic, 2, 'two'],
      ]);
      const b = new Recorder();
      await broker.subscribe(b, topic, 0);
      assert.deepEqual(b.events, [
        [topic, 1, 'one'],
        [topic, 2, 'two'],
      ]);
    });

    test('publisher ids must increase: a smaller or equal one is WS_ERR_QUEUE_ID_ORDER', async () => {
      const broker = await open();
      const topic = fresh();
      assert.equal(await broker.publish(topic, 'row 10', { id: 10 }), 10);
      await assert.rejects(broker.publish(topic, 'again', { id: 10 }), expectCode('WS_ERR_QUEUE_ID_ORDER'));
      await assert.rejects(broker.publish(topic, 'older', { id: 7 }), (error: unknown) => {
        assert.ok(error instanceof QueueError);
        assert.equal(error.code, 'WS_ERR_QUEUE_ID_ORDER');
        assert.equal(error.message, `id 7 on topic ${JSON.stringify(topic)} is not greater than its last id 10`);
        return true;
      });
      assert.equal(await broker.publish(topic, 'next'), 11);
      assert.equal(await broker.publish(topic, 'row 40', { id: 40 }), 40);
      const a = new Recorder();
      await broker.subscribe(a, topic, 10);
      assert.deepEqual(a.events, [
        [topic, 11, 'next'],
        [topic, 40, 'row 40'],
      ]);
    });

    test('bad arguments are typed errors with stable codes', async () => {
      const broker = await open();
      const a = new Recorder();
      await assert.rejects(broker.publish('', 'x'), expectCode('WS_ERR_QUEUE_TOPIC'));
      await assert.rejects(broker.publish('t'.repeat(257), 'x'), expectCode('WS_ERR_QUEUE_TOPIC'));
      await assert.rejects(broker.publish('t', 42 as unknown as string), expectCode('WS_ERR_QUEUE_MESSAGE'));
      await assert.rejects(broker.publish('t', 'x', { id: 0 }), expectCode('WS_ERR_QUEUE_ID'));
      await assert.rejects(broker.publish('t', 'x', { id: 1.5 }), expectCode('WS_ERR_QUEUE_ID'));
      await assert.rejects(broker.publish('t', 'x', { id: 3, store: false }), expectCode('WS_ERR_QUEUE_ID'));
      assert.throws(() => broker.subscribe(a, '', 1), expectCode('WS_ERR_QUEUE_TOPIC'));
      assert.throws(() => broker.subscribe(a, 't', -1), expectCode('WS_ERR_QUEUE_ID'));
      assert.equal(a.events.length, 0);
    });

    test('after unsubscribe nothing of the topic arrives; other subscribers go on', async () => {
      const broker = await open();
      const topic = fresh();
      const a = new Recorder();
      const b = new Recorder();
      await broker.subscribe(a, topic);
      await broker.subscribe(b, topic);
      await broker.publish(topic, 'both');
      await a.until(1);
      broker.unsubscribe(a, topic);
      broker.unsubscribe(a, topic); // twice: nothing happens
      await broker.publish(topic, 'only b');
      assert.deepEqual(await b.until(2), [
        [topic, 1, 'both'],
        [topic, 2, 'only b'],
      ]);
      assert.deepEqual(a.events, [[topic, 1, 'both']]);
    });

    test('unsubscribeAll (the connection closed) ends every topic of that subscriber', async () => {
      const broker = await open();
      const [t1, t2] = [fresh(), fresh()];
      const gone = new Recorder();
      const stays = new Recorder();
      await broker.subscribe(gone, t1);
      await broker.subscribe(gone, t2);
      await broker.subscribe(stays, t1);
      await broker.subscribe(stays, t2);
      broker.unsubscribeAll(gone);
      await broker.publish(t1, 'x');
      await broker.publish(t2, 'y');
      assert.deepEqual(
        (await stays.until(2)).map((event) => event[2]).sort(),
        ['x', 'y'],
      );
      assert.deepEqual(gone.events, []);
    });

    test('subscribing again replaces the subscription: its replay, no duplicates', async () => {
      const broker = await open();
      const topic = fresh();
      const a = new Recorder();
      await broker.subscribe(a, topic);
      await broker.publish(topic, 'm1');
      await broker.publish(topic, 'm2');
      await a.until(2);
      await broker.subscribe(a, topic, 1);
      await broker.publish(topic, 'm3');
      assert.deepEqual((await a.until(4)).map((event) => event[1]), [1, 2, 2, 3]);
    });

    test('a closed broker refuses with WS_ERR_QUEUE_CLOSED', async () => {
      const broker = await backend.open();
      await broker.close();
      await assert.rejects(broker.publish('t', 'x'), expectCode('WS_ERR_QUEUE_CLOSED'));
      assert.throws(() => broker.subscribe(new Recorder(), 't'), expectCode('WS_ERR_QUEUE_CLOSED'));
    });
  });
}

brokerSuite({ name: 'MemoryBroker', skip: false, open: async (limits) => new MemoryBroker(limits) });

const hubs: ChildProcess[] = [];
brokerSuite({
  name: 'ClusterBroker (through a ClusterHub over IPC)',
  skip: false,
  async open(limits = {}) {
    const hub = fork(fileURLToPath(new URL('fixtures/hub.ts', import.meta.url)), [JSON.stringify(limits)], {
      execArgv: ['--import', 'tsx'],
      stdio: 'inherit',
    });
    hubs.push(hub);
    await once(hub, 'spawn');
    return new ClusterBroker(hub);
  },
  async teardown() {
    for (const hub of hubs) {
      if (hub.connected) {
        const exited = once(hub, 'exit');
        hub.disconnect();
        await exited;
      }
    }
  },
});

let redis: RedisServer | null = null;
const clients: ReturnType<typeof createClient>[] = [];
let prefixes = 0;
brokerSuite({
  name: 'RedisBroker (a real redis-server)',
  skip: skipWithoutRedis,
  async setup() {
    redis = await startRedis();
  },
  async open(limits = {}) {
    const client = createClient({ url: redis!.url });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return new RedisBroker(client, { ...limits, prefix: `suite${++prefixes}:` });
  },
  async teardown() {
    for (const client of clients) client.destroy();
    await redis?.dispose();
  },
});

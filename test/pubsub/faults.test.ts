// Faults, each counted message by message: a worker SIGKILLed in the middle of a publishing run
// (`pef-ws serve --workers 2`), Redis restarted in the middle of a stream with its append-only file
// on (two `pef-ws serve --redis` processes standing for two machines). What is promised: every
// stored message reaches every subscriber once, in id order, and a reconnect with the last id
// gets exactly what was missed. (The subscriber that never reads is in handler.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonClient, serve } from '../helpers/serve.js';
import { skipWithoutRedis, startRedis } from '../helpers/redis.js';

const handlers = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', 'queue');

/** Opens clients until one is served by a process other than those in `not` (or one in `on`). */
async function clientOn(url: string, accept: (pid: number) => boolean): Promise<{ client: JsonClient; pid: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const client = await JsonClient.open(url);
    await client.until((inbox) => inbox.length > 0);
    const pid = client.inbox.shift()!['pid'] as number;
    if (accept(pid)) return { client, pid };
    client.ws.close();
  }
  throw new Error('no worker took the connection that was wanted');
}

async function subscribed(client: JsonClient, topic: string, lastId?: number): Promise<void> {
  client.send(lastId === undefined ? { sub: topic } : { sub: topic, lastId });
  await client.until((inbox) => inbox.some((m) => m['subscribed'] === topic));
}

/** Ids 1..n, once each, in order. */
const oneToN = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

test('a worker SIGKILLed mid-publish loses nothing that reached the primary: every subscriber gets 1..M once, in order', async (t) => {
  const server = await serve([handlers, '--workers', '2']);
  t.after(() => server.stop());
  const { client: publisher, pid: victim } = await clientOn(`${server.ws}/wsQueue`, () => true);
  const { client: far } = await clientOn(`${server.ws}/wsQueue`, (pid) => pid !== victim);
  const { client: near } = await clientOn(`${server.ws}/wsQueue`, (pid) => pid === victim);
  await subscribed(far, 'stream');
  await subscribed(near, 'stream');
  const total = 400;
  for (let i = 1; i <= total; i++) publisher.send({ pub: 'stream', msg: `m${i}` });
  await far.until(() => far.queued().length >= 50);
  process.kill(victim, 'SIGKILL');
  await Promise.all([publisher.closed, near.closed]);
  const acked = publisher.inbox.filter((m) => 'published' in m).map((m) => m['published'] as number);
  const nearBefore = near.queued();

  // The primary forks a replacement; a new publisher marks the end of the run.
  const { client: closer } = await clientOn(`${server.ws}/wsQueue`, () => true);
  closer.send({ pub: 'stream', msg: 'end' });
  await far.until(() => far.queued().some((m) => m.msg === 'end'));
  const seen = far.queued();
  const stored = seen.length - 1; // M: what the primary stored before the kill
  assert.deepEqual(seen.map((m) => m.id), oneToN(stored + 1));
  assert.deepEqual(seen.slice(0, stored).map((m) => m.msg), oneToN(stored).map((i) => `m${i}`));
  assert.ok(acked.every((id) => id <= stored), 'an acknowledged publish is never lost');
  assert.ok(stored >= acked.length);

  // The subscriber that was on the killed worker comes back with its last id: exactly the rest.
  const lastId = nearBefore.length === 0 ? 0 : nearBefore[nearBefore.length - 1]!.id;
  const { client: back } = await clientOn(`${server.ws}/wsQueue`, () => true);
  await subscribed(back, 'stream', lastId);
  const caughtUp = [...nearBefore, ...back.queued()];
  assert.deepEqual(caughtUp.map((m) => m.id), oneToN(stored + 1));
  t.diagnostic(`published ${total}, acknowledged ${acked.length}, stored ${stored} before the SIGKILL; ` +
    `the far subscriber got ${seen.length}, the near one ${nearBefore.length} before and ${back.queued().length} after reconnecting`);
  for (const client of [far, closer, back]) client.ws.close();
});

test('Redis restarted mid-stream (append-only file on): subscribers on two servers get 1..N once, in order, and hear of the outage', { skip: skipWithoutRedis }, async (t) => {
  const redis = await startRedis({ appendonly: true });
  t.after(() => redis.dispose());
  const one = await serve([handlers, '--redis', redis.url]);
  t.after(() => one.stop());
  const two = await serve([handlers, '--redis', redis.url]);
  t.after(() => two.stop());
  const subscribers = [await JsonClient.open(`${one.ws}/wsQueue`), await JsonClient.open(`${two.ws}/wsQueue`)];
  for (const subscriber of subscribers) await subscribed(subscriber, 'stream');
  const publisher = await JsonClient.open(`${one.ws}/wsQueue`);
  const total = 120;
  let restarted = false;
  let retries = 0;
  for (let i = 1; i <= total; i++) {
    // Publisher-supplied ids make a retry safe: a message that was stored before its answer was
    // lost comes back as WS_ERR_QUEUE_ID_ORDER, never as a second copy.
    for (;;) {
      // The answer to this publish, not merely the next message (under load the {pid} sent on open
      // could arrive after the first publish went out, and was taken for its answer).
      const from = publisher.inbox.length;
      const isAnswer = (m: Record<string, unknown>): boolean => 'published' in m || 'failed' in m;
      publisher.send({ pub: 'stream', msg: `m${i}`, id: i });
      await publisher.until((inbox) => inbox.slice(from).some(isAnswer));
      const answer = publisher.inbox.slice(from).find(isAnswer)!;
      if (answer['published'] === i || answer['failed'] === 'WS_ERR_QUEUE_ID_ORDER') break;
      assert.equal(answer['failed'], 'WS_ERR_QUEUE_UNAVAILABLE');
      retries++;
    }
    if (i === 40 && !restarted) {
      restarted = true;
      for (const subscriber of subscribers) await subscriber.until(() => subscriber.queued().length >= 40);
      await redis.stop();
      await redis.start();
    }
  }
  for (const subscriber of subscribers) {
    await subscriber.until(() => subscriber.queued().length >= total);
    assert.deepEqual(subscriber.queued().map((m) => m.id), oneToN(total));
    assert.deepEqual(subscriber.queued().map((m) => m.msg), oneToN(total).map((i) => `m${i}`));
    assert.ok(subscriber.inbox.some((m) => m['queueError'] === 'WS_ERR_QUEUE_UNAVAILABLE'), 'onQueueError ran');
    assert.equal(subscriber.ws.readyState, subscriber.ws.OPEN);
  }
  t.diagnostic(`published ${total} (${retries} retried after WS_ERR_QUEUE_UNAVAILABLE); each of 2 subscribers on 2 servers got ${total}, once each, in order`);
  for (const client of [...subscribers, publisher]) client.ws.close();
});

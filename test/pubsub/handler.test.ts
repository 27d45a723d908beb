// The queue as a handler sees it: subscribe/publish/unsubscribe, onQueue (by default the message
// sent on, framed once: exact bytes), onQueueGap, onQueueError, hook failures, subscriptions ending
// with the connection, router.publish from plain HTTP, permessage-deflate, and a subscriber that
// never reads (counted: the others get every message, the slow one is failed by its own policy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { Socket } from 'node:net';
import WebSocket from 'ws';
import { MemoryBroker, QueueError, WebSocketHandler, WebSocketRouter } from '../../src/index.js';
import { RawClient } from '../helpers/net.js';
import { closed, listen, memoryLogger } from '../framework/helpers.js';

/**
 * A `ws` client that keeps every message from the start: a replay can arrive in the same TCP
 * segment as the 101 response, before code awaiting 'open' could attach a listener.
 */
interface Client extends WebSocket {
  inbox: (string | Buffer)[];
}

function connect(url: string, options?: WebSocket.ClientOptions): Promise<Client> {
  const ws = new WebSocket(url, options) as Client;
  ws.inbox = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    ws.inbox.push(isBinary ? data : data.toString('utf8'));
    ws.emit('kept');
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** The next `count` messages the client keeps, in order. */
async function messages(ws: Client, count: number): Promise<{ data: string | Buffer }[]> {
  while (ws.inbox.length < count) await new Promise((resolve) => ws.once('kept', resolve));
  return ws.inbox.splice(0, count).map((data) => ({ data }));
}

async function nextMessage(ws: Client): Promise<{ data: string | Buffer }> {
  return (await messages(ws, 1))[0]!;
}

/** What the sockets of this process are given to write while `run` runs and its writes are flushed. */
async function writtenDuring(run: () => Promise<void>): Promise<unknown[]> {
  const written: unknown[] = [];
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    written.push(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  try {
    await run();
    await new Promise((resolve) => setImmediate(resolve)); // past the flush microtask
  } finally {
    Socket.prototype.write = write;
  }
  return written;
}

/** Sends on every message as is (the base onQueue); the topic and last id come from the query. */
class Forward extends WebSocketHandler {
  override async onOpen(): Promise<void> {
    const query = new URL(this.request.url!, 'http://x').searchParams;
    const last = query.get('last');
    await this.subscribe(query.get('topic') ?? 'news', last === null ? undefined : Number(last));
    this.send('ready');
  }
}

test('by default a queue message goes to the client as it is: the same frame bytes for every subscriber', async (t) => {
  const router = new WebSocketRouter({ compression: false }).route('/q', Forward);
  const listening = await listen(router);
  t.after(() => listening.close());
  const clients = await Promise.all([1, 2, 3].map(() => RawClient.open(listening.port, { path: '/q' })));
  for (const { client } of clients) assert.deepEqual(await client.readBytes(7), Buffer.from('81057265616479', 'hex')); // 'ready'
  assert.equal(await router.publish('news', 'hello'), 1);
  assert.equal(await router.publish('news', Buffer.from([1, 2, 3])), 2);
  for (const { client } of clients) {
    assert.deepEqual(await client.readBytes(7), Buffer.from('810568656c6c6f', 'hex'));
    assert.deepEqual(await client.readBytes(5), Buffer.from('8203010203', 'hex'));
    client.socket.destroy();
  }
});

// Regression: every connection carries a trace object (null only when nothing watches), and
// sendPrepared took its mere presence for "traced", so every subscriber framed the message anew.
test('a queue message is framed once: the very same Buffer is written to every subscriber\'s socket', async (t) => {
  const router = new WebSocketRouter({ compression: false }).route('/q', Forward);
  const listening = await listen(router);
  t.after(() => listening.close());
  const clients = await Promise.all([1, 2, 3].map(() => RawClient.open(listening.port, { path: '/q' })));
  for (const { client } of clients) assert.deepEqual(await client.readBytes(7), Buffer.from('81057265616479', 'hex')); // 'ready'
  const written = await writtenDuring(async () => assert.equal(await router.publish('news', 'hello'), 1));
  assert.equal(written.length, 3);
  assert.deepEqual(written[0], Buffer.from('810568656c6c6f', 'hex'));
  assert.ok(written[1] === written[0] && written[2] === written[0], 'one frame, the same object for all three');
  for (const { client } of clients) {
    assert.deepEqual(await client.readBytes(7), Buffer.from('810568656c6c6f', 'hex'));
    client.socket.destroy();
  }
});

test('a burst of queue messages is joined once: every subscriber\'s socket is given the same Buffer holding all its frames', async (t) => {
  const router = new WebSocketRouter({ compression: false }).route('/q', Forward);
  const listening = await listen(router);
  t.after(() => listening.close());
  const clients = await Promise.all([1, 2, 3].map(() => RawClient.open(listening.port, { path: '/q' })));
  for (const { client } of clients) assert.deepEqual(await client.readBytes(7), Buffer.from('81057265616479', 'hex')); // 'ready'
  const written = await writtenDuring(async () => {
    // Three publishes in one turn: one flush per socket, after all three were delivered.
    const published = [router.publish('news', 'one'), router.publish('news', 'two'), router.publish('news', Buffer.from([3]))];
    assert.deepEqual(await Promise.all(published), [1, 2, 3]);
  });
  const burst = Buffer.from('81036f6e65' + '810374776f' + '820103', 'hex');
  assert.equal(written.length, 3);
  assert.deepEqual(written[0], burst);
  assert.ok(written[1] === written[0] && written[2] === written[0], 'one joined Buffer, the same object for all three');
  for (const { client } of clients) {
    assert.deepEqual(await client.readBytes(burst.length), burst);
    client.socket.destroy();
  }
});

/** Subscribed to news and sport. */
class Both extends WebSocketHandler {
  override async onOpen(): Promise<void> {
    await this.subscribe('news');
    await this.subscribe('sport');
    this.send('ready');
  }
}

// A burst is one list followed by every connection that gets the same frames; connections whose
// frames part from it the same way (another topic's message in between) follow a branch together.
test('a burst across topics: every subscriber gets its own frames in order, and those with the same frames share one Buffer', async (t) => {
  const router = new WebSocketRouter({ compression: false }).route('/q', Forward).route('/both', Both);
  const listening = await listen(router);
  t.after(() => listening.close());
  const both = await RawClient.open(listening.port, { path: '/both' });
  const [news1, news2] = await Promise.all([1, 2].map(() => RawClient.open(listening.port, { path: '/q?topic=news' })));
  const sport = await RawClient.open(listening.port, { path: '/q?topic=sport' });
  const all = [both, news1!, news2!, sport];
  for (const { client } of all) assert.deepEqual(await client.readBytes(7), Buffer.from('81057265616479', 'hex')); // 'ready'
  const written = await writtenDuring(async () => {
    const published = [router.publish('news', 'one'), router.publish('sport', 'two'), router.publish('news', 'three'), router.publish('news', 'four')];
    assert.deepEqual(await Promise.all(published), [1, 1, 2, 3]);
  });
  const frame = (text: string): string => `81${text.length.toString(16).padStart(2, '0')}${Buffer.from(text).toString('hex')}`;
  const expected = [
    Buffer.from(frame('one') + frame('two') + frame('three') + frame('four'), 'hex'),
    Buffer.from(frame('one') + frame('three') + frame('four'), 'hex'),
    Buffer.from(frame('one') + frame('three') + frame('four'), 'hex'),
    Buffer.from(frame('two'), 'hex'),
  ];
  assert.equal(written.length, 4, 'one write per socket');
  for (let i = 0; i < all.length; i++) assert.deepEqual(await all[i]!.client.readBytes(expected[i]!.length), expected[i]);
  assert.deepEqual(
    written.map((chunk) => (chunk as Buffer).toString('hex')).sort(),
    expected.map((bytes) => bytes.toString('hex')).sort(),
  );
  const newsOnly = written.filter((chunk) => (chunk as Buffer).equals(expected[1]!));
  assert.equal(newsOnly.length, 2);
  assert.ok(newsOnly[0] === newsOnly[1], 'the two news-only subscribers are given the same Buffer');
  for (const { client } of all) client.socket.destroy();
});

test('subscribe with a last id replays what the client missed, in order, then live', async (t) => {
  const router = new WebSocketRouter().route('/q', Forward);
  const listening = await listen(router);
  t.after(() => listening.close());
  for (const text of ['a', 'b', 'c', 'd']) await router.publish('news', text);
  const ws = await connect(`${listening.base}/q?last=2`);
  assert.deepEqual((await messages(ws, 3)).map((m) => m.data), ['c', 'd', 'ready']);
  const got = nextMessage(ws);
  await router.publish('news', 'e');
  assert.equal((await got).data, 'e');
  ws.close();
});

class Recording extends WebSocketHandler {
  static seen: string[] = [];
  override async onOpen(): Promise<void> {
    await this.subscribe('room', Number(new URL(this.request.url!, 'http://x').searchParams.get('last') ?? 0));
    this.send('subscribed');
  }
  override onQueue(topic: string, message: string | Buffer, id: number): void {
    Recording.seen.push(`${topic}#${id}:${String(message)}`);
    this.send(JSON.stringify([topic, id, message]));
  }
  override onQueueGap(topic: string, firstId: number): void {
    this.send(JSON.stringify(['gap', topic, firstId]));
  }
  override async onMessage(message: string | Buffer): Promise<void> {
    if (message === 'leave') return this.unsubscribe('room');
    const id = await this.publish('room', message, { id: Number(String(message).split(' ')[0]) });
    this.send(`published ${id}`);
  }
}

test('onQueue gets topic, message and id; onQueueGap comes first when history is gone; publish resolves with the id', async (t) => {
  const logger = memoryLogger();
  const router = new WebSocketRouter({ broker: new MemoryBroker({ historySize: 2 }), logger }).route('/r', Recording);
  const listening = await listen(router);
  t.after(() => listening.close());
  for (const id of [10, 20, 30]) await router.publish('room', `row ${id}`, { id });
  const ws = await connect(`${listening.base}/r?last=5`); // 10 was dropped: history no longer reaches back to 5
  assert.deepEqual((await messages(ws, 4)).map((m) => m.data), [
    '["gap","room",20]',
    '["room",20,"row 20"]',
    '["room",30,"row 30"]',
    'subscribed',
  ]);
  ws.send('40 hello');
  assert.deepEqual((await messages(ws, 2)).map((m) => m.data), ['["room",40,"40 hello"]', 'published 40']);
  // A smaller id is refused with its code: onMessage rejects, onError gets it, 1011.
  const end = closed(ws);
  ws.send('35 late');
  assert.equal((await end).code, 1011);
  assert.equal((logger.calls[0]![1] as QueueError).code, 'WS_ERR_QUEUE_ID_ORDER');
});

test('after unsubscribe and after close, onQueue is not called again', async (t) => {
  Recording.seen = [];
  const router = new WebSocketRouter().route('/r', Recording);
  const listening = await listen(router);
  t.after(() => listening.close());
  const a = await connect(`${listening.base}/r`);
  const b = await connect(`${listening.base}/r`);
  await Promise.all([nextMessage(a), nextMessage(b)]);
  await router.publish('room', 'one');
  await Promise.all([nextMessage(a), nextMessage(b)]);
  a.send('leave');
  const bClosed = closed(b);
  b.close();
  await bClosed;
  // A round trip through a: its 'leave' was handled before this publish.
  a.send('100 ping');
  await messages(a, 1);
  await router.publish('room', 'two');
  assert.deepEqual(Recording.seen, ['room#1:one', 'room#1:one']);
  a.close();
});

class Throws extends WebSocketHandler {
  static errors: Error[] = [];
  override async onOpen(): Promise<void> {
    await this.subscribe('boom');
    this.send('ready');
  }
  override onQueue(): void {
    throw new TypeError('onQueue failed');
  }
  override onError(error: Error): void {
    Throws.errors.push(error);
  }
}

test('an onQueue that throws reaches onError with what it threw, and the connection closes with 1011; others are untouched', async (t) => {
  const router = new WebSocketRouter().route('/t', Throws).route('/q', Forward);
  const listening = await listen(router);
  t.after(() => listening.close());
  const failing = await connect(`${listening.base}/t`);
  const other = await connect(`${listening.base}/q?topic=boom`);
  await Promise.all([nextMessage(failing), nextMessage(other)]);
  const end = closed(failing);
  const otherGot = nextMessage(other);
  await router.publish('boom', 'x');
  assert.equal((await end).code, 1011);
  assert.equal((await otherGot).data, 'x');
  assert.equal(Throws.errors.length, 1);
  assert.equal(Throws.errors[0]!.message, 'onQueue failed');
  other.close();
});

class Careless extends WebSocketHandler {
  override onMessage(message: string | Buffer): void {
    void this.publish('', String(message)); // never awaited, and it fails
    this.send('still here');
  }
}

test('a failed publish nobody awaits is no unhandled rejection; awaited, it is a QueueError with its code', async (t) => {
  const router = new WebSocketRouter().route('/c', Careless);
  const listening = await listen(router);
  t.after(() => listening.close());
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const ws = await connect(`${listening.base}/c`);
  ws.send('x');
  assert.equal((await nextMessage(ws)).data, 'still here');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
  await assert.rejects(router.publish('', 'x'), (error: unknown) => error instanceof QueueError && error.code === 'WS_ERR_QUEUE_TOPIC');
  ws.close();
});

test('router.publish from a plain HTTP route reaches WebSocket subscribers', async (t) => {
  const router = new WebSocketRouter().route('/q', Forward);
  const server = createServer((req, res) => {
    void router.publish('news', `posted to ${req.url}`).then((id) => res.end(String(id)));
  });
  const listening = await listen(router, server);
  t.after(() => listening.close());
  const ws = await connect(`${listening.base}/q`);
  await nextMessage(ws);
  const got = nextMessage(ws);
  const body = await new Promise<string>((resolve) => {
    request({ port: listening.port, host: '127.0.0.1', path: '/notify' }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve(text));
    }).end();
  });
  assert.equal(body, '1');
  assert.equal((await got).data, 'posted to /notify');
  ws.close();
});

test('subscribers with permessage-deflate get the message through their own compressor, others the shared frame', async (t) => {
  const router = new WebSocketRouter().route('/q', Forward);
  const listening = await listen(router);
  t.after(() => listening.close());
  const deflating = await connect(`${listening.base}/q`, { perMessageDeflate: true });
  const plain = await connect(`${listening.base}/q`, { perMessageDeflate: false });
  await Promise.all([nextMessage(deflating), nextMessage(plain)]);
  assert.match(deflating.extensions, /permessage-deflate/);
  assert.equal(plain.extensions, '');
  const text = 'compressible '.repeat(100);
  const got = Promise.all([nextMessage(deflating), nextMessage(plain)]);
  await router.publish('news', text);
  assert.deepEqual((await got).map((m) => m.data), [text, text]);
  deflating.close();
  plain.close();
});

class Counting extends WebSocketHandler {
  static closedWith: number[] = [];
  static errors: string[] = [];
  override async onOpen(): Promise<void> {
    await this.subscribe('flood');
    this.send('ready');
  }
  override onError(error: Error): void {
    Counting.errors.push((error as QueueError).code);
  }
  override onClose(code: number): void {
    Counting.closedWith.push(code);
  }
}

test('a subscriber that never reads is failed by its slowConsumer policy; a reading one gets every message, in order', async (t) => {
  const maxBufferedAmount = 256 * 1024;
  const router = new WebSocketRouter({ maxBufferedAmount, compression: false, logger: memoryLogger() }).route('/f', Counting);
  const listening = await listen(router);
  t.after(() => listening.close());
  const { client: stalled } = await RawClient.open(listening.port, { path: '/f' });
  await stalled.readBytes(7); // 'ready'
  stalled.socket.pause(); // from here on it reads nothing
  const reader = await connect(`${listening.base}/f`);
  await nextMessage(reader);
  const payload = 'x'.repeat(16 * 1024);
  let received = 0;
  let inOrder = true;
  reader.on('kept', () => {
    const data = String(reader.inbox.shift());
    received++;
    if (data.slice(0, 8) !== String(received).padStart(8, '0')) inOrder = false;
  });
  // Publish in batches, each once the reader has caught up, until the stalled one is failed: how
  // many that takes depends on kernel buffers, so the test counts instead of assuming.
  let published = 0;
  const guard = Date.now() + 120_000;
  while (Counting.closedWith.length === 0) {
    assert.ok(Date.now() < guard, 'the stalled subscriber was never failed');
    for (let i = 0; i < 16; i++) await router.publish('flood', String(++published).padStart(8, '0') + payload.slice(8));
    while (received < published) await new Promise((resolve) => reader.once('kept', resolve));
  }
  assert.deepEqual(Counting.closedWith, [1008]);
  assert.deepEqual(Counting.errors, ['WS_ERR_SLOW_CONSUMER']);
  assert.equal(received, published);
  assert.ok(inOrder);
  assert.ok(published * payload.length > maxBufferedAmount);
  reader.close();
  stalled.socket.destroy();
});

class Interleaved extends WebSocketHandler {
  override async onOpen(): Promise<void> {
    await this.subscribe('mixed');
    this.send('ready');
  }
  override onMessage(): void {
    // Sends and queue messages (prepared frames, written at the flush) keep the order they were made in.
    this.send('1');
    void this.publish('mixed', '2');
    void this.publish('mixed', '3');
    this.send('4');
    void this.publish('mixed', '5');
  }
}

test('prepared frames and ordinary sends of one turn reach the client in the order they were made', async (t) => {
  const router = new WebSocketRouter({ compression: false }).route('/i', Interleaved);
  const listening = await listen(router);
  t.after(() => listening.close());
  const ws = await connect(`${listening.base}/i`);
  await nextMessage(ws);
  ws.send('go');
  assert.deepEqual((await messages(ws, 5)).map((m) => m.data), ['1', '2', '3', '4', '5']);
  ws.close();
});

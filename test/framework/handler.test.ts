// The handler model against a real server: hook order and argument types, send/close/isDefunct,
// errors in every hook (sync and async) contained to their connection, onClose exactly once,
// and classes that do not extend WebSocketHandler.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { CloseCode, WebSocketHandler, WebSocketRouter, acceptWebSocket, type MessageType } from '../../src/index.js';
import { closed, connect, deferred, listen, memoryLogger, messages, nextMessage, refused } from './helpers.js';

// Every hook error in this file must be caught by the framework: none may escape as an
// unhandled rejection or an uncaught exception.
const escaped: unknown[] = [];
const onEscape = (error: unknown): void => void escaped.push(error);
process.on('unhandledRejection', onEscape);
process.on('uncaughtException', onEscape);
after(() => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
  assert.deepEqual(escaped, []);
});

class Echo extends WebSocketHandler {
  override onMessage(message: string | Buffer, type: MessageType): void {
    this.send(message, type);
  }
}

describe('hooks', () => {
  test('onOpen, then onMessage per message in arrival order with its type, then onClose once', async () => {
    const log: unknown[] = [];
    const done = deferred();
    class Recorder extends WebSocketHandler {
      override onOpen(): void {
        log.push(['open', this.request.url, this.isDefunct(), this.protocol, this.bufferedAmount]);
      }
      override onMessage(message: string | Buffer, type: MessageType): void {
        log.push(['message', message, type]);
      }
      override onClose(code: number, reason: string): void {
        log.push(['close', code, reason]);
        done.resolve();
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsRecorder', Recorder));
    const ws = await connect(`${server.base}/wsRecorder?room=kitchen`);
    ws.send('héllo');
    ws.send(Buffer.from([0x00, 0x01, 0xff]));
    ws.send(''); // PEF dropped empty messages and the text "0": not here
    ws.send('0');
    ws.send(Buffer.alloc(0));
    ws.close(CloseCode.Normal, 'bye');
    await done.promise;
    assert.deepEqual(log, [
      ['open', '/wsRecorder?room=kitchen', false, '', 0],
      ['message', 'héllo', 'text'],
      ['message', Buffer.from([0x00, 0x01, 0xff]), 'binary'],
      ['message', '', 'text'],
      ['message', '0', 'text'],
      ['message', Buffer.alloc(0), 'binary'],
      ['close', 1000, 'bye'],
    ]);
    await server.close();
  });

  test('onDrain follows a send once the outgoing buffer is empty', async () => {
    const log: string[] = [];
    const drained = deferred();
    class Drainer extends WebSocketHandler {
      override onMessage(message: string | Buffer): void {
        log.push(`send ${String(this.send(message))}`);
      }
      override onDrain(): void {
        log.push(`drain ${this.bufferedAmount}`);
        drained.resolve();
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsDrainer', Drainer));
    const ws = await connect(`${server.base}/wsDrainer`);
    const echoed = nextMessage(ws);
    ws.send('ping');
    assert.deepEqual(await echoed, { data: 'ping', isBinary: false });
    await drained.promise;
    assert.deepEqual(log, ['send true', 'drain 0']);
    ws.close();
    await server.close();
  });

  test('onClose runs exactly once when the peer vanishes without a Close, with 1006', async () => {
    const codes: number[] = [];
    const done = deferred();
    class Once extends WebSocketHandler {
      override onClose(code: number): void {
        codes.push(code);
        done.resolve();
        this.close(); // closing again from onClose changes nothing
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsOnce', Once));
    const ws = await connect(`${server.base}/wsOnce`);
    ws.terminate();
    await done.promise;
    await server.close();
    assert.deepEqual(codes, [CloseCode.Abnormal]);
  });

  test('one instance per connection: fields are per-connection state', async () => {
    class Counter extends WebSocketHandler {
      count = 0;
      override onMessage(): void {
        this.send(String(++this.count));
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsCounter', Counter));
    const a = await connect(`${server.base}/wsCounter`);
    const b = await connect(`${server.base}/wsCounter`);
    const fromA = messages(a, 2);
    a.send('x');
    a.send('x');
    assert.deepEqual((await fromA).map((m) => m.data), ['1', '2']);
    const fromB = nextMessage(b);
    b.send('x');
    assert.equal((await fromB).data, '1');
    a.close();
    b.close();
    await server.close();
  });
});

describe('send, close, isDefunct', () => {
  test('send converts between types: a string as binary is its UTF-8 bytes, a UTF-8 Buffer as text is text', async () => {
    class Converter extends WebSocketHandler {
      override onOpen(): void {
        this.send('é', 'binary');
        this.send(Buffer.from('ok', 'utf8'), 'text');
        this.send(new Uint8Array([1, 2]), 'binary');
        this.send('default is text');
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsConverter', Converter));
    const ws = new WebSocket(`${server.base}/wsConverter`);
    const got = await messages(ws, 4);
    assert.deepEqual(got, [
      { data: Buffer.from([0xc3, 0xa9]), isBinary: true },
      { data: 'ok', isBinary: false },
      { data: Buffer.from([1, 2]), isBinary: true },
      { data: 'default is text', isBinary: false },
    ]);
    ws.close();
    await server.close();
  });

  test('send throws TypeError for a Buffer that is not UTF-8 as text, and for an unknown type', async () => {
    const errors: unknown[] = [];
    const done = deferred();
    class Strict extends WebSocketHandler {
      override onOpen(): void {
        for (const attempt of [() => this.send(Buffer.from([0xff]), 'text'), () => this.send('x', 'json' as MessageType)]) {
          try {
            attempt();
          } catch (error) {
            errors.push(error);
          }
        }
        done.resolve();
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsStrict', Strict));
    const ws = await connect(`${server.base}/wsStrict`);
    await done.promise;
    assert.equal(errors.length, 2);
    assert.ok(errors[0] instanceof TypeError);
    assert.equal(errors[0].message, 'a text message must be valid UTF-8');
    assert.ok(errors[1] instanceof TypeError);
    assert.equal(errors[1].message, "unknown message type json: 'text' or 'binary'");
    ws.close();
    await server.close();
  });

  test('after close() the handler is defunct and send does nothing and returns false, as in PEF', async () => {
    const log: unknown[] = [];
    const done = deferred();
    class Closer extends WebSocketHandler {
      override onMessage(): void {
        log.push(['before', this.isDefunct()]);
        this.close(4000, 'done');
        log.push(['after', this.isDefunct(), this.send('late'), this.send('late', 'binary')]);
      }
      override onClose(code: number, reason: string): void {
        log.push(['onClose', code, reason, this.isDefunct(), this.send('later')]);
        done.resolve();
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsCloser', Closer));
    const ws = await connect(`${server.base}/wsCloser`);
    const received: unknown[] = [];
    ws.on('message', (data) => received.push(data));
    const close = closed(ws);
    ws.send('go');
    assert.deepEqual(await close, { code: 4000, reason: 'done' });
    await done.promise;
    assert.deepEqual(log, [
      ['before', false],
      ['after', true, false, false],
      ['onClose', 4000, 'done', true, false],
    ]);
    assert.deepEqual(received, []);
    await server.close();
  });

  test('close() with a code that may not be sent throws RangeError', async () => {
    const errors: unknown[] = [];
    const done = deferred();
    class BadClose extends WebSocketHandler {
      override onOpen(): void {
        try {
          this.close(CloseCode.Abnormal);
        } catch (error) {
          errors.push(error);
        }
        done.resolve();
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsBadClose', BadClose));
    const ws = await connect(`${server.base}/wsBadClose`);
    await done.promise;
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof RangeError);
    assert.equal(errors[0].message, 'close code 1006 may not be sent (RFC 6455 §7.4)');
    ws.close();
    await server.close();
  });

  test('ping sends a Ping the client answers; before binding, a handler is defunct and has no request', async () => {
    const pong = deferred<Buffer>();
    class Pinger extends WebSocketHandler {
      override onOpen(): void {
        this.ping('are you there');
      }
    }
    const unbound = new Pinger();
    assert.equal(unbound.isDefunct(), true);
    assert.equal(unbound.send('x'), false);
    assert.equal(unbound.ping(), false);
    assert.equal(unbound.bufferedAmount, 0);
    assert.equal(unbound.protocol, '');
    assert.throws(() => unbound.request, {
      name: 'Error',
      message: 'this handler is not bound to a connection yet: read this.request from onOpen on',
    });
    assert.throws(() => unbound.send('x', 'json' as MessageType), TypeError);

    const server = await listen(new WebSocketRouter().route('/wsPinger', Pinger));
    const ws = new WebSocket(`${server.base}/wsPinger`);
    ws.once('ping', (data: Buffer) => pong.resolve(data));
    assert.equal((await pong.promise).toString(), 'are you there');
    ws.close();
    await server.close();
  });
});

describe('errors in hooks', () => {
  type Hook = 'onOpen' | 'onMessage' | 'onDrain';

  /** A class whose `hook` throws (or rejects with) `error`, recording what onError and onClose get. */
  function faulty(hook: Hook, error: Error, async: boolean) {
    const seen = { errors: [] as Error[], closes: [] as number[], done: deferred() };
    const fail = async ? () => Promise.reject(error) : () => {
      throw error;
    };
    class Faulty extends WebSocketHandler {
      override onOpen(): void | Promise<void> {
        if (hook === 'onOpen') return fail();
      }
      override onMessage(message: string | Buffer): void | Promise<void> {
        this.send(message);
        if (hook === 'onMessage') return fail();
      }
      override onDrain(): void | Promise<void> {
        if (hook === 'onDrain') return fail();
      }
      override onError(reported: Error): void {
        seen.errors.push(reported);
      }
      override onClose(code: number): void {
        seen.closes.push(code);
        seen.done.resolve();
      }
    }
    return { Faulty, seen };
  }

  for (const hook of ['onOpen', 'onMessage', 'onDrain'] as const) {
    for (const async of [false, true]) {
      test(`${hook} ${async ? 'rejecting' : 'throwing'}: onError gets the error, the connection closes with 1011, others go on`, async () => {
        const error = new Error(`boom in ${hook}`);
        const { Faulty, seen } = faulty(hook, error, async);
        const router = new WebSocketRouter().route('/wsFaulty', Faulty).route('/wsEcho', Echo);
        const server = await listen(router);
        const bystander = await connect(`${server.base}/wsEcho`);

        const ws = new WebSocket(`${server.base}/wsFaulty`);
        const close = closed(ws);
        ws.once('open', () => ws.send('trigger'));
        assert.deepEqual(await close, { code: CloseCode.InternalError, reason: '' });
        await seen.done.promise;
        assert.equal(seen.errors.length, 1);
        assert.equal(seen.errors[0], error);
        assert.deepEqual(seen.closes, [CloseCode.InternalError]);

        const echoed = nextMessage(bystander);
        bystander.send('still here');
        assert.deepEqual(await echoed, { data: 'still here', isBinary: false });
        bystander.close();
        await server.close();
      });
    }
  }

  test('a thrown non-Error reaches onError wrapped in an Error with its text', async () => {
    const done = deferred<Error>();
    class ThrowsString extends WebSocketHandler {
      override onOpen(): void {
        throw 'just a string';
      }
      override onError(error: Error): void {
        done.resolve(error);
      }
    }
    const server = await listen(new WebSocketRouter().route('/wsThrowsString', ThrowsString));
    const ws = new WebSocket(`${server.base}/wsThrowsString`);
    const close = closed(ws);
    const error = await done.promise;
    assert.ok(error instanceof Error);
    assert.equal(error.message, 'just a string');
    assert.equal((await close).code, CloseCode.InternalError);
    await server.close();
  });

  for (const async of [false, true]) {
    test(`onError ${async ? 'rejecting' : 'throwing'} itself is reported once to the logger and goes no further`, async () => {
      const logger = memoryLogger();
      const original = new Error('in onMessage');
      const secondary = new Error('in onError');
      const done = deferred();
      class BadOnError extends WebSocketHandler {
        override onMessage(): void {
          throw original;
        }
        override onError(): void | Promise<void> {
          if (async) return Promise.reject(secondary);
          throw secondary;
        }
        override onClose(): void {
          done.resolve();
        }
      }
      const server = await listen(new WebSocketRouter({ logger }).route('/wsBadOnError', BadOnError));
      const ws = await connect(`${server.base}/wsBadOnError`);
      const close = closed(ws);
      ws.send('trigger');
      assert.equal((await close).code, CloseCode.InternalError);
      await done.promise;
      await server.close();
      assert.deepEqual(logger.calls, [['pef-front-websocket: onError threw', secondary]]);
    });

    test(`onClose ${async ? 'rejecting' : 'throwing'} is reported once to the logger and goes no further`, async () => {
      const logger = memoryLogger();
      const error = new Error('in onClose');
      const reported = deferred();
      const onErrorCalls: Error[] = [];
      class BadOnClose extends WebSocketHandler {
        override onError(e: Error): void {
          onErrorCalls.push(e);
        }
        override onClose(): void | Promise<void> {
          setImmediate(() => reported.resolve());
          if (async) return Promise.reject(error);
          throw error;
        }
      }
      const server = await listen(new WebSocketRouter({ logger }).route('/wsBadOnClose', BadOnClose));
      const ws = await connect(`${server.base}/wsBadOnClose`);
      ws.close();
      await reported.promise;
      await server.close();
      assert.deepEqual(logger.calls, [[`pef-front-websocket: onClose ${async ? 'rejected' : 'threw'}`, error]]);
      assert.deepEqual(onErrorCalls, []);
    });
  }

  test('a class without onError has what its hooks throw logged, but not the peer\'s protocol errors', async () => {
    const logger = memoryLogger();
    const error = new Error('unhandled');
    class NoOnError extends WebSocketHandler {
      override onMessage(message: string | Buffer): void {
        if (message === 'throw') throw error;
      }
    }
    const server = await listen(new WebSocketRouter({ logger }).route('/wsNoOnError', NoOnError));

    // A text frame that is not UTF-8 fails the connection with 1007 (§8.1): the peer's fault, not logged.
    const bad = await connect(`${server.base}/wsNoOnError`);
    const badClose = closed(bad);
    bad.send(Buffer.from([0xff, 0xfe]), { binary: false });
    assert.equal((await badClose).code, CloseCode.InvalidPayload);
    assert.deepEqual(logger.calls, []);

    const ws = await connect(`${server.base}/wsNoOnError`);
    const close = closed(ws);
    ws.send('throw');
    assert.equal((await close).code, CloseCode.InternalError);
    await server.close();
    assert.deepEqual(logger.calls, [
      ['pef-front-websocket: a hook of NoOnError (/wsNoOnError) threw; define onError to handle it', error],
    ]);
  });

  test('a constructor that throws gets the upgrade request a 500 and the error logged', async () => {
    const logger = memoryLogger();
    const error = new Error('no constructor arguments, please');
    class Broken extends WebSocketHandler {
      constructor() {
        super();
        throw error;
      }
    }
    const server = await listen(new WebSocketRouter({ logger }).route('/wsBroken', Broken));
    assert.deepEqual(await refused(`${server.base}/wsBroken`), { status: 500, body: 'the WebSocket handler could not be created\n' });
    await server.close();
    assert.deepEqual(logger.calls, [['pef-front-websocket: new Broken() threw (/wsBroken)', error]]);
  });
});

// A class that does not extend WebSocketHandler, typed through interface merging: the base class
// is put into its prototype chain when it is registered, so `this.send` exists at run time.
class Plain {
  greeting = 'plain';
  onMessage(message: string | Buffer): void {
    this.send(`${this.greeting}: ${String(message)}`);
  }
}
interface Plain extends WebSocketHandler {}

class PlainParent {
  prefix(): string {
    return 'from the parent';
  }
}
class PlainChild extends PlainParent {
  // A hook as an arrow-function field (an own property of the instance) is found too.
  onOpen = (): void => {
    this.send(`${this.prefix()}, ${this.isDefunct() ? 'defunct' : 'open'}`);
  };
}
interface PlainChild extends WebSocketHandler {}

describe('classes that do not extend WebSocketHandler', () => {
  test('get WebSocketHandler put into their prototype chain and work like subclasses', async () => {
    assert.equal(Object.getPrototypeOf(Plain.prototype), Object.prototype);
    const server = await listen(new WebSocketRouter().route('/wsPlain', Plain).route('/wsPlainChild', PlainChild));
    assert.equal(Object.getPrototypeOf(Plain.prototype), WebSocketHandler.prototype);
    assert.ok(new Plain() instanceof WebSocketHandler);
    // At the root of the chain, as PEF unshifted @ISA: the parent keeps its methods.
    assert.equal(Object.getPrototypeOf(PlainParent.prototype), WebSocketHandler.prototype);
    assert.ok(new PlainChild() instanceof PlainParent);

    const ws = await connect(`${server.base}/wsPlain`);
    const echoed = nextMessage(ws);
    ws.send('hi');
    assert.deepEqual(await echoed, { data: 'plain: hi', isBinary: false });

    const child = new WebSocket(`${server.base}/wsPlainChild`);
    assert.deepEqual(await nextMessage(child), { data: 'from the parent, open', isBinary: false });
    ws.close();
    child.close();
    await server.close();
  });

  test('a class whose chain ends in a built-in is refused instead of changing the built-in', () => {
    class Registry extends Map<string, string> {}
    assert.throws(() => new WebSocketRouter().route('/wsRegistry', Registry), {
      name: 'TypeError',
      message: 'the class extends the built-in Map; extend WebSocketHandler instead, or wrap the built-in in a field',
    });
    assert.equal(Object.getPrototypeOf(Map.prototype), Object.prototype);
  });
});

describe('acceptWebSocket with a handler instance', () => {
  test('the lowest level takes one handler instance for one socket, bound so that this.send works', async () => {
    const server = createServer();
    const handlers: Echo[] = [];
    server.on('upgrade', (request, socket, head) => {
      const handler = new Echo();
      handlers.push(handler);
      acceptWebSocket(request, socket, head, handler);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const ws = await connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/anywhere`);
    const echoed = nextMessage(ws);
    ws.send('direct');
    assert.deepEqual(await echoed, { data: 'direct', isBinary: false });
    assert.equal(handlers[0]!.request.url, '/anywhere');
    const close = closed(ws);
    ws.close();
    await close;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

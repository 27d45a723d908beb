// Errors on a real socket: hooks that throw or reject (onError gets what they threw, the connection
// closes with 1011 and an empty reason, other connections go on), onError and onClose that throw
// (logged once), and socket errors (onError once, then onClose(1006), no unhandled 'error').

import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import type { MessageType, Logger } from '../../src/node/types.js';
import { Harness, tick, type Session } from './harness.js';
import { RawClient } from '../helpers/net.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** The Close a server sends when a hook failed: 1011 and no reason (details stay on the server). */
const CLOSE_1011 = hex('88 02 03 f3');

// A rejection anywhere in these tests that nobody caught fails the file.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
before(() => process.on('unhandledRejection', onUnhandled));
after(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, []);
});

class Boom extends Error {
  override readonly name = 'Boom';
}

/** Echoes, except that 'throw' throws, 'reject' rejects and 'throw string' throws a string. */
function faulty(session: Session) {
  return {
    onMessage(message: string | Buffer, type: MessageType): void | Promise<void> {
      if (message === 'throw') throw new Boom('thrown by onMessage');
      if (message === 'reject') return Promise.reject(new Boom('rejected by onMessage'));
      if (message === 'throw string') throw 'a string'; // eslint-disable-line no-throw-literal
      session.ws.send(message, type);
    },
  };
}

function recordingLogger(): Logger & { logged: unknown[][] } {
  const logged: unknown[][] = [];
  return { logged, error: (...args: unknown[]) => void logged.push(args) };
}

describe('hooks that throw or reject', () => {
  for (const [what, message] of [
    ['throws', 'thrown by onMessage'],
    ['rejects', 'rejected by onMessage'],
  ] as const) {
    test(`onMessage that ${what}: onError gets the error, Close 1011 with an empty reason, other connections keep working`, async () => {
      const harness = await Harness.start({ hooks: faulty });
      const { client: other } = await RawClient.open(harness.port);
      const otherSession = await harness.session(0);
      const { client } = await RawClient.open(harness.port);
      const session = await harness.session(1);

      client.sendFrame(Opcode.Text, what === 'throws' ? 'throw' : 'reject');
      assert.deepEqual(await client.readBytes(4), CLOSE_1011);
      await client.expectEnd();
      assert.deepEqual(await session.closed(), [CloseCode.InternalError, '']);
      const errors = session.callsOf('onError');
      assert.equal(errors.length, 1);
      const [error] = errors[0]! as [Error];
      assert.ok(error instanceof Boom);
      assert.equal(error.message, message);
      assert.deepEqual(session.sequence, ['onOpen', 'onMessage', 'onError', 'onClose']);

      other.sendFrame(Opcode.Text, 'still here');
      assert.deepEqual((await other.readFrame()).payload.toString(), 'still here');
      assert.equal(otherSession.callsOf('onError').length, 0);
      other.destroy();
      await otherSession.closed();
      await harness.close();
    });
  }

  test('a hook that throws a non-Error gives onError an Error with its text', async () => {
    const harness = await Harness.start({ hooks: faulty });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    client.sendFrame(Opcode.Text, 'throw string');
    assert.deepEqual(await client.readBytes(4), CLOSE_1011);
    const [error] = (await session.waitFor('onError')) as [Error];
    assert.ok(error instanceof Error);
    assert.equal(error.message, 'a string');
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [CloseCode.InternalError, '']);
    await harness.close();
  });

  test('onOpen that throws: onError gets the error and the connection closes with 1011', async () => {
    const harness = await Harness.start({
      hooks: () => ({
        onOpen() {
          throw new Boom('thrown by onOpen');
        },
      }),
    });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    assert.deepEqual(await client.readBytes(4), CLOSE_1011);
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [CloseCode.InternalError, '']);
    const [error] = session.callsOf('onError')[0]! as [Error];
    assert.equal(error.message, 'thrown by onOpen');
    assert.deepEqual(session.sequence, ['onOpen', 'onError', 'onClose']);
    await harness.close();
  });

  test('onError that throws is logged once through the logger option and goes no further', async () => {
    const logger = recordingLogger();
    const thrown = new Boom('thrown by onError');
    const harness = await Harness.start({
      options: { logger },
      hooks: () => ({
        onError() {
          throw thrown;
        },
      }),
    });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    client.sendFrame(Opcode.Text, 'x', { mask: null }); // unmasked: fails with 1002
    const close = await client.readFrame();
    assert.equal(close.payload.readUInt16BE(0), CloseCode.ProtocolError);
    await client.expectEnd();
    assert.equal((await session.closed())[0], CloseCode.ProtocolError);
    await tick();
    assert.deepEqual(logger.logged, [['pef-front-websocket: onError threw', thrown]]);
    await harness.close();
  });

  test('onClose that throws is logged once through the logger option', async () => {
    const logger = recordingLogger();
    const thrown = new Boom('thrown by onClose');
    const harness = await Harness.start({
      options: { logger },
      hooks: () => ({
        onClose() {
          throw thrown;
        },
      }),
    });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    client.destroy();
    await session.closed();
    await tick();
    assert.deepEqual(logger.logged, [['pef-front-websocket: onClose threw', thrown]]);
    assert.equal(session.callsOf('onError').length, 0);
    await harness.close();
  });

  test('onClose that rejects is logged once through the logger option', async () => {
    const logger = recordingLogger();
    const thrown = new Boom('rejected by onClose');
    const harness = await Harness.start({ options: { logger }, hooks: () => ({ onClose: () => Promise.reject(thrown) }) });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    client.destroy();
    await session.closed();
    await tick();
    assert.deepEqual(logger.logged, [['pef-front-websocket: onClose rejected', thrown]]);
    await harness.close();
  });
});

describe('socket errors', () => {
  test('a reset by the peer (ECONNRESET) reaches onError once, then onClose(1006)', async () => {
    const harness = await Harness.start();
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    client.socket.resetAndDestroy();
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    await tick();
    const errors = session.callsOf('onError');
    assert.equal(errors.length, 1);
    const [error] = errors[0]! as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
    assert.deepEqual(session.sequence, ['onOpen', 'onError', 'onClose']);
    await harness.close();
  });

  test('writes to a peer that reset the connection reach onError once, then onClose(1006)', async () => {
    const harness = await Harness.start();
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    client.socket.resetAndDestroy();
    let closed = false;
    void session.closed().then(() => (closed = true));
    while (!closed) {
      session.ws.send(Buffer.alloc(1024), 'binary');
      await tick();
    }
    await tick();
    const errors = session.callsOf('onError');
    assert.equal(errors.length, 1);
    const [error] = errors[0]! as [NodeJS.ErrnoException];
    assert.ok(error.code === 'ECONNRESET' || error.code === 'EPIPE', String(error.code));
    assert.deepEqual(session.callsOf('onClose'), [[CloseCode.Abnormal, '']]);
    assert.equal(session.ws.send('after'), false);
    await harness.close();
  });
});

describe('regressions in socket error handling', () => {
  // Root cause: the socket 'error' listener skipped errors only after a completed closing
  // handshake, so a peer resetting a connection the server had failed (a common way for a
  // client to react to a Close it does not like) gave onError a second time, as ECONNRESET.
  test('a reset after the server failed the connection gave a second onError', async () => {
    const harness = await Harness.start();
    const { client } = await RawClient.open(harness.port, { allowHalfOpen: true });
    const session = await harness.session();
    client.sendFrame(Opcode.Text, 'x', { mask: null });
    const close = await client.readFrame();
    assert.equal(close.payload.readUInt16BE(0), CloseCode.ProtocolError);
    await client.readToEnd(); // the server's FIN; our side stays open
    client.socket.resetAndDestroy();
    assert.equal((await session.closed())[0], CloseCode.ProtocolError);
    await tick();
    const errors = session.callsOf('onError');
    assert.equal(errors.length, 1);
    assert.equal((errors[0]![0] as { code: string }).code, 'WS_ERR_UNMASKED_FRAME');
    await harness.close();
  });

  // Root cause: a hook's promise settling after the connection closed went to onError like any
  // other, so onError ran after onClose, which is documented as the last hook of a connection.
  test('a hook promise rejecting after onClose called onError after onClose; now it is logged', async () => {
    const logger = recordingLogger();
    const late = new Boom('rejected after the end');
    let rejectLater: (error: Error) => void = () => {};
    const harness = await Harness.start({
      options: { logger },
      hooks: () => ({ onMessage: () => new Promise<void>((_resolve, reject) => (rejectLater = reject)) }),
    });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    client.sendFrame(Opcode.Text, 'work');
    await session.waitFor('onMessage');
    client.destroy();
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    rejectLater(late);
    await tick();
    assert.deepEqual(session.sequence, ['onOpen', 'onMessage', 'onClose']);
    assert.deepEqual(logger.logged, [['pef-front-websocket: onMessage failed after onClose', late]]);
    await harness.close();
  });

  // Root cause: a hook failing after a socket error still failed the connection with 1011, so
  // onClose reported 1011 for a connection that dropped (1006) and no Close could go on the wire.
  test('onError that throws on a socket error turned onClose 1006 into 1011', async () => {
    const logger = recordingLogger();
    const thrown = new Boom('thrown by onError');
    const harness = await Harness.start({
      options: { logger },
      hooks: () => ({
        onError() {
          throw thrown;
        },
      }),
    });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    client.socket.resetAndDestroy();
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    assert.deepEqual(logger.logged, [['pef-front-websocket: onError threw', thrown]]);
    await harness.close();
  });
});

// Frames on a real socket, byte for byte: messages and fragmentation (RFC 6455 §5.4), pings between
// fragments (§5.5.2), the closing handshake (§5.5.1, §7) and failing the connection (§7.1.7).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import type { MessageType } from '../../src/node/types.js';
import { Harness, tick, type Session } from './harness.js';
import { RawClient, clientFrame, closePayload, upgradeRequest } from '../helpers/net.js';
import { once } from 'node:events';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** An echo server: every message goes back with its own type. */
function echo(options: Parameters<typeof Harness.start>[0] = {}): Promise<Harness> {
  return Harness.start({
    ...options,
    hooks: (session) => ({ onMessage: (message: string | Buffer, type: MessageType) => void session.ws.send(message, type) }),
  });
}

async function openEcho(): Promise<{ harness: Harness; client: RawClient; session: Session }> {
  const harness = await echo();
  const { client } = await RawClient.open(harness.port);
  const session = await harness.session();
  await session.waitFor('onOpen');
  return { harness, client, session };
}

describe('5.6 data frames', () => {
  test('a masked text frame is echoed as an unmasked text frame', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Text, 'Hello');
    assert.deepEqual((await client.readFrame()).bytes, hex('81 05 48 65 6c 6c 6f'));
    client.sendFrame(Opcode.Binary, hex('00 ff 10'));
    assert.deepEqual((await client.readFrame()).bytes, hex('82 03 00 ff 10'));
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('empty messages and the text "0" are messages like any other', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Text, '');
    client.sendFrame(Opcode.Text, '0');
    client.sendFrame(Opcode.Binary, Buffer.alloc(0));
    assert.deepEqual(await client.readBytes(7), hex('81 00 81 01 30 82 00'));
    assert.deepEqual(session.callsOf('onMessage'), [
      ['', 'text'],
      ['0', 'text'],
      [Buffer.alloc(0), 'binary'],
    ]);
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('a 16-bit and a 64-bit length are echoed with the same length encoding', async () => {
    const { harness, client, session } = await openEcho();
    const medium = Buffer.alloc(300, 0x61);
    const large = Buffer.alloc(70_000, 0x62);
    client.sendFrame(Opcode.Binary, medium);
    const m = await client.readFrame();
    assert.deepEqual(m.bytes.subarray(0, 4), hex('82 7e 01 2c'));
    assert.deepEqual(m.payload, medium);
    client.sendFrame(Opcode.Binary, large);
    const l = await client.readFrame();
    assert.deepEqual(l.bytes.subarray(0, 10), hex('82 7f 00 00 00 00 00 01 11 70'));
    assert.deepEqual(l.payload, large);
    client.destroy();
    await session.closed();
    await harness.close();
  });
});

describe('5.4 fragmentation', () => {
  test('a message in three fragments, written one byte at a time, arrives whole', async () => {
    const { harness, client, session } = await openEcho();
    const bytes = Buffer.concat([
      clientFrame(Opcode.Text, 'Hel', { fin: false }),
      clientFrame(Opcode.Continuation, '', { fin: false }),
      clientFrame(Opcode.Continuation, 'lo'),
    ]);
    for (const byte of bytes) {
      client.write(Buffer.of(byte));
      await tick();
    }
    assert.deepEqual((await client.readFrame()).bytes, hex('81 05 48 65 6c 6c 6f'));
    assert.deepEqual(session.callsOf('onMessage'), [['Hello', 'text']]);
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('pings between fragments are answered at once by pongs with the same payload', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Binary, hex('01 02'), { fin: false });
    client.sendFrame(Opcode.Ping, 'p1');
    assert.deepEqual((await client.readFrame()).bytes, hex('8a 02 70 31'));
    client.sendFrame(Opcode.Continuation, hex('03'), { fin: false });
    client.sendFrame(Opcode.Ping, Buffer.alloc(0));
    assert.deepEqual((await client.readFrame()).bytes, hex('8a 00'));
    // An unsolicited pong needs no answer and does not disturb the message.
    client.sendFrame(Opcode.Pong, 'unasked');
    client.sendFrame(Opcode.Continuation, hex('04'));
    assert.deepEqual((await client.readFrame()).bytes, hex('82 04 01 02 03 04'));
    assert.deepEqual(session.callsOf('onMessage'), [[hex('01 02 03 04'), 'binary']]);
    client.destroy();
    await session.closed();
    await harness.close();
  });

  test('ping() sends a ping whose pong is taken without a hook call', async () => {
    const { harness, client, session } = await openEcho();
    assert.equal(session.ws.ping('hb'), true);
    assert.deepEqual((await client.readFrame()).bytes, hex('89 02 68 62'));
    client.sendFrame(Opcode.Pong, 'hb');
    client.sendFrame(Opcode.Text, 'after');
    assert.deepEqual((await client.readFrame()).bytes, hex('81 05 61 66 74 65 72'));
    assert.deepEqual(session.callsOf('onMessage'), [['after', 'text']]);
    assert.equal(session.callsOf('onError').length, 0);
    client.destroy();
    await session.closed();
    await harness.close();
  });
});

describe('5.5.1 and 7 closing', () => {
  test('a Close 4000 "bye" is answered with exactly 88 02 0f a0, TCP is ended, and onClose gets 4000 "bye"', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Close, closePayload(4000, 'bye'));
    assert.deepEqual(await client.readBytes(4), hex('88 02 0f a0'));
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [4000, 'bye']);
    await client.waitClosed();
    await tick();
    assert.equal(session.callsOf('onClose').length, 1);
    assert.equal(session.callsOf('onError').length, 0);
    assert.equal(session.ws.isDefunct(), true);
    await harness.close();
  });

  test('an empty Close is answered with an empty Close and onClose gets 1005 and ""', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Close);
    assert.deepEqual(await client.readBytes(2), hex('88 00'));
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [CloseCode.NoStatusReceived, '']);
    await harness.close();
  });

  test('nothing sent after the Close is processed', async () => {
    const { harness, client, session } = await openEcho();
    client.write(
      Buffer.concat([
        clientFrame(Opcode.Close, closePayload(1000)),
        clientFrame(Opcode.Text, 'late'),
      ]),
    );
    assert.deepEqual(await client.readBytes(4), hex('88 02 03 e8'));
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [1000, '']);
    assert.equal(session.callsOf('onMessage').length, 0);
    await harness.close();
  });

  test('close(code, reason) sends the Close, and the peer answering it ends the connection with that code', async () => {
    const { harness, client, session } = await openEcho();
    session.ws.close(4001, 'x');
    assert.deepEqual(await client.readBytes(5), hex('88 03 0f a1 78'));
    assert.equal(session.ws.isDefunct(), true);
    client.sendFrame(Opcode.Close, closePayload(4001, 'x'));
    await client.expectEnd();
    // The code reported is the peer's, from its Close.
    assert.deepEqual(await session.closed(), [4001, 'x']);
    await harness.close();
  });

  test('close() with a code that may not be sent throws RangeError and sends nothing', async () => {
    const { harness, client, session } = await openEcho();
    assert.throws(() => session.ws.close(CloseCode.Abnormal), {
      name: 'RangeError',
      message: 'close code 1006 may not be sent (RFC 6455 §7.4)',
    });
    assert.equal(session.ws.isDefunct(), false);
    client.sendFrame(Opcode.Text, 'still open');
    assert.deepEqual((await client.readFrame()).payload.toString(), 'still open');
    client.destroy();
    await session.closed();
    await harness.close();
  });
});

describe('7.1.7 failing the connection', () => {
  test('fail(error) sends a Close with its code and message, reports it to onError and ends with that code', async () => {
    const { harness, client, session } = await openEcho();
    const error = new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'not allowed here');
    session.ws.fail(error);
    assert.deepEqual(await client.readBytes(20), Buffer.concat([hex('88 12 03 f0'), Buffer.from('not allowed here')]));
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [CloseCode.PolicyViolation, 'not allowed here']);
    assert.equal(session.callsOf('onError').length, 1);
    assert.equal(session.callsOf('onError')[0]![0], error);
    // Once closed, fail() and close() do nothing.
    session.ws.fail(new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'again'));
    session.ws.close();
    await tick();
    assert.equal(session.callsOf('onError').length, 1);
    assert.equal(session.callsOf('onClose').length, 1);
    await harness.close();
  });

  test('an unmasked frame fails the connection with exactly a Close 1002 frame, then TCP end', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Text, 'Hello', { mask: null });
    const reason = 'MASK must be set on frames from a client';
    assert.deepEqual(await client.readBytes(44), Buffer.concat([hex('88 2a 03 ea'), Buffer.from(reason)]));
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [CloseCode.ProtocolError, reason]);
    const errors = session.callsOf('onError');
    assert.equal(errors.length, 1);
    const [error] = errors[0]!;
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, 'WS_ERR_UNMASKED_FRAME');
    assert.equal(error.closeCode, CloseCode.ProtocolError);
    assert.equal(error.message, reason);
    assert.deepEqual(session.sequence, ['onOpen', 'onError', 'onClose']);
    await harness.close();
  });

  test('a message over maxPayload fails with 1009 from its header, before its payload arrives', async () => {
    const harness = await Harness.start({ options: { maxPayload: 10 } });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    // Only the header of an 11-byte frame: the limit is checked before any payload is awaited.
    client.write(hex('82 8b 00 00 00 00'));
    const frame = await client.readFrame();
    assert.equal(frame.opcode, Opcode.Close);
    assert.equal(frame.payload.readUInt16BE(0), CloseCode.MessageTooBig);
    await client.expectEnd();
    const [error] = (await session.waitFor('onError')) as [ProtocolError];
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, 'WS_ERR_PAYLOAD_TOO_BIG');
    assert.equal(error.closeCode, CloseCode.MessageTooBig);
    assert.equal((await session.closed())[0], CloseCode.MessageTooBig);
    await harness.close();
  });

  test('invalid UTF-8 in a text fragment fails with 1007 before the message ends', async () => {
    const { harness, client, session } = await openEcho();
    client.sendFrame(Opcode.Text, hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80'), { fin: false });
    const frame = await client.readFrame();
    assert.equal(frame.opcode, Opcode.Close);
    assert.equal(frame.payload.readUInt16BE(0), CloseCode.InvalidPayload);
    await client.expectEnd();
    const [error] = (await session.waitFor('onError')) as [ProtocolError];
    assert.equal(error.code, 'WS_ERR_INVALID_UTF8');
    assert.equal(error.closeCode, CloseCode.InvalidPayload);
    assert.equal((await session.closed())[0], CloseCode.InvalidPayload);
    await harness.close();
  });
});

describe('regressions in failing the connection', () => {
  // Root cause: fail() ran a dispatch of its own even when called from inside a hook, so onError
  // ran nested inside the onMessage that called it, and the outer dispatch lost its guard.
  test('fail() called inside onMessage ran onError nested inside that onMessage', async () => {
    const log: string[] = [];
    const error = new ProtocolError('WS_ERR_POLICY', CloseCode.PolicyViolation, 'go away');
    const harness = await Harness.start({
      hooks: (s) => ({
        onMessage(message: string | Buffer) {
          log.push(`onMessage ${String(message)} begins`);
          s.ws.fail(error);
          log.push(`onMessage ${String(message)} ends`);
        },
        onError: () => void log.push('onError'),
      }),
    });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    client.write(Buffer.concat([clientFrame(Opcode.Text, 'a'), clientFrame(Opcode.Text, 'b')]));
    assert.deepEqual(await client.readBytes(11), Buffer.concat([hex('88 09 03 f0'), Buffer.from('go away')]));
    await client.expectEnd();
    assert.deepEqual(await session.closed(), [CloseCode.PolicyViolation, 'go away']);
    assert.deepEqual(log, ['onMessage a begins', 'onMessage a ends', 'onError']);
    await harness.close();
  });
});

describe('7.1.7 every framing violation over the socket: the exact Close, TCP end, onError, onClose', () => {
  const masked = (opcode: number, payload: Buffer | string, options: { fin?: boolean; rsv?: number } = {}): Buffer =>
    clientFrame(opcode, payload, options);
  const cases: [string, Buffer, string, number, string][] = [
    ['RSV1 without a negotiated extension', masked(Opcode.Text, 'a', { rsv: 0x40 }), 'WS_ERR_UNEXPECTED_RSV_1', CloseCode.ProtocolError, 'RSV1 must be clear'],
    ['RSV2 set', masked(Opcode.Text, 'a', { rsv: 0x20 }), 'WS_ERR_UNEXPECTED_RSV_2_3', CloseCode.ProtocolError, 'RSV2 and RSV3 must be clear'],
    ['RSV3 set', masked(Opcode.Binary, 'a', { rsv: 0x10 }), 'WS_ERR_UNEXPECTED_RSV_2_3', CloseCode.ProtocolError, 'RSV2 and RSV3 must be clear'],
    ['reserved data opcode 3', masked(3, ''), 'WS_ERR_INVALID_OPCODE', CloseCode.ProtocolError, 'invalid opcode 3'],
    ['reserved control opcode 0xB', masked(0xb, ''), 'WS_ERR_INVALID_OPCODE', CloseCode.ProtocolError, 'invalid opcode 11'],
    ['a fragmented Ping', masked(Opcode.Ping, 'p', { fin: false }), 'WS_ERR_FRAGMENTED_CONTROL_FRAME', CloseCode.ProtocolError, 'FIN must be set on control frames'],
    ['a Ping of 126 bytes', masked(Opcode.Ping, Buffer.alloc(126)), 'WS_ERR_CONTROL_FRAME_TOO_LONG', CloseCode.ProtocolError, 'control frame payload over 125 bytes'],
    [
      'a 64-bit length with the top bit set',
      hex('82 ff 80 00 00 00 00 00 00 00 37 fa 21 3d'),
      'WS_ERR_INVALID_PAYLOAD_LENGTH',
      CloseCode.ProtocolError,
      'the most significant bit of a 64-bit payload length is set',
    ],
    [
      'a continuation with no message open',
      masked(Opcode.Continuation, 'x'),
      'WS_ERR_UNEXPECTED_CONTINUATION',
      CloseCode.ProtocolError,
      'continuation frame without a message to continue',
    ],
    [
      'a new text frame while a fragmented message is open',
      Buffer.concat([masked(Opcode.Text, 'a', { fin: false }), masked(Opcode.Text, 'b')]),
      'WS_ERR_EXPECTED_CONTINUATION',
      CloseCode.ProtocolError,
      'new data frame while a fragmented message is open',
    ],
    ['a Close payload of 1 byte', masked(Opcode.Close, hex('03')), 'WS_ERR_INVALID_CLOSE_PAYLOAD', CloseCode.ProtocolError, 'close frame payload of 1 byte: a code takes 2'],
    ['Close code 1005', masked(Opcode.Close, closePayload(1005)), 'WS_ERR_INVALID_CLOSE_CODE', CloseCode.ProtocolError, 'invalid close code 1005'],
    ['Close code 999', masked(Opcode.Close, closePayload(999)), 'WS_ERR_INVALID_CLOSE_CODE', CloseCode.ProtocolError, 'invalid close code 999'],
    ['Close code 5000', masked(Opcode.Close, closePayload(5000)), 'WS_ERR_INVALID_CLOSE_CODE', CloseCode.ProtocolError, 'invalid close code 5000'],
    [
      'a Close reason that is not UTF-8',
      masked(Opcode.Close, Buffer.concat([closePayload(1000), hex('ff')])),
      'WS_ERR_INVALID_CLOSE_REASON',
      CloseCode.ProtocolError,
      'close reason is not valid UTF-8',
    ],
    ['a text message ending inside a UTF-8 sequence', masked(Opcode.Text, hex('ce')), 'WS_ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence'],
  ];
  for (const [what, bytes, code, closeCode, message] of cases) {
    test(`${what}: ${code}, Close ${closeCode}`, async () => {
      const { harness, client, session } = await openEcho();
      client.write(bytes);
      const reason = Buffer.from(message);
      const close = Buffer.concat([Buffer.of(0x88, 2 + reason.length, closeCode >> 8, closeCode & 0xff), reason]);
      assert.deepEqual(await client.readBytes(close.length), close);
      await client.expectEnd();
      assert.deepEqual(await session.closed(), [closeCode, message]);
      const errors = session.callsOf('onError');
      assert.equal(errors.length, 1);
      const [error] = errors[0]! as [ProtocolError];
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, code);
      assert.equal(error.closeCode, closeCode);
      assert.equal(error.message, message);
      assert.equal(session.callsOf('onMessage').length, 0);
      await harness.close();
    });
  }
});

describe('the peer going away', () => {
  test('a socket gone before the 101 response is written runs no hook and raises no error', async () => {
    const harness = await Harness.start({ beforeAccept: (socket) => socket.destroy() });
    const client = await RawClient.connect(harness.port);
    client.write(upgradeRequest(harness.port));
    await client.waitClosed();
    const session = await harness.session();
    if (!session.socket.closed) await once(session.socket, 'close');
    await tick();
    assert.deepEqual(session.calls, []);
    assert.equal(session.ws.isDefunct(), true);
    assert.equal(session.ws.send('x'), false);
    await harness.close();
  });

  test('a peer that vanishes in the middle of a frame gives onClose(1006) once and at most one onError', async () => {
    const { harness, client, session } = await openEcho();
    // The header of a 10-byte masked frame, its key and 3 of its bytes; then the peer is gone.
    client.write(hex('82 8a 37 fa 21 3d 01 02 03'));
    await tick();
    client.destroy();
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    await tick();
    assert.equal(session.callsOf('onClose').length, 1);
    assert.ok(session.callsOf('onError').length <= 1);
    assert.equal(session.callsOf('onMessage').length, 0);
    await harness.close();
  });

  test('a peer that ends TCP without a Close gives onClose(1006) and TCP is ended in turn', async () => {
    const { harness, client, session } = await openEcho();
    client.socket.end();
    await client.waitClosed();
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    assert.equal(session.callsOf('onError').length, 0);
    await harness.close();
  });

  // On a mocked clock: with a real 200 ms closeTimeout, a busy machine could let it pass before
  // the client's Close was read, and onClose got 1006.
  test('a peer that answers the Close but never closes TCP is destroyed after closeTimeout; onClose keeps its code', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const harness = await Harness.start({ options: { closeTimeout: 200 } });
    const { client } = await RawClient.open(harness.port, { allowHalfOpen: true });
    const session = await harness.session();
    await session.waitFor('onOpen');
    session.ws.close(CloseCode.GoingAway);
    assert.deepEqual(await client.readBytes(4), hex('88 02 03 e9'));
    client.sendFrame(Opcode.Close, closePayload(CloseCode.GoingAway, 'ok'));
    await client.expectEnd(); // the server's FIN (§7.1.1: the server closes TCP first)
    assert.equal(session.socket.destroyed, false, 'waiting for the client to close TCP');
    t.mock.timers.tick(200);
    assert.deepEqual(await session.closed(), [CloseCode.GoingAway, 'ok']);
    assert.equal(session.socket.destroyed, true);
    client.destroy();
    await harness.close();
  });

  // Root cause: terminate() only destroyed the socket, and the dispatch loop went on handing the
  // rest of the frames already read to onMessage; the socket's 'close' would have done so too.
  test('terminate() inside onMessage let the rest of the batch reach onMessage', async () => {
    const harness = await Harness.start({ hooks: (s) => ({ onMessage: () => s.ws.terminate() }) });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    client.write(Buffer.concat([clientFrame(Opcode.Text, 'a'), clientFrame(Opcode.Text, 'b'), clientFrame(Opcode.Text, 'c')]));
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    await tick();
    assert.deepEqual(session.sequence, ['onOpen', 'onMessage', 'onClose']);
    assert.deepEqual(session.callsOf('onMessage'), [['a', 'text']]);
    await client.waitClosed();
    await harness.close();
  });

  test('terminate() destroys the socket at once and onClose gets 1006', async () => {
    const { harness, client, session } = await openEcho();
    session.ws.terminate();
    await client.waitClosed();
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    assert.equal(session.callsOf('onError').length, 0);
    await harness.close();
  });

  test('close() to a peer that never answers destroys the socket after closeTimeout, and onClose gets 1006', async () => {
    const harness = await Harness.start({ options: { closeTimeout: 200 } });
    const { client } = await RawClient.open(harness.port);
    const session = await harness.session();
    await session.waitFor('onOpen');
    session.ws.close();
    assert.deepEqual(await client.readBytes(4), hex('88 02 03 e8'));
    // The client reads on but never answers: the server gives up and destroys the socket.
    await client.waitClosed();
    assert.equal(session.socket.destroyed, true);
    assert.deepEqual(await session.closed(), [CloseCode.Abnormal, '']);
    await harness.close();
  });
});

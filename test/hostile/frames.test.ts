// Garbage after the handshake, from 100 connections at once: random bytes, truncated frames,
// unmasked frames, bad opcodes, bad Close payloads, invalid UTF-8 split across fragments. Each
// attacker gets the Close code RFC 6455 prescribes; three bystanders beside them see every echo.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, clientFrame, parseFrame, type ReadFrame } from '../helpers/net.js';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { Connection } from '../../src/protocol/connection.js';
import { MiB, assertNoLeaks, bystander, handles, memory, random, startEchoServer, trackTimers } from './helpers.js';
import { cleanup } from './helpers.js';

interface Attack {
  name: string;
  bytes: Buffer;
  /** The Close code the server answers with, or null when it sees only a truncated frame and EOF (1006). */
  closeCode: number | null;
  /** The ProtocolError code onError gets. */
  error?: string;
  /** The reason in the server's Close frame. */
  reason?: string;
}

function closeFrame(payload: Buffer): Buffer {
  return clientFrame(Opcode.Close, payload);
}

function codeBytes(code: number, reason: Buffer = Buffer.alloc(0)): Buffer {
  const payload = Buffer.alloc(2 + reason.length);
  payload.writeUInt16BE(code, 0);
  reason.copy(payload, 2);
  return payload;
}

/** What the protocol core (tested on its own) says about bytes: the random-bytes oracle. */
function oracle(bytes: Buffer): { closeCode: number | null; error?: string; reason?: string } {
  const conn = new Connection();
  conn.receiveData(Buffer.from(bytes));
  conn.takeOutput();
  conn.takeEvents();
  const failure = conn.failure;
  if (failure === null) return { closeCode: null };
  return { closeCode: failure.closeCode, error: failure.code, reason: failure.message };
}

function attacks(): Attack[] {
  const list: Attack[] = [];
  const next = random(0x5eed);
  for (let i = 0; i < 20; i++) {
    const bytes = Buffer.alloc(1 + Math.floor(next() * 2048));
    for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
    // Half of them start like a final text or binary frame, so the garbage reaches the length,
    // mask and payload states instead of failing on the first byte's RSV bits.
    if (i % 2 === 1) bytes[0] = i % 4 === 1 ? 0x81 : 0x82;
    list.push({ name: `random bytes #${i}`, bytes, ...oracle(bytes) });
  }
  // A frame that announces 200 bytes and brings 50 before EOF.
  const whole = clientFrame(Opcode.Binary, Buffer.alloc(200, 7));
  list.push({ name: 'truncated frame', bytes: whole.subarray(0, 2 + 4 + 50), closeCode: null });
  list.push({ name: 'truncated header', bytes: Buffer.from([0x82, 0xfe, 0x01]), closeCode: null });
  list.push({
    name: 'unmasked frame',
    bytes: clientFrame(Opcode.Text, 'hi', { mask: null }),
    closeCode: CloseCode.ProtocolError,
    error: 'WS_ERR_UNMASKED_FRAME',
    reason: 'MASK must be set on frames from a client',
  });
  for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    list.push({
      name: `opcode ${opcode}`,
      bytes: clientFrame(opcode, 'x'),
      closeCode: CloseCode.ProtocolError,
      error: 'WS_ERR_INVALID_OPCODE',
      reason: `invalid opcode ${opcode}`,
    });
  }
  list.push({
    name: 'Close with 1 byte',
    bytes: closeFrame(Buffer.from([0x03])),
    closeCode: CloseCode.ProtocolError,
    error: 'WS_ERR_INVALID_CLOSE_PAYLOAD',
    reason: 'close frame payload of 1 byte: a code takes 2',
  });
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 2000, 5000, 65535]) {
    list.push({
      name: `Close code ${code}`,
      bytes: closeFrame(codeBytes(code)),
      closeCode: CloseCode.ProtocolError,
      error: 'WS_ERR_INVALID_CLOSE_CODE',
      reason: `invalid close code ${code}`,
    });
  }
  list.push({
    name: 'Close reason not UTF-8',
    bytes: closeFrame(codeBytes(CloseCode.Normal, Buffer.from([0xce, 0xba, 0xff]))),
    closeCode: CloseCode.ProtocolError,
    error: 'WS_ERR_INVALID_CLOSE_REASON',
    reason: 'close reason is not valid UTF-8',
  });
  // "κ" then a UTF-16 surrogate (ED A0 80), its bytes split across three fragments.
  list.push({
    name: 'invalid UTF-8 split across fragments',
    bytes: Buffer.concat([
      clientFrame(Opcode.Text, Buffer.from([0xce]), { fin: false }),
      clientFrame(Opcode.Continuation, Buffer.from([0xba, 0xed]), { fin: false }),
      clientFrame(Opcode.Continuation, Buffer.from([0xa0, 0x80]), { fin: true }),
    ]),
    closeCode: CloseCode.InvalidPayload,
    error: 'WS_ERR_INVALID_UTF8',
    reason: 'invalid UTF-8 in a text message',
  });
  list.push({
    name: 'text ending inside a UTF-8 sequence',
    bytes: Buffer.concat([
      clientFrame(Opcode.Text, Buffer.from([0x61, 0xe2]), { fin: false }),
      clientFrame(Opcode.Continuation, Buffer.from([0x82]), { fin: true }),
    ]),
    closeCode: CloseCode.InvalidPayload,
    error: 'WS_ERR_INVALID_UTF8',
    reason: 'text message ends inside a UTF-8 sequence',
  });
  list.push({
    name: 'continuation without a message',
    bytes: clientFrame(Opcode.Continuation, 'x'),
    closeCode: CloseCode.ProtocolError,
    error: 'WS_ERR_UNEXPECTED_CONTINUATION',
    reason: 'continuation frame without a message to continue',
  });
  list.push({
    name: 'fragmented ping',
    bytes: clientFrame(Opcode.Ping, 'x', { fin: false }),
    closeCode: CloseCode.ProtocolError,
    error: 'WS_ERR_FRAGMENTED_CONTROL_FRAME',
    reason: 'FIN must be set on control frames',
  });
  list.push({
    name: 'RSV2 set',
    bytes: clientFrame(Opcode.Text, 'x', { rsv: 0x20 }),
    closeCode: CloseCode.ProtocolError,
    error: 'WS_ERR_UNEXPECTED_RSV_2_3',
    reason: 'RSV2 and RSV3 must be clear',
  });
  // Fill up to 100 with the deterministic cases again, so every kind runs several times at once.
  const base = list.length;
  for (let i = 0; list.length < 100; i++) list.push({ ...list[20 + (i % (base - 20))]!, name: `${list[20 + (i % (base - 20))]!.name} (again)` });
  return list;
}

/** Runs one attack on a fresh connection: the frames the server sent after the 101, until it closed. */
async function run(port: number, attack: Attack): Promise<ReadFrame[]> {
  const { client, response } = await RawClient.open(port);
  assert.match(response, /^HTTP\/1\.1 101 /, attack.name);
  client.write(attack.bytes);
  client.socket.end();
  let rest = await client.readToEnd();
  await client.waitClosed();
  const frames: ReadFrame[] = [];
  for (let frame = parseFrame(rest); frame !== null; frame = parseFrame(rest)) {
    frames.push(frame);
    rest = rest.subarray(frame.bytes.length);
  }
  assert.equal(rest.length, 0, `${attack.name}: no partial frame left`);
  return frames;
}

describe('Garbage after the handshake', () => {
  afterEach(cleanup);

  test('100 connections sending garbage at once each get the prescribed Close while 3 bystanders echo byte-exact', async () => {
    const before = handles();
    const heap = memory();
    const timers = trackTimers();
    const echo = await startEchoServer();
    const list = attacks();
    assert.equal(list.length, 100);
    const [results, echoed] = await Promise.all([
      Promise.all(list.map((attack) => run(echo.port, attack))),
      Promise.all([11, 12, 13].map((seed) => bystander(echo.port, seed, 200))),
    ]);
    assert.deepEqual(echoed, [200, 200, 200]);
    for (let i = 0; i < list.length; i++) {
      const attack = list[i]!;
      const frames = results[i]!;
      if (attack.closeCode === null) {
        assert.equal(frames.filter((f) => f.opcode === Opcode.Close).length, 0, `${attack.name}: no Close`);
        continue;
      }
      const close = frames.at(-1);
      assert.ok(close !== undefined && close.opcode === Opcode.Close, `${attack.name}: ends with a Close frame`);
      assert.equal(close.payload.readUInt16BE(0), attack.closeCode, `${attack.name}: close code`);
      assert.equal(close.payload.subarray(2).toString('utf8'), attack.reason, `${attack.name}: close reason`);
    }
    // The server's side: 100 attackers and 3 bystanders ended, each with its code and error.
    const ended = await echo.waitEnded(103);
    const codes = (entries: (number | string)[]) => entries.map(String).sort();
    assert.deepEqual(
      codes(ended.map((e) => e.code)),
      codes([...list.map((a) => a.closeCode ?? CloseCode.Abnormal), CloseCode.Normal, CloseCode.Normal, CloseCode.Normal]),
    );
    assert.deepEqual(
      codes(ended.flatMap((e) => e.errors.map((error) => (error as { code?: string }).code ?? error.message))),
      codes(list.flatMap((a) => (a.error ? [a.error] : []))),
    );
    assert.equal(echo.open.size, 0);
    await echo.close();
    await assertNoLeaks(before);
    assert.equal(await timers.stop(), 0, 'no heartbeat, close or other timer outlives its connection');
    assert.ok(memory() - heap < 16 * MiB, 'heap growth under 16 MiB');
  });
});

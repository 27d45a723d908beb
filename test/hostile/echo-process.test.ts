// The attacks aimed at `npm run echo` itself, in its own process with its own defaults (only
// maxPayload is raised): garbage, header floods, a 2^63-1 length, 100,000 empty continuations, a
// ping flood from a client that never reads. Afterwards the process is alive, still echoes, and
// exits 0 on SIGTERM.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { RawClient, clientFrame } from '../helpers/net.js';
import { CloseCode, Opcode } from '../../src/protocol/constants.js';
import { bystander, random } from './helpers.js';

function headerAttack(port: number, extra: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      ),
    );
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(received.slice(0, received.indexOf('\r\n'))));
  });
}

/** Sends `bytes` after the handshake and resolves with the code of the server's Close (null if none came). */
async function frameAttack(port: number, bytes: Buffer): Promise<number | null> {
  const { client } = await RawClient.open(port);
  client.write(bytes);
  client.socket.end();
  const rest = await client.readToEnd();
  await client.waitClosed();
  for (let offset = 0; offset + 2 <= rest.length; ) {
    const length = rest[offset + 1]! & 0x7f; // server frames here are small
    if ((rest[offset]! & 0x0f) === Opcode.Close) return rest.readUInt16BE(offset + 2);
    offset += 2 + length;
  }
  return null;
}

function drainOrClose(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}

describe('npm run echo under attack, in its own process', () => {
  test('the echo server survives every attack with its defaults, still echoes, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/echo-server.ts', '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout! });
      const [line] = (await once(lines, 'line')) as [string];
      const port = Number(/:(\d+)\/$/.exec(line)![1]);

      // Header floods: statuses, not hangs.
      let many = '';
      for (let i = 0; i < 10_000; i++) many += `X-${i}: v\r\n`;
      let empty = '';
      for (let i = 0; i < 10_000; i++) empty += 'a:\r\n';
      assert.deepEqual(
        await Promise.all([headerAttack(port, many), headerAttack(port, empty), headerAttack(port, `X-Big: ${'a'.repeat(1 << 20)}\r\n`)]),
        Array(3).fill('HTTP/1.1 431 Request Header Fields Too Large'),
      );

      // Frames: 60 connections of garbage at once, beside two bystanders.
      const next = random(99);
      const garbage = Array.from({ length: 40 }, () => {
        const bytes = Buffer.alloc(64 + Math.floor(next() * 512));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
        bytes[0] = 0xf1; // RSV bits set: 1002 from the first byte, whatever follows
        return frameAttack(port, bytes);
      });
      const huge = Buffer.alloc(14);
      huge[0] = 0x82;
      huge[1] = 0xff;
      huge.writeBigUInt64BE(2n ** 63n - 1n, 2);
      const continuations = Buffer.concat([
        clientFrame(Opcode.Binary, Buffer.alloc(0), { fin: false }),
        Buffer.concat(Array.from({ length: 100_000 }, () => clientFrame(Opcode.Continuation, Buffer.alloc(0), { fin: false }))),
        clientFrame(Opcode.Continuation, Buffer.alloc(0), { fin: false }),
        clientFrame(Opcode.Text, 'x'), // a new message inside the open one: 1002
      ]);
      const specific = [
        frameAttack(port, huge),
        frameAttack(port, continuations),
        ...Array.from({ length: 18 }, () => frameAttack(port, clientFrame(Opcode.Text, Buffer.from([0xed, 0xa0, 0x80])))),
      ];
      const [codes, echoed] = await Promise.all([
        Promise.all([...garbage, ...specific]),
        Promise.all([51, 52].map((seed) => bystander(port, seed, 200))),
      ]);
      assert.deepEqual(echoed, [200, 200]);
      assert.deepEqual(codes, [
        ...Array(40).fill(CloseCode.ProtocolError),
        CloseCode.MessageTooBig,
        CloseCode.ProtocolError,
        ...Array(18).fill(CloseCode.InvalidPayload),
      ]);

      // A ping flood from a client that never reads: past the default 4 MiB bound the server stops
      // reading from it, so the flood stalls (the heartbeat would reap it after 30 + 30 s).
      const { client } = await RawClient.open(port);
      client.socket.pause();
      const ping = clientFrame(Opcode.Ping, Buffer.alloc(125, 1));
      let written = 0;
      for (let stalled = false; !stalled; ) {
        while (client.socket.write(ping)) written += ping.length;
        written += ping.length;
        let timer: NodeJS.Timeout | undefined;
        stalled = await Promise.race([
          drainOrClose(client.socket).then(() => false),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 500))),
        ]);
        clearTimeout(timer);
        assert.ok(written < 512 * 1024 * 1024, 'the flood stalls');
      }
      client.destroy();

      // Alive and well.
      assert.equal(child.exitCode, null);
      assert.equal(await bystander(port, 53, 50), 50);
    } finally {
      child.kill('SIGTERM');
    }
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null], stderr);
    assert.equal(stderr, '');
  });
});

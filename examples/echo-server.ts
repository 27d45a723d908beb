// The echo server that conformance suites (Autobahn|Testsuite's fuzzingclient) and attack tools
// are aimed at: upgrades on any path, sends every message back with its own type.
//   npm run echo -- --port 9001 [--host 127.0.0.1]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { acceptWebSocket, CloseCode, type WebSocketConnection } from '../src/index.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '9001' }, host: { type: 'string', default: '127.0.0.1' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: npm run echo -- [--port N] [--host ADDRESS]');
  process.exit(2);
}

const connections = new Set<WebSocketConnection>();
const server = createServer((_req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' }).end('WebSocket echo server\n');
});
server.on('upgrade', (request, socket, head) => {
  const ws: WebSocketConnection | null = acceptWebSocket(
    request,
    socket,
    head,
    {
      // Backpressure: while replies wait to be written (send returned false), nothing more is read,
      // so a client that sends faster than it reads is held back by TCP instead of being cut off
      // at maxBufferedAmount (4 MiB, WS_ERR_SLOW_CONSUMER).
      onMessage: (message, type) => {
        if (!ws!.send(message, type)) ws!.pause();
      },
      onDrain: () => ws!.resume(),
      onClose: () => void connections.delete(ws!),
    },
    { maxPayload: 64 * 1024 * 1024 },
  );
  if (ws) connections.add(ws);
});
server.listen(port, values.host, () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`echo server listening on ws://${values.host}:${actual}/`);
});

function stop(): void {
  server.close();
  for (const ws of connections) ws.close(CloseCode.GoingAway, 'server shutting down');
  setTimeout(() => process.exit(0), 2000).unref();
  if (connections.size === 0) process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

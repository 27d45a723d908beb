// Bun's fan-out, for the fan-out bench: every client on /echo subscribes to one topic, and
// GET /publish?count=K&size=S&kind=text|binary calls server.publish K times. Run with bun (the
// npm package `bun`). Prints "listening <port>" once ready.
/* global Bun */
const UNIT = '{"type":"chat","room":"lobby","from":"user-42","text":"The quick brown fox jumps over the lazy dog"},';

function payload(size, kind) {
  if (kind === 'binary') return new Uint8Array(size).map(() => (Math.random() * 256) | 0);
  return UNIT.repeat(Math.ceil(size / UNIT.length)).slice(0, size);
}

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(request, server) {
    const url = new URL(request.url);
    if (url.pathname === '/publish') {
      const count = Number(url.searchParams.get('count') ?? 1);
      const data = payload(Number(url.searchParams.get('size') ?? 32), url.searchParams.get('kind') ?? 'text');
      for (let i = 0; i < count; i++) server.publish('fan', data, false);
      return new Response('ok');
    }
    if (server.upgrade(request)) return undefined;
    return new Response('not found', { status: 404 });
  },
  websocket: {
    perMessageDeflate: false,
    idleTimeout: 0,
    backpressureLimit: 1 << 30,
    open(ws) {
      ws.subscribe('fan');
    },
    message() {},
  },
});
console.log(`listening ${server.port}`);

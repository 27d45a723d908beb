// Koa 3: Koa's app.callback() handles HTTP on a node:http server that the router also attaches to.
//   node --import tsx examples/integrations/koa.ts [port]
// In your own project, import from 'pef-front-websocket'.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { WebSocketRouter } from '../../src/index.js';

export async function start(port = 8080, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Koa();
  app.use((context) => {
    context.type = 'text/plain';
    context.body = 'hello from Koa\n';
  });

  const server = createServer(app.callback());
  const router = await WebSocketRouter.fromDirectory(fileURLToPath(new URL('./handlers', import.meta.url)));
  router.attach(server);

  server.listen(port, host);
  await once(server, 'listening');
  const url = `ws://${host}:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      await router.close();
      server.close();
      await once(server, 'close');
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url, close } = await start(Number(process.argv[2] ?? 8080));
  console.log(`listening on ${url}/wsEcho`);
  process.once('SIGINT', () => void close());
  process.once('SIGTERM', () => void close());
}

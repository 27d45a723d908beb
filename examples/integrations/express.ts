// Express 5: Express serves HTTP, the router takes the upgrade requests of the same node:http server.
//   node --import tsx examples/integrations/express.ts [port]
// In your own project, import from 'pef-front-websocket'.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { WebSocketRouter } from '../../src/index.js';

export async function start(port = 8080, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.get('/', (_request, response) => {
    response.type('text/plain').send('hello from Express\n');
  });

  const router = await WebSocketRouter.fromDirectory(fileURLToPath(new URL('./handlers', import.meta.url)));
  // Express 5's app.listen() returns the node:http server it starts: attach the router to it.
  const server = app.listen(port, host);
  router.attach(server);
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

// Fastify 5: Fastify owns the node:http server (app.server); the router attaches to its 'upgrade' event.
//   node --import tsx examples/integrations/fastify.ts [port]
// In your own project, import from 'pef-front-websocket'.
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { WebSocketRouter } from '../../src/index.js';

export async function start(port = 8080, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify();
  app.get('/', async (_request, reply) => {
    reply.type('text/plain');
    return 'hello from Fastify\n';
  });

  const router = await WebSocketRouter.fromDirectory(fileURLToPath(new URL('./handlers', import.meta.url)));
  router.attach(app.server);

  await app.listen({ port, host });
  const url = `ws://${host}:${(app.server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      await router.close();
      await app.close();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url, close } = await start(Number(process.argv[2] ?? 8080));
  console.log(`listening on ${url}/wsEcho`);
  process.once('SIGINT', () => void close());
  process.once('SIGTERM', () => void close());
}

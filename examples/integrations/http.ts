// node:http: one server answers HTTP requests and upgrades /ws* requests to the handlers in ./handlers.
//   node --import tsx examples/integrations/http.ts [port]
// In your own project, import from 'pef-front-websocket'.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketRouter } from '../../src/index.js';

export async function start(port = 8080, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_request, response) => {
    response.end('hello from node:http\n');
  });
  const router = await WebSocketRouter.fromDirectory(fileURLToPath(new URL('./handlers', import.meta.url)));
  router.attach(server); // /wsEcho is upgraded; other upgrade requests get 404

  server.listen(port, host);
  await once(server, 'listening');
  const url = `ws://${host}:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      await router.close(); // 1001 Going Away to every connection, then their closing handshakes
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

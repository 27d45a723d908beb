// node:https (wss://): the same router on a TLS server. certs/ holds a self-signed certificate for
// localhost and 127.0.0.1, for this example and its test only.
//   node --import tsx examples/integrations/https.ts [port]
// In your own project, import from 'pef-front-websocket'.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketRouter } from '../../src/index.js';

export const certificate = readFileSync(new URL('./certs/cert.pem', import.meta.url));

export async function start(port = 8443, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(
    { cert: certificate, key: readFileSync(new URL('./certs/key.pem', import.meta.url)) },
    (_request, response) => {
      response.end('hello from node:https\n');
    },
  );
  const router = await WebSocketRouter.fromDirectory(fileURLToPath(new URL('./handlers', import.meta.url)));
  router.attach(server);

  server.listen(port, host);
  await once(server, 'listening');
  const url = `wss://${host}:${(server.address() as AddressInfo).port}`;
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
  const { url, close } = await start(Number(process.argv[2] ?? 8443));
  console.log(`listening on ${url}/wsEcho`);
  process.once('SIGINT', () => void close());
  process.once('SIGTERM', () => void close());
}

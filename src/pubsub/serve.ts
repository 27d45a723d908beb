// The queue of `pef-ws serve`: which broker each process gets. One process: the router's own
// MemoryBroker. `--workers N`: a ClusterHub in the primary, a ClusterBroker in each worker.
// `--redis URL`: a RedisBroker in every process (a node-redis client made here).

import type { Cluster } from 'node:cluster';
import type { Broker } from './broker.js';
import { ClusterBroker, ClusterHub } from './cluster.js';
import { RedisBroker, type RedisClientLike } from './redis.js';

/** null when `url` is a redis:// or rediss:// URL, else the usage message to print. */
export function checkRedisUrl(url: string): string | null {
  try {
    const { protocol } = new URL(url);
    if (protocol === 'redis:' || protocol === 'rediss:') return null;
  } catch {
    // not a URL
  }
  return `--redis takes a URL like redis://127.0.0.1:6379, not "${url}"`;
}

/** In the primary of --workers N without --redis: the hub every worker's broker talks to. */
export function startClusterHub(cluster: Cluster, redis: string | null): void {
  if (redis === null) ClusterHub.forCluster(cluster);
}

/**
 * The broker of one serving process: a RedisBroker on `redis` (the `redis` package, loaded here:
 * an optional peer dependency), a ClusterBroker in a cluster worker, else none (the router's own).
 */
export async function brokerFor(redis: string | null, worker: boolean, log: (line: string) => void): Promise<Broker | undefined> {
  if (redis === null) return worker ? new ClusterBroker() : undefined;
  let createClient: (options: { url: string }) => RedisClientLike & { connect(): Promise<unknown> };
  try {
    ({ createClient } = (await import('redis')) as unknown as { createClient: typeof createClient });
  } catch {
    throw new Error('--redis needs the redis package (node-redis): npm install redis');
  }
  const client = createClient({ url: redis });
  let down = false;
  client.on('error', (error) => {
    if (down) return;
    down = true;
    log(`pef-ws: Redis at ${redis}: ${(error as Error).message}; reconnecting`);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log(`pef-ws: Redis at ${redis} is back`);
  });
  await client.connect();
  return new RedisBroker(client);
}

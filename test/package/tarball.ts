// `npm pack` for the tests that install the package: prepack rebuilds dist/ in the project, so two
// test files packing at once (npm test runs two at a time) would build over each other. A lock
// directory (mkdir is atomic) makes them take turns.

import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const lock = join(root, 'node_modules', '.cache', 'pef-ws-pack.lock');
/** A lock older than this was left by a process that died holding it. */
const STALE_MS = 180_000;

/** npm without update notices, funding or audit requests: everything it needs is local. */
export const npmEnv: NodeJS.ProcessEnv = {
  ...process.env,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

async function acquire(): Promise<void> {
  mkdirSync(join(root, 'node_modules', '.cache'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      return;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > STALE_MS) rmSync(lock, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      await sleep(200);
    }
  }
}

/** Packs the project into `destination`; returns the tarball's path and the files it holds. */
export async function packTarball(destination: string): Promise<{ tarball: string; files: string[] }> {
  await acquire();
  try {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destination], {
      cwd: root,
      env: npmEnv,
      maxBuffer: 16 << 20,
    });
    // prepack's build output precedes the JSON on stdout.
    const report = JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as { filename: string; files: { path: string }[] }[];
    return { tarball: join(destination, report[0]!.filename), files: report[0]!.files.map((file) => file.path).sort() };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

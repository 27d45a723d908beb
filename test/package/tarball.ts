// `npm pack` for the tests that install the package: prepack rebuilds dist/ in the project, so two
// test files packing at once (npm test runs two at a time) would build over each other. A lock
// directory (mkdir is atomic) makes them take turns.

import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const lock = join(root, 'node_modules', '.cache', 'pef-ws-pack.lock');

/**
 * Whether the lock was left by a process that died holding it. Decided by the holder's pid (kept in
 * the lock), not by the lock's age: a build slower than any fixed age on a busy machine would
 * otherwise lose its lock to another packer, and the two would build over each other.
 */
function stale(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // Just made, its pid not yet written (a matter of microseconds), or released meanwhile; a lock
    // without a pid for long was left by a process killed between the two steps.
    try {
      return Date.now() - statSync(lock).mtimeMs > 10_000;
    } catch {
      return false;
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

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
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return;
    } catch {
      if (stale()) rmSync(lock, { recursive: true, force: true });
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

// The package's version, read from its package.json: two folders up from src/cli/ and dist/cli/.

import { readFileSync } from 'node:fs';

/** The `version` field of this package's package.json. */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

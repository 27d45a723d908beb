// The README is read where the package is shown (npmjs.com, a node_modules folder), where docs/
// is not shipped: its links must be absolute, and those into the repository must name files that
// exist. package.json names the same repository in repository, homepage and bugs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  repository: { type: string; url: string };
  homepage: string;
  bugs: { url: string };
};
const repository = manifest.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
const links = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!);

test('package.json names one repository in repository, homepage and bugs', () => {
  assert.match(repository, /^https:\/\/github\.com\/[\w.-]+\/pef-front-websocket$/);
  assert.equal(manifest.repository.type, 'git');
  assert.equal(manifest.homepage, `${repository}#readme`);
  assert.equal(manifest.bugs.url, `${repository}/issues`);
});

test('every link in the README is absolute, and those into the repository name files that exist', () => {
  assert.ok(links.length >= 9, `links found: ${links.join(' ')}`);
  for (const link of links) {
    assert.match(link, /^https:\/\//, `a relative link breaks where docs/ is not shipped: ${link}`);
    if (!link.startsWith(`${repository}/blob/main/`)) continue;
    const file = link.slice(`${repository}/blob/main/`.length).replace(/#.*$/, '');
    assert.ok(existsSync(join(root, file)), `${link} names ${file}, which does not exist`);
  }
});

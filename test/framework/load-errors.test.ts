// Load errors point at the line: a syntax error or a throw on import names file:line:column (and
// shows the code frame of a syntax error); `_`-prefixed files and folders are helpers, not
// handlers; `.ts` handlers skipped for want of a loader are named with the fix; a missing folder
// "does not exist". Fixtures are written to a fresh temporary folder per test.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HandlerLoadError, WebSocketRouter } from '../../src/index.js';
import { loadHandlerModules } from '../../src/framework/discover.js';

const base = mkdtempSync(join(tmpdir(), 'pef-ws-load-'));
after(() => rmSync(base, { recursive: true, force: true }));
const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
let folders = 0;

/** A fresh folder holding `files` (name -> source). */
function folder(files: Record<string, string>): string {
  const dir = join(base, String(folders++));
  for (const [name, source] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, source);
  }
  return dir;
}

async function loadError(dir: string): Promise<HandlerLoadError> {
  const error = await WebSocketRouter.fromDirectory(dir).catch((e: unknown) => e);
  assert.ok(error instanceof HandlerLoadError, String(error));
  return error;
}

describe('load errors point at the line', () => {
  test('a syntax error in a .mjs handler: file:line:column, the message, and the code frame', async () => {
    const dir = folder({ 'Bad.mjs': 'export default class Bad {\n  m() {\n    foo(1, 2;\n  }\n}\n' });
    const error = await loadError(dir);
    const file = join(dir, 'Bad.mjs');
    // Where Node's own report (node --check) puts the caret.
    assert.equal(error.message, `${file}:3:12: failed to load: missing ) after argument list`);
    assert.equal(error.details, '        foo(1, 2;\n               ^');
    assert.deepEqual([error.file, error.line, error.column], [file, 3, 12]);
    assert.equal((error.cause as Error).name, 'SyntaxError');
  });

  test('a syntax error in a .ts handler under tsx: the position esbuild found, and the code frame', async () => {
    const dir = folder({ 'Bad.ts': 'export default class Bad {\n  m() {\n    foo(1, 2;\n  }\n}\n' });
    const error = await loadError(dir);
    assert.equal(error.message, `${join(dir, 'Bad.ts')}:3:13: failed to load: Expected ")" but found ";"`);
    assert.equal(error.details, '        foo(1, 2;\n                ^');
  });

  test('a module that throws while it loads: file:line:column of the throw, and the cause with its stack', async () => {
    const dir = folder({ 'Boom.mjs': 'const x = 1;\nif (x) throw new RangeError("exploded on import");\nexport default class Boom {}\n' });
    const error = await loadError(dir);
    assert.equal(error.message, `${join(dir, 'Boom.mjs')}:2:14: failed to load: exploded on import`);
    assert.match(error.details, /^RangeError: exploded on import\n {4}at .*Boom\.mjs:2:14/);
    assert.equal(error.details, (error.cause as Error).stack);
  });

  test('files and folders starting with _ are helpers: no route, and handlers may import them', async () => {
    const dir = folder({
      '_helpers.mjs': 'export const greet = (name) => `hello ${name}`;\n',
      '_lib/Thing.mjs': 'export default class Thing {}\n',
      'Echo.mjs': `import { greet } from './_helpers.mjs';\nimport { WebSocketHandler } from ${JSON.stringify(index)};\nexport default class Echo extends WebSocketHandler { onOpen() { this.send(greet('you')); } }\n`,
    });
    const router = await WebSocketRouter.fromDirectory(dir);
    assert.deepEqual(router.routes, ['/wsEcho']);
  });

  test('.ts handlers in a process without a TypeScript loader are skipped with a warning naming them and the fix', async () => {
    const dir = folder({ 'Echo.mjs': 'export default class Echo {}\n', 'Chat.ts': 'export default class Chat {}\n', 'Room.mts': '' });
    const lines: string[] = [];
    const modules = await loadHandlerModules(dir, { typescript: false, warn: (line) => lines.push(line) });
    assert.deepEqual(modules.map((m) => m.name), ['Echo']);
    assert.deepEqual(lines, [
      `pef-front-websocket: skipped Chat.ts, Room.mts in ${dir}: this process cannot import TypeScript: ` +
        'run it with NODE_OPTIONS="--import tsx" (with tsx installed), or build them to .js',
    ]);
    const only = folder({ 'Chat.ts': '' });
    await assert.rejects(loadHandlerModules(only, { typescript: false }), {
      message: `${only}: no handler modules in the folder (its .ts files were skipped: this process cannot import TypeScript: ` +
        'run it with NODE_OPTIONS="--import tsx" (with tsx installed), or build them to .js)',
    });
  });

  test('the router sends the skipped-files warning to its logger', async () => {
    // Under this test runner tsx is loaded, so nothing is skipped and nothing is said.
    const lines: unknown[] = [];
    const dir = folder({ 'Echo.mjs': 'export default class Echo {}\n', 'Chat.ts': 'export default class Chat {}\n' });
    const router = await WebSocketRouter.fromDirectory(dir, { logger: { error: (line) => lines.push(line), warn: (line) => lines.push(line) } });
    assert.deepEqual(router.routes, ['/wsChat', '/wsEcho']);
    assert.deepEqual(lines, []);
  });

  test('a missing folder "does not exist"; a file given as the folder "is not a folder"', async () => {
    const missing = join(base, 'missing');
    assert.equal((await loadError(missing)).message, `${missing}: the handler folder does not exist`);
    const file = join(folder({ 'x.txt': '' }), 'x.txt');
    assert.equal((await loadError(file)).message, `${file}: is not a folder`);
  });
});

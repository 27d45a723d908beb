// Every code block in the docs runs. A block right after `<!-- file: PATH -->` is a copy of (a
// part of) that file, which a test runs: it must appear in it verbatim, with the examples' relative
// import of src/index.js read as 'pef-front-websocket'. Every other ts/js block is extracted and
// type-checked against src/, the package name mapped to src/index.ts; a doc may declare the
// variables its fragments use in a hidden `<!-- context:ts ... -->` comment. Blocks marked sh,
// text, html, json, ini or perl are not TypeScript and are skipped here; a block with no language fails.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { docFiles, extractBlocks, extractContext } from './markdown.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const TYPESCRIPT = new Set(['ts', 'typescript', 'mts']);
const JAVASCRIPT = new Set(['js', 'javascript', 'mjs']);
const NOT_CODE = new Set(['sh', 'bash', 'shell', 'console', 'text', 'txt', 'html', 'json', 'jsonc', 'ini', 'perl', 'pl', 'diff', 'http', 'yaml']);

const texts = new Map(docFiles().map((doc) => [doc, readFileSync(join(root, doc), 'utf8')] as const));
const blocks = [...texts].flatMap(([doc, text]) => extractBlocks(doc, text));

/** The examples import the package from src/ by a relative path; the docs show the package name. */
function asPublished(code: string): string {
  return code.replace(/(['"])(?:\.\.\/)+src\/index\.js\1/g, "'pef-front-websocket'");
}

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  typeRoots: [join(root, 'node_modules', '@types')],
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  noImplicitOverride: true,
  verbatimModuleSyntax: true,
  // A doc's context has no import or export and must stay a global script (blocks get `export {}`).
  moduleDetection: ts.ModuleDetectionKind.Legacy,
  paths: {
    'pef-front-websocket': [join(root, 'src', 'index.ts')],
    'pef-front-websocket/protocol': [join(root, 'src', 'protocol', 'index.ts')],
  },
};
// JavaScript is checked for wrong calls and names, not for the annotations it cannot have.
const JS_OPTIONS: ts.CompilerOptions = { ...OPTIONS, allowJs: true, checkJs: true, noImplicitAny: false, noImplicitOverride: false };

describe('code blocks in the docs', () => {
  test('every code block names its language', () => {
    const unnamed = blocks.filter((block) => block.lang === '').map((block) => `${block.doc}:${block.line}`);
    assert.deepEqual(unnamed, [], 'mark shell with ```sh, output with ```text');
  });

  test('every language is one the docs check or one that is not code', () => {
    const unknown = blocks
      .filter((b) => b.lang !== '' && !TYPESCRIPT.has(b.lang) && !JAVASCRIPT.has(b.lang) && !NOT_CODE.has(b.lang))
      .map((b) => `${b.doc}:${b.line} (${b.lang})`);
    assert.deepEqual(unknown, []);
  });

  test('a block marked <!-- file: PATH --> is, verbatim, a part of that file', () => {
    const mismatched: string[] = [];
    for (const block of blocks.filter((b) => b.marker === 'file')) {
      const path = join(root, block.file!);
      if (!existsSync(path)) {
        mismatched.push(`${block.doc}:${block.line}: ${block.file} does not exist`);
        continue;
      }
      const file = readFileSync(path, 'utf8');
      if (!file.includes(block.code) && !asPublished(file).includes(block.code)) {
        mismatched.push(`${block.doc}:${block.line}: not a verbatim part of ${block.file}`);
      }
    }
    assert.deepEqual(mismatched, []);
  });

  const checked = blocks.filter((b) => b.marker !== 'file' && (TYPESCRIPT.has(b.lang) || JAVASCRIPT.has(b.lang)));

  test(`the other ${checked.length} TypeScript and JavaScript blocks type-check against src/`, () => {
    // Inside node_modules so that imports of express, koa, ws... resolve as they do for the project.
    const dir = join(root, 'node_modules', '.cache', `pef-ws-doc-blocks-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));

    const origin = new Map<string, { doc: string; line: number }>();
    // One program per doc with a context (its declarations are global), one for all the others.
    const groups = new Map<string, string[]>();
    for (const block of checked) {
      const context = extractContext(texts.get(block.doc)!);
      const group = context === null ? '' : block.doc;
      if (!groups.has(group)) {
        groups.set(group, []);
        if (context !== null) {
          // A script (no import or export): its declarations are visible to every block of the doc.
          const name = join(dir, `${block.doc.replace(/[/.]/g, '_')}_context.ts`);
          writeFileSync(name, context.code);
          origin.set(name, { doc: block.doc, line: context.line });
          groups.get(group)!.push(name);
        }
      }
      const extension = JAVASCRIPT.has(block.lang) ? 'js' : 'ts';
      const name = join(dir, `${block.doc.replace(/[/.]/g, '_')}_L${block.line}.${extension}`);
      // Every block is a module of its own: its names do not clash with another block's.
      writeFileSync(name, `${block.code}\nexport {};\n`);
      origin.set(name, { doc: block.doc, line: block.line + 1 });
      groups.get(group)!.push(name);
    }

    const diagnostics: ts.Diagnostic[] = [];
    for (const files of groups.values()) {
      const tsFiles = files.filter((f) => f.endsWith('.ts'));
      const jsFiles = files.filter((f) => f.endsWith('.js'));
      diagnostics.push(...ts.getPreEmitDiagnostics(ts.createProgram(tsFiles, OPTIONS)));
      if (jsFiles.length !== 0) {
        // The JS blocks see the doc's context too.
        const context = tsFiles.filter((f) => f.endsWith('_context.ts'));
        diagnostics.push(...ts.getPreEmitDiagnostics(ts.createProgram([...context, ...jsFiles], JS_OPTIONS)).filter((d) => d.file?.fileName.endsWith('.js')));
      }
    }
    const problems = diagnostics.map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      if (!diagnostic.file || diagnostic.start === undefined) return message;
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      const where = origin.get(diagnostic.file.fileName);
      if (where === undefined) return `${relative(root, diagnostic.file.fileName)}:${line + 1}: ${message}`;
      return `${where.doc}:${where.line + line}: ${message}`;
    });
    assert.deepEqual(problems, []);
  });
});

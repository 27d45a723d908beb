// Every code block in the docs runs. A block right after `<!-- file: PATH -->` is a copy of (a
// part of) that file, which a test runs: it must appear in it verbatim, with the examples' relative
// import of src/index.js read as 'pef-front-websocket'. Every other ts/js block is extracted and
// type-checked against src/, the package name mapped to src/index.ts. Blocks marked sh, text,
// html, json, ini or perl are not TypeScript and are skipped here; a block with no language fails.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { docFiles, extractBlocks, type CodeBlock } from './markdown.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const TYPESCRIPT = new Set(['ts', 'typescript', 'mts']);
const JAVASCRIPT = new Set(['js', 'javascript', 'mjs']);
const NOT_CODE = new Set(['sh', 'bash', 'shell', 'console', 'text', 'txt', 'html', 'json', 'jsonc', 'ini', 'perl', 'pl', 'diff', 'http', 'yaml']);

const blocks = docFiles().flatMap((doc) => extractBlocks(doc, readFileSync(join(root, doc), 'utf8')));

/** The examples import the package from src/ by a relative path; the docs show the package name. */
function asPublished(code: string): string {
  return code.replace(/(['"])(?:\.\.\/)+src\/index\.js\1/g, "'pef-front-websocket'");
}

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
    const origin = new Map<string, CodeBlock>();
    const files: string[] = [];
    for (const block of checked) {
      const extension = JAVASCRIPT.has(block.lang) ? 'js' : 'ts';
      const name = join(dir, `${block.doc.replace(/[/.]/g, '_')}_L${block.line}.${extension}`);
      // Every block is a module of its own: its names do not clash with another block's.
      writeFileSync(name, `${block.code}\nexport {};\n`);
      origin.set(name, block);
      files.push(name);
    }
    const options: ts.CompilerOptions = {
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
      paths: {
        'pef-front-websocket': [join(root, 'src', 'index.ts')],
        'pef-front-websocket/protocol': [join(root, 'src', 'protocol', 'index.ts')],
      },
    };
    // JavaScript is checked for wrong calls and names, not for the annotations it cannot have.
    const jsOptions: ts.CompilerOptions = { ...options, allowJs: true, checkJs: true, noImplicitAny: false, noImplicitOverride: false };
    const diagnostics = [
      ...ts.getPreEmitDiagnostics(ts.createProgram(files.filter((f) => f.endsWith('.ts')), options)),
      ...ts.getPreEmitDiagnostics(ts.createProgram(files.filter((f) => f.endsWith('.js')), jsOptions)),
    ];
    const problems = diagnostics.map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      const block = diagnostic.file ? origin.get(diagnostic.file.fileName) : undefined;
      if (!diagnostic.file || diagnostic.start === undefined) return message;
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      if (block === undefined) return `${relative(root, diagnostic.file.fileName)}:${line + 1}: ${message}`;
      return `${block.doc}:${block.line + 1 + line}: ${message}`;
    });
    assert.deepEqual(problems, []);
  });
});

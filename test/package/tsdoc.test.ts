// Every export of the package's entry points carries a doc comment (TypeDoc renders them into
// docs/api), and so does every member users see: the properties of exported interfaces and the
// public members of exported classes. Every optional property of an options interface states its
// default. Walked with the TypeScript compiler API, as TypeDoc walks them.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entryPoints = ['src/index.ts', 'src/protocol/index.ts'];

const configFile = ts.readConfigFile(`${root}tsconfig.build.json`, ts.sys.readFile);
const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
const program = ts.createProgram(
  entryPoints.map((entry) => `${root}${entry}`),
  { ...parsed.options, noEmit: true },
);
const checker = program.getTypeChecker();

function documented(symbol: ts.Symbol): boolean {
  if (symbol.getDocumentationComment(checker).some((part) => part.text.trim() !== '')) return true;
  // A doc comment made only of tags (@deprecated, @param ...) documents as well.
  return symbol.getJsDocTags(checker).length > 0;
}

function resolve(symbol: ts.Symbol): ts.Symbol {
  return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
}

/** Members users see: interface properties and methods, public class members; not #private or `_`-prefixed. */
function visibleMembers(symbol: ts.Symbol): ts.Symbol[] {
  const members: ts.Symbol[] = [];
  const add = (table: ts.SymbolTable | undefined): void => {
    table?.forEach((member, name) => {
      const key = String(name);
      if (key.startsWith('#') || key.startsWith('_') || key === '__constructor' || key === 'prototype') return;
      const declaration = member.declarations?.[0];
      if (declaration && ts.canHaveModifiers(declaration)) {
        const flags = ts.getCombinedModifierFlags(declaration as ts.Declaration);
        if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return;
      }
      if (declaration && ts.getJSDocTags(declaration).some((tag) => tag.tagName.text === 'internal')) return;
      members.push(member);
    });
  };
  if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class)) add(symbol.members);
  if (symbol.flags & ts.SymbolFlags.Class) add(symbol.exports);
  return members;
}

for (const entry of entryPoints) {
  const source = program.getSourceFile(`${root}${entry}`);
  assert.ok(source, `${entry} is not in the program`);
  const moduleSymbol = checker.getSymbolAtLocation(source)!;
  const exports = checker.getExportsOfModule(moduleSymbol).map((symbol) => [symbol.getName(), resolve(symbol)] as const);

  describe(`the exports of ${entry}`, () => {
    test('every export has a doc comment', () => {
      const missing = exports.filter(([, symbol]) => !documented(symbol)).map(([name]) => name);
      assert.deepEqual(missing, [], `exports of ${entry} without a doc comment`);
    });

    test('every property of an exported interface and every public member of an exported class has a doc comment', () => {
      const missing: string[] = [];
      for (const [name, symbol] of exports) {
        for (const member of visibleMembers(symbol)) {
          if (!documented(member)) missing.push(`${name}.${member.getName()}`);
        }
      }
      assert.deepEqual(missing, [], `members in ${entry} without a doc comment`);
    });

    test('every optional property of an options interface states its default', () => {
      const missing: string[] = [];
      for (const [name, symbol] of exports) {
        if (!(symbol.flags & ts.SymbolFlags.Interface) || !name.endsWith('Options')) continue;
        for (const member of visibleMembers(symbol)) {
          if (!(member.flags & ts.SymbolFlags.Optional)) continue;
          const text = ts.displayPartsToString(member.getDocumentationComment(checker));
          const tags = member.getJsDocTags(checker).map((tag) => tag.name);
          if (!/\bDefault\b|\bdefault\b/.test(text) && !tags.includes('default') && !tags.includes('defaultValue')) {
            missing.push(`${name}.${member.getName()}`);
          }
        }
      }
      assert.deepEqual(missing, [], `options in ${entry} without their default`);
    });
  });
}

describe('npm run docs', () => {
  test('TypeDoc renders the API reference without a warning (every type a public signature names is exported)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'pef-ws-typedoc-'));
    try {
      const typedoc = join(root, 'node_modules', '.bin', 'typedoc');
      const { stdout, stderr } = await promisify(execFile)(typedoc, ['--out', out, '--treatWarningsAsErrors'], { cwd: root });
      assert.doesNotMatch(stdout + stderr, /warning|error/i);
      assert.match(readFileSync(join(out, 'index.html'), 'utf8'), /pef-front-websocket/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

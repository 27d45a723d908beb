// Where a handler module went wrong, as Node itself would say it: the file, line and column, and
// the code frame of a syntax error. Node's ESM loader puts no position into a SyntaxError's
// message or stack (only its fatal-exception printer knows it), so the position comes from
// `node --check` on the file; a TypeScript loader (tsx's esbuild) names it in its message.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** A position in a module and what to show for it. */
export interface LoadFailure {
  /** 1-based line and column, when known. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** The error's message without the loader's wrapping. */
  readonly message: string;
  /** The source line with a caret under the column (syntax errors), or ''. */
  readonly frame: string;
}

/** `    code\n    ^` for a 1-based line and column of `file`; '' when the file cannot be read. */
function codeFrame(file: string, line: number, column: number): string {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8').split(/\r?\n/)[line - 1];
  } catch {
    return '';
  }
  if (text === undefined) return '';
  const pad = text.slice(0, column - 1).replace(/[^\t]/g, ' ');
  return `    ${text}\n    ${pad}^`;
}

/** The position of a syntax error in a JavaScript file, from `node --check` (null if none found). */
function checkSyntax(file: string): { line: number; column: number } | null {
  const env = { ...process.env };
  delete env['NODE_OPTIONS']; // no loader: plain Node parses plain JavaScript
  const result = spawnSync(process.execPath, ['--check', file], { env, encoding: 'utf8', timeout: 10_000 });
  // "<file>:<line>\n<source line>\n<spaces>^..."
  const match = /:(\d+)\r?\n(.*)\r?\n([ \t]*)\^/.exec(result.stderr ?? '');
  if (match === null) return null;
  return { line: Number(match[1]), column: match[3]!.length + 1 };
}

/** Describes what importing `file` threw: its position in that file when one can be found. */
export function describeLoadFailure(file: string, error: unknown): LoadFailure {
  if (!(error instanceof Error)) return { line: undefined, column: undefined, message: String(error), frame: '' };
  // esbuild (tsx): "Transform failed with 1 error:\n<file>:3:12: ERROR: Expected ")" but found ";""
  const transform = /^(.*):(\d+):(\d+): ERROR: (.*)$/m.exec(error.message);
  if (transform !== null) {
    const line = Number(transform[2]);
    const column = Number(transform[3]) + 1; // esbuild counts columns from 0
    return { line, column, message: transform[4]!, frame: codeFrame(file, line, column) };
  }
  if (error.name === 'SyntaxError') {
    const position = checkSyntax(file);
    if (position !== null) {
      return { ...position, message: error.message, frame: codeFrame(file, position.line, position.column) };
    }
    return { line: undefined, column: undefined, message: error.message, frame: '' };
  }
  // A throw while the module ran: the first frame of the stack in this file.
  const url = pathToFileURL(file).href;
  for (const stackLine of (error.stack ?? '').split('\n')) {
    const at = stackLine.indexOf(url) !== -1 ? stackLine.indexOf(url) + url.length : stackLine.indexOf(file) !== -1 ? stackLine.indexOf(file) + file.length : -1;
    if (at === -1) continue;
    const position = /^:(\d+):(\d+)/.exec(stackLine.slice(at));
    if (position !== null) return { line: Number(position[1]), column: Number(position[2]), message: error.message, frame: '' };
  }
  return { line: undefined, column: undefined, message: error.message, frame: '' };
}

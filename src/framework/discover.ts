// Loads the handler modules of a folder, as PEF found `app/<App>/WebSocket/<Class>.pm`: one class
// per file, the route named after the file. Loading happens at startup and fails fast, with an
// error naming the file, where PEF loaded lazily and answered 500.

import { readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HandlerClass } from './handler.js';
import { describeLoadFailure } from './load-error.js';

/** Loading a handler module failed: `file` is the module (or the folder), `cause` what went wrong. */
export class HandlerLoadError extends Error {
  /** Always 'HandlerLoadError'. */
  override readonly name = 'HandlerLoadError';
  /** A stable code to match on. */
  readonly code = 'WS_ERR_HANDLER_LOAD';
  /** The absolute path of the module (or folder) that failed. */
  readonly file: string;
  /** The 1-based line in `file` where it went wrong, when known (a syntax error, a throw on import). */
  readonly line: number | undefined;
  /** The 1-based column on that line, when known. */
  readonly column: number | undefined;
  /**
   * What Node would print under the message: the code frame of a syntax error (the line, a caret
   * under the column), or the stack of what the module threw while it loaded; '' otherwise.
   */
  readonly details: string;

  /**
   * The message starts with `file:line:column: ` (or `file: ` without a position), as compilers
   * print it; `cause` is what was thrown, with its stack.
   */
  constructor(
    file: string,
    message: string,
    options?: { cause?: unknown; line?: number | undefined; column?: number | undefined; details?: string },
  ) {
    const at = options?.line === undefined ? file : `${file}:${options.line}:${options.column ?? 1}`;
    super(`${at}: ${message}`, options);
    this.file = file;
    this.line = options?.line;
    this.column = options?.column;
    this.details = options?.details ?? '';
  }
}

/** A handler class found in a module. */
export interface HandlerModule {
  /** The module's absolute path. */
  readonly file: string;
  /** The file's base name without extension: `Echo` for `Echo.ts`, giving the route `/wsEcho`. */
  readonly name: string;
  readonly Class: HandlerClass;
}

const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);
const TS_EXTENSIONS = new Set(['.ts', '.mts']);

/**
 * Whether this process can import `.ts` files: Node with type stripping (22.6+ behind a flag,
 * 23.6+ by default) or a loader such as tsx registered through the command line or NODE_OPTIONS.
 */
export function canLoadTypeScript(): boolean {
  const features = process.features as { typescript?: unknown };
  if (features.typescript) return true;
  const flags = `${process.execArgv.join(' ')} ${process.env['NODE_OPTIONS'] ?? ''}`;
  return /tsx|ts-node|--experimental-strip-types|--experimental-transform-types/.test(flags);
}

/**
 * Whether a file name is a handler module: `.js`/`.mjs`/`.cjs` (and `.ts`/`.mts`), not a
 * declaration, not a test, not hidden (`.x`) and not a helper (`_x`).
 */
export function isHandlerFile(name: string, typescript: boolean): boolean {
  // '_helpers.ts' beside 'Echo.ts' is a module the handlers import, not a handler.
  if (name.startsWith('.') || name.startsWith('_')) return false;
  if (/\.d\.[cm]?ts$/.test(name)) return false;
  if (/\.(test|spec)\.[cm]?[jt]s$/.test(name)) return false;
  const extension = extname(name);
  return JS_EXTENSIONS.has(extension) || (typescript && TS_EXTENSIONS.has(extension));
}

/** A function that `new` can call: a class (or an old-style constructor), not an arrow or async function. */
function isClass(value: unknown): value is HandlerClass {
  if (typeof value !== 'function') return false;
  const prototype: unknown = (value as { prototype?: unknown }).prototype;
  return typeof prototype === 'object' && prototype !== null;
}

/** The handler class of a loaded module: its default export, or the export named like the file. */
function pickClass(exports: Record<string, unknown>, name: string): HandlerClass | null {
  if (isClass(exports['default'])) return exports['default'];
  if (isClass(exports[name])) return exports[name];
  // CommonJS `exports.Echo = class ...` arrives as the default export's property.
  const commonjs = exports['default'];
  if (typeof commonjs === 'object' && commonjs !== null) {
    const named: unknown = (commonjs as Record<string, unknown>)[name];
    if (isClass(named)) return named;
  }
  return null;
}

/** How loadHandlerModules reads a folder. */
export interface LoadOptions {
  /** Whether `.ts`/`.mts` files can be imported. Default: canLoadTypeScript(). */
  readonly typescript?: boolean;
  /** Receives a line about handler files that were skipped (TypeScript without a loader). */
  readonly warn?: (line: string) => void;
}

/** What to do about `.ts` handlers in a process that cannot import them. */
const TYPESCRIPT_FIX = 'this process cannot import TypeScript: run it with NODE_OPTIONS="--import tsx" (with tsx installed), or build them to .js';

/**
 * Imports every handler module directly in `dir` (not its subfolders), in name order, and returns
 * their classes. Files and folders whose names start with `_` are not handlers (a place for
 * helper modules). Throws HandlerLoadError naming the file when a module throws on import or
 * exports no class, and naming the folder when it does not exist, cannot be read or holds no
 * handler module. `.ts` handlers skipped for want of a loader are reported to `warn`.
 */
export async function loadHandlerModules(dir: string, options: LoadOptions = {}): Promise<HandlerModule[]> {
  const folder = resolve(dir);
  const typescript = options.typescript ?? canLoadTypeScript();
  let names: string[];
  try {
    const entries = await readdir(folder, { withFileTypes: true });
    names = entries.filter((entry) => entry.isFile() || entry.isSymbolicLink()).map((entry) => entry.name);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'the handler folder does not exist' : code === 'ENOTDIR' ? 'is not a folder' : `cannot read the handler folder: ${(error as Error).message}`;
    throw new HandlerLoadError(folder, reason, { cause: error });
  }
  names.sort();
  const modules: HandlerModule[] = [];
  for (const fileName of names) {
    if (!isHandlerFile(fileName, typescript)) continue;
    const file = join(folder, fileName);
    const name = basename(fileName, extname(fileName));
    let exports: Record<string, unknown>;
    try {
      exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      const { line, column, message, frame } = describeLoadFailure(file, error);
      const details = frame !== '' ? frame : error instanceof Error && error.name !== 'SyntaxError' ? (error.stack ?? '') : '';
      throw new HandlerLoadError(file, `failed to load: ${message}`, { cause: error, line, column, details });
    }
    const Class = pickClass(exports, name);
    if (Class === null) {
      throw new HandlerLoadError(file, `exports no handler class (expected a default export or an export named "${name}" that is a class)`);
    }
    modules.push({ file, name, Class });
  }
  const skipped = typescript ? [] : names.filter((n) => TS_EXTENSIONS.has(extname(n)) && isHandlerFile(n, true));
  if (modules.length === 0) {
    throw new HandlerLoadError(folder, `no handler modules in the folder${skipped.length === 0 ? '' : ` (its .ts files were skipped: ${TYPESCRIPT_FIX})`}`);
  }
  if (skipped.length !== 0) options.warn?.(`pef-front-websocket: skipped ${skipped.join(', ')} in ${folder}: ${TYPESCRIPT_FIX}`);
  return modules;
}

// The command line as every pef-ws command reads it: node:util parseArgs, strict, with positionals;
// `--help` prints the command's usage and exits 0, a bad argument prints it and exits 2.

import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Prints `pef-ws: message` and the usage to stderr, and exits 2. */
export function usageError(usage: string, message: string): never {
  console.error(`pef-ws: ${message}\n${usage}`);
  process.exit(2);
}

/** Parses `argv` against `options` (plus -h/--help); exits as the header says on --help or a bad argument. */
export function parseCommandLine<T extends Options>(argv: string[], usage: string, options: T) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    usageError(usage, (error as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed as unknown as ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: T }>>;
}

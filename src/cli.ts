#!/usr/bin/env node
// pef-ws: the command line. Each command lives in src/cli/<command>.ts and exports
// `run(argv)`, loaded only when named. Runs from src/ under tsx and from dist/ as the `pef-ws` bin.

interface Command {
  /** Runs the command with the arguments that follow its name. */
  run(argv: string[]): Promise<void>;
  /** The command's usage text, printed by `pef-ws --help` and on a usage error. */
  USAGE: string;
}

const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  serve: () => import('./cli/serve.js'),
  connect: () => import('./cli/connect.js'),
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const load = name === undefined ? undefined : COMMANDS[name];
  if (load === undefined) {
    const usages = await Promise.all(Object.values(COMMANDS).map(async (loadCommand) => (await loadCommand()).USAGE));
    if (name === '--help' || name === '-h') {
      console.log(usages.join('\n\n'));
      process.exit(0);
    }
    console.error(`pef-ws: ${name === undefined ? 'no command given' : `unknown command "${name}"`}\n${usages.join('\n\n')}`);
    process.exit(2);
  }
  await (await load()).run(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`pef-ws: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

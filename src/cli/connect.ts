// pef-ws connect: an interactive client for debugging a server, as wscat and websocat are. Lines
// read from stdin go out as text messages; messages received are printed to stdout; what happens
// to the connection, and with --trace every frame in NODE_DEBUG's format, goes to stderr.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect, type ConnectOptions } from '../node/client.js';

export const USAGE = `usage: pef-ws connect <url> [--protocol P]... [--header 'Name: value']... [--origin O]
                      [--compression] [--trace] [--ca FILE] [--insecure]

  <url>              ws://host:port/path or wss://...; IPv6 as ws://[::1]:8080/
  --protocol P       offer the subprotocol P (repeatable, in order of preference)
  --header 'N: V'    add a header field to the upgrade request (repeatable)
  --origin O         send Origin: O
  --compression      offer permessage-deflate (off by default, so traces show the bytes sent)
  --trace            print every frame to stderr, as NODE_DEBUG=pef-ws does
  --ca FILE          wss: trust the CA certificate(s) in FILE (PEM)
  --insecure         wss: accept a certificate that does not verify

Lines typed (or piped) are sent as text messages; messages received are printed, text as it is,
binary as "binary <hex>". End of input (Ctrl-D) closes the connection with 1000. Exit status: 0
after a clean close, 1 when the handshake or the connection failed, 2 for bad arguments.`;

function usageError(message: string): never {
  console.error(`pef-ws: ${message}\n${USAGE}`);
  process.exit(2);
}

/** The options for connect() from the command line; bad arguments print the usage and exit 2. */
function parseSettings(argv: string[]): { url: string; options: ConnectOptions } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        protocol: { type: 'string', multiple: true },
        header: { type: 'string', multiple: true },
        origin: { type: 'string' },
        compression: { type: 'boolean', default: false },
        trace: { type: 'boolean', default: false },
        ca: { type: 'string' },
        insecure: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positionals.length !== 1) usageError('connect takes exactly one URL');
  const headers: Record<string, string> = {};
  for (const field of values.header ?? []) {
    const colon = field.indexOf(':');
    if (colon <= 0) usageError(`--header takes 'Name: value', not ${JSON.stringify(field)}`);
    headers[field.slice(0, colon).trim()] = field.slice(colon + 1).trim();
  }
  const options: ConnectOptions = { headers, compression: values.compression, trace: values.trace };
  if (values.protocol) options.protocols = values.protocol;
  if (values.origin !== undefined) options.origin = values.origin;
  if (values.insecure) options.rejectUnauthorized = false;
  if (values.ca !== undefined) options.ca = readFileSync(values.ca);
  return { url: positionals[0]!, options };
}

export async function run(argv: string[]): Promise<void> {
  const { url, options } = parseSettings(argv);
  let client;
  try {
    client = connect(
      url,
      {
        onMessage(message, type) {
          process.stdout.write(type === 'text' ? `${message as string}\n` : `binary ${(message as Buffer).toString('hex')}\n`);
        },
        onDrain() {
          lines?.resume();
        },
        onError(error) {
          const { code, status, body } = error as { code?: string; status?: number; body?: Buffer };
          const detail = status ? ` (HTTP ${status})` : '';
          console.error(`pef-ws: ${code ?? error.name}${detail}: ${error.message}`);
          // A refusal's body usually says why.
          if (body !== undefined && body.length !== 0 && status !== 0) console.error(body.toString('utf8').trimEnd());
        },
      },
      options,
    );
  } catch (error) {
    usageError((error as Error).message);
  }
  let lines: ReturnType<typeof createInterface> | null = null;
  const opened = await client.opened.then(
    () => true,
    () => false,
  );
  if (opened) {
    const extensions = client.extensions === '' ? '' : `, extensions ${client.extensions}`;
    const protocol = client.protocol === '' ? '' : `, subprotocol ${client.protocol}`;
    console.error(`connected to ${client.url}${protocol}${extensions}`);
    lines = createInterface({ input: process.stdin, terminal: false });
    const input = lines;
    input.on('line', (line) => {
      // Above the high-water mark, reading waits for onDrain.
      if (!client.send(line)) input.pause();
    });
    input.on('close', () => client.close());
  }
  const { code, reason, wasClean } = await client.closed;
  if (opened) console.error(`closed: ${code}${reason === '' ? '' : ` ${reason}`}${wasClean ? '' : ' (not clean)'}`);
  lines?.close();
  process.stdin.destroy();
  process.exitCode = opened && wasClean ? 0 : 1;
}

// Drives Autobahn|Testsuite's fuzzingserver with our client: asks for the case count, runs each case
// echoing every message back with its type until the server closes, then asks for the reports.
// Usage: node --import tsx examples/autobahn-client.ts [ws://127.0.0.1:9001] (docs/client.md).

import { connect } from '../src/index.js';

const base = process.argv[2] ?? 'ws://127.0.0.1:9001';
const agent = 'pef-front-websocket';

let count = 0;
for await (const { data } of connect(`${base}/getCaseCount`, {}, { compression: false })) count = Number(data);

const started = performance.now();
for (let i = 1; i <= count; i++) {
  const client = connect(
    `${base}/runCase?case=${i}&agent=${agent}`,
    {
      onMessage(message, type) {
        client.send(message, type);
      },
    },
    // Section 9 sends messages of up to 16 MiB; the heartbeat would only add Pings to the wire logs.
    { maxPayload: 64 * 1024 * 1024, heartbeatInterval: 0 },
  );
  await client.closed;
}
await connect(`${base}/updateReports?agent=${agent}`).closed;
console.log(`${count} cases in ${((performance.now() - started) / 1000).toFixed(1)} s`);

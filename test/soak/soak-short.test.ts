// The soak in miniature, inside `npm test`: a few seconds of connections coming and going with
// mixed messages, every echo byte-exact and in order, memory and handles back where they started.
// The long run is `npm run soak` (test/soak/soak.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MiB } from '../hostile/helpers.js';
import { runSoak } from './soak.js';

// The 150 s deadline is a guard (a few seconds on an idle machine), below the runner's 180 s.
test('4,000 mixed messages over connections that come and go echo byte-exact and leave nothing behind', async () => {
  const result = await runSoak({ connections: 40, messages: 4000, maxBytes: 16 * 1024, seconds: 150, seed: 7 });
  assert.equal(result.messages, 4000);
  assert.ok(result.connections > 40, `${result.connections} connections came and went`);
  assert.ok(result.fragmented > 0 && result.text > 0 && result.terminated > 0);
  assert.equal(result.serverEnded, result.connections);
  assert.deepEqual(result.serverUnexpected, []);
  assert.ok(result.memoryAfter - result.memoryBefore < 16 * MiB, `memory ${result.memoryBefore} -> ${result.memoryAfter}`);
  for (const [kind, n] of Object.entries(result.handlesAfter)) {
    assert.ok(n <= (result.handlesBefore[kind] ?? 0), `${n} ${kind} left, ${result.handlesBefore[kind] ?? 0} before`);
  }
});

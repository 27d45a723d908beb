// Shared settings of the property suites: the number of runs comes from FUZZ_RUNS (small by
// default, so `npm test` stays fast; `npm run fuzz` sets 20000) and the seed from FUZZ_SEED, or a
// fresh one that is printed first, so any run can be replayed. fast-check prints the seed and the
// path of a failing run itself (fc.assert throws with them; verbose adds the counterexample steps).

import fc from 'fast-check';

const runs = Number(process.env['FUZZ_RUNS'] ?? '300');
const seedText = process.env['FUZZ_SEED'];

/** The seed of this process's runs: FUZZ_SEED, or drawn now. */
export const seed = seedText !== undefined && seedText !== '' ? Number(seedText) : (Date.now() ^ (Math.random() * 0x100000000)) | 0;

/** Base number of runs (FUZZ_RUNS). */
export const numRuns = Number.isFinite(runs) && runs > 0 ? Math.floor(runs) : 300;

let printed = false;

/** fc.assert parameters: FUZZ_RUNS times `scale` runs (at least 1), the seed, verbose failure reports. */
export function params<T>(scale = 1): fc.Parameters<T> {
  if (!printed) {
    printed = true;
    console.log(`fast-check seed ${seed} (replay with FUZZ_SEED=${seed}), ${numRuns} runs`);
  }
  return { numRuns: Math.max(1, Math.floor(numRuns * scale)), seed, verbose: 1 };
}

/** Cut points for splitting a buffer of `length` bytes: sorted, distinct, inside (0, length). */
export function splitAt(data: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (data.length === 0 ? 0 : c % (data.length + 1))))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    if (p <= start) continue;
    pieces.push(data.subarray(start, p));
    start = p;
  }
  pieces.push(data.subarray(start));
  return pieces;
}

/** Arbitrary cut points (indices are reduced modulo the buffer length by splitAt). */
export const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

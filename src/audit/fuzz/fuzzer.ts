// The fuzzing loop, on fast-check: search (runs or a time limit, from a seed), then shrink the first
// failing case to the smallest sequence that still fails the same way. Both phases draw the same
// cases from the same seed, so the search's failing case is found again by its path and shrunk from
// there. Without --spawn a crash is not shrunk: the server is gone, nothing can be replayed.

import type { Finding, FuzzCase } from './case.js';
import { runFuzzCase, crashFoundLater, FuzzError, type CaseOutcome, type ExchangeSettings } from './exchange.js';
import { casePlanArbitrary, toCase, type CasePlan, type FastCheckModule } from './generate.js';
import { checkLiveness, type Target } from './target.js';

/** How to fuzz. */
export interface FuzzOptions extends ExchangeSettings {
  /** The seed: the same seed (and server behaviour) gives the same cases. */
  seed: number;
  /** Cases to run; ignored when `time` is set. */
  runs: number;
  /** Seconds to search for (instead of a number of runs), or null. */
  time: number | null;
  /** Seconds shrinking may take; past it the smallest failing case so far is reported. */
  shrinkTime: number;
  /** Offer permessage-deflate in some cases (RFC 7692). */
  compression: boolean;
  /** Called after each case: the phase and how many cases it has run. */
  onProgress?: (phase: 'search' | 'shrink', runs: number) => void;
}

/** A finding with the case that shows it. */
export interface FoundFault {
  /** The finding, as the JSON report writes it. */
  finding: Finding;
  /** The (shrunk) case: what the replay file saves. */
  fuzzCase: FuzzCase;
  /** Cases run while shrinking. */
  shrinkRuns: number;
  /** Whether the case was shrunk (false: a crash without --spawn, or the failure did not happen again). */
  shrunk: boolean;
  /** Whether the search's failing case failed again when replayed for shrinking. */
  reproduced: boolean;
}

/** What a fuzzing run found. */
export interface FuzzResult {
  /** The seed used. */
  seed: number;
  /** Cases run by the search. */
  runs: number;
  /** The faults found (the search stops at the first). */
  findings: FoundFault[];
}

interface Failure {
  fuzzCase: FuzzCase;
  outcome: CaseOutcome & { finding: Finding };
}

/** Runs the search and shrinks what it finds. Throws FuzzError when the server cannot be fuzzed. */
export async function fuzz(fc: FastCheckModule, target: Target, options: FuzzOptions): Promise<FuzzResult> {
  const arbitrary = casePlanArbitrary(fc, { compression: options.compression });
  // Written by the properties (fast-check calls them), read after each phase.
  const state: { fatal: unknown; failure: Failure | null; smallest: Failure | null; down: boolean } = { fatal: null, failure: null, smallest: null, down: false };
  let runs = 0;
  // The last case run to its end, and the frames it sent: the crash, when the next one finds the server gone.
  let last: { fuzzCase: FuzzCase; framesSent: number } | null = null;

  // A server we do not start that cannot take this case although it took the last: it died after
  // that case (its exit raced the liveness check that followed it), so the last case is the crash.
  // Any other error ends the run (FuzzError: the server cannot be fuzzed).
  const crashedBefore = async (error: unknown): Promise<Failure | null> => {
    if (target.spawned || last === null || !(error instanceof FuzzError)) return null;
    const liveness = await checkLiveness(target.url, options.timeout);
    if (liveness.accepts) return null;
    return { fuzzCase: last.fuzzCase, outcome: crashFoundLater(last.fuzzCase, last.framesSent, liveness.problem) as Failure['outcome'] };
  };

  const search = fc.asyncProperty(arbitrary, async (plan: CasePlan) => {
    runs++;
    const fuzzCase = toCase(plan);
    try {
      const outcome = await runFuzzCase(target, fuzzCase, options);
      options.onProgress?.('search', runs);
      if (outcome.finding === null) {
        last = { fuzzCase, framesSent: outcome.framesSent };
        return true;
      }
      state.failure = { fuzzCase, outcome: outcome as Failure['outcome'] };
    } catch (error) {
      const crashed = await crashedBefore(error);
      if (crashed !== null) {
        runs--; // this case never ran
        state.failure = crashed;
      } else {
        state.fatal = error;
      }
    }
    return false; // endOnFailure: the search stops here
  });
  const found = await fc.check(search, {
    seed: options.seed,
    endOnFailure: true,
    ...(options.time === null ? { numRuns: options.runs } : { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: options.time * 1000 }),
  });
  if (state.fatal !== null) throw state.fatal;
  const first = state.failure;
  if (!found.failed || first === null) return { seed: options.seed, runs, findings: [] };
  if (first.outcome.finding.kind === 'crash' && !target.spawned) {
    return { seed: options.seed, runs, findings: [{ finding: first.outcome.finding, fuzzCase: first.fuzzCase, shrinkRuns: 0, shrunk: false, reproduced: false }] };
  }

  // Shrink: replay the failing case by its path, and let fast-check try smaller ones. A smaller
  // case counts as failing only when it fails the same way.
  const kind = first.outcome.finding.kind;
  state.smallest = first;
  let shrinkRuns = 0;
  let reproduced = false;
  const deadline = Date.now() + options.shrinkTime * 1000;
  last = { fuzzCase: first.fuzzCase, framesSent: first.outcome.framesSent };
  const shrink = fc.asyncProperty(arbitrary, async (plan: CasePlan) => {
    if (state.fatal !== null || state.down || Date.now() > deadline) return true; // out of budget: the rest pass without a run
    shrinkRuns++;
    const fuzzCase = toCase(plan);
    try {
      const outcome = await runFuzzCase(target, fuzzCase, options);
      options.onProgress?.('shrink', shrinkRuns);
      last = { fuzzCase, framesSent: outcome.framesSent };
      if (outcome.finding?.kind !== kind) return true;
      if (shrinkRuns === 1) reproduced = true;
      state.smallest = { fuzzCase, outcome: outcome as Failure['outcome'] };
      return false;
    } catch (error) {
      // Without --spawn nothing more can be run once the server is gone: the case before this one
      // killed it, and that crash is the finding.
      const crashed = await crashedBefore(error);
      if (crashed === null) state.fatal = error;
      else {
        shrinkRuns--; // this case never ran
        state.down = true;
        state.smallest = crashed;
      }
      return true;
    }
  });
  await fc.check(shrink, { seed: options.seed, path: found.counterexamplePath!, numRuns: 1 });
  if (state.fatal !== null) throw state.fatal;
  const smallest = state.smallest ?? first;
  return {
    seed: options.seed,
    runs,
    findings: [{ finding: smallest.outcome.finding, fuzzCase: smallest.fuzzCase, shrinkRuns, shrunk: smallest !== first && !state.down, reproduced }],
  };
}

export { FuzzError };

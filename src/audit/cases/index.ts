// The whole battery, in order of RFC section, and the --cases filter.

import type { AuditCase } from '../case.js';
import { cases as handshake } from './handshake.js';
import { cases as framing } from './framing.js';
import { cases as pings } from './pings.js';
import { cases as reserved } from './reserved.js';
import { cases as fragmentation } from './fragmentation.js';
import { cases as utf8 } from './utf8.js';
import { cases as close } from './close.js';
import { cases as limits } from './limits.js';
import { cases as deflate } from './deflate.js';

/** Every case of the battery, in report order. Ids are unique. */
export const ALL_CASES: readonly AuditCase[] = [...handshake, ...framing, ...pings, ...reserved, ...fragmentation, ...utf8, ...close, ...limits, ...deflate];

/** A glob over case ids: `*` matches any run of characters (dots included), `?` one character. */
function globToRegExp(glob: string): RegExp {
  const source = glob.trim().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`);
}

/**
 * The cases whose id matches the filter: comma-separated globs (`utf8.*,close.*`); a glob starting
 * with `!` excludes. No filter, or only exclusions: start from every case.
 */
export function selectCases(filter?: string, cases: readonly AuditCase[] = ALL_CASES): AuditCase[] {
  const globs = (filter ?? '').split(',').map((g) => g.trim()).filter((g) => g !== '');
  const include = globs.filter((g) => !g.startsWith('!')).map(globToRegExp);
  const exclude = globs.filter((g) => g.startsWith('!')).map((g) => globToRegExp(g.slice(1)));
  return cases.filter((c) => (include.length === 0 || include.some((r) => r.test(c.id))) && !exclude.some((r) => r.test(c.id)));
}

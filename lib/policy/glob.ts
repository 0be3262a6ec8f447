/**
 * One glob dialect for identities, action types and resource paths, compiled
 * once to an anchored RegExp:
 *   `**`  any characters, `/` included
 *   `*`   any characters except `/`
 *   `?`   one character except `/`
 *   `\x`  the character x itself (so `\*` is a literal star)
 * Everything else is literal: `.` is a dot, not "any character". Matching is
 * on the whole string, case-sensitive, with no normalization.
 */
import { describe } from '../errors';

export interface CompiledGlob {
  readonly source: string;
  test(value: string): boolean;
}

const REGEX_SPECIAL = /[.+^${}()|[\]\\\/-]/g;

/** Compiles `pattern`; throws a RangeError naming the problem for an invalid one. */
export function compileGlob(pattern: string): CompiledGlob {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 1024) {
    throw new RangeError(`Expected a non-empty glob of at most 1024 characters but received ${describe(pattern)}`);
  }
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      if (i + 1 >= pattern.length) throw new RangeError(`Glob "${pattern}" ends with a lone backslash`);
      re += pattern[++i].replace(REGEX_SPECIAL, '\\$&').replace(/[*?]/, '\\$&');
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
        while (pattern[i + 1] === '*') i++; // *** is **
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(REGEX_SPECIAL, '\\$&');
    }
  }
  const regex = new RegExp(re + '$', 's');
  // A pattern without wildcards is an exact comparison.
  const literal = !/[*?\\]/.test(pattern);
  return literal
    ? { source: pattern, test: (v) => v === pattern }
    : { source: pattern, test: (v) => regex.test(v) };
}

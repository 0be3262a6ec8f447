// Tools some tests need (a compiler, the CUDA toolkit, pdftotext, a GPU).
// Where one is missing, the tests that need it are a visible skip naming what
// is missing; where the environment promises it (.ci/run sets
// GUARDKERNEL_REQUIRE_TOOLS=1 after installing them; scripts/device-check.sh
// sets GUARDKERNEL_REQUIRE_GPU=1), its absence is a failing test instead.
import { test } from 'vitest';
import { runSync } from './child';

/**
 * Returns true when the tests needing `what` must be skipped. `missing` is
 * null when it is present, else why not; `requiredBy` names the environment
 * variable that, set to 1, turns a skip into a failure.
 */
export function skipWithout(what: string, missing: string | null, requiredBy = 'GUARDKERNEL_REQUIRE_TOOLS'): boolean {
  if (missing === null) return false;
  if (process.env[requiredBy] === '1') {
    test(`${what} is present (${requiredBy}=1 requires it)`, () => {
      throw new Error(`${what} is missing: ${missing}`);
    });
  } else {
    test.skip(`${what} is missing here (${missing}): its tests are skipped`, () => {});
  }
  return true;
}

/** null when `command args` runs and exits 0, else why not. */
export function toolMissing(command: string, args: readonly string[] = ['--version']): string | null {
  const r = runSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  if (r.error) return `${command}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`;
  return r.status === 0 ? null : `${command} ${args.join(' ')} exited ${r.status}`;
}

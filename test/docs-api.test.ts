// The API reference (npm run docs: TypeDoc over lib/index.ts and the subpath
// entries, typedoc.json) builds without a warning: a broken {@link}, an
// unknown tag or a public signature naming a type the reference cannot show
// fails here. Nothing is written (--emit none).
import path from 'node:path';
import { expect, test } from 'vitest';
import { runSync } from './child';

const repoRoot = path.resolve(__dirname, '..');

// TypeDoc reads the TypeScript sources only: the result is the same in the
// GUARDKERNEL_NATIVE=0 pass, which skips it rather than spend another minute.
test.skipIf(process.env.GUARDKERNEL_NATIVE === '0')('TypeDoc builds the API reference without warnings', () => {
  const typedoc = path.join(path.dirname(require.resolve('typedoc/package.json')), 'bin', 'typedoc');
  const r = runSync(process.execPath, [typedoc, '--emit', 'none', '--treatWarningsAsErrors', '--logLevel', 'Warn'], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
  expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
}, 320_000);

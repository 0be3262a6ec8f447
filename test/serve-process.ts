// Starts `guardkernel serve` as a child process for the tests that need a
// real server: its output, a promise for "ready", and one for its exit code.
import { startChild } from './child';
import path from 'node:path';
import { repoRoot } from './helpers';

export const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');

export function startServe(args: string[], env: Record<string, string> = {}) {
  const child = startChild(process.execPath, [cli, 'serve', ...args], { env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }, 600_000);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 10_000);
    child.stdout!.on('data', () => {
      if (out.includes('guardkernel: policy')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exited, output: () => out, errors: () => err };
}

import { runSync } from './child';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ProcessSandbox } from '../lib/sandbox';

/** The Linux process sandbox can run here: the native pass on Linux with the addon loaded. (macOS and Windows: test/process-sandbox-platforms.test.ts.) */
export const sandboxCaps = ProcessSandbox.capabilities();
export const canSandbox = sandboxCaps.available && process.platform === 'linux';

/** python3's real executable and prefix (a pyenv shim is a script that needs more than python). */
export const python = ((): { exe: string; prefix: string } | null => {
  try {
    const r = runSync('python3', ['-c', 'import sys; print(sys.executable); print(sys.base_prefix)'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) return null;
    const out = r.stdout.trim().split('\n');
    return { exe: fs.realpathSync(out[0]), prefix: fs.realpathSync(out[1]) };
  } catch {
    return null;
  }
})();

export async function text(stream: Readable | null): Promise<string> {
  if (stream === null) return '';
  let out = '';
  for await (const chunk of stream) out += String(chunk);
  return out;
}

export function tempTree(prefix = 'gk-sbx-'): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

/** True while a process with this pid runs (a zombie waiting for its reaper counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of `pids` runs (SIGKILL is delivered asynchronously); false after `ms`. */
export async function allGone(pids: number[], ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pids.some(alive)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return !pids.some(alive);
}

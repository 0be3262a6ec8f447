// Every child process a test starts goes through here: each has a time limit
// and is killed by PID when it passes it (or when the test process exits), so
// a native hang fails one test instead of freezing the suite.
// test/test-hygiene.test.ts holds the other test files to this.
import { type ChildProcess, type SpawnOptions, type SpawnSyncOptions, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';

/** Default limit for one child: generous, it only has to end a hang. */
export const CHILD_TIMEOUT_MS = 120_000;

/** spawnSync with a time limit (SIGKILL when it passes); a child that hit it throws, naming the command. */
export function runSync(command: string, args: readonly string[], options: SpawnSyncOptions & { encoding: BufferEncoding }): SpawnSyncReturns<string>;
export function runSync(command: string, args?: readonly string[], options?: SpawnSyncOptions): SpawnSyncReturns<Buffer>;
export function runSync(command: string, args: readonly string[] = [], options: SpawnSyncOptions = {}): SpawnSyncReturns<string | Buffer> {
  const timeout = options.timeout ?? CHILD_TIMEOUT_MS;
  const r = spawnSync(command, args, { ...options, timeout, killSignal: 'SIGKILL' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
    throw new Error(`${command} ${args.join(' ').slice(0, 200)}: killed after ${timeout} ms (pid ${r.pid})`);
  }
  return r;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) killChild(child);
});

function killChild(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * spawn with a time limit: past `timeoutMs` the child is killed by PID
 * (SIGKILL), as are children still running when the test process exits.
 */
export function startChild(command: string, args: readonly string[], options: SpawnOptions = {}, timeoutMs = CHILD_TIMEOUT_MS): ChildProcess {
  const child = spawn(command, args, options);
  live.add(child);
  const timer = setTimeout(() => killChild(child), timeoutMs);
  timer.unref();
  child.once('exit', () => {
    clearTimeout(timer);
    live.delete(child);
  });
  return child;
}

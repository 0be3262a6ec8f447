/**
 * macOS: a generated sandbox-exec (SBPL) profile plus rlimits set by the
 * POSIX shell's `ulimit` right before it execs the command.
 *
 * NOT BUILT OR RUN on the development machine (Linux); run by the prebuild
 * workflow's macOS job. What it enforces: the filesystem allow lists
 * (file-read and file-write rules; metadata reads stay allowed everywhere),
 * network 'none' / 'loopback' / 'host', signals only within the sandbox,
 * cpuMs (RLIMIT_CPU), openFiles (RLIMIT_NOFILE), fileSizeBytes
 * (RLIMIT_FSIZE), wallMs (a timer that kills the process group). What it
 * refuses: memoryBytes (macOS does not enforce RLIMIT_AS/RLIMIT_DATA) and
 * processes (RLIMIT_NPROC counts every process of the uid; allowWeaker
 * 'processes' runs without it).
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export const SANDBOX_EXEC = '/usr/bin/sandbox-exec';

const SYSTEM_READ = ['/usr', '/bin', '/sbin', '/System', '/Library', '/private/etc', '/private/var/db/timezone', '/dev', '/opt/homebrew', '/usr/local'];
const SYSTEM_WRITE = ['/dev/null', '/dev/zero', '/dev/tty', '/dev/dtracehelper'];

/** An SBPL string literal. */
function lit(p: string): string {
  return `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function real(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

export interface DarwinPlan {
  filesystem?: { read: string[]; write: string[]; system: boolean };
  network: 'none' | 'loopback' | 'host';
}

/** The SBPL profile for a plan. */
export function darwinProfile(plan: DarwinPlan): string {
  const lines = ['(version 1)', '(deny default)', '(allow process-fork)', '(allow process-exec)', '(allow signal (target same-sandbox))', '(allow sysctl-read)', '(allow file-read-metadata)', '(allow mach-lookup)', '(allow ipc-posix-shm)'];
  if (plan.filesystem === undefined) {
    lines.push('(allow file-read*)', '(allow file-write*)');
  } else {
    const read = [...(plan.filesystem.system ? SYSTEM_READ.filter((p) => fs.existsSync(p)) : []), ...plan.filesystem.read].map(real);
    const write = [...(plan.filesystem.system ? SYSTEM_WRITE : []), ...plan.filesystem.write].map(real);
    if (read.length + write.length > 0) lines.push(`(allow file-read* ${[...read, ...write].map((p) => `(subpath ${lit(p)})`).join(' ')})`);
    if (write.length > 0) lines.push(`(allow file-write* ${write.map((p) => `(subpath ${lit(p)})`).join(' ')})`);
  }
  if (plan.network === 'host') {
    lines.push('(allow network*)');
  } else {
    if (plan.network === 'loopback') lines.push('(allow network* (local ip "localhost:*") (remote ip "localhost:*"))');
    // No name resolution through the system resolver either.
    lines.push('(deny mach-lookup (global-name "com.apple.dnssd.service") (global-name "com.apple.mDNSResponder"))');
  }
  return lines.join('\n') + '\n';
}

/** The shell line that sets the rlimits and execs the command ($0 "$@"). */
export function ulimitLine(limits: { cpuSeconds?: number; openFiles?: number; fileSizeBytes?: number }): string {
  const parts: string[] = ['ulimit -c 0'];
  if (limits.cpuSeconds !== undefined) parts.push(`ulimit -t ${limits.cpuSeconds}`);
  if (limits.openFiles !== undefined) parts.push(`ulimit -n ${limits.openFiles}`);
  // POSIX sh counts -f in 512-byte blocks.
  if (limits.fileSizeBytes !== undefined) parts.push(`ulimit -f ${Math.max(1, Math.floor(limits.fileSizeBytes / 512))}`);
  return `${parts.join(' && ')} && exec "$0" "$@"`;
}

/** Starts `file args` under the profile, in its own process group. */
export function spawnDarwin(
  file: string,
  args: readonly string[],
  profile: string,
  shellLine: string,
  options: { cwd: string; env: Record<string, string>; stdio: Array<'pipe' | 'inherit' | 'ignore' | number> },
): ChildProcess {
  return spawnChild(SANDBOX_EXEC, ['-p', profile, '/bin/sh', '-c', shellLine, file, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: options.stdio,
    detached: true,
  });
}

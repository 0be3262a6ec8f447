/**
 * cgroup leaves for the process sandbox (Linux).
 *
 * - v2: a delegated directory (option `cgroupRoot`, or GUARDKERNEL_CGROUP_ROOT)
 *   whose `cgroup.subtree_control` enables memory and pids: each run gets a leaf
 *   with memory.max (resident memory; swap off), pids.max; the OOM kill is read
 *   back from memory.events. NOT EXERCISED on the development host (cgroup v1 only).
 * - v1 pids: where this process may create a child of its own pids cgroup
 *   (typically uid 0): a leaf with pids.max, read back from pids.events.
 *
 * The child joins the leaf itself (it writes "0" to cgroup.procs through a
 * descriptor opened before the clone), before it execs.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupSupport {
  /** A delegated cgroup v2 directory with memory and pids enabled for children, or null. */
  v2: string | null;
  /** The cgroup v1 pids directory under which leaves can be made, or null. */
  v1Pids: string | null;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** True where `dir` is a cgroup v2 directory whose children get memory and pids. */
export function delegatedV2(dir: string): boolean {
  const controllers = readText(path.join(dir, 'cgroup.subtree_control'));
  if (controllers === null) return false;
  const names = new Set(controllers.trim().split(/\s+/));
  return names.has('memory') && names.has('pids') && writable(dir);
}

function ownCgroupLines(): string[] {
  return (readText('/proc/self/cgroup') ?? '').split('\n').filter((l) => l.length > 0);
}

let cached: CgroupSupport | undefined;

/** What this host offers. `root` overrides the v2 directory (e.g. `ProcessSandbox({ cgroupRoot })`). */
export function detectCgroups(root?: string): CgroupSupport {
  if (process.platform !== 'linux') return { v2: null, v1Pids: null };
  if (root === undefined && cached !== undefined) return cached;
  let v2: string | null = null;
  const candidate = root ?? process.env.GUARDKERNEL_CGROUP_ROOT;
  if (candidate !== undefined && candidate !== '') {
    if (delegatedV2(candidate)) v2 = candidate;
  } else {
    // The unified hierarchy's own cgroup of this process can only hold leaves
    // if controllers are already enabled below it (then it is a delegation root).
    const line = ownCgroupLines().find((l) => l.startsWith('0::'));
    if (line !== undefined && fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
      const dir = path.join('/sys/fs/cgroup', line.slice(3));
      if (delegatedV2(dir)) v2 = dir;
    }
  }
  let v1Pids: string | null = null;
  const pidsLine = ownCgroupLines().find((l) => /^\d+:pids:/.test(l));
  if (pidsLine !== undefined) {
    const rel = pidsLine.slice(pidsLine.indexOf(':pids:') + 6);
    const dir = path.join('/sys/fs/cgroup/pids', rel);
    if (fs.existsSync(path.join(dir, 'cgroup.procs')) && !fs.existsSync(path.join(dir, 'cgroup.controllers')) && writable(dir)) v1Pids = dir;
  }
  const out = { v2, v1Pids };
  if (root === undefined) cached = out;
  return out;
}

let serial = 0;

/** One run's leaf. */
export class CgroupLeaf {
  readonly dir: string;
  readonly version: 2 | 1;

  private constructor(dir: string, version: 2 | 1) {
    this.dir = dir;
    this.version = version;
  }

  /** The file the child writes itself into. */
  get procs(): string {
    return path.join(this.dir, 'cgroup.procs');
  }

  static createV2(parent: string, limits: { memoryBytes?: number; processes?: number }): CgroupLeaf {
    const dir = path.join(parent, `guardkernel-${process.pid}-${++serial}`);
    fs.mkdirSync(dir);
    const leaf = new CgroupLeaf(dir, 2);
    try {
      if (limits.memoryBytes !== undefined) {
        fs.writeFileSync(path.join(dir, 'memory.max'), String(limits.memoryBytes));
        if (fs.existsSync(path.join(dir, 'memory.swap.max'))) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
      }
      if (limits.processes !== undefined) fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.processes));
    } catch (err) {
      leaf.removeSoon();
      throw err;
    }
    return leaf;
  }

  static createV1Pids(parent: string, processes: number): CgroupLeaf {
    const dir = path.join(parent, `guardkernel-${process.pid}-${++serial}`);
    fs.mkdirSync(dir);
    const leaf = new CgroupLeaf(dir, 1);
    try {
      fs.writeFileSync(path.join(dir, 'pids.max'), String(processes));
    } catch (err) {
      leaf.removeSoon();
      throw err;
    }
    return leaf;
  }

  /** `key value` lines of a flat keyed file (memory.events, pids.events). */
  #events(file: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const line of (readText(path.join(this.dir, file)) ?? '').split('\n')) {
      const [k, v] = line.trim().split(/\s+/);
      if (k !== undefined && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
    }
    return out;
  }

  /** Times a fork was refused at pids.max. */
  pidsMaxHits(): number {
    return this.#events('pids.events').get('max') ?? 0;
  }

  /** OOM kills inside the leaf (v2). */
  oomKills(): number {
    return this.version === 2 ? (this.#events('memory.events').get('oom_kill') ?? 0) : 0;
  }

  /** memory.peak (v2, kernels >= 5.19), or null. */
  memoryPeak(): number | null {
    if (this.version !== 2) return null;
    const t = readText(path.join(this.dir, 'memory.peak'));
    return t !== null && /^\d+\s*$/.test(t) ? Number(t) : null;
  }

  /** SIGKILL everything still in the leaf. */
  killAll(): void {
    if (this.version === 2) {
      try {
        fs.writeFileSync(path.join(this.dir, 'cgroup.kill'), '1');
        return;
      } catch {
        // cgroup.kill is 5.14+: fall through to the pid list
      }
    }
    for (const p of (readText(this.procs) ?? '').split('\n')) {
      const pid = Number(p);
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  /** Kills what is left and removes the leaf once empty (retried briefly: the kernel frees it asynchronously). */
  removeSoon(attempt = 0): void {
    this.killAll();
    try {
      fs.rmdirSync(this.dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (attempt < 50) setTimeout(() => this.removeSoon(attempt + 1), 20).unref();
    }
  }
}

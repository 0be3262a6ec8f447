/**
 * ProcessSandbox: runs what the gate allowed, confined by the operating system.
 *
 * Linux (the C++ addon, no external binary): rlimits, a process group that
 * seccomp keeps it in, PR_SET_NO_NEW_PRIVS, a seccomp-bpf filter, Landlock
 * (filesystem allow lists; TCP bind/connect for network 'none'; signal scope),
 * a fresh user + network namespace for 'none'/'loopback', a cgroup leaf for
 * memory/processes where the host has one, and a scrubbed environment.
 * Every confinement asked for is applied or the spawn is refused with
 * ERR_SANDBOX_UNSUPPORTED, unless the caller named it in `allowWeaker`;
 * `result.enforcement` says how each one was enforced.
 *
 * Without the addon (GUARDKERNEL_NATIVE=0 or a failed load) and on platforms
 * whose native side is not built here, spawn refuses: it never runs a command
 * unconfined.
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { AuditLog } from '../audit/log';
import { ErrorCodes, GuardError, describe } from '../errors';
import type { NativeSandboxChild, NativeSandboxExit, NativeSandboxJob, NativeSandboxProbe, NativeSandboxSpec } from '../native/addon-types';
import { coreAddon, coreBackend } from '../native/loader';
import { CgroupLeaf, type CgroupSupport, detectCgroups } from './cgroup';
import { SANDBOX_EXEC, darwinProfile, spawnDarwin, ulimitLine } from './darwin';
import type {
  SandboxEnforcement,
  SandboxFilesystem,
  SandboxLimits,
  SandboxNetwork,
  SandboxReason,
  SandboxRequirement,
  SandboxResult,
  SandboxViolationRecord,
  SandboxWeakening,
} from './types';

export type StdioEntry = 'pipe' | 'inherit' | 'ignore' | number;

export interface SandboxSpawnOptions {
  cwd?: string;
  /** Variables for the command, on top of the allow-listed ones taken from this process (undefined removes one). */
  env?: Record<string, string | undefined>;
  /** More names to copy from this process's environment (beyond DEFAULT_ENV_ALLOW). */
  envAllow?: string[];
  limits?: SandboxLimits;
  filesystem?: SandboxFilesystem;
  /** Default 'host'. 'none': a fresh network namespace (no interface up) plus Landlock TCP deny; 'loopback': a fresh namespace with `lo` up. */
  network?: SandboxNetwork;
  stdio?: StdioEntry | [StdioEntry, StdioEntry, StdioEntry];
  /** Confinements that may be weaker than asked (see SandboxWeakening). */
  allowWeaker?: SandboxWeakening[];
  /** Mechanisms demanded beyond the defaults (see SandboxRequirement). */
  require?: SandboxRequirement[];
  /** Who asked (for audit records). */
  agentId?: string;
}

export interface ProcessSandboxOptions {
  /** Where `resource_limit_exceeded` / `sandbox_violation` records go. */
  audit?: AuditLog;
  /** A delegated cgroup v2 directory (default: GUARDKERNEL_CGROUP_ROOT, else detected). */
  cgroupRoot?: string;
}

export interface SandboxedProcess {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** How each confinement is enforced for this run. */
  readonly enforcement: SandboxEnforcement;
  /** SIGKILL to the whole process group (reason 'killed'); false once it has ended. */
  kill(): boolean;
  readonly result: Promise<SandboxResult>;
}

export interface SandboxCapabilities {
  platform: NodeJS.Platform;
  /** The native side is loaded and can spawn on this platform. */
  available: boolean;
  reason?: string;
  landlock: { abi: number; filesystem: boolean; network: boolean; scopes: boolean };
  seccomp: boolean;
  noNewPrivs: boolean;
  userNamespaces: boolean;
  networkNamespaces: boolean;
  cgroup: { v2: string | null; v2Delegated: boolean; v1Pids: boolean };
  rlimits: boolean;
  /** How each limit would be enforced by default here (null: it would be refused). */
  enforcement: SandboxEnforcement;
  /** uid 0: RLIMIT_NPROC does not bind (the kernel exempts root). */
  uid: number | null;
}

/** Copied from this process's environment by default (plus the caller's `env`). */
export const DEFAULT_ENV_ALLOW: readonly string[] = ['PATH', 'HOME', 'LANG', 'LANGUAGE', 'TERM', 'TZ', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'COLORTERM', 'NO_COLOR'];

/** Read-only system trees added when `filesystem.system` is not false (those that exist). */
export const SYSTEM_READ_PATHS: readonly string[] = [
  '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32',
  '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime', '/etc/alternatives',
  '/etc/nsswitch.conf', '/etc/passwd', '/etc/group', '/etc/hosts', '/etc/resolv.conf', '/etc/host.conf',
  '/etc/ssl', '/etc/ca-certificates', '/etc/mime.types',
];
/** Read-write devices added with the system trees. */
export const SYSTEM_WRITE_PATHS: readonly string[] = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom'];

const WEAKENINGS = new Set<SandboxWeakening>(['seccomp', 'filesystem', 'network', 'processes']);
const REQUIREMENTS = new Set<SandboxRequirement>(['cgroup']);
const LIMIT_KEYS: ReadonlyArray<keyof SandboxLimits> = ['memoryBytes', 'cpuMs', 'wallMs', 'processes', 'openFiles', 'fileSizeBytes'];

function bad(message: string, at?: string): GuardError {
  return new GuardError(ErrorCodes.INVALID_ARGUMENT, message, at === undefined ? undefined : { path: at });
}

function unsupported(what: string, why: string): GuardError {
  return new GuardError(ErrorCodes.SANDBOX_UNSUPPORTED, `process sandbox: ${what} cannot be enforced here: ${why}`);
}

function probe(): NativeSandboxProbe | null {
  const addon = coreAddon();
  if (addon === null || typeof addon.sandboxProbe !== 'function') return null;
  return addon.sandboxProbe();
}

function noEnforcement(): SandboxEnforcement {
  return { memory: null, processes: null, cpu: null, wall: null, openFiles: null, fileSize: null, filesystem: null, network: null, syscalls: null, signals: null, processTree: null };
}

function checkLimits(limits: unknown): SandboxLimits {
  if (limits === undefined) return {};
  if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) throw bad(`Expected an object for limits but received ${describe(limits)}`, 'limits');
  const out: SandboxLimits = {};
  for (const [k, v] of Object.entries(limits)) {
    if (!(LIMIT_KEYS as string[]).includes(k)) throw bad(`Unknown limit "${k}"`, `limits.${k}`);
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw bad(`Expected a positive integer for limits.${k} but received ${describe(v)}`, `limits.${k}`);
    out[k as keyof SandboxLimits] = v;
  }
  return out;
}

function checkPaths(v: unknown, at: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw bad(`Expected an array of paths for ${at} but received ${describe(v)}`, at);
  return v.map((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.includes('\0')) throw bad(`Expected a path for ${at}[${i}] but received ${describe(p)}`, `${at}[${i}]`);
    const abs = path.resolve(p);
    if (!fs.existsSync(abs)) throw bad(`${at}[${i}]: ${abs} does not exist (Landlock rules name existing files or directories)`, `${at}[${i}]`);
    return abs;
  });
}

function stdioOf(v: SandboxSpawnOptions['stdio']): [number, number, number] {
  const one = (e: StdioEntry, i: number): number => {
    if (e === 'pipe') return -1;
    if (e === 'ignore') return -2;
    if (e === 'inherit') return i;
    if (typeof e === 'number' && Number.isInteger(e) && e >= 0) return e;
    throw bad(`Expected 'pipe', 'inherit', 'ignore' or a descriptor for stdio[${i}] but received ${describe(e)}`, `stdio[${i}]`);
  };
  if (v === undefined) return [-1, -1, -1];
  if (Array.isArray(v)) {
    if (v.length !== 3) throw bad('Expected three stdio entries', 'stdio');
    return [one(v[0], 0), one(v[1], 1), one(v[2], 2)];
  }
  return [one(v, 0), one(v, 1), one(v, 2)];
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** `command` as a path: as given when it holds a slash, else the first executable on PATH. */
function resolveCommand(command: string, pathVar: string | undefined, cwd: string): string {
  if (command.includes('/')) return path.resolve(cwd, command);
  for (const dir of (pathVar ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    if (executable(candidate)) return candidate;
  }
  const err = new Error(`spawn ${command} ENOENT`) as NodeJS.ErrnoException;
  err.code = 'ENOENT';
  err.syscall = `spawn ${command}`;
  err.path = command;
  throw err;
}

function scrubbedEnv(options: SandboxSpawnOptions): Record<string, string> {
  const out: Record<string, string> = {};
  const allow = new Set([...DEFAULT_ENV_ALLOW, ...(options.envAllow ?? [])]);
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (allow.has(k) || k.startsWith('LC_'))) out[k] = v;
  }
  if (options.env !== undefined) {
    if (options.env === null || typeof options.env !== 'object') throw bad(`Expected an object for env but received ${describe(options.env)}`, 'env');
    for (const [k, v] of Object.entries(options.env)) {
      if (k.includes('=') || k.includes('\0') || k === '') throw bad(`Bad environment variable name ${JSON.stringify(k)}`, `env.${k}`);
      if (v === undefined) delete out[k];
      else if (typeof v !== 'string' || v.includes('\0')) throw bad(`Expected a string for env.${k} but received ${describe(v)}`, `env.${k}`);
      else out[k] = v;
    }
  }
  return out;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(os.constants.signals).map(([name, n]) => [n as number, name]));

/** The run's reason from how it ended (see docs/sandbox.md, "Reasons"). */
export function reasonOf(
  exit: Pick<NativeSandboxExit, 'exited' | 'code' | 'signal' | 'cpuMs' | 'maxRssBytes' | 'killed'>,
  limits: SandboxLimits,
  enforcement: SandboxEnforcement,
  cg: { oomKills: number; pidsMaxHits: number },
): { reason: SandboxReason; violations: SandboxViolationRecord[] } {
  const sig = exit.exited ? null : (SIGNAL_NAMES.get(exit.signal) ?? `SIG${exit.signal}`);
  const abnormal = !exit.exited || exit.code !== 0;
  const v: SandboxViolationRecord[] = [];
  const cpuLimitMs = limits.cpuMs === undefined ? undefined : Math.ceil(limits.cpuMs / 1000) * 1000;
  if (exit.killed === 2) return { reason: 'killed', violations: v };
  if (exit.killed === 1) {
    v.push({ type: 'limit', limit: 'wallMs', detail: `wall-clock limit of ${limits.wallMs} ms reached` });
    return { reason: 'wall', violations: v };
  }
  if (sig === 'SIGSYS' && enforcement.syscalls !== null) {
    v.push({ type: 'seccomp', detail: 'killed by SIGSYS: a system call the seccomp filter forbids' });
    return { reason: 'violation', violations: v };
  }
  if (sig === 'SIGXFSZ' && limits.fileSizeBytes !== undefined) {
    v.push({ type: 'limit', limit: 'fileSizeBytes', detail: `file size limit of ${limits.fileSizeBytes} bytes exceeded (SIGXFSZ)` });
    return { reason: 'violation', violations: v };
  }
  if (enforcement.cpu === 'job-object' && limits.cpuMs !== undefined && abnormal && exit.cpuMs >= limits.cpuMs) {
    v.push({ type: 'limit', limit: 'cpuMs', detail: `job per-process CPU time limit of ${limits.cpuMs} ms reached` });
    return { reason: 'cpu', violations: v };
  }
  if (cpuLimitMs !== undefined && (sig === 'SIGXCPU' || (sig === 'SIGKILL' && exit.cpuMs >= cpuLimitMs - 50))) {
    v.push({ type: 'limit', limit: 'cpuMs', detail: `CPU time limit of ${cpuLimitMs} ms reached (${sig})` });
    return { reason: 'cpu', violations: v };
  }
  if (limits.memoryBytes !== undefined && cg.oomKills > 0) {
    v.push({ type: 'limit', limit: 'memoryBytes', detail: `cgroup OOM kill at memory.max ${limits.memoryBytes} bytes` });
    return { reason: 'memory', violations: v };
  }
  if (limits.processes !== undefined && cg.pidsMaxHits > 0) {
    v.push({ type: 'limit', limit: 'processes', detail: `pids.max ${limits.processes} refused ${cg.pidsMaxHits} fork(s)` });
    if (abnormal) return { reason: 'processes', violations: v };
  }
  // RLIMIT_AS: an allocation fails and the program exits or aborts; the kernel
  // keeps no record. Heuristic (documented): an abnormal end after the resident
  // set reached half the address-space limit.
  if (limits.memoryBytes !== undefined && (enforcement.memory === 'rlimit-as' || enforcement.memory === 'job-object') && abnormal && exit.maxRssBytes >= limits.memoryBytes / 2) {
    v.push({ type: 'limit', limit: 'memoryBytes', detail: `address-space limit of ${limits.memoryBytes} bytes: abnormal end with ${exit.maxRssBytes} bytes resident (inferred)` });
    return { reason: 'memory', violations: v };
  }
  return { reason: 'exit', violations: v };
}

export class ProcessSandbox {
  readonly #audit: AuditLog | undefined;
  readonly #cgroupRoot: string | undefined;
  readonly #live = new Set<SandboxedProcess>();

  constructor(options: ProcessSandboxOptions = {}) {
    if (options === null || typeof options !== 'object') throw bad(`Expected an options object but received ${describe(options)}`);
    this.#audit = options.audit;
    this.#cgroupRoot = options.cgroupRoot;
  }

  /** What this platform and kernel can enforce, so a caller can refuse to run. */
  static capabilities(options: { cgroupRoot?: string } = {}): SandboxCapabilities {
    const p = probe();
    const en = noEnforcement();
    const base: SandboxCapabilities = {
      platform: process.platform,
      available: false,
      landlock: { abi: 0, filesystem: false, network: false, scopes: false },
      seccomp: false,
      noNewPrivs: false,
      userNamespaces: false,
      networkNamespaces: false,
      cgroup: { v2: null, v2Delegated: false, v1Pids: false },
      rlimits: false,
      enforcement: en,
      uid: null,
    };
    if (p === null) {
      const core = coreBackend();
      return { ...base, reason: core.kind === 'js' ? `the native addon is not loaded (${core.reason ?? 'fallback'})` : 'this build of the addon has no process sandbox' };
    }
    if (p.platform === 'darwin' && fs.existsSync(SANDBOX_EXEC)) {
      Object.assign(en, { cpu: 'rlimit-cpu', wall: 'timer', openFiles: 'rlimit-nofile', fileSize: 'rlimit-fsize', filesystem: 'sandbox-exec', network: 'sandbox-exec', signals: 'sandbox-exec', processTree: 'process-group' });
      return { ...base, available: true, rlimits: true, enforcement: en };
    }
    if (p.platform === 'win32' && p.jobObjects === true && typeof coreAddon()?.sandboxJobCreate === 'function') {
      Object.assign(en, { memory: 'job-object', processes: 'job-object', cpu: 'job-object', wall: 'timer', processTree: 'job-object' });
      return { ...base, available: true, enforcement: en };
    }
    if (p.platform !== 'linux' || typeof coreAddon()?.sandboxSpawn !== 'function') {
      return { ...base, reason: `the process sandbox is not built for ${p.platform} in this addon` };
    }
    const abi = p.landlockAbi ?? 0;
    const cg = detectCgroups(options.cgroupRoot);
    const uid = p.uid ?? null;
    const userns = p.userNamespaces === true;
    en.memory = cg.v2 !== null ? 'cgroup-v2' : 'rlimit-as';
    en.processes = cg.v2 !== null ? 'cgroup-v2' : cg.v1Pids !== null ? 'cgroup-v1-pids' : userns && uid !== 0 ? 'rlimit-nproc-userns' : null;
    en.cpu = 'rlimit-cpu';
    en.wall = 'timer';
    en.openFiles = 'rlimit-nofile';
    en.fileSize = 'rlimit-fsize';
    en.filesystem = abi >= 1 ? 'landlock' : null;
    en.network = p.networkNamespaces === true ? (abi >= 4 ? 'netns+landlock-tcp' : 'netns') : null;
    en.syscalls = p.seccomp === true ? 'seccomp' : null;
    en.signals = abi >= 6 ? 'landlock-scope' : null;
    en.processTree = 'process-group';
    return {
      platform: process.platform,
      available: true,
      landlock: { abi, filesystem: abi >= 1, network: abi >= 4, scopes: abi >= 6 },
      seccomp: p.seccomp === true,
      noNewPrivs: true,
      userNamespaces: userns,
      networkNamespaces: p.networkNamespaces === true,
      cgroup: { v2: cg.v2, v2Delegated: cg.v2 !== null, v1Pids: cg.v1Pids !== null },
      rlimits: true,
      enforcement: en,
      uid,
    };
  }

  /** Processes started by this sandbox that have not ended. */
  get running(): number {
    return this.#live.size;
  }

  /** Kills every process this sandbox started that is still running. */
  close(): void {
    for (const p of this.#live) p.kill();
  }

  spawn(command: string, args: readonly string[] = [], options: SandboxSpawnOptions = {}): SandboxedProcess {
    if (typeof command !== 'string' || command.length === 0 || command.includes('\0')) throw bad(`Expected a command but received ${describe(command)}`, 'command');
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string' || a.includes('\0'))) throw bad('Expected an array of strings for args', 'args');
    if (options === null || typeof options !== 'object') throw bad(`Expected an options object but received ${describe(options)}`);
    const limits = checkLimits(options.limits);
    const network = options.network ?? 'host';
    if (network !== 'none' && network !== 'loopback' && network !== 'host') throw bad(`Expected 'none', 'loopback' or 'host' for network but received ${describe(network)}`, 'network');
    const weaker = new Set(options.allowWeaker ?? []);
    for (const w of weaker) if (!WEAKENINGS.has(w)) throw bad(`Unknown allowWeaker entry ${JSON.stringify(w)}`, 'allowWeaker');
    const required = new Set(options.require ?? []);
    for (const r of required) if (!REQUIREMENTS.has(r)) throw bad(`Unknown require entry ${JSON.stringify(r)}`, 'require');
    let fsOpt: SandboxFilesystem | undefined;
    if (options.filesystem !== undefined) {
      if (options.filesystem === null || typeof options.filesystem !== 'object') throw bad(`Expected an object for filesystem but received ${describe(options.filesystem)}`, 'filesystem');
      fsOpt = options.filesystem;
    }
    const cwd = options.cwd === undefined ? process.cwd() : path.resolve(options.cwd);
    const stdio = stdioOf(options.stdio);

    const caps = ProcessSandbox.capabilities({ cgroupRoot: this.#cgroupRoot });
    if (!caps.available) throw unsupported('the process sandbox', caps.reason ?? 'unavailable');
    if (caps.platform !== 'linux') return this.#spawnPortable(caps, command, args, options, { limits, network, weaker, fsOpt, cwd, stdio });
    const addon = coreAddon();
    if (addon === null || addon.sandboxSpawn === undefined || addon.sandboxKill === undefined) throw unsupported('the process sandbox', 'no native spawn');
    const en = noEnforcement();
    const cg: CgroupSupport = detectCgroups(this.#cgroupRoot);

    // syscalls: seccomp + no_new_privs, always (unless explicitly lowered).
    const seccomp = caps.seccomp;
    if (!seccomp && !weaker.has('seccomp')) throw unsupported('seccomp', 'the kernel has no seccomp filter mode for this architecture (allowWeaker: ["seccomp"] to run without)');
    en.syscalls = seccomp ? 'seccomp' : null;

    // network
    let userns = false;
    let netns = false;
    let landlockNet = false;
    if (network !== 'host') {
      if (caps.networkNamespaces) {
        userns = netns = true;
        landlockNet = network === 'none' && caps.landlock.network;
        en.network = landlockNet ? 'netns+landlock-tcp' : 'netns';
      } else if (!weaker.has('network')) {
        throw unsupported(`network '${network}'`, 'user and network namespaces are unavailable (allowWeaker: ["network"] to run on the host network)');
      }
    }

    // filesystem
    const rules: Array<{ path: string; write: boolean }> = [];
    let landlockFs = false;
    if (fsOpt !== undefined) {
      const read = checkPaths(fsOpt.read, 'filesystem.read');
      const write = checkPaths(fsOpt.write, 'filesystem.write');
      if (caps.landlock.filesystem) {
        landlockFs = true;
        en.filesystem = 'landlock';
        if (fsOpt.system !== false) {
          for (const p of SYSTEM_READ_PATHS) if (fs.existsSync(p)) rules.push({ path: p, write: false });
          for (const p of SYSTEM_WRITE_PATHS) if (fs.existsSync(p)) rules.push({ path: p, write: true });
        }
        for (const p of read) rules.push({ path: p, write: false });
        for (const p of write) rules.push({ path: p, write: true });
      } else if (!weaker.has('filesystem')) {
        throw unsupported('the filesystem allow lists', 'Landlock is unavailable (allowWeaker: ["filesystem"] to run without)');
      }
    }

    // signals: Landlock's scope keeps the process from signalling anything outside its domain.
    const scopeSignal = caps.landlock.scopes;
    en.signals = scopeSignal ? 'landlock-scope' : null;

    // limits
    const rl: Array<[string, number, number]> = [['core', 0, 0]];
    let leaf: CgroupLeaf | null = null;
    const wantCgroup = required.has('cgroup');
    if (wantCgroup && cg.v2 === null) {
      throw unsupported('cgroup enforcement (require: ["cgroup"])', 'no delegated cgroup v2 leaf (set cgroupRoot or GUARDKERNEL_CGROUP_ROOT to a delegated directory with memory and pids enabled)');
    }
    if (limits.memoryBytes !== undefined) {
      if (cg.v2 !== null) en.memory = 'cgroup-v2';
      else {
        rl.push(['as', limits.memoryBytes, limits.memoryBytes]);
        en.memory = 'rlimit-as';
      }
    }
    if (limits.processes !== undefined) {
      if (cg.v2 !== null) en.processes = 'cgroup-v2';
      else if (cg.v1Pids !== null) en.processes = 'cgroup-v1-pids';
      else if (caps.userNamespaces && caps.uid !== 0) {
        // RLIMIT_NPROC counts per (user namespace, uid): in a fresh namespace, only this run's processes.
        userns = true;
        rl.push(['nproc', limits.processes, limits.processes]);
        en.processes = 'rlimit-nproc-userns';
      } else if (!weaker.has('processes')) {
        throw unsupported('limits.processes', caps.uid === 0 ? 'uid 0 is exempt from RLIMIT_NPROC and no cgroup pids controller is writable' : 'no user namespaces and no cgroup: RLIMIT_NPROC would count every process of this uid');
      }
    }
    if (limits.cpuMs !== undefined) {
      const s = Math.ceil(limits.cpuMs / 1000);
      // soft: SIGXCPU; hard one second later: SIGKILL for a program that ignores SIGXCPU.
      rl.push(['cpu', s, s + 1]);
      en.cpu = 'rlimit-cpu';
    }
    if (limits.openFiles !== undefined) {
      rl.push(['nofile', limits.openFiles, limits.openFiles]);
      en.openFiles = 'rlimit-nofile';
    }
    if (limits.fileSizeBytes !== undefined) {
      rl.push(['fsize', limits.fileSizeBytes, limits.fileSizeBytes]);
      en.fileSize = 'rlimit-fsize';
    }
    if (limits.wallMs !== undefined) en.wall = 'timer';
    en.processTree = 'process-group';

    const env = scrubbedEnv(options);
    const file = resolveCommand(command, env.PATH, cwd);
    // The command itself is always executable under a filesystem allow list.
    if (landlockFs) rules.push({ path: file, write: false });

    if (cg.v2 !== null && (limits.memoryBytes !== undefined || limits.processes !== undefined)) {
      leaf = CgroupLeaf.createV2(cg.v2, { memoryBytes: limits.memoryBytes, processes: limits.processes });
    } else if (en.processes === 'cgroup-v1-pids' && limits.processes !== undefined && cg.v1Pids !== null) {
      leaf = CgroupLeaf.createV1Pids(cg.v1Pids, limits.processes);
    }

    const useLandlock = landlockFs || landlockNet || scopeSignal;
    const spec: NativeSandboxSpec = {
      file,
      argv: [command, ...args],
      envp: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd,
      stdio,
      rlimits: rl,
      userns,
      netns,
      loopback: network === 'loopback' && netns,
      seccomp,
      wallMs: limits.wallMs ?? 0,
    };
    if (leaf !== null) spec.cgroupProcs = leaf.procs;
    if (useLandlock) spec.landlock = { fs: landlockFs, rules, net: landlockNet, scopeSignal, scopeAbstractUnix: scopeSignal && network !== 'host' };

    let resolveResult!: (r: SandboxResult) => void;
    const result = new Promise<SandboxResult>((res) => {
      resolveResult = res;
    });
    let handleRef: SandboxedProcess | undefined;
    const onExit = (exit: NativeSandboxExit): void => {
      const cgStats = { oomKills: leaf?.oomKills() ?? 0, pidsMaxHits: leaf?.pidsMaxHits() ?? 0 };
      const peak = leaf?.memoryPeak() ?? null;
      leaf?.removeSoon();
      const { reason, violations } = reasonOf(exit, limits, en, cgStats);
      const r: SandboxResult = {
        code: exit.exited ? exit.code : null,
        signal: exit.exited ? null : (SIGNAL_NAMES.get(exit.signal) ?? `SIG${exit.signal}`),
        reason,
        usage: { cpuMs: Math.round(exit.cpuMs), maxRssBytes: peak ?? exit.maxRssBytes, wallMs: exit.wallMs },
        violations,
        enforcement: en,
      };
      if (handleRef !== undefined) this.#live.delete(handleRef);
      this.#auditResult(command, args, limits, r, options.agentId, pid);
      resolveResult(r);
    };
    let spawned;
    try {
      spawned = addon.sandboxSpawn(spec, onExit);
    } catch (err) {
      leaf?.removeSoon();
      throw err;
    }
    if (spawned.error !== undefined) {
      leaf?.removeSoon();
      const { stage, errno } = spawned.error;
      const code = errnoName(errno);
      if (stage === 'exec') {
        const err = new Error(`spawn ${command} ${code}`) as NodeJS.ErrnoException;
        err.code = code;
        err.errno = -errno;
        err.syscall = 'execve';
        err.path = file;
        throw err;
      }
      if (stage.startsWith('landlock-path') || stage === 'chdir') {
        throw bad(`process sandbox: ${stage} failed for ${spawned.error.path ?? cwd}: ${code}`);
      }
      throw new GuardError(ErrorCodes.SANDBOX_UNSUPPORTED, `process sandbox: ${stage} could not be applied (${code}); the command was not run`);
    }
    const pid = spawned.pid;
    const child: NativeSandboxChild = spawned.handle;
    const [inFd, outFd, errFd] = spawned.fds;
    const stdin = inFd >= 0 ? new net.Socket({ fd: inFd, readable: false, writable: true }) : null;
    const stdout = outFd >= 0 ? new net.Socket({ fd: outFd, readable: true, writable: false }) : null;
    const stderr = errFd >= 0 ? new net.Socket({ fd: errFd, readable: true, writable: false }) : null;
    // A write to a stdin the child closed is EPIPE: the run's result tells what happened.
    stdin?.on('error', () => {});
    const kill = (): boolean => {
      const live = addon.sandboxKill!(child, 2);
      if (live) leaf?.killAll();
      return live;
    };
    const handle: SandboxedProcess = { pid, stdin, stdout, stderr, enforcement: en, kill, result };
    handleRef = handle;
    this.#live.add(handle);
    return handle;
  }

  /** macOS (sandbox-exec + ulimit) and Windows (a Job Object): not built or run on the development machine. */
  #spawnPortable(
    caps: SandboxCapabilities,
    command: string,
    args: readonly string[],
    options: SandboxSpawnOptions,
    v: { limits: SandboxLimits; network: SandboxNetwork; weaker: Set<SandboxWeakening>; fsOpt: SandboxFilesystem | undefined; cwd: string; stdio: [number, number, number] },
  ): SandboxedProcess {
    const { limits, network, weaker, fsOpt, cwd } = v;
    const platform = caps.platform;
    if (!weaker.has('seccomp')) throw unsupported('system call filtering', `${platform} has no seccomp (allowWeaker: ["seccomp"] to run without it)`);
    if ((options.require ?? []).includes('cgroup')) throw unsupported('cgroup enforcement (require: ["cgroup"])', `${platform} has no cgroups`);
    const en: SandboxEnforcement = { ...caps.enforcement, syscalls: null };
    const env = scrubbedEnv(options);
    const stdio = v.stdio.map((n, i) => (n === -1 ? 'pipe' : n === -2 ? 'ignore' : n === i ? 'inherit' : n)) as Array<'pipe' | 'inherit' | 'ignore' | number>;
    let child: ChildProcess;
    let job: NativeSandboxJob | null = null;
    const addon = coreAddon()!;
    if (platform === 'darwin') {
      if (limits.memoryBytes !== undefined) throw unsupported('limits.memoryBytes', 'macOS does not enforce RLIMIT_AS or RLIMIT_DATA');
      if (limits.processes !== undefined && !weaker.has('processes')) throw unsupported('limits.processes', 'RLIMIT_NPROC on macOS counts every process of the uid (allowWeaker: ["processes"] to run without it)');
      if (limits.processes !== undefined) en.processes = null;
      en.memory = null;
      if (limits.cpuMs === undefined) en.cpu = null;
      if (limits.openFiles === undefined) en.openFiles = null;
      if (limits.fileSizeBytes === undefined) en.fileSize = null;
      if (limits.wallMs === undefined) en.wall = null;
      if (fsOpt === undefined) en.filesystem = null;
      if (network === 'host') en.network = null;
      const fsPlan = fsOpt === undefined ? undefined : { read: checkPaths(fsOpt.read, 'filesystem.read'), write: checkPaths(fsOpt.write, 'filesystem.write'), system: fsOpt.system !== false };
      const file = resolveCommand(command, env.PATH, cwd);
      if (fsPlan !== undefined) fsPlan.read.push(file);
      const profile = darwinProfile({ filesystem: fsPlan, network });
      const line = ulimitLine({ cpuSeconds: limits.cpuMs === undefined ? undefined : Math.ceil(limits.cpuMs / 1000), openFiles: limits.openFiles, fileSizeBytes: limits.fileSizeBytes });
      child = spawnDarwin(file, args, profile, line, { cwd, env, stdio });
    } else {
      if (limits.openFiles !== undefined || limits.fileSizeBytes !== undefined) throw unsupported('limits.openFiles / limits.fileSizeBytes', 'a Windows Job Object has no such limit');
      if (fsOpt !== undefined && !weaker.has('filesystem')) throw unsupported('the filesystem allow lists', 'not implemented on Windows (allowWeaker: ["filesystem"] to run without)');
      if (network !== 'host' && !weaker.has('network')) throw unsupported(`network '${network}'`, 'not implemented on Windows (allowWeaker: ["network"] to run on the host network)');
      en.filesystem = null;
      en.network = null;
      if (limits.memoryBytes === undefined) en.memory = null;
      if (limits.processes === undefined) en.processes = null;
      if (limits.cpuMs === undefined) en.cpu = null;
      if (limits.wallMs === undefined) en.wall = null;
      const made = addon.sandboxJobCreate!({ memoryBytes: limits.memoryBytes, cpuMs: limits.cpuMs, processes: limits.processes });
      if (made.error !== undefined) throw unsupported('a Job Object', `${made.error.stage} failed (error ${made.error.errno})`);
      job = made.handle;
      // The child runs before it is assigned: whatever it starts in that window is outside the job (documented).
      child = spawnChild(command, [...args], { cwd, env, stdio, windowsHide: true });
      if (child.pid === undefined) throw Object.assign(new Error(`spawn ${command} ENOENT`), { code: 'ENOENT' });
      const assigned = addon.sandboxJobAssign!(job, child.pid);
      if (assigned !== true) {
        child.kill('SIGKILL');
        throw unsupported('a Job Object', `${assigned.error.stage} failed (error ${assigned.error.errno}); the command was killed`);
      }
    }
    const pid = child.pid ?? -1;
    let killed = 0;
    const killTree = (why: number): boolean => {
      if (child.exitCode !== null || child.signalCode !== null) return false;
      if (killed === 0) killed = why;
      if (job !== null) addon.sandboxJobKill!(job);
      else {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
      return true;
    };
    const t0 = Date.now();
    const timer = limits.wallMs === undefined ? null : setTimeout(() => killTree(1), limits.wallMs);
    const result = new Promise<SandboxResult>((resolve, reject) => {
      child.once('error', (err) => {
        if (timer !== null) clearTimeout(timer);
        this.#live.delete(handle);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        if (timer !== null) clearTimeout(timer);
        const stats = job !== null ? addon.sandboxJobStats!(job) : {};
        // The group's leftovers go with the leader, as on Linux.
        if (job !== null) addon.sandboxJobKill!(job);
        else {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // none left
          }
        }
        const exit = {
          exited: code !== null,
          code: code ?? 0,
          signal: signal === null ? 0 : (os.constants.signals[signal] ?? 0),
          cpuMs: stats.cpuMs ?? 0,
          maxRssBytes: stats.peakJobMemoryBytes ?? 0,
          killed,
        };
        const { reason, violations } = reasonOf(exit, limits, en, { oomKills: 0, pidsMaxHits: 0 });
        const r: SandboxResult = { code, signal, reason, usage: { cpuMs: Math.round(exit.cpuMs), maxRssBytes: exit.maxRssBytes, wallMs: Date.now() - t0 }, violations, enforcement: en };
        this.#live.delete(handle);
        this.#auditResult(command, args, limits, r, options.agentId, pid);
        resolve(r);
      });
    });
    const handle: SandboxedProcess = {
      pid,
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      enforcement: en,
      kill: () => killTree(2),
      result,
    };
    child.stdin?.on('error', () => {});
    this.#live.add(handle);
    return handle;
  }

  #auditResult(command: string, args: readonly string[], limits: SandboxLimits, r: SandboxResult, agentId: string | undefined, pid: number): void {
    const audit = this.#audit;
    if (audit === undefined || r.reason === 'exit' || r.reason === 'killed') return;
    for (const v of r.violations) {
      const fields: Record<string, unknown> = {
        command,
        args: args.slice(0, 32),
        pid,
        reason: r.reason,
        detail: v.detail,
        usage: { cpu_ms: r.usage.cpuMs, max_rss_bytes: r.usage.maxRssBytes, wall_ms: r.usage.wallMs },
        enforcement: v.limit === undefined ? r.enforcement.syscalls : enforcementOf(r.enforcement, v.limit),
      };
      if (agentId !== undefined) fields.agent_id = agentId;
      if (v.type === 'limit' && v.limit !== undefined) {
        fields.limit = v.limit;
        fields.limit_value = limits[v.limit];
      }
      if (v.type === 'seccomp' || v.limit === 'fileSizeBytes') audit.append('sandbox_violation', 'warning', fields);
      else audit.append('resource_limit_exceeded', 'warning', fields);
    }
  }
}

function enforcementOf(en: SandboxEnforcement, limit: keyof SandboxLimits): string | null {
  switch (limit) {
    case 'memoryBytes': return en.memory;
    case 'processes': return en.processes;
    case 'cpuMs': return en.cpu;
    case 'wallMs': return en.wall;
    case 'openFiles': return en.openFiles;
    case 'fileSizeBytes': return en.fileSize;
    default: return null;
  }
}

function errnoName(errno: number): string {
  for (const [name, n] of Object.entries(os.constants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}

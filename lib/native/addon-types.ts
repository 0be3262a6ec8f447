/**
 * The shape of the two native addons, declared once. Everything that calls
 * into a `.node` file goes through these types.
 */

/** A precomputed HMAC-SHA256 key living in native memory. */
export interface NativeHmacKey {
  signHex(data: string | Uint8Array): string;
  signInto(data: string | Uint8Array, out: Uint8Array, outOffset: number): void;
  verify(data: string | Uint8Array, mac: Uint8Array): boolean;
  destroy(): void;
  /** The audit log's decision line, written and sealed (native/audit/audit_line.h): its length, -1 not sealed, -2 out too small. */
  sealDecisionLine(
    prev: Uint8Array, out: Uint8Array, outOffset: number, seq: number, ts: number, type: string, severity: string,
    decision: string, source: string, reason: string, carHash: string, policyVersion: number, agentId: string, actionType: string, sessionId: string | undefined,
  ): number;
}

/** An opaque native store handle (a type-tagged External). */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

/** guardkernel.node, built by binding.gyp. */
export interface CoreAddon {
  readonly abiVersion: number;
  sha256Into(data: string | Uint8Array, out: Uint8Array, outOffset: number): void;
  sha256Hex(data: string | Uint8Array, withPrefix: boolean): string;
  /** `"sha256:" + hex(SHA-256(bytes[0..length)))`: the CAR hash of a canonical form in a scratch buffer. */
  carHashOfBytes(bytes: Uint8Array, length: number): string;
  /** CAR hashes of forms written back to back (form k spans [ends[k-1] or 0, ends[k])) as 71-byte texts at out[71k..]. */
  carHashesInto(bytes: Uint8Array, ends: Uint32Array, count: number, out: Uint8Array, digests: Uint8Array): void;
  /** [hits, misses] of this thread's memo of CAR form digests (native/hash/form_memo.h), for tests. */
  carFormMemoStats(): [number, number];
  /**
   * The IPC server's gate_check fast path (native/ipc/gate_line.h): true when `line` is a plain
   * gate_check request it takes; then fields = [idStart, idEnd, agentStart, agentEnd,
   * actionStart, actionEnd, nonceStart, nonceEnd, permitStart, permitEnd, carStart, carEnd]
   * (UTF-16 offsets into line; -1, -1 for a nonce or permit the params do not hold; the
   * CAR's span is its JSON text) and out = the CAR hash's raw digest
   * (bytes 0-31) and "sha256:<hex>" text (bytes 32-102). False: the general path answers.
   */
  parseGateLine(line: string, fields: Int32Array, out: Uint8Array): boolean;
  /** [hits, misses] of this thread's memo of gate_check params texts (native/ipc/gate_line.h), for tests. */
  gateLineMemoStats(): [number, number];
  /** Who is at the other end of a connected Unix socket (SO_PEERCRED / getpeereid); null where the platform gives nothing. */
  peerCredentials(fd: number): { uid: number; gid: number; pid: number } | null;
  hmacSha256Into(key: Uint8Array, data: string | Uint8Array, out: Uint8Array, outOffset: number): void;
  /**
   * Block envelope bodies on the CPU (OpenSSL's EVP AEADs, one context per
   * call): block i uses nonce prefix || BE64(first + i) and associated data
   * header || BE32(i) || aad. 12-byte-nonce algorithms only.
   */
  aeadSealBlocks(alg: string, key: Uint8Array, header: Uint8Array, prefix: Uint8Array, first: number, aad: Uint8Array, plain: Uint8Array, blockSize: number, out: Uint8Array): void;
  /** -1, or the index of the first block whose tag fails (then out is zeroed). */
  aeadOpenBlocks(alg: string, key: Uint8Array, header: Uint8Array, prefix: Uint8Array, first: number, aad: Uint8Array, body: Uint8Array, blockSize: number, out: Uint8Array): number;
  /** `'sha-ni'` or `'portable'`. */
  shaImplementation(): string;
  /** Test hook: force the portable SHA-256 path; returns the active implementation. */
  forcePortableSha(force: boolean): string;
  HmacKey: new (key: Uint8Array) => NativeHmacKey;
  /** Native HmacKey objects not yet finalized, across all threads (lifetime tests). */
  liveHmacKeys(): number;

  // Replay detector (opaque, type-tagged handles).
  replayCreate(capacity: number): NativeHandle;
  replayShared(name: string, capacity: number): NativeHandle;
  /** 0 fresh, 1 replay, 2 saturated. */
  replayCheck(handle: NativeHandle, nonce: string | Uint8Array, expiresAtMs: number, nowMs: number): number;
  replayContains(handle: NativeHandle, nonce: string | Uint8Array, nowMs: number): boolean;
  /** out: bytes of a Float64Array(5) = [size, capacity, replays, saturated, accepted]. */
  replayStats(handle: NativeHandle, out: Uint8Array, outOffset: number): void;
  replayClose(handle: NativeHandle): void;

  // Decision cache.
  cacheCreate(capacity: number, shards: number): NativeHandle;
  cacheShared(name: string, capacity: number, shards: number): NativeHandle;
  /** Miss: undefined. Hit: the reason, with out = [decision, policyVersion, expiresAtMs]. */
  cacheGet(handle: NativeHandle, carHash: string, policyVersion: number, nowMs: number, out: Uint8Array, outOffset: number): number | string | undefined;
  /** The text of a reason id cacheGet returned (interned: the same for the life of the store). */
  cacheReason(handle: NativeHandle, reasonId: number): string | undefined;
  cachePut(handle: NativeHandle, carHash: string, decision: number, policyVersion: number, expiresAtMs: number, reason: string | undefined): void;
  cacheInvalidate(handle: NativeHandle, carHash: string): boolean;
  cacheClear(handle: NativeHandle): number;
  /** out: bytes of a Float64Array(6) = [entries, capacity, hits, misses, evictions, expirations]. */
  cacheStats(handle: NativeHandle, out: Uint8Array, outOffset: number): void;
  cacheClose(handle: NativeHandle): void;
  /** 4 bytes over the store's mutation counter, or undefined where external buffers are refused. */
  cacheEpochBuffer(handle: NativeHandle): ArrayBuffer | undefined;
  cacheAddNearHits(handle: NativeHandle, hits: number): void;

  /** Process sandbox: what this platform can enforce. */
  sandboxProbe(): NativeSandboxProbe;
  /** Process sandbox (Linux only): spawns a confined child; onExit runs once, on the loop, after it is reaped. */
  sandboxSpawn?(spec: NativeSandboxSpec, onExit: (exit: NativeSandboxExit) => void): NativeSandboxSpawn;
  /** SIGKILL to the child's process group while it lives; why: 1 wall, 2 caller. False once reaped. */
  sandboxKill?(handle: NativeSandboxChild, why: number): boolean;
  /** Windows only: a Job Object with these limits (kill on close), to assign a child to. */
  sandboxJobCreate?(limits: { memoryBytes?: number; cpuMs?: number; processes?: number }): { handle: NativeSandboxJob; error?: undefined } | { error: { stage: string; errno: number } };
  sandboxJobAssign?(job: NativeSandboxJob, pid: number): true | { error: { stage: string; errno: number } };
  sandboxJobStats?(job: NativeSandboxJob): { cpuMs?: number; peakJobMemoryBytes?: number; activeProcesses?: number; totalProcesses?: number };
  sandboxJobKill?(job: NativeSandboxJob): boolean;

  /** K2K sandbox: checks a batch against the state arrays of lib/k2k/state.ts, in place. */
  sandboxCheck(
    params: Float64Array,
    kernelF64: Float64Array,
    kernelI32: Int32Array,
    violations: Float64Array,
    dstAllowed: Uint8Array,
    topicAllowed: Uint8Array,
    connBits: Uint32Array,
    src: Uint32Array,
    dst: Uint32Array,
    topic: Uint32Array,
    bytes: Uint32Array,
    nowMs: number,
    verdicts: Uint8Array,
    counts: Float64Array,
  ): void;
}

/** What the process sandbox's native side finds (native/sandbox/process_sandbox_*.cc). */
export interface NativeSandboxProbe {
  platform: string;
  jobObjects?: boolean;
  landlockAbi?: number;
  seccomp?: boolean;
  userNamespaces?: boolean;
  networkNamespaces?: boolean;
  uid?: number;
  gid?: number;
}

/** One spawn's plan: everything is decided in TypeScript; the addon applies it. */
export interface NativeSandboxSpec {
  file: string;
  argv: string[];
  envp: string[];
  cwd?: string;
  /** Per stream: -1 a new pipe, -2 /dev/null, >= 0 that descriptor of ours. */
  stdio: [number, number, number];
  /** [name, soft, hard]; names: cpu, as, data, nproc, nofile, fsize, core. */
  rlimits: Array<[string, number, number]>;
  userns: boolean;
  netns: boolean;
  loopback: boolean;
  seccomp: boolean;
  cgroupProcs?: string;
  landlock?: { fs: boolean; rules: Array<{ path: string; write: boolean }>; net: boolean; scopeSignal: boolean; scopeAbstractUnix: boolean };
  wallMs: number;
}

/** How the child ended, as the waiter thread saw it. killed: 0 no, 1 the wall-clock limit, 2 kill(). */
export interface NativeSandboxExit {
  exited: boolean;
  code: number;
  signal: number;
  cpuMs: number;
  maxRssBytes: number;
  killed: number;
  wallMs: number;
}

export type NativeSandboxChild = { readonly __sandboxChild: unique symbol };
export type NativeSandboxJob = { readonly __sandboxJob: unique symbol };

export type NativeSandboxSpawn =
  | { pid: number; fds: [number, number, number]; handle: NativeSandboxChild; error?: undefined }
  | { error: { stage: string; errno: number; path?: string } };

/** An opaque device-memory handle (a type-tagged External). */
export type DeviceHandle = { readonly __deviceHandle: unique symbol };

/** One CUDA device as the CUDA addon reports it. */
export interface GpuDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  multiprocessors: number;
}

/** guardkernel_cuda.node, built by CMakeLists.txt with cmake-js. */
export interface CudaAddon {
  readonly abiVersion: number;
  /** Device count; never throws (any CUDA error is reported as `{ count: 0, error }`). */
  deviceCount(): { count: number; error?: string };
  devices(): GpuDevice[];
  /** Runs a tiny kernel on `device` and returns its output, proving the toolchain end to end. */
  selfTest(device: number): Uint32Array;
  /** CUDA runtime version the addon was built against (e.g. 13000). */
  runtimeVersion(): number;
  /**
   * K2K sandbox on device 0: the core addon's arguments and effects, plus an
   * optional Float64Array(2) that receives [ms for the whole call, ms of device work].
   */
  sandboxCheck(...args: [...Parameters<CoreAddon['sandboxCheck']>, timings?: Float64Array]): void;

  // AES-GCM on device 0 (host buffers in and out). Throws with code ERR_GPU_UNAVAILABLE on a CUDA failure.
  gcmSeal(key: Uint8Array, iv: Uint8Array, data: Uint8Array, aad: Uint8Array, out: Uint8Array, tag: Uint8Array): void;
  /** False (and nothing written to out) when the tag does not verify. */
  gcmOpen(key: Uint8Array, iv: Uint8Array, data: Uint8Array, aad: Uint8Array, tag: Uint8Array, out: Uint8Array): boolean;
  /** A block envelope body: tag + ciphertext per block (lib/crypto/envelope.ts). */
  sealBlocks(key: Uint8Array, header: Uint8Array, prefix: Uint8Array, first: number, aad: Uint8Array, data: Uint8Array, blockSize: number, out: Uint8Array): void;
  /** -1, or the index of the first block that fails (then out holds nothing). */
  openBlocks(key: Uint8Array, header: Uint8Array, prefix: Uint8Array, first: number, aad: Uint8Array, data: Uint8Array, blockSize: number, out: Uint8Array): number;
  /**
   * For `npm run bench:gpu`: seals `bytes` random bytes already on device 0, in place, `reps` times after a warm-up.
   * Each entry is one seal, timed by CUDA events: whole call, its CTR kernel, its GHASH kernels.
   */
  gcmBench(keyBytes: 16 | 32, bytes: number, reps: number): { wholeMs: Float64Array; ctrMs: Float64Array; ghashMs: Float64Array };
  /** For `npm run bench:gpu`: `count` blocks of `blockSize` bytes sealed device to device (AES-256-GCM, one launch), CUDA events. */
  sealBlocksBench(blockSize: number, count: number, reps: number): { wholeMs: Float64Array };

  // Device memory (zeroed on alloc and on free; a forgotten handle is freed by its finalizer).
  deviceAlloc(bytes: number): DeviceHandle;
  deviceFree(handle: DeviceHandle): void;
  deviceWrite(handle: DeviceHandle, bytes: Uint8Array, offset: number): void;
  /** Fills `out` from `offset`. */
  deviceRead(handle: DeviceHandle, out: Uint8Array, offset: number): void;
  /** Copies all of `src` into `dst` at `dstOffset`. */
  deviceCopy(dst: DeviceHandle, dstOffset: number, src: DeviceHandle): void;
  liveDeviceBuffers(): number;
  gcmSealDevice(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, src: DeviceHandle, srcOffset: number, length: number, dst: DeviceHandle, dstOffset: number, tag: Uint8Array): void;
  gcmOpenDevice(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, src: DeviceHandle, srcOffset: number, length: number, tag: Uint8Array, dst: DeviceHandle, dstOffset: number): boolean;
}

/** Must match kAbiVersion in native/addon.cc. */
export const CORE_ABI_VERSION = 14;
/** Must match kAbiVersion in cuda/addon.cc. */
export const CUDA_ABI_VERSION = 5;

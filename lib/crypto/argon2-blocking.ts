/**
 * Argon2id for a caller that cannot await: the MemoryEncryption constructor
 * given a password. hash-wasm (see kdf.ts) only has an asynchronous API (it
 * compiles its WebAssembly asynchronously), so the hash runs on a short-lived worker thread while this thread sleeps on an
 * Atomics word, blocking as crypto.pbkdf2Sync does. The password goes in and
 * the key comes out through a SharedArrayBuffer, zeroed before returning, so
 * neither is copied into a message the garbage collector may keep around.
 */
import { Worker } from 'node:worker_threads';

/** Validated Argon2id settings (see kdf.ts argon2Settings). */
export interface BlockingArgon2Settings {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
  length: number;
}

// Shared layout: [0] state, [1] bytes written, then the password, then room
// for the key or an error message. The state moves STARTING -> STARTED ->
// WRITING -> DONE or FAILED, each step a compare-and-swap, so a caller that
// gives up (-> ABANDONED) and a worker that finishes late cannot both win.
// The caller also terminates the worker, which nearly always stops it
// first; the swap covers the moments before the termination lands, so a
// late key is never written where nobody wipes it.
const STARTING = 0;
const STARTED = 3;
const WRITING = 4;
const ABANDONED = 5;
const DONE = 1;
const FAILED = 2;
const STATE = 0;
const WRITTEN = 1;
const HEADER_BYTES = 8;
const MESSAGE_BYTES = 1024;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { shared, hashWasmPath, passwordBytes, salt, settings } = workerData;
const words = new Int32Array(shared, 0, 2);
const bytes = new Uint8Array(shared);
const out = ${HEADER_BYTES} + passwordBytes;
const started = Atomics.compareExchange(words, ${STATE}, ${STARTING}, ${STARTED}) === ${STARTING};
Atomics.notify(words, ${STATE});
function finish(state, payload) {
  if (Atomics.compareExchange(words, ${STATE}, ${STARTED}, ${WRITING}) !== ${STARTED}) return;
  const n = Math.min(payload.length, bytes.length - out);
  bytes.set(payload.subarray(0, n), out);
  words[${WRITTEN}] = n;
  Atomics.store(words, ${STATE}, state);
  Atomics.notify(words, ${STATE});
}
function failed(e) {
  finish(${FAILED}, Buffer.from(String((e && e.message) || e)));
}
try {
  if (!started) throw new Error('abandoned');
  const hashWasm = require(hashWasmPath);
  const password = Buffer.from(bytes.subarray(${HEADER_BYTES}, out));
  hashWasm
    .argon2id({
      password, salt: Buffer.from(salt), outputType: 'binary',
      memorySize: settings.memoryCost, iterations: settings.timeCost,
      parallelism: settings.parallelism, hashLength: settings.length,
    })
    .then((key) => { password.fill(0); finish(${DONE}, key); key.fill(0); }, (e) => { password.fill(0); failed(e); });
} catch (e) {
  failed(e);
}
`;

/** How long a worker may take to start running its code (tens of ms is usual). */
const START_LIMIT_MS = 30_000;

/**
 * How long to wait for the hash before giving up on the worker: a minute,
 * plus 50 µs per KiB and pass (over ten times what hash-wasm takes on a
 * shared 2-core machine), so only a worker that died without reporting is given up on.
 */
export function blockingArgon2LimitMs(settings: BlockingArgon2Settings): number {
  return 60_000 + Math.ceil(settings.memoryCost * settings.timeCost * 0.05);
}

/** For tests: another module in place of `hash-wasm` (its `argon2id(options)`), another time limit, a look at the shared memory. */
export interface BlockingArgon2Internals {
  hashWasmPath?: string;
  limitMs?: number;
  shared?: (memory: SharedArrayBuffer) => void;
}

/** RFC 9106 Argon2id (0x13), raw output, computed synchronously. Inputs must be validated already (and the password not empty). */
export function argon2idBlocking(password: Uint8Array, salt: Uint8Array, settings: BlockingArgon2Settings, internals: BlockingArgon2Internals = {}): Buffer {
  const limitMs = internals.limitMs ?? blockingArgon2LimitMs(settings);
  const shared = new SharedArrayBuffer(HEADER_BYTES + password.length + Math.max(settings.length, MESSAGE_BYTES));
  const words = new Int32Array(shared, 0, 2);
  const bytes = new Uint8Array(shared);
  bytes.set(password, HEADER_BYTES);
  internals.shared?.(shared);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    // Not the parent's flags: --input-type=module would make this CommonJS
    // source an ES module, which dies on its first require().
    execArgv: [],
    workerData: { shared, hashWasmPath: internals.hashWasmPath ?? require.resolve('hash-wasm'), passwordBytes: password.length, salt: Uint8Array.from(salt), settings: { ...settings } },
    stdout: true,
    stderr: true,
  });
  worker.unref();
  try {
    Atomics.wait(words, STATE, STARTING, START_LIMIT_MS);
    if (Atomics.compareExchange(words, STATE, STARTING, ABANDONED) === STARTING) {
      throw new Error('Argon2id did not finish: its worker thread never started');
    }
    Atomics.wait(words, STATE, STARTED, limitMs);
    if (Atomics.compareExchange(words, STATE, STARTED, ABANDONED) === STARTED) {
      throw new Error(`Argon2id did not finish within ${limitMs} ms`);
    }
    // The worker has claimed the result: it is being written or is there.
    Atomics.wait(words, STATE, WRITING, limitMs);
    const state = Atomics.load(words, STATE);
    const out = bytes.subarray(HEADER_BYTES + password.length, HEADER_BYTES + password.length + words[WRITTEN]);
    if (state === DONE) {
      if (out.length !== settings.length) throw new Error(`Argon2id returned ${out.length} bytes, expected ${settings.length}`);
      const key = Buffer.allocUnsafeSlow(out.length);
      key.set(out);
      return key;
    }
    if (state === FAILED) throw new Error(`Argon2id failed: ${Buffer.from(out).toString('utf8')}`);
    throw new Error('Argon2id did not finish: its worker stopped while writing the result');
  } finally {
    // The data, not the state word: it stays DONE, FAILED or ABANDONED, so
    // a worker that is late (even to start) can claim nothing now.
    bytes.fill(0, HEADER_BYTES);
    void worker.terminate();
  }
}

// Argon2id: kdf.argon2id (hash-wasm, WebAssembly; @noble/hashes for
// associated data) against the `argon2` package (the reference C code behind
// N-API) that it replaced, on the same inputs in the same process. `argon2`
// is no longer a dependency: its cases run only where it is installed
// (`npm install --no-save argon2`), and each group's baseline is then that
// package, so the ratio reads "speed against the reference C code".
'use strict';
// Argon2id does not touch the core addon: bench/run.js's second pass
// (GUARDKERNEL_NATIVE=0) would time the same code again, so it reports nothing.
if (process.env.GUARDKERNEL_NATIVE === '0') {
  process.stdout.write('[]\n');
  process.exit(0);
}
const crypto = require('node:crypto');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

let argon2 = null;
try {
  argon2 = require('argon2');
} catch {
  console.error('argon2 is not installed: its cases are left out (npm install --no-save argon2 to compare)');
}
const noble = require('@noble/hashes/argon2.js'); // ES module: require() from Node 20.19

const password = Buffer.from('correct horse battery staple');
const salt = crypto.randomBytes(16);
const secret = crypto.randomBytes(32);
const ad = Buffer.from('guardkernel bench');

// 4 MiB / t=3 / p=1 keeps a sample near 50 ms on a 2-core machine; 64 MiB /
// t=3 / p=4 is MemoryEncryption's default (RFC 9106's second recommendation).
// Samples per round (after one warm-up call): a few, each call being long.
const settings = [
  { label: '4 MiB, t=3, p=1', memoryCost: 4096, timeCost: 3, parallelism: 1, iterations: 6 },
  { label: '64 MiB, t=3, p=4 (MemoryEncryption default)', memoryCost: 65536, timeCost: 3, parallelism: 4, iterations: 2 },
];

const cases = [];
for (const { label, iterations, ...A } of settings) {
  const group = `Argon2id, ${label}`;
  const base = argon2 !== null;
  if (base) {
    cases.push({ group, iterations, name: 'argon2 package (reference C, N-API)', baseline: true, fn: async () => { await argon2.hash(password, { type: argon2.argon2id, version: 0x13, raw: true, salt, memoryCost: A.memoryCost, timeCost: A.timeCost, parallelism: A.parallelism, hashLength: 32 }); } });
  }
  cases.push({ group, iterations, name: 'kdf.argon2id (hash-wasm)', baseline: !base, fn: async () => { await gk.kdf.argon2id(password, salt, A); } });
  cases.push({ group, iterations, name: 'kdf.argon2id with a secret (hash-wasm)', fn: async () => { await gk.kdf.argon2id(password, salt, { ...A, secret }); } });
  if (A.memoryCost <= 4096) {
    // The associated-data path: pure JavaScript, several times slower.
    cases.push({ group, iterations, name: 'kdf.argon2id with associated data (@noble/hashes)', fn: async () => { await gk.kdf.argon2id(password, salt, { ...A, associatedData: ad }); } });
    if (base) cases.push({ group, iterations, name: 'argon2 package with associated data', fn: async () => { await argon2.hash(password, { type: argon2.argon2id, version: 0x13, raw: true, salt, associatedData: ad, memoryCost: A.memoryCost, timeCost: A.timeCost, parallelism: A.parallelism, hashLength: 32 }); } });
  }
}

// A check before timing: the candidates agree.
(async () => {
  if (argon2 !== null) {
    const o = settings[0];
    const ref = await argon2.hash(password, { type: argon2.argon2id, version: 0x13, raw: true, salt, memoryCost: o.memoryCost, timeCost: 1, parallelism: 1, hashLength: 32 });
    const ours = await gk.kdf.argon2id(password, salt, { ...o, timeCost: 1, parallelism: 1 });
    if (!ours.equals(ref)) throw new Error('kdf.argon2id differs from the argon2 package');
  }
  const js = noble.argon2id(password, salt, { t: 1, m: 64, p: 1, dkLen: 32 });
  if (!Buffer.from(js).equals(await gk.kdf.argon2id(password, salt, { memoryCost: 64, timeCost: 1, parallelism: 1 }))) throw new Error('backends differ');
  await runCases('argon2', cases, { time: 500, warmupTime: 100, rounds: 3 });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

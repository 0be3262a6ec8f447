// The sandbox checkers and the crypto layer in several worker_threads at
// once (the native sandbox checker keeps no global state; each thread has its
// own sandboxes), and DeviceBuffer lifetimes under GC.
import { runSync } from './child';
import crypto from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect, test } from 'vitest';
import { repoRoot } from './helpers';

const dist = path.join(repoRoot, 'dist', 'index.js');

// Run in each worker and in the main thread: a digest of everything computed.
const WORK = `
  const g = require(${JSON.stringify(dist)});
  const crypto = require('node:crypto');
  function run(seed) {
    let s = seed >>> 0 || 1;
    const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
    const boxes = ['js', 'native'].map(() => {
      const box = new g.KernelSandbox({ maxMessagesPerSecond: 50, maxK2kConnections: 3, maxMemoryBytes: 5000 }, g.SandboxPolicy.permissive().denyK2kTo(['k1*']));
      for (let k = 0; k < 40; k++) box.registerKernel('k' + k);
      box.registerTopic('t');
      return box;
    });
    const h = crypto.createHash('sha256');
    for (let b = 0; b < 50; b++) {
      const n = 2000;
      const batch = { src: new Uint32Array(n), dst: new Uint32Array(n), topic: new Uint32Array(n), bytes: new Uint32Array(n) };
      for (let i = 0; i < n; i++) { batch.src[i] = Math.floor(next() * 40); batch.dst[i] = Math.floor(next() * 40); batch.bytes[i] = Math.floor(next() * 200); }
      const backend = g.backends().core.kind === 'native' ? 'native' : 'js';
      const a = boxes[0].checkMessages(batch, 1000 + b * 37, { backend: 'js' }).verdicts;
      const c = boxes[1].checkMessages(batch, 1000 + b * 37, { backend }).verdicts;
      if (Buffer.compare(Buffer.from(a), Buffer.from(c)) !== 0) throw new Error('js and native differ in a worker');
      h.update(a);
    }
    const key = Buffer.alloc(32, seed & 0xff);
    for (const alg of g.AEAD_ALGORITHMS) {
      const nonce = Buffer.alloc(alg === 'xchacha20-poly1305' ? 24 : 12, 7);
      const k = key.subarray(0, alg === 'aes-128-gcm' ? 16 : 32);
      const pt = Buffer.alloc(5000, seed & 0xff);
      const x = g.aead.seal(alg, k, nonce, pt, undefined, { backend: 'native' });
      const y = g.aead.seal(alg, k, nonce, pt, undefined, { backend: 'js' });
      if (!x.ciphertext.equals(y.ciphertext) || !x.tag.equals(y.tag)) throw new Error(alg + ' backends differ in a worker');
      h.update(x.tag);
    }
    const enc = new g.MemoryEncryption({ key: Buffer.alloc(32, 1) });
    const blocks = Buffer.alloc(64 * 100, seed & 0xff);
    if (!enc.decryptBlocks(enc.encryptBlocks(blocks, 64)).equals(blocks)) throw new Error('blocks round trip failed in a worker');
    return h.digest('hex');
  }
`;

test('four worker_threads check sandboxes and seal concurrently with the same answers as the main thread', async () => {
  const seeds = [11, 22, 33, 44];
  const results = await Promise.all(
    seeds.map(
      (seed) =>
        new Promise<string>((resolve, reject) => {
          const w = new Worker(`${WORK}\nrequire('node:worker_threads').parentPort.postMessage(run(${seed}));`, { eval: true });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const expected = seeds.map((seed) => new Function('require', `${WORK}; return run(${seed});`)(require) as string);
  expect(results).toEqual(expected);
  expect(new Set(results).size).toBe(4);
}, 60_000);

test('a forgotten DeviceBuffer is zeroed by its finalizer; a live one keeps its bytes through GC', () => {
  const secret = crypto.randomBytes(64).toString('hex');
  const code = `
    const { DeviceBuffer } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'crypto', 'device-buffer.js'))});
    const settle = async () => { for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
    (async () => {
      const live = DeviceBuffer.from(Buffer.from(${JSON.stringify(secret)}, 'hex'));
      let views = [];
      (() => {
        for (let i = 0; i < 50; i++) {
          const b = DeviceBuffer.from(Buffer.from(${JSON.stringify(secret)}, 'hex'));
          views.push(DeviceBuffer.hostView(b)); // the memory, not the object
        }
      })();
      await settle();
      const zeroed = views.filter((v) => v.every((x) => x === 0)).length;
      console.log(JSON.stringify({ zeroed, live: live.toHost().toString('hex') }));
    })();
  `;
  const r = runSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  const out = JSON.parse(r.stdout);
  expect(out.live).toBe(secret);
  expect(out.zeroed).toBeGreaterThan(40);
});

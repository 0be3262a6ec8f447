// cuda/aes_gcm.cuh (the AES-GCM math of the CUDA kernels) built for the host
// with g++, against node:crypto: the NIST vectors and 2,000 random (key,
// nonce, aad, plaintext) with plaintexts of 0 to 70,000 bytes, CTR blocks
// computed out of order and GHASH split into chunks the way the kernels
// split it. This runs where there is no GPU.
import { runSync } from './child';
import { skipWithout, toolMissing } from './prerequisites';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import vectors from './fixtures/aead-vectors.json';
import { randomInt, repoRoot, rng } from './helpers';

const cxx = process.env.CXX || 'g++';
const haveCxx = !skipWithout(`a C++ compiler (${cxx})`, toolMissing(cxx));
// `npm run test:asan` sets this: the host builds of the device math get the sanitizers too.
const sanitize = process.env.GUARDKERNEL_HOST_SANITIZE === '1' ? ['-fsanitize=address,undefined', '-fno-sanitize-recover=all'] : [];

interface Case {
  key: Buffer;
  iv: Buffer;
  aad: Buffer;
  text: Buffer;
  chunkBlocks: number;
  log2Threads: number;
}

function encode(cases: Case[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  parts.push(u32(cases.length));
  for (const c of cases) parts.push(Buffer.from([c.key.length]), c.key, c.iv, u32(c.aad.length), c.aad, u32(c.text.length), c.text, u32(c.chunkBlocks), u32(c.log2Threads));
  return Buffer.concat(parts);
}

test.runIf(haveCxx)('host-built CUDA AES-GCM math equals node:crypto on the NIST vectors and 2,000 random inputs', () => {
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-aes-')), 'aes_gcm_host');
  const build = runSync(cxx, ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', ...sanitize, '-I', path.join(repoRoot, 'cuda'), path.join(__dirname, 'native', 'aes_gcm_host.cc'), '-o', exe], { encoding: 'utf8', timeout: 600_000 });
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);

  const hex = (s: string): Buffer => Buffer.from(s, 'hex');
  const cases: Case[] = vectors.aead
    .filter((v) => v.algorithm.endsWith('-gcm'))
    .map((v) => ({ key: hex(v.key), iv: hex(v.nonce), aad: hex(v.aad), text: hex(v.plaintext), chunkBlocks: 1, log2Threads: 1 }));
  const published = cases.length;
  const next = rng(424242);
  // Chunk sizes and thread-block sizes of the kernels' split (0: the bitwise reference), the kernels' own (32, 2^8) included.
  const chunkings = [0, 1, 2, 3, 7, 32, 64, 1000];
  for (let i = 0; i < 2000; i++) {
    const len = i % 40 === 0 ? randomInt(next, 0, 70_000) : i % 5 === 0 ? randomInt(next, 0, 4096) : randomInt(next, 0, 100);
    cases.push({
      key: crypto.randomBytes(i % 2 === 0 ? 32 : 16),
      iv: crypto.randomBytes(12),
      aad: crypto.randomBytes(next() < 0.3 ? 0 : randomInt(next, 0, 300)),
      text: crypto.randomBytes(len),
      chunkBlocks: chunkings[i % chunkings.length],
      log2Threads: i % 9,
    });
  }
  const run = runSync(exe, [], { input: encode(cases), maxBuffer: 1 << 28 });
  expect(run.stderr.toString()).toBe('');
  expect(run.status).toBe(0);
  let at = 0;
  cases.forEach((c, i) => {
    const cipher = crypto.createCipheriv(c.key.length === 32 ? 'aes-256-gcm' : 'aes-128-gcm', c.key, c.iv);
    cipher.setAAD(c.aad);
    const want = Buffer.concat([cipher.update(c.text), cipher.final(), cipher.getAuthTag()]);
    const got = run.stdout.subarray(at, at + want.length);
    at += want.length;
    if (!got.equals(want)) expect.fail(`case ${i} (${i < published ? 'published vector' : 'random'}, ${c.key.length * 8}-bit key, ${c.text.length} bytes, aad ${c.aad.length}, chunks of ${c.chunkBlocks}, blocks of 2^${c.log2Threads}) differs`);
  });
  expect(at).toBe(run.stdout.length);
});

test.runIf(haveCxx)('control blocks by 1 to 32 lanes each (host build, lanes in any order) seal exactly what MemoryEncryption.encryptBlocks seals, and open it', async () => {
  const { MemoryEncryption } = await import('../lib');
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-cb-')), 'control_block_host');
  const build = runSync(cxx, ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', ...sanitize, '-I', path.join(repoRoot, 'cuda'), path.join(__dirname, 'native', 'control_block_host.cc'), '-o', exe], { encoding: 'utf8', timeout: 600_000 });
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);
  const next = rng(77);
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const withLen = (b: Buffer): Buffer => Buffer.concat([u32(b.length), b]);
  const inputs: Buffer[] = [];
  const expected: Buffer[] = [];
  const CASES = 108;
  for (let c = 0; c < CASES; c++) {
    const algorithm = c % 2 === 0 ? 'aes-256-gcm' : 'aes-128-gcm';
    const master = crypto.randomBytes(32);
    const enc = new MemoryEncryption({ key: master, algorithm });
    // 1, 2, 4, 8, 16 and 32 lanes of one 16-byte block each, then several per lane; partial last blocks.
    const blockSize = [1, 15, 16, 17, 32, 40, 64, 100, 255, 256, 257, 1000, 511, 512, 513, 4096, 8213, 100_000][c % 18];
    const count = blockSize > 10_000 ? randomInt(next, 0, 3) : randomInt(next, 0, 40);
    const aad = crypto.randomBytes(c % 3 === 0 ? 0 : randomInt(next, 1, 50));
    for (let skip = randomInt(next, 0, 3); skip > 0; skip--) enc.encryptBlocks(Buffer.alloc(blockSize * 2), blockSize); // the counter moves on
    const plain = crypto.randomBytes(blockSize * count);
    const env = enc.encryptBlocks(plain, blockSize, aad.length > 0 ? aad : undefined);
    const key = Buffer.from(crypto.hkdfSync('sha256', master, Buffer.from('guardkernel/memory-encryption/v1'), Buffer.from(`${algorithm}:1`), algorithm === 'aes-256-gcm' ? 32 : 16));
    const header = env.subarray(0, 29);
    const first = Buffer.alloc(8);
    first.writeBigUInt64LE(env.readBigUInt64BE(21));
    inputs.push(withLen(key), withLen(header), env.subarray(17, 21), first, withLen(aad), u32(blockSize), withLen(plain));
    expected.push(env.subarray(29));
  }
  const run = runSync(exe, [], { input: Buffer.concat([u32(CASES), ...inputs]), maxBuffer: 1 << 26 });
  expect(run.stderr.toString()).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout.equals(Buffer.concat(expected))).toBe(true);
});

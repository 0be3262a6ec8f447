// Block envelope bodies on the CPU: the core addon's one-call loop
// (native/aead/aead_blocks.cc, OpenSSL's EVP AEADs) against the per-block loop
// over aead.seal/open on both other backends, and its own argument checks.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { ErrorCodes, GuardError } from '../lib';
import { algorithmInfo } from '../lib/crypto/algorithms';
import { type BlockJob, openBlocksOnCpu, sealBlocksOnCpu } from '../lib/crypto/blocks';
import { core, randomInt, rng } from './helpers';

const TWELVE_BYTE_NONCES = ['aes-256-gcm', 'aes-128-gcm', 'chacha20-poly1305'] as const;

function job(alg: string, next: () => number, backend: 'native' | 'js'): BlockJob {
  const info = algorithmInfo(alg)!;
  const seed = Buffer.from(String(next()));
  const derive = (label: string, n: number) => Buffer.from(crypto.hkdfSync('sha256', seed, Buffer.alloc(0), label, n));
  const count = randomInt(next, 0, 40);
  return {
    info,
    key: derive('key', info.keyBytes),
    header: derive('header', randomInt(next, 0, 40)),
    prefix: derive('prefix', info.nonceBytes - 8),
    first: BigInt(randomInt(next, 0, 2 ** 40)),
    blockSize: randomInt(next, 1, 300),
    count,
    aad: next() < 0.3 ? undefined : derive('aad', randomInt(next, 0, 50)),
    backend,
  };
}

/** The body built block by block with node:crypto, from the layout in lib/crypto/envelope.ts. */
function viaNodeCrypto(j: BlockJob, plain: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < j.count; i++) {
    const nonce = Buffer.concat([Buffer.from(j.prefix), Buffer.alloc(8)]);
    nonce.writeBigUInt64BE(j.first + BigInt(i), j.prefix.length);
    const index = Buffer.alloc(4);
    index.writeUInt32BE(i);
    const c = crypto.createCipheriv(j.info.name as crypto.CipherGCMTypes, j.key, nonce, { authTagLength: 16 });
    c.setAAD(Buffer.concat([j.header, index, j.aad ?? Buffer.alloc(0)]));
    const ct = Buffer.concat([c.update(plain.subarray(i * j.blockSize, (i + 1) * j.blockSize)), c.final()]);
    parts.push(c.getAuthTag(), ct);
  }
  return Buffer.concat(parts);
}

describe.runIf(core !== null)('native block loop', () => {
  test.each(TWELVE_BYTE_NONCES.map((a) => [a]))('%s: 300 random jobs, byte for byte the per-block loops (node:crypto and @noble/ciphers), and back', (alg) => {
    const next = rng(alg.length * 7919);
    for (let round = 0; round < 300; round++) {
      const native = job(alg, next, 'native');
      const js: BlockJob = { ...native, backend: 'js' };
      const plain = crypto.randomBytes(native.count * native.blockSize);
      const a = Buffer.alloc(native.count * (16 + native.blockSize));
      const b = Buffer.alloc(a.length);
      sealBlocksOnCpu(native, plain, a);
      sealBlocksOnCpu(js, plain, b);
      expect(a.equals(b)).toBe(true);
      expect(a.equals(viaNodeCrypto(native, plain))).toBe(true);
      expect(openBlocksOnCpu(native, a).equals(plain)).toBe(true);
      expect(openBlocksOnCpu(js, a).equals(plain)).toBe(true);
    }
  });

  test('a changed tag, ciphertext, header, aad, prefix or counter fails at the right block, and no plaintext comes back', () => {
    const next = rng(42);
    const j = { ...job('aes-256-gcm', next, 'native'), count: 6, blockSize: 32 };
    const plain = crypto.randomBytes(6 * 32);
    const body = Buffer.alloc(6 * 48);
    sealBlocksOnCpu(j, plain, body);
    const failsAt = (changed: BlockJob, b: Buffer) => {
      try {
        openBlocksOnCpu(changed, b);
      } catch (e) {
        expect(e).toBeInstanceOf(GuardError);
        expect((e as GuardError).code).toBe(ErrorCodes.AUTH_FAILED);
        return Number(/Block (\d+)/.exec((e as Error).message)![1]);
      }
      return -1;
    };
    for (const block of [0, 3, 5]) {
      for (const offset of [0, 15, 16, 47]) {
        const b = Buffer.from(body);
        b[block * 48 + offset] ^= 0x01;
        expect(failsAt(j, b)).toBe(block);
      }
    }
    expect(failsAt({ ...j, header: Buffer.concat([j.header, Buffer.from([1])]) }, body)).toBe(0);
    expect(failsAt({ ...j, aad: Buffer.from('other') }, body)).toBe(0);
    expect(failsAt({ ...j, prefix: Buffer.from(j.prefix.map((x) => x ^ 1)) }, body)).toBe(0);
    expect(failsAt({ ...j, first: j.first + 1n }, body)).toBe(0);
    // The addon zeroes what it had opened before the failing block.
    const out = Buffer.alloc(6 * 32, 0xee);
    const b = Buffer.from(body);
    b[4 * 48 + 20] ^= 1;
    expect(core!.aeadOpenBlocks('aes-256-gcm', j.key, j.header, j.prefix, Number(j.first), j.aad ?? Buffer.alloc(0), b, 32, out)).toBe(4);
    expect(out.every((x) => x === 0)).toBe(true);
  });

  test('rejects bad input: algorithm, key and prefix sizes, counter, whole blocks, out size, types', () => {
    const key = Buffer.alloc(32);
    const args = (over: Partial<Record<string, unknown>> = {}) => {
      const a: Record<string, unknown> = { alg: 'aes-256-gcm', key, header: Buffer.alloc(3), prefix: Buffer.alloc(4), first: 0, aad: Buffer.alloc(0), data: Buffer.alloc(64), blockSize: 16, out: Buffer.alloc(4 * 32), ...over };
      return [a.alg, a.key, a.header, a.prefix, a.first, a.aad, a.data, a.blockSize, a.out] as Parameters<NonNullable<typeof core>['aeadSealBlocks']>;
    };
    expect(() => core!.aeadSealBlocks(...args())).not.toThrow();
    const bad: Array<[Partial<Record<string, unknown>>, RegExp]> = [
      [{ alg: 'xchacha20-poly1305' }, /aes-256-gcm, aes-128-gcm or chacha20/],
      [{ alg: 7 }, /algorithm name/],
      [{ key: Buffer.alloc(16) }, /key of the algorithm's size/],
      [{ alg: 'aes-128-gcm' }, /key of the algorithm's size/],
      [{ key: 'k'.repeat(32) }, /key/],
      [{ prefix: Buffer.alloc(8) }, /4-byte nonce prefix/],
      [{ first: -1 }, /first counter/],
      [{ first: 1.5 }, /first counter/],
      [{ first: 2 ** 53 }, /first counter/],
      [{ first: 2 ** 53 - 2 }, /passes 2\^53/],
      [{ first: NaN }, /first counter/],
      [{ data: Buffer.alloc(65) }, /whole blocks/],
      [{ blockSize: 0 }, /block size/],
      [{ blockSize: 2 ** 31 }, /block size/],
      [{ out: Buffer.alloc(4 * 32 - 1) }, /exactly the blocks/],
      [{ out: Buffer.alloc(4 * 32 + 1) }, /exactly the blocks/],
      [{ out: new Uint16Array(64) }, /Uint8Array for out/],
      [{ header: 'h' }, /header/],
    ];
    for (const [over, message] of bad) expect(() => core!.aeadSealBlocks(...args(over))).toThrow(message);
    // Opening checks its sizes the other way round: body of whole sealed blocks, out of plaintext.
    expect(() => core!.aeadOpenBlocks('aes-256-gcm', key, Buffer.alloc(0), Buffer.alloc(4), 0, Buffer.alloc(0), Buffer.alloc(33), 16, Buffer.alloc(16))).toThrow(/whole blocks/);
    expect(() => core!.aeadOpenBlocks('aes-256-gcm', key, Buffer.alloc(0), Buffer.alloc(4), 0, Buffer.alloc(0), Buffer.alloc(32), 16, Buffer.alloc(15))).toThrow(/exactly the blocks/);
    expect(core!.aeadOpenBlocks('aes-256-gcm', key, Buffer.alloc(0), Buffer.alloc(4), 0, Buffer.alloc(0), Buffer.alloc(0), 16, Buffer.alloc(0))).toBe(-1);
  });

  test('XChaCha20 and counters past 2^53 take the per-block loop, with the same bytes', () => {
    const next = rng(9);
    const x = job('xchacha20-poly1305', next, 'native');
    const plain = crypto.randomBytes(x.count * x.blockSize);
    const a = Buffer.alloc(x.count * (16 + x.blockSize));
    const b = Buffer.alloc(a.length);
    sealBlocksOnCpu(x, plain, a);
    sealBlocksOnCpu({ ...x, backend: 'js' }, plain, b);
    expect(a.equals(b)).toBe(true);
    const far = { ...job('aes-256-gcm', next, 'native'), count: 3, blockSize: 8, first: 2n ** 60n };
    const c = Buffer.alloc(3 * 24);
    const d = Buffer.alloc(3 * 24);
    sealBlocksOnCpu(far, Buffer.alloc(24, 1), c);
    sealBlocksOnCpu({ ...far, backend: 'js' }, Buffer.alloc(24, 1), d);
    expect(c.equals(d)).toBe(true);
  });
});

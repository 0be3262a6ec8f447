/**
 * Random nonces from a pool: crypto.randomBytes costs ~3 µs per call here
 * whatever the size, so small draws come from a 4 KiB block of CSPRNG output
 * refilled with randomFillSync when used up. Bytes handed out are erased from
 * the pool, so each is used once.
 */
import crypto from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;

/** Writes `n` (1..256) fresh random bytes into `out` at `offset`. */
export function randomInto(out: Uint8Array, offset: number, n: number): void {
  if (n > 256) {
    crypto.randomFillSync(out, offset, n);
    return;
  }
  if (used + n > POOL_BYTES) {
    crypto.randomFillSync(pool);
    used = 0;
  }
  out.set(pool.subarray(used, used + n), offset);
  pool.fill(0, used, used + n);
  used += n;
}

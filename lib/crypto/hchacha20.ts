/**
 * HChaCha20 (draft-irtf-cfrg-xchacha, section 2.2): derives a 256-bit subkey
 * from a key and the first 16 bytes of an XChaCha20 nonce. XChaCha20-Poly1305
 * is then ChaCha20-Poly1305 (RFC 8439, here OpenSSL's through node:crypto)
 * under that subkey with the nonce 0x00000000 || nonce[16..24], which is what
 * libsodium computes.
 */
function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

function quarterRound(s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] += s[b]; s[d] = rotl(s[d] ^ s[a], 16);
  s[c] += s[d]; s[b] = rotl(s[b] ^ s[c], 12);
  s[a] += s[b]; s[d] = rotl(s[d] ^ s[a], 8);
  s[c] += s[d]; s[b] = rotl(s[b] ^ s[c], 7);
}

function readLe32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** key: 32 bytes; nonce16: 16 bytes. Returns the 32-byte subkey. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const s = new Uint32Array(16);
  // "expand 32-byte k"
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) s[4 + i] = readLe32(key, 4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = readLe32(nonce16, 4 * i);
  for (let round = 0; round < 10; round++) {
    quarterRound(s, 0, 4, 8, 12);
    quarterRound(s, 1, 5, 9, 13);
    quarterRound(s, 2, 6, 10, 14);
    quarterRound(s, 3, 7, 11, 15);
    quarterRound(s, 0, 5, 10, 15);
    quarterRound(s, 1, 6, 11, 12);
    quarterRound(s, 2, 7, 8, 13);
    quarterRound(s, 3, 4, 9, 14);
  }
  const out = new Uint8Array(32);
  const words = [s[0], s[1], s[2], s[3], s[12], s[13], s[14], s[15]];
  for (let i = 0; i < 8; i++) {
    out[4 * i] = words[i] & 0xff;
    out[4 * i + 1] = (words[i] >>> 8) & 0xff;
    out[4 * i + 2] = (words[i] >>> 16) & 0xff;
    out[4 * i + 3] = words[i] >>> 24;
  }
  s.fill(0);
  return out;
}

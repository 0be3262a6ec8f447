// SHA-256 and HMAC-SHA256 on 64 B / 200 B / 4 KiB: guardkernel vs node:crypto.
'use strict';
const crypto = require('node:crypto');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const key = crypto.randomBytes(32);
const hmacKey = new gk.HmacKey(key);
const keyObject = crypto.createSecretKey(key);
const out = Buffer.alloc(32);
const cases = [];

for (const size of [64, 200, 4096]) {
  const msg = crypto.randomBytes(size);
  const label = size === 4096 ? '4 KiB' : `${size} B`;
  const inner = size === 4096 ? 20 : 200;
  const h = `HMAC-SHA256 ${label}`;
  cases.push(
    { group: h, name: "crypto.createHmac('sha256', key).update(msg).digest()", fn: () => crypto.createHmac('sha256', key).update(msg).digest(), inner, baseline: true },
    { group: h, name: "crypto.createHmac('sha256', keyObject).update(msg).digest()", fn: () => crypto.createHmac('sha256', keyObject).update(msg).digest(), inner },
    { group: h, name: "crypto.createHmac(...).digest('hex')", fn: () => crypto.createHmac('sha256', key).update(msg).digest('hex'), inner },
    { group: h, name: 'HmacKey.signInto(msg, out) [32 B into a caller buffer]', fn: () => hmacKey.signInto(msg, out, 0), inner },
    { group: h, name: 'HmacKey.sign(msg) [hex string]', fn: () => hmacKey.sign(msg), inner },
    { group: h, name: 'HmacKey.signBytes(msg) [new Buffer]', fn: () => hmacKey.signBytes(msg), inner },
    { group: h, name: 'HmacKey.verify(msg, mac)', fn: () => hmacKey.verify(msg, out), inner },
  );
  const s = `SHA-256 ${label}`;
  cases.push(
    { group: s, name: "crypto.createHash('sha256').update(msg).digest()", fn: () => crypto.createHash('sha256').update(msg).digest(), inner, baseline: true },
    ...(typeof crypto.hash === 'function'
      ? [{ group: s, name: "crypto.hash('sha256', msg, 'buffer')", fn: () => crypto.hash('sha256', msg, 'buffer'), inner }]
      : []),
    { group: s, name: 'sha256(msg) [new Buffer]', fn: () => gk.sha256(msg), inner },
    { group: s, name: 'sha256Hex(msg) [hex string]', fn: () => gk.sha256Hex(msg), inner },
  );
}

runCases('hash', cases).catch((e) => {
  console.error(e);
  process.exit(1);
});

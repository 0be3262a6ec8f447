// Keyring.verify / issue vs jose (jwtVerify / SignJWT) on the same token and
// secret, same process.
'use strict';
const crypto = require('node:crypto');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

async function main() {
  const jose = await import('jose'); // ESM-only
  const secret = crypto.randomBytes(32);
  const ring = new gk.Keyring({ keys: { k1: secret }, active: 'k1' });
  const car = { action_type: 'file_read', agent_id: 'agent-prod-42', resource: '/srv/data/q3.csv', args: { mode: 'r' } };
  const hash = gk.carHash(car);
  const { permit } = ring.issue({ carHash: hash, agentId: 'agent-prod-42', ttlMs: 3_600_000, use: 'multi' });

  // Same answer first.
  if (!ring.verify(permit, { carHash: hash }).valid) throw new Error('Keyring.verify rejected its own permit');
  const { payload } = await jose.jwtVerify(permit, secret, { algorithms: ['HS256'] });
  if (payload.car !== hash) throw new Error('jose disagrees');

  const now = Math.floor(Date.now() / 1000);
  // jose is fastest with a key object made once; that is the fair baseline.
  const keyObject = crypto.createSecretKey(secret);
  await runCases('permit', [
    { group: 'verify a valid permit', name: "jose jwtVerify(token, keyObject, { algorithms: ['HS256'] })", baseline: true, inner: 10, fn: async () => { for (let i = 0; i < 10; i++) await jose.jwtVerify(permit, keyObject, { algorithms: ['HS256'] }); } },
    { group: 'verify a valid permit', name: 'jose jwtVerify(token, secretBytes, ...)', inner: 10, fn: async () => { for (let i = 0; i < 10; i++) await jose.jwtVerify(permit, secret, { algorithms: ['HS256'] }); } },
    { group: 'verify a valid permit', name: 'keyring.verify(permit, { carHash })', inner: 100, fn: () => ring.verify(permit, { carHash: hash }) },
    {
      group: 'issue a permit', name: 'jose new SignJWT(claims).sign(keyObject)', baseline: true, inner: 10,
      fn: async () => {
        for (let i = 0; i < 10; i++) {
          await new jose.SignJWT({ car: hash, dec: 'allow', use: 'multi' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'k1' })
            .setIssuer('guardkernel').setSubject('agent-prod-42').setIssuedAt(now).setExpirationTime(now + 3600)
            .setJti(crypto.randomBytes(16).toString('base64url')).sign(keyObject);
        }
      },
    },
    { group: 'issue a permit', name: 'keyring.issue({ carHash, agentId, ttlMs })', inner: 100, fn: () => ring.issue({ carHash: hash, agentId: 'agent-prod-42', ttlMs: 3_600_000, use: 'multi' }) },
  ]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

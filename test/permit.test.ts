// Permits: JWS HS256 + Keyring. Interop with jose, every rejection reason,
// and the attacks the seeds fell to.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { Keyring, ReplayDetector, carHash, type ReplayStore } from '../lib/index';

const SECRET_A = crypto.randomBytes(32);
const SECRET_B = crypto.randomBytes(48);
const car = { action_type: 'file_read', agent_id: 'agent-7', resource: '/srv/data/a.txt' };
const H = carHash(car);
const OTHER = carHash({ ...car, resource: '/etc/shadow' });

/** A replay store that counts calls: proves what never reached it. */
function spyStore(): ReplayStore & { calls: number } {
  const inner = new ReplayDetector({ capacity: 1024 });
  const spy = {
    calls: 0,
    check(nonce: string, exp: number) {
      spy.calls++;
      return inner.check(nonce, exp);
    },
  };
  return spy;
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function signRaw(header: unknown, payload: unknown, secret: Uint8Array): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function claimsFor(overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: 'guardkernel', sub: 'agent-7', car: H, dec: 'allow', iat: now, exp: now + 60, jti: crypto.randomBytes(16).toString('base64url'), use: 'multi', ...overrides };
}

describe('issue and verify', () => {
  test('round trip, single-use: valid once, then replayed', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    const before = Date.now();
    const { permit, jti, expiresAt } = ring.issue({ car, agentId: 'agent-7', ttlMs: 60_000 });
    const [h, p] = permit.split('.');
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT', kid: 'a' });
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    expect(claims).toMatchObject({ iss: 'guardkernel', sub: 'agent-7', car: H, dec: 'allow', jti, use: 'once' });
    expect(expiresAt).toBe(claims.exp * 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(expiresAt).toBeGreaterThan(before + 59_000 - 1000);
    expect(Buffer.from(jti, 'base64url')).toHaveLength(16);
    const first = ring.verify(permit, { carHash: H });
    expect(first).toMatchObject({ valid: true, claims: { jti, sub: 'agent-7' } });
    expect(ring.verify(permit, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
  });

  test('single-use permits under an injected clock: the private replay detector shares it', () => {
    // The clock is years behind the wall clock; expiry is computed from it.
    const now = { t: 1_000_000_000 };
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a', clock: () => now.t });
    const { permit } = ring.issue({ car, agentId: 'agent-7', ttlMs: 60_000 });
    expect(ring.verify(permit, { carHash: H })).toMatchObject({ valid: true });
    expect(ring.verify(permit, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
    now.t += 61_000;
    expect(ring.verify(permit, { carHash: H })).toEqual({ valid: false, reason: 'expired' });
  });

  test('consume: false checks a single-use permit without spending it', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    const { permit } = ring.issue({ carHash: H, agentId: 'x', ttlMs: 5000 });
    expect(ring.verify(permit, { carHash: H, consume: false }).valid).toBe(true);
    expect(ring.verify(permit, { carHash: H, consume: false }).valid).toBe(true);
    expect(ring.verify(permit, { carHash: H }).valid).toBe(true);
    // A check that does not consume does not consult the replay store either.
    expect(ring.verify(permit, { carHash: H, consume: false }).valid).toBe(true);
    expect(ring.verify(permit, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
  });

  test('multi-use permits verify repeatedly; carHash form works', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a', issuer: 'gate-1' });
    const { permit } = ring.issue({ carHash: H, agentId: 'agent-7', ttlMs: 5000, use: 'multi' });
    for (let i = 0; i < 3; i++) expect(ring.verify(permit, { carHash: H })).toMatchObject({ valid: true, claims: { iss: 'gate-1', use: 'multi' } });
  });

  test('expiry, not-before and clock tolerance', () => {
    let now = 1_800_000_000_000;
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a', clock: () => now });
    const { permit, expiresAt } = ring.issue({ carHash: H, agentId: 'x', ttlMs: 10_000, use: 'multi' });
    expect(ring.verify(permit, { carHash: H, now: expiresAt - 1 }).valid).toBe(true);
    expect(ring.verify(permit, { carHash: H, now: expiresAt })).toEqual({ valid: false, reason: 'expired' });
    now = expiresAt + 5;
    expect(ring.verify(permit, { carHash: H })).toEqual({ valid: false, reason: 'expired' });
    const tolerant = new Keyring({ keys: { a: SECRET_A }, active: 'a', clockToleranceMs: 1000 });
    expect(tolerant.verify(permit, { carHash: H, now: expiresAt + 999 }).valid).toBe(true);
    const future = signRaw({ alg: 'HS256', typ: 'JWT', kid: 'a' }, claimsFor({ nbf: Math.floor(Date.now() / 1000) + 30 }), SECRET_A);
    expect(ring.verify(future, { carHash: H, now: Date.now() })).toEqual({ valid: false, reason: 'not_yet_valid' });
  });

  test('a permit is bound to its CAR', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    const { permit } = ring.issue({ carHash: H, agentId: 'x', ttlMs: 5000 });
    expect(ring.verify(permit, { carHash: OTHER })).toEqual({ valid: false, reason: 'car_mismatch' });
    // and the mismatch did not consume it
    expect(ring.verify(permit, { carHash: H }).valid).toBe(true);
  });
});

describe('interoperability with jose', () => {
  test('our permits verify with jose jwtVerify', async () => {
    const jose = await import('jose');
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    const { permit, jti } = ring.issue({ car, agentId: 'agent-7', ttlMs: 60_000 });
    const { payload, protectedHeader } = await jose.jwtVerify(permit, SECRET_A, { algorithms: ['HS256'] });
    expect(protectedHeader).toEqual({ alg: 'HS256', typ: 'JWT', kid: 'a' });
    expect(payload).toMatchObject({ sub: 'agent-7', car: H, jti, dec: 'allow', use: 'once' });
  });

  test('HS256 tokens signed by jose verify with ours', async () => {
    const jose = await import('jose');
    const ring = new Keyring({ keys: { b: SECRET_B }, active: 'b' });
    const now = Math.floor(Date.now() / 1000);
    const token = await new jose.SignJWT({ car: H, dec: 'allow', use: 'once' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'b' })
      .setIssuer('other-issuer').setSubject('agent-7').setIssuedAt(now).setExpirationTime(now + 60).setJti('jose-jti-1')
      .sign(SECRET_B);
    expect(ring.verify(token, { carHash: H })).toMatchObject({ valid: true, claims: { jti: 'jose-jti-1', iss: 'other-issuer' } });
    expect(ring.verify(token, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
  });

  test('alg none and HS512 are rejected', async () => {
    const jose = await import('jose');
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    const hs512 = await new jose.SignJWT(claimsFor()).setProtectedHeader({ alg: 'HS512', typ: 'JWT', kid: 'a' }).sign(SECRET_A);
    expect(ring.verify(hs512, { carHash: H })).toEqual({ valid: false, reason: 'bad_alg' });
    const none = `${b64({ alg: 'none', typ: 'JWT', kid: 'a' })}.${b64(claimsFor())}.`;
    expect(ring.verify(none, { carHash: H })).toEqual({ valid: false, reason: 'bad_alg' });
    const noneSigned = `${b64({ alg: 'none', kid: 'a' })}.${b64(claimsFor())}.${crypto.randomBytes(32).toString('base64url')}`;
    expect(ring.verify(noneSigned, { carHash: H })).toEqual({ valid: false, reason: 'bad_alg' });
    const lower = signRaw({ alg: 'hs256', kid: 'a' }, claimsFor(), SECRET_A);
    expect(ring.verify(lower, { carHash: H })).toEqual({ valid: false, reason: 'bad_alg' });
  });
});

describe('malformed tokens', () => {
  const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
  const good = ring.issue({ carHash: H, agentId: 'x', ttlMs: 60_000, use: 'multi' }).permit;
  const [h, p, s] = good.split('.');

  test.each([
    ['empty', ''],
    ['one segment', h],
    ['two segments', `${h}.${p}`],
    ['extra segment', `${good}.${s}`],
    ['empty signature', `${h}.${p}.`],
    ['padding', `${h}.${p}.${s}=`],
    ['padded payload', `${h}.${p}==.${s}`],
    ['non-base64url characters', `${h}.${p}.${s.slice(0, -1)}+`],
    ['whitespace', `${h}.${p}.${s} `],
    ['header not JSON', `${b64('not json')}.${p}.${s}`],
    ['header is an array', `${b64([1])}.${p}.${s}`],
    ['header with crit', `${b64({ alg: 'HS256', kid: 'a', crit: ['exp'] })}.${p}.${s}`],
    ['huge', 'a'.repeat(10_000)],
    ['huge, three segments', `${h}.${'A'.repeat(1 << 20)}.${s}`],
    ['dots only', '..'],
  ])('%s', (_name, token) => {
    expect(ring.verify(token, { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
  });

  test('payload not JSON (even when correctly signed) or missing claims', () => {
    const header = { alg: 'HS256', typ: 'JWT', kid: 'a' };
    expect(ring.verify(signRaw(header, 'not json', SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
    for (const drop of ['sub', 'car', 'exp', 'jti', 'use', 'dec']) {
      const c: Record<string, unknown> = claimsFor();
      delete c[drop];
      expect(ring.verify(signRaw(header, c, SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
    }
    expect(ring.verify(signRaw(header, claimsFor({ exp: '9999999999' }), SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
    expect(ring.verify(signRaw(header, claimsFor({ use: 'twice' }), SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
    expect(ring.verify(signRaw(header, claimsFor({ dec: 'deny' }), SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
  });

  // The last base64url character can carry unused low bits; Node's decoder
  // ignores them, so without a canonical check one MAC would have many texts.
  test('non-canonical base64url (unused trailing bits set) is malformed', () => {
    const bump = (seg: string) => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      return seg.slice(0, -1) + alphabet[alphabet.indexOf(seg.at(-1)!) | 1];
    };
    expect(s).toHaveLength(43);
    const sig = bump(s);
    expect(sig).not.toBe(s);
    expect(Buffer.from(sig, 'base64url').equals(Buffer.from(s, 'base64url'))).toBe(true);
    expect(ring.verify(`${h}.${p}.${sig}`, { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
    if (p.length % 4 !== 0 && bump(p) !== p) {
      expect(ring.verify(`${h}.${bump(p)}.${s}`, { carHash: H })).toEqual({ valid: false, reason: 'malformed' });
    }
    expect(ring.verify(good, { carHash: H }).valid).toBe(true);
  });

  test('tampering is bad_signature', () => {
    const forgedPayload = b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'root' });
    expect(ring.verify(`${h}.${forgedPayload}.${s}`, { carHash: H })).toEqual({ valid: false, reason: 'bad_signature' });
    const flipped = Buffer.from(s, 'base64url');
    flipped[0] ^= 1;
    expect(ring.verify(`${h}.${p}.${flipped.toString('base64url')}`, { carHash: H })).toEqual({ valid: false, reason: 'bad_signature' });
    expect(ring.verify(`${h}.${p}.${crypto.randomBytes(16).toString('base64url')}`, { carHash: H })).toEqual({ valid: false, reason: 'bad_signature' });
    const otherKey = signRaw({ alg: 'HS256', typ: 'JWT', kid: 'a' }, claimsFor(), crypto.randomBytes(32));
    expect(ring.verify(otherKey, { carHash: H })).toEqual({ valid: false, reason: 'bad_signature' });
  });

  test('unknown or missing kid', () => {
    expect(ring.verify(signRaw({ alg: 'HS256', kid: 'zz' }, claimsFor(), SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'unknown_kid' });
    expect(ring.verify(signRaw({ alg: 'HS256' }, claimsFor(), SECRET_A), { carHash: H })).toEqual({ valid: false, reason: 'unknown_kid' });
  });
});

describe('attacks', () => {
  test('a forged permit (right jti, wrong MAC) never consumes the nonce', () => {
    const spy = spyStore();
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: spy });
    const real = ring.issue({ carHash: H, agentId: 'agent-7', ttlMs: 60_000 }).permit;
    const [h, p] = real.split('.');
    const forged = `${h}.${p}.${crypto.randomBytes(32).toString('base64url')}`;
    for (let i = 0; i < 3; i++) expect(ring.verify(forged, { carHash: H })).toEqual({ valid: false, reason: 'bad_signature' });
    expect(spy.calls).toBe(0);
    expect(ring.verify(real, { carHash: H }).valid).toBe(true);
    expect(spy.calls).toBe(1);
    expect(ring.verify(real, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
  });

  test('the same forgery against the default (private) replay detector', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    const { permit: real, expiresAt } = ring.issue({ carHash: H, agentId: 'agent-7', ttlMs: 60_000 });
    const [h, p, s] = real.split('.');
    const flipped = Buffer.from(s, 'base64url');
    flipped[31] ^= 0x80;
    for (let i = 0; i < 3; i++) expect(ring.verify(`${h}.${p}.${flipped.toString('base64url')}`, { carHash: H })).toEqual({ valid: false, reason: 'bad_signature' });
    expect(ring.verify(real, { carHash: H, now: expiresAt })).toEqual({ valid: false, reason: 'expired' });
    expect(ring.verify(real, { carHash: OTHER })).toEqual({ valid: false, reason: 'car_mismatch' });
    expect(ring.verify(real, { carHash: H }).valid).toBe(true);
    expect(ring.verify(real, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
  });

  test('an expired permit is rejected without touching the replay store', () => {
    const spy = spyStore();
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: spy });
    const { permit, expiresAt } = ring.issue({ carHash: H, agentId: 'x', ttlMs: 2000 });
    expect(ring.verify(permit, { carHash: H, now: expiresAt + 1 })).toEqual({ valid: false, reason: 'expired' });
    expect(ring.verify(permit, { carHash: OTHER })).toEqual({ valid: false, reason: 'car_mismatch' });
    expect(spy.calls).toBe(0);
  });

  test('key rotation: the old kid verifies until retired, then unknown_kid', () => {
    const ring = new Keyring({ keys: { old: SECRET_A }, active: 'old' });
    const oldPermit = ring.issue({ carHash: H, agentId: 'x', ttlMs: 60_000, use: 'multi' }).permit;
    ring.add('new', SECRET_B);
    ring.setActive('new');
    const newPermit = ring.issue({ carHash: H, agentId: 'x', ttlMs: 60_000, use: 'multi' }).permit;
    expect(JSON.parse(Buffer.from(newPermit.split('.')[0], 'base64url').toString()).kid).toBe('new');
    expect(ring.verify(oldPermit, { carHash: H }).valid).toBe(true);
    expect(() => ring.retire('new')).toThrow(/active/);
    ring.retire('old');
    expect(ring.verify(oldPermit, { carHash: H })).toEqual({ valid: false, reason: 'unknown_kid' });
    expect(ring.verify(newPermit, { carHash: H }).valid).toBe(true);
    expect(ring.kids()).toEqual(['new']);
  });

  test('a shared or saturated replay store fails closed', () => {
    const full = new ReplayDetector({ capacity: 1 });
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: full });
    const p1 = ring.issue({ carHash: H, agentId: 'x', ttlMs: 60_000 }).permit;
    const p2 = ring.issue({ carHash: H, agentId: 'x', ttlMs: 60_000 }).permit;
    expect(ring.verify(p1, { carHash: H }).valid).toBe(true);
    expect(ring.verify(p2, { carHash: H })).toEqual({ valid: false, reason: 'replay_unavailable' });
    const broken = new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: { check: () => { throw new Error('store down'); } } });
    expect(broken.verify(broken.issue({ carHash: H, agentId: 'x', ttlMs: 60_000 }).permit, { carHash: H })).toEqual({ valid: false, reason: 'replay_unavailable' });
  });

  test('two keyrings sharing one replay detector accept a permit once in total', () => {
    const shared = new ReplayDetector({ capacity: 64 });
    const r1 = new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: shared });
    const r2 = new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: shared });
    const { permit } = r1.issue({ carHash: H, agentId: 'x', ttlMs: 60_000 });
    expect(r2.verify(permit, { carHash: H }).valid).toBe(true);
    expect(r1.verify(permit, { carHash: H })).toEqual({ valid: false, reason: 'replayed' });
  });
});

describe('Keyring rejects bad input', () => {
  test('constructor', () => {
    expect(() => new Keyring(undefined as never)).toThrow(TypeError);
    expect(() => new Keyring({ keys: {}, active: 'a' })).toThrow(TypeError);
    expect(() => new Keyring({ keys: { a: 'short secret' }, active: 'a' })).toThrow(/at least 32 bytes/);
    expect(() => new Keyring({ keys: { a: crypto.randomBytes(31) }, active: 'a' })).toThrow(RangeError);
    expect(() => new Keyring({ keys: { a: 42 as never }, active: 'a' })).toThrow(TypeError);
    expect(() => new Keyring({ keys: { a: SECRET_A }, active: 'b' })).toThrow(/active/);
    expect(() => new Keyring({ keys: { '': SECRET_A }, active: '' })).toThrow(TypeError);
    expect(() => new Keyring({ keys: { a: SECRET_A }, active: 'a', clockToleranceMs: -1 })).toThrow(RangeError);
    expect(() => new Keyring({ keys: { a: SECRET_A }, active: 'a', replay: {} as never })).toThrow(TypeError);
    expect(() => new Keyring({ keys: { a: SECRET_A }, active: 'a', issuer: '' })).toThrow(TypeError);
  });

  test('add, retire, setActive', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    expect(() => ring.add('b', 'too short')).toThrow(RangeError);
    expect(() => ring.add(5 as never, SECRET_B)).toThrow(TypeError);
    expect(() => ring.retire('nope')).toThrow(/Unknown kid/);
    expect(() => ring.setActive('nope')).toThrow(/Unknown kid/);
  });

  test('issue', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    expect(() => ring.issue(null as never)).toThrow(TypeError);
    expect(() => ring.issue({ agentId: 'x', ttlMs: 5000 } as never)).toThrow(/exactly one of car or carHash/);
    expect(() => ring.issue({ car, carHash: H, agentId: 'x', ttlMs: 5000 } as never)).toThrow(/exactly one/);
    expect(() => ring.issue({ carHash: 'sha256:xyz', agentId: 'x', ttlMs: 5000 })).toThrow(TypeError);
    expect(() => ring.issue({ carHash: H, agentId: '', ttlMs: 5000 })).toThrow(TypeError);
    for (const ttlMs of [0, 999, 1.5, -1, NaN, 8 * 24 * 3600 * 1000]) expect(() => ring.issue({ carHash: H, agentId: 'x', ttlMs })).toThrow(RangeError);
    expect(() => ring.issue({ carHash: H, agentId: 'x', ttlMs: 5000, use: 'twice' as never })).toThrow(TypeError);
    expect(() => ring.issue({ car: { action_type: 'a' } as never, agentId: 'x', ttlMs: 5000 })).toThrow(/agent_id/);
  });

  test('verify: programming errors throw, attacker strings never do', () => {
    const ring = new Keyring({ keys: { a: SECRET_A }, active: 'a' });
    expect(() => ring.verify(undefined as never, { carHash: H })).toThrow(TypeError);
    expect(() => ring.verify(Buffer.from('x') as never, { carHash: H })).toThrow(TypeError);
    expect(() => ring.verify('a.b.c', undefined as never)).toThrow(TypeError);
    expect(() => ring.verify('a.b.c', { carHash: H, now: NaN })).toThrow(TypeError);
    const junk = ['.', '...', 'a.b.c', '\ud800.\udfff.x', '🙂.🙂.🙂', 'e30.e30.e30', `${b64({ alg: 'HS256', kid: 'a' })}.${'A'.repeat(8000)}.x`];
    for (const t of junk) expect(ring.verify(t, { carHash: H }).valid).toBe(false);
  });
});

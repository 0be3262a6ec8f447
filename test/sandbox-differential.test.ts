// Every backend against the plain reference model in test/sandbox-model.ts,
// on random policies, limits and batches with state carried across batches.
import { expect, test } from 'vitest';
import { core, rng } from './helpers';
import { compareWithModel } from './sandbox-model';

const SCENARIOS = 100;
const BATCHES = 12; // 1,200 batches per backend
const OPTIONS = { batches: BATCHES, maxSize: 100_000, largeEvery: 6 };

test('TypeScript checker matches the reference model on 1,200 random batches', () => {
  let messages = 0;
  for (let seed = 1; seed <= SCENARIOS; seed++) {
    const r = compareWithModel(seed, rng(seed), () => 'js', OPTIONS);
    expect(r.mismatch).toBeNull();
    messages += r.messages;
  }
  expect(messages).toBeGreaterThan(1_000_000);
});

test.runIf(core !== null)('native checker matches the reference model on 1,200 random batches', () => {
  let messages = 0;
  for (let seed = 1; seed <= SCENARIOS; seed++) {
    const r = compareWithModel(seed, rng(seed + 7919), () => 'native', OPTIONS);
    expect(r.mismatch).toBeNull();
    messages += r.messages;
  }
  expect(messages).toBeGreaterThan(1_000_000);
});

test.runIf(core !== null)('state carries over when batches alternate between native and TypeScript', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const r = compareWithModel(seed, rng(seed * 31 + 5), (i) => (i % 2 === 0 ? 'native' : 'js'), OPTIONS);
    expect(r.mismatch).toBeNull();
  }
});

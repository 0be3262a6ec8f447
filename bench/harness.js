// Shared by every suite: runs tinybench cases and prints one JSON document of
// rows on stdout for bench/run.js to merge. Cheap operations run `inner` times
// per sample so timer overhead (~tens of ns) does not dominate; every reported
// figure is per single operation.
//
// Paired rounds: on a shared 2-core VM the speed drifts by tens of percent
// within seconds, so a baseline measured once, before its cases, can make a
// case look up to twice as fast or slow as it is. Each group therefore runs in
// `rounds` rounds, the baseline then every case of the group, each for a
// slice of the time; a case's speed against the baseline is the median over
// rounds of (baseline p50 / case p50) from the same round, and its reported
// latencies are those of its median round.
'use strict';
const { Bench } = require('tinybench');
const { backends } = require('../dist/index.js');

async function measure(suite, c, time, warmupTime) {
  const inner = c.inner ?? 1;
  const op = c.fn;
  // An async case runs its own inner loop (and says so with `inner`); a
  // synchronous one is wrapped here.
  const isAsync = op.constructor.name === 'AsyncFunction';
  const fn = inner === 1 || isAsync ? op : () => { for (let i = 0; i < inner; i++) op(); };
  // tinybench runs at least `iterations` (64) samples after 16 warm-up
  // calls, however long they take: a case of ~1 s per call (Argon2id at
  // 64 MiB) sets its own counts.
  const counts = c.iterations === undefined ? {} : { iterations: c.iterations, warmupIterations: c.warmupIterations ?? 1 };
  const bench = new Bench({ time, warmupTime, ...counts });
  bench.add(c.name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (!r || r.state !== 'completed') throw new Error(`${suite}/${c.name}: ${r && r.error ? r.error : 'did not complete'}`);
  // perOpDivisor: one call makes that many operations (a batch).
  const per = inner * (c.perOpDivisor ?? 1);
  const perOpNs = (ms) => (ms * 1e6) / per;
  return { meanNs: perOpNs(r.latency.mean), p50Ns: perOpNs(r.latency.p50), p99Ns: perOpNs(r.latency.p99), opsPerSec: r.throughput.mean * per, samples: r.latency.samplesCount };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * @param {string} suite
 * @param {Array<{group: string, name: string, fn: () => void, inner?: number, baseline?: boolean, perOpDivisor?: number, iterations?: number, warmupIterations?: number}>} cases
 */
async function runCases(suite, cases, { time = 400, warmupTime = 100, rounds = 5, extraRows } = {}) {
  const backend = backends().core.kind;
  const groups = [...new Set(cases.map((c) => c.group))];
  const results = new Map(cases.map((c) => [c, []]));
  for (const group of groups) {
    // The baseline first in every round, so each case has one right before it.
    const members = cases.filter((c) => c.group === group).sort((a, b) => Number(Boolean(b.baseline)) - Number(Boolean(a.baseline)));
    for (let round = 0; round < rounds; round++) {
      for (const c of members) results.get(c).push(await measure(suite, c, time / rounds, round === 0 ? warmupTime : warmupTime / 5));
    }
  }
  const rows = [];
  for (const c of cases) {
    const runs = results.get(c);
    const mid = runs.find((r) => r.p50Ns === median(runs.map((x) => x.p50Ns)));
    const row = { suite, group: c.group, name: c.name, backend, baseline: Boolean(c.baseline), ...mid, samples: runs.reduce((n, r) => n + r.samples, 0) };
    const base = cases.find((b) => b.baseline && b.group === c.group);
    if (base !== undefined && base !== c) {
      const baseRuns = results.get(base);
      row.roundRatios = runs.map((r, i) => Number((baseRuns[i].p50Ns / r.p50Ns).toFixed(3)));
      row.pairedSpeedup = median(row.roundRatios);
    }
    rows.push(row);
  }
  // Figures that are not per-call latencies (e.g. multi-thread throughput).
  if (extraRows) for (const r of await extraRows()) rows.push({ suite, backend, ...r });
  process.stdout.write(JSON.stringify(rows) + '\n');
}

module.exports = { runCases };

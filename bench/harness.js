// Shared by every suite: runs tinybench cases and prints one JSON document of
// rows on stdout for bench/run.js to merge. Cheap operations run `inner` times
// per sample so timer overhead (~tens of ns) does not dominate; every reported
// figure is per single operation.
'use strict';
const { Bench } = require('tinybench');
const { backends } = require('../dist/index.js');

/**
 * @param {string} suite
 * @param {Array<{group: string, name: string, fn: () => void, inner?: number, baseline?: boolean}>} cases
 */
async function runCases(suite, cases, { time = 400, warmupTime = 100, extraRows } = {}) {
  const rows = [];
  const backend = backends().core.kind;
  for (const c of cases) {
    const inner = c.inner ?? 1;
    const op = c.fn;
    // An async case runs its own inner loop (and says so with `inner`); a
    // synchronous one is wrapped here.
    const isAsync = op.constructor.name === 'AsyncFunction';
    const fn = inner === 1 || isAsync ? op : () => { for (let i = 0; i < inner; i++) op(); };
    const bench = new Bench({ time, warmupTime });
    bench.add(c.name, fn);
    await bench.run();
    const r = bench.tasks[0].result;
    if (!r || r.state !== 'completed') throw new Error(`${suite}/${c.name}: ${r && r.error ? r.error : 'did not complete'}`);
    // perOpDivisor: one call makes that many operations (a batch).
    const per = inner * (c.perOpDivisor ?? 1);
    const perOpNs = (ms) => (ms * 1e6) / per;
    rows.push({
      suite,
      group: c.group,
      name: c.name,
      backend,
      baseline: Boolean(c.baseline),
      meanNs: perOpNs(r.latency.mean),
      p50Ns: perOpNs(r.latency.p50),
      p99Ns: perOpNs(r.latency.p99),
      opsPerSec: r.throughput.mean * per,
      samples: r.latency.samplesCount,
    });
  }
  // Figures that are not per-call latencies (e.g. multi-thread throughput).
  if (extraRows) for (const r of await extraRows()) rows.push({ suite, backend, ...r });
  process.stdout.write(JSON.stringify(rows) + '\n');
}

module.exports = { runCases };

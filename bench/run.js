#!/usr/bin/env node
// `npm run bench [suite...]`: every suite in its own process, once on the
// native core and once on the TypeScript fallback (GUARDKERNEL_NATIVE=0);
// writes bench/results/<suite>.json and prints Markdown tables with ratios
// against each group's baseline measured in the same process.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const suitesDir = path.join(__dirname, 'suites');
const resultsDir = path.join(__dirname, 'results');
const all = fs.readdirSync(suitesDir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
const wanted = process.argv.slice(2);
// profile is a tool (a CPU profile of serve), run by name: `node bench/run.js profile`.
const suites = wanted.length ? wanted : all.filter((s) => !s.startsWith('gpu') && s !== 'profile');
for (const s of suites) {
  if (!all.includes(s)) {
    console.error(`unknown suite "${s}" (have: ${all.join(', ')})`);
    process.exit(2);
  }
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  platform: `${process.platform}-${process.arch}`,
  node: process.version,
  date: new Date().toISOString(),
};

const fmt = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

function table(rows) {
  const lines = ['| group | case | core | mean | p50 | p99 | ops/s | speed vs baseline |', '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    const ratio = r.speedup === undefined ? '' : `${r.speedup.toFixed(2)}×`;
    lines.push(`| ${r.group} | ${r.name}${r.baseline ? ' (baseline)' : ''} | ${r.backend} | ${fmt(r.meanNs)} | ${fmt(r.p50Ns)} | ${fmt(r.p99Ns)} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${ratio} |`);
  }
  // Rows that carry more than latencies (GB/s, stage times, crossovers) say so in a note.
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `- ${r.group} / ${r.name}: ${r.note}`);
  return [lines.join('\n'), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}

// The GPU suites say which device they ran on, and run once: the TypeScript
// fallback core would time the same CUDA kernels again.
function gpuNames() {
  try {
    return require('../dist/index.js').gpuDevices().map((d) => `${d.name} (compute ${d.computeCapability})`);
  } catch {
    return [];
  }
}

fs.mkdirSync(resultsDir, { recursive: true });
let failed = false;
for (const suite of suites) {
  const rows = [];
  let complete = true;
  for (const env of suite.startsWith('gpu') ? [{}] : [{}, { GUARDKERNEL_NATIVE: '0' }]) {
    const r = spawnSync(process.execPath, [path.join(suitesDir, `${suite}.js`)], {
      env: { ...process.env, GUARDKERNEL_NATIVE: '', ...env },
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) {
      console.error(`suite ${suite} failed:\n${r.stderr}`);
      failed = true;
      complete = false;
      continue;
    }
    const part = JSON.parse(r.stdout.trim().split('\n').pop());
    // Ratios only within one process: absolute times drift on a shared machine.
    const baselines = new Map(part.filter((x) => x.baseline).map((x) => [x.group, x.meanNs]));
    for (const row of part) {
      const base = baselines.get(row.group);
      // Paired rounds (bench/harness.js): the median of same-round p50
      // ratios; whole-process suites report their own throughput ratio.
      if (base !== undefined && !row.baseline) row.speedup = row.throughputRatio ?? row.pairedSpeedup ?? base / row.meanNs;
      rows.push(row);
    }
  }
  if (!complete) continue; // never overwrite results with a partial run
  if (rows.length === 0) {
    console.log(`\n### ${suite}: nothing measured (no results file written)`);
    continue;
  }
  rows.sort((a, b) => a.group.localeCompare(b.group, 'en') || (a.backend === b.backend ? 0 : a.backend === 'native' ? -1 : 1));
  const doc = { suite, machine: suite.startsWith('gpu') ? { ...machine, gpus: gpuNames() } : machine, unit: 'ns per operation', rows };
  fs.writeFileSync(path.join(resultsDir, `${suite}.json`), JSON.stringify(doc, null, 2) + '\n');
  const gpus = doc.machine.gpus?.length ? `, ${doc.machine.gpus.join(', ')}` : '';
  console.log(`\n### ${suite} — ${machine.cpu}, ${machine.cores} cores${gpus}, Node ${machine.node}, ${machine.date.slice(0, 10)}\n`);
  console.log(table(rows));
}
process.exit(failed ? 1 : 0);

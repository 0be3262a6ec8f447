#!/usr/bin/env node
// Prints the latest bench results (bench/results/<suite>.json, written by
// `npm run bench`) as Markdown: one table per suite, with its machine and
// date. `--write FILE` replaces the part of FILE between the markers
// <!-- bench-tables:start --> and <!-- bench-tables:end --> instead
// (docs/performance.md); `--check FILE` exits 1 when that part is stale.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const resultsDir = path.join(__dirname, '..', 'bench', 'results');
const START = '<!-- bench-tables:start -->';
const END = '<!-- bench-tables:end -->';

const fmt = (ns) => (ns === undefined ? '' : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const cell = (text) => String(text).replace(/\|/g, '\\|');

function suiteTable(doc) {
  const m = doc.machine;
  const gpus = m.gpus?.length ? `, ${m.gpus.join(', ')}` : '';
  const lines = [
    `### ${doc.suite}`,
    '',
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB${gpus}, ${m.platform}, Node ${m.node.replace(/^v/, '')}, ${m.date.slice(0, 10)} (\`bench/results/${doc.suite}.json\`).`,
    '',
    '| group | case | core | mean | p50 | p99 | ops/s | speed vs baseline |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of doc.rows) {
    const ratio = r.speedup === undefined ? '' : `${r.speedup.toFixed(2)}×`;
    const ops = r.opsPerSec === undefined ? '' : Math.round(r.opsPerSec).toLocaleString('en-US');
    lines.push(`| ${cell(r.group)} | ${cell(r.name)}${r.baseline && !/baseline/i.test(r.name) ? ' (baseline)' : ''} | ${r.backend} | ${fmt(r.meanNs)} | ${fmt(r.p50Ns)} | ${fmt(r.p99Ns)} | ${ops} | ${ratio} |`);
  }
  const notes = doc.rows.filter((r) => r.note !== undefined).map((r) => `- ${r.group} / ${r.name} (${r.backend}): ${r.note}`);
  if (notes.length > 0) lines.push('', ...notes);
  return lines.join('\n');
}

function tables() {
  const files = fs.readdirSync(resultsDir).filter((f) => f.endsWith('.json')).sort();
  return files.map((f) => suiteTable(JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8')))).join('\n\n');
}

function splice(text, body) {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`the file has no ${START} ... ${END} markers`);
  return `${text.slice(0, a + START.length)}\n\n${body}\n\n${text.slice(b)}`;
}

function main(argv) {
  const mode = argv[0];
  if (mode === undefined) {
    process.stdout.write(`${tables()}\n`);
    return 0;
  }
  if ((mode !== '--write' && mode !== '--check') || argv[1] === undefined) {
    console.error('usage: node scripts/bench-tables.js [--write FILE | --check FILE]');
    return 2;
  }
  const text = fs.readFileSync(argv[1], 'utf8');
  const next = splice(text, tables());
  if (mode === '--write') {
    fs.writeFileSync(argv[1], next);
    return 0;
  }
  if (next !== text) {
    console.error(`${argv[1]} is stale: run node scripts/bench-tables.js --write ${argv[1]}`);
    return 1;
  }
  return 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
module.exports = { tables, splice };

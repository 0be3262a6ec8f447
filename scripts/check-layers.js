#!/usr/bin/env node
// The architecture's own statement of its layers, and the check that holds
// lib/ to it. Each entry of LAYERS is one layer, highest first; a file may
// import files of its own folder and of any lower layer, never of a higher one
// nor of another folder on its own layer. Separately, no file may reach
// itself through its imports (type-only imports count: a cycle of types is
// still a cycle a reader must untangle). Run by `npm test` through
// test/layers.test.ts; `node scripts/check-layers.js` prints the findings.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** Highest first. A name ending in .ts is a file at lib/'s root; others are folders. */
const LAYERS = [
  ['index.ts'], // the package entry re-exports everything below
  ['cli'], // the `guardkernel` command and its subcommands
  ['mcp', 'adapters'], // the MCP guard proxy and the agent-SDK adapters (a gate in process, or a GuardClient to a server); peers
  ['ipc'], // GuardServer / GuardClient: JSON-RPC over a Unix socket
  ['compliance'], // reports over a configured gate
  ['gate'], // Gate, its pipeline and the state it keeps (cache, velocity, quarantine)
  ['policy', 'permits', 'k2k', 'sandbox'], // what the gate consults (sandbox: the OS process sandbox); peers do not import each other
  ['fleet'], // Redis-backed shared state under permits' replay store and the gate
  ['audit'], // hash-chained, sealed log
  ['canonical'], // RFC 8785 form and CAR hash
  ['crypto'], // SHA-256/HMAC, AEAD, KDFs, memory encryption
  ['native'], // the one addon loader and its byte/handle helpers
  ['errors.ts', 'version.ts', 'memo-pause.ts'], // imported by all
];

function listTs(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** Relative specifiers a file imports (static, dynamic, require, type-only, re-exports). */
function importsOf(text) {
  const ts = require('typescript');
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('.'));
}

function resolve(fromFile, spec) {
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const c of [base, base + '.ts', path.join(base, 'index.ts')]) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  return null;
}

/** The layer entry (folder or root file name) a lib file belongs to. */
function unitOf(libDir, file) {
  const rel = path.relative(libDir, file).split(path.sep);
  return rel.length === 1 ? rel[0] : rel[0];
}

function check(libDir, layers = LAYERS) {
  const rank = new Map();
  layers.forEach((names, i) => names.forEach((n) => rank.set(n, i)));
  const files = listTs(libDir);
  const graph = new Map();
  const problems = [];
  for (const file of files) {
    const from = path.relative(libDir, file);
    const unit = unitOf(libDir, file);
    if (!rank.has(unit)) problems.push(`${from}: "${unit}" is on no layer (add it to LAYERS in scripts/check-layers.js)`);
    const edges = [];
    for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
      const target = resolve(file, spec);
      if (target === null) {
        problems.push(`${from}: import "${spec}" does not resolve to a file`);
        continue;
      }
      if (!target.startsWith(libDir + path.sep)) {
        problems.push(`${from}: import "${spec}" leaves lib/`);
        continue;
      }
      if (!target.endsWith('.ts')) continue; // data (JSON) belongs to its folder
      edges.push(target);
      const to = path.relative(libDir, target);
      const toUnit = unitOf(libDir, target);
      if (toUnit === unit || !rank.has(unit) || !rank.has(toUnit)) continue;
      if (rank.get(toUnit) < rank.get(unit)) problems.push(`${from} imports ${to}: "${unit}" is below "${toUnit}"`);
      else if (rank.get(toUnit) === rank.get(unit)) problems.push(`${from} imports ${to}: "${unit}" and "${toUnit}" are peers on one layer`);
    }
    graph.set(file, edges);
  }
  for (const cycle of findCycles(graph)) problems.push(`cycle: ${cycle.map((f) => path.relative(libDir, f)).join(' -> ')}`);
  return problems;
}

/** One cycle per strongly connected component with more than one file (or a self-import). */
function findCycles(graph) {
  // Tarjan's algorithm, iterative so a deep chain cannot overflow the stack.
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const cycles = [];
  for (const start of graph.keys()) {
    if (idx.has(start)) continue;
    const work = [[start, 0]];
    idx.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [v, i] = frame;
      const edges = graph.get(v) || [];
      if (i < edges.length) {
        frame[1]++;
        const w = edges[i];
        if (!idx.has(w)) {
          idx.set(w, index);
          low.set(w, index++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v), idx.get(w)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(v)));
      }
      if (low.get(v) === idx.get(v)) {
        const members = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          members.push(w);
        } while (w !== v);
        if (members.length > 1 || (graph.get(v) || []).includes(v)) cycles.push(cyclePath(graph, new Set(members), v));
      }
    }
  }
  return cycles;
}

/** A concrete path v -> ... -> v inside one component, for the message. */
function cyclePath(graph, members, v) {
  const prev = new Map([[v, null]]);
  const queue = [v];
  while (queue.length > 0) {
    const u = queue.shift();
    for (const w of graph.get(u) || []) {
      if (!members.has(w)) continue;
      if (w === v) {
        const route = [u];
        for (let x = prev.get(u); x !== null; x = prev.get(x)) route.unshift(x);
        return [...route, v];
      }
      if (!prev.has(w)) {
        prev.set(w, u);
        queue.push(w);
      }
    }
  }
  return [v, v];
}

module.exports = { LAYERS, check };

if (require.main === module) {
  const problems = check(path.join(__dirname, '..', 'lib'));
  for (const p of problems) console.error(p);
  console.log(problems.length === 0 ? 'layers: lib/ follows the declared order, no cycles' : `layers: ${problems.length} problem(s)`);
  process.exit(problems.length === 0 ? 0 : 1);
}

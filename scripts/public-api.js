#!/usr/bin/env node
// The package's public surface as data: the names `require('guardkernel')`
// and `import` give (with each value's kind), the names the type entry
// exports, and the text of every help screen the `guardkernel` command
// prints. test/public-api.test.ts compares it with the copy taken before the
// layout change (test/public-api/surface.json);
// `node scripts/public-api.js --write` takes a new copy (only for a change to
// the API that is meant).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const snapshotFile = path.join(root, 'test', 'public-api', 'surface.json');

// Help screens: each is printed by the installed bin, so a moved entry point
// that forgets a flag or a line shows here.
const HELP_COMMANDS = [['--help'], ['help'], ['-h'], ['serve', '--help'], ['report', '--help'], ['nonsense-command'], ['audit'], ['mcp', '--help'], ['policy', '--help'], ['exec', '--help']];

/**
 * Subpath exports (e.g. "./mcp"): their names are listed in the same maps as
 * the main entry's, prefixed "guardkernel/<subpath>#", so the test holds them too.
 */
function subpaths() {
  return Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json' && !k.includes('*')).sort();
}

function valueKinds(api) {
  const out = {};
  for (const name of Object.keys(api).sort()) out[name] = typeof api[name];
  return out;
}

function typeExports(types = pkg.types) {
  const ts = require('typescript');
  const entry = path.join(root, types);
  const program = ts.createProgram([entry], { skipLibCheck: true });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(entry));
  return checker.getExportsOfModule(symbol).map((s) => s.getName()).sort();
}

function helpTexts() {
  const bins = {};
  for (const [name, file] of Object.entries(pkg.bin)) {
    for (const args of HELP_COMMANDS) {
      const r = spawnSync(process.execPath, [path.join(root, file), ...args], { encoding: 'utf8', timeout: 30_000 });
      if (r.error) throw r.error;
      bins[`${name} ${args.join(' ')}`] = { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }
  }
  return bins;
}

async function surface() {
  const cjs = require(path.join(root, pkg.exports['.'].require));
  const esm = await import(path.join(root, pkg.exports['.'].import));
  const out = { require: valueKinds(cjs), import: valueKinds(esm), types: typeExports() };
  for (const sub of subpaths()) {
    const e = pkg.exports[sub];
    const prefix = `guardkernel/${sub.slice(2)}#`;
    const file = path.join(root, e.require ?? e.default);
    const kinds = (api) => Object.fromEntries(Object.entries(valueKinds(api)).filter(([n]) => n !== 'default' && n !== '__esModule').map(([n, k]) => [prefix + n, k]));
    Object.assign(out.require, kinds(require(file)));
    Object.assign(out.import, kinds(await import(path.join(root, e.import ?? e.default))));
    out.types.push(...typeExports(e.types).map((n) => prefix + n));
  }
  return {
    require: out.require,
    import: out.import,
    types: out.types,
    bin: Object.keys(pkg.bin).sort(),
    help: helpTexts(),
  };
}

module.exports = { surface, snapshotFile };

if (require.main === module) {
  surface().then((s) => {
    const text = JSON.stringify(s, null, 2) + '\n';
    if (process.argv.includes('--write')) fs.writeFileSync(snapshotFile, text);
    else process.stdout.write(text);
  });
}

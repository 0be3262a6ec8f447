#!/usr/bin/env node
// `npm test`: the whole suite twice, once on the native core and once on the
// TypeScript fallback (GUARDKERNEL_NATIVE=0), then one closing summary line.
// Extra arguments go to vitest (e.g. `npm test -- test/car.test.ts`).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const extra = process.argv.slice(2);

if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  console.error('guardkernel: dist/ is missing; run "npm run build:ts" (npm install does it) before testing.');
  process.exit(1);
}

// The native pass must really be native when the addon was built: a silently
// failing load would otherwise run the fallback twice and look green.
const built = fs.existsSync(path.join(root, 'build', 'Release', 'guardkernel.node')) ||
  fs.existsSync(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`));

const passes = [
  { name: 'native', env: { GUARDKERNEL_NATIVE: '', GUARDKERNEL_EXPECT_NATIVE: built ? '1' : '' } },
  { name: 'js-fallback', env: { GUARDKERNEL_NATIVE: '0', GUARDKERNEL_EXPECT_NATIVE: '' } },
];

const totals = { passed: 0, failed: 0, skipped: 0 };
let exitCode = 0;
for (const pass of passes) {
  console.log(`\n=== guardkernel tests: ${pass.name} core ===`);
  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-test-')), 'report.json');
  const r = spawnSync(
    process.execPath,
    [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra],
    { cwd: root, stdio: 'inherit', env: { ...process.env, ...pass.env } },
  );
  if (r.status !== 0) exitCode = 1;
  try {
    const json = JSON.parse(fs.readFileSync(report, 'utf8'));
    totals.passed += json.numPassedTests;
    totals.failed += json.numFailedTests;
    totals.skipped += json.numPendingTests + (json.numTodoTests || 0);
  } catch {
    exitCode = 1;
    console.error(`guardkernel: no test report from the ${pass.name} pass`);
  }
}
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
if (totals.passed === 0) exitCode = 1;
process.exit(exitCode);

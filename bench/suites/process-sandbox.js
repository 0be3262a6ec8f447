// The process sandbox's overhead: `/bin/true` from spawn to its result, in the
// sandbox (rlimits, no_new_privs, seccomp, Landlock signal scope; then with a
// fresh network namespace; then with a filesystem allow list) against
// child_process.spawn of the same binary to its exit, in the same rounds.
// Target (issue 29): at most 1.5x the plain spawn. Without the addon the
// sandbox refuses to run, so only the baseline is measured.
'use strict';
const { spawn } = require('node:child_process');
const { runCases } = require('../harness');
const { ProcessSandbox } = require('../../dist/index.js');

const TRUE = '/bin/true';

function plain() {
  return new Promise((resolve, reject) => {
    const c = spawn(TRUE, [], { stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', resolve);
  });
}

async function main() {
  const cases = [{ group: 'spawn /bin/true to exit', name: 'child_process.spawn', baseline: true, fn: async () => { await plain(); } }];
  if (ProcessSandbox.capabilities().available) {
    const sb = new ProcessSandbox();
    const run = async (options) => {
      const r = await sb.spawn(TRUE, [], { stdio: 'ignore', ...options }).result;
      if (r.code !== 0) throw new Error(`sandboxed /bin/true: ${JSON.stringify(r)}`);
    };
    cases.push(
      { group: 'spawn /bin/true to exit', name: 'ProcessSandbox.spawn (rlimits, seccomp, Landlock scope)', fn: () => run({ limits: { cpuMs: 5000, openFiles: 256 } }) },
      { group: 'spawn /bin/true to exit', name: "ProcessSandbox.spawn, network 'none'", fn: () => run({ network: 'none' }) },
      { group: 'spawn /bin/true to exit', name: 'ProcessSandbox.spawn, filesystem allow list', fn: () => run({ filesystem: { read: ['/tmp'] } }) },
    );
  }
  await runCases('process-sandbox', cases, { time: Number(process.env.GK_BENCH_SPAWN_MS) || 4000, warmupTime: 300, rounds: 5 });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

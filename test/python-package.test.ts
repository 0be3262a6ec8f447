// The Python client as a pip package (clients/python/pyproject.toml): built
// offline with the interpreter's own setuptools (pip --no-build-isolation
// --no-index) into a fresh venv, then imported from that venv, not from the
// source folder, against a real `guardkernel serve`: ping and gate_check.
// Needs python3 with venv (ensurepip), setuptools and wheel (or setuptools
// 70.1+, which builds wheels itself); on Debian: python3-venv python3-pip
// python3-setuptools python3-wheel (.ci/run installs them). Without them the
// test is a visible skip, or a failure under GUARDKERNEL_REQUIRE_TOOLS=1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runSync } from './child';
import { repoRoot } from './helpers';
import { skipWithout } from './prerequisites';
import { startServe } from './serve-process';

const PROBE = `
import importlib.util as u, sys
need = [m for m in ("venv", "ensurepip", "setuptools") if u.find_spec(m) is None]
if "setuptools" not in need:
    import setuptools
    v = tuple(int(x) for x in setuptools.__version__.split(".")[:2] if x.isdigit())
    if v < (70, 1) and u.find_spec("wheel") is None:
        need.append("wheel")
print(" ".join(need))
sys.exit(1 if need else 0)
`;

/** The first interpreter that can build the package offline, or why none can. */
function pickPython(): { python: string | null; missing: string } {
  const tried: string[] = [];
  const candidates = [process.env.GUARDKERNEL_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => typeof c === 'string' && c !== '');
  for (const candidate of [...new Set(candidates)]) {
    const r = runSync(candidate, ['-c', PROBE], { encoding: 'utf8', timeout: 30_000 });
    if (r.error) tried.push(`${candidate}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
    else if (r.status === 0) return { python: candidate, missing: '' };
    else tried.push(`${candidate} lacks ${r.stdout.trim() || `(exit ${r.status})`}`);
  }
  return { python: null, missing: `${tried.join('; ')}; on Debian: apt-get install python3-venv python3-pip python3-setuptools python3-wheel` };
}

const picked = pickPython();
const npmVersion = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-pypkg-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('pyproject.toml names the module and the npm package’s version', () => {
  const toml = fs.readFileSync(path.join(repoRoot, 'clients', 'python', 'pyproject.toml'), 'utf8');
  expect(toml).toMatch(/^name = "guardkernel-client"$/m);
  expect(toml).toMatch(new RegExp(`^version = "${npmVersion.replace(/\./g, '\\.')}"$`, 'm'));
  expect(toml).toMatch(/^py-modules = \["guardkernel_client"\]$/m);
  expect(toml).toMatch(/^build-backend = "setuptools\.build_meta"$/m);
});

describe('the Python client installed with pip', () => {
  if (skipWithout('python3 with venv, setuptools and wheel', picked.python === null ? picked.missing : null)) return;
  const python = picked.python!;
  const venv = path.join(work, 'venv');
  const venvPython = path.join(venv, 'bin', 'python');
  const env = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1', PYTHONDONTWRITEBYTECODE: '1' };

  test('installs into a fresh venv offline, and pip knows it by name and version', () => {
    // A copy: setuptools writes build/ and *.egg-info beside the sources,
    // which must never land in the repository or the npm tarball.
    const src = path.join(work, 'src');
    fs.cpSync(path.join(repoRoot, 'clients', 'python'), src, { recursive: true, filter: (p) => !/(?:^|\/)(?:build|__pycache__|[^/]*\.egg-info)$/.test(p) });
    const made = runSync(python, ['-m', 'venv', '--system-site-packages', venv], { encoding: 'utf8', env, timeout: 120_000 });
    expect(made.status, made.stderr).toBe(0);
    const pip = runSync(venvPython, ['-m', 'pip', 'install', '--no-build-isolation', '--no-index', '--no-cache-dir', src], { cwd: work, encoding: 'utf8', env, timeout: 180_000 });
    expect(pip.status, `${pip.stdout}\n${pip.stderr}`).toBe(0);
    expect(pip.stdout).toMatch(/Successfully installed guardkernel-client-/);
    const show = runSync(venvPython, ['-m', 'pip', 'show', 'guardkernel-client'], { cwd: work, encoding: 'utf8', env });
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^Version: ${npmVersion.replace(/\./g, '\\.')}$`, 'm'));
    expect(show.stdout).toMatch(/^License: Apache-2\.0$/m);
  }, 300_000);

  test('the installed module pings a live serve and gets its gate decisions', async () => {
    expect(fs.existsSync(venvPython)).toBe(true);
    const state = fs.mkdtempSync(path.join(work, 'state-'));
    const s = startServe(['--state-dir', state]);
    await s.ready;
    try {
      // -I: no script folder, no PYTHONPATH, no user site on sys.path, so the
      // import can only come from the venv; run from a folder with no sources.
      const script = `
import asyncio, json, sys
import guardkernel_client
from guardkernel_client import GuardClient

async def main():
    client = await GuardClient.connect(sys.argv[1])
    out = {
        "file": guardkernel_client.__file__,
        "ping": await client.ping(),
        "allow": await client.gate_check({"action_type": "file_read", "agent_id": "agent-prod-1", "resource": "/srv/data/q3.csv", "args": {"mode": "r"}}),
        "deny": await client.gate_check({"action_type": "file_read", "agent_id": "agent-prod-1", "resource": "/etc/shadow", "args": {"mode": "r"}}),
    }
    await client.close()
    print(json.dumps(out))

asyncio.run(main())
`;
      const r = runSync(venvPython, ['-I', '-c', script, path.join(state, 'core.sock')], { cwd: work, encoding: 'utf8', env, timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim()) as { file: string; ping: string; allow: { decision: string }; deny: { decision: string } };
      expect(fs.realpathSync(out.file).startsWith(fs.realpathSync(venv) + path.sep)).toBe(true);
      expect(out.file).toMatch(/site-packages\/guardkernel_client\.py$/);
      expect(out.ping).toBe('pong');
      expect(out.allow).toMatchObject({ decision: 'allow' });
      expect(out.deny).toMatchObject({ decision: 'deny' });
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  }, 60_000);
});

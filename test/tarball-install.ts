// Helpers for test/package-install.test.ts: pack the package, install the
// tarball into an empty project offline, and build an environment in which no
// C/C++ compiler can be reached.
//
// Offline, npm cannot resolve version ranges (the cache `npm ci` fills holds
// tarballs, not always the registry's package documents), so the empty
// project gets a package-lock.json made from this repository's: the
// dependencies guardkernel ships with (not its devDependencies), at the
// versions CI tested, each with its registry URL so `npm ci --offline` finds
// its tarball in the cache. A consumer online gets the newest versions in
// range instead.
import fs from 'node:fs';
import path from 'node:path';
import { runSync } from './child';
import { repoRoot } from './helpers';

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  link?: boolean;
  hasInstallScript?: boolean;
  [key: string]: unknown;
}

const INSTALL_TIMEOUT_MS = 15 * 60_000;

export function npmEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // a child that writes to the terminal would write to the developer's
    GUARDKERNEL_INSTALL_TTY: '0',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  // node-gyp must build against this machine's headers, never download them (as .ci/run).
  if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  // vitest and npm test set these; the installs must not inherit them
  for (const k of Object.keys(env)) if (/^npm_(package|lifecycle)_/.test(k) || k === 'INIT_CWD') delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = npmEnv()) {
  const r = runSync('npm', args, { cwd, env, encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function must(r: { status: number | null; output: string }, what: string): string {
  if (r.status !== 0) throw new Error(`${what} exited with ${r.status}:\n${r.output.slice(-6000)}`);
  return r.output;
}

/** `npm pack` of `dir` into `dest`; returns the tarball's path. Scripts are not run (dist/ is built already). */
export function pack(dir: string, dest: string): string {
  fs.mkdirSync(dest, { recursive: true });
  const out = must(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir), `npm pack in ${dir}`);
  const json = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
  return path.join(dest, json[0].filename);
}

export function tarList(tarball: string): string[] {
  const r = runSync('tar', ['tzf', tarball], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar tzf ${tarball}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

export function untar(tarball: string, dest: string): string {
  fs.mkdirSync(dest, { recursive: true });
  const r = runSync('tar', ['xzf', tarball, '-C', dest], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar xzf ${tarball}: ${r.stderr}`);
  return path.join(dest, 'package');
}

let registry: string | undefined;

/** The tarball URL npm fetched (and cached) a package under: the configured registry's. */
function registryUrl(name: string, version: string): string {
  if (registry === undefined) {
    const r = npm(['config', 'get', 'registry'], repoRoot);
    registry = (r.status === 0 && r.stdout.trim()) || 'https://registry.npmjs.org/';
    if (!registry.endsWith('/')) registry += '/';
  }
  const base = name.startsWith('@') ? name.split('/')[1] : name;
  return `${registry}${name}/-/${base}-${version}.tgz`;
}

/**
 * An empty project `dir` whose only dependency is the tarball, with a lock
 * made from the repository's (see the top of this file). Returns the names of
 * the packages in it that have install scripts.
 */
export function emptyProject(dir: string, tarball: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  const spec = `file:${path.relative(dir, tarball)}`;
  const root = { name: 'gk-consumer', version: '1.0.0', private: true, dependencies: { guardkernel: spec } };
  const packages: Record<string, LockEntry> = {
    '': root,
    'node_modules/guardkernel': {
      version: pkg.version as string,
      resolved: spec,
      license: pkg.license,
      hasInstallScript: true,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      peerDependencies: pkg.peerDependencies,
      peerDependenciesMeta: pkg.peerDependenciesMeta,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  const scripted = ['guardkernel'];
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.dev || entry.link) continue;
    const name = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[key] = { ...entry, resolved: entry.resolved ?? registryUrl(name, entry.version!) };
    if (entry.hasInstallScript && !key.slice('node_modules/'.length).includes('node_modules/')) scripted.push(name);
  }
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(root, null, 2)}\n`);
  fs.writeFileSync(
    path.join(dir, 'package-lock.json'),
    `${JSON.stringify({ name: root.name, version: root.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
  );
  return scripted;
}

/**
 * re2's installer (install-artifact-from-github) downloads its binary from
 * GitHub and compiles from source (minutes) when that fails, as it does
 * offline. It also reads from a mirror named by RE2_DOWNLOAD_MIRROR, a local
 * directory included; this one holds the re2.node that `npm ci` built for
 * this repository (same version, from the same lock). The installer then runs
 * re2's own verify-build before accepting it. Returns the environment to
 * install with, or {} when there is no such build (re2 then compiles).
 */
export function re2Mirror(dir: string): Record<string, string> {
  const built = path.join(repoRoot, 'node_modules', 're2', 'build', 'Release', 're2.node');
  if (!fs.existsSync(built) || process.platform !== 'linux') return {};
  const musl = !process.report?.getReport || !(process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  const slot = `${process.platform}${musl ? '-musl' : ''}-${process.arch}-${process.versions.modules}`;
  fs.mkdirSync(dir, { recursive: true });
  // uncompressed: the installer tries <slot>.br, <slot>.gz, then <slot>
  fs.copyFileSync(built, path.join(dir, slot));
  return { RE2_DOWNLOAD_MIRROR: dir, RE2_DOWNLOAD_SKIP_PATH: '1', RE2_DOWNLOAD_SKIP_VER: '1' };
}

/** Compiler drivers, build tools and linkers: what a machine with no C/C++ toolchain lacks. */
const TOOLCHAIN = /^(?:cc|c\+\+|c89|c99|cpp|gcc|g\+\+|clang|clang\+\+|clang-cpp|make|gmake|cmake|ninja|nvcc|ld|ld\.[a-z]+|as|tcc)(?:-[\d.]+)?$|-(?:gcc|g\+\+|c\+\+|cc|cpp|ld|as)(?:-[\d.]+)?$/;

/**
 * A PATH with every command of this one except compilers, build tools and
 * linkers (symlinks in `dir`), and CC/CXX pointing at /bin/false: an
 * environment in which nothing can be compiled.
 */
export function noCompilerEnv(dir: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  fs.mkdirSync(dir, { recursive: true });
  const seen = new Set<string>();
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  dirs.push(path.dirname(process.execPath));
  for (const d of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (seen.has(name) || TOOLCHAIN.test(name)) continue;
      const target = path.join(d, name);
      try {
        fs.accessSync(target, fs.constants.X_OK);
        if (fs.statSync(target).isDirectory()) continue;
      } catch {
        continue;
      }
      seen.add(name);
      fs.symlinkSync(target, path.join(dir, name));
    }
  }
  return npmEnv({ PATH: dir, CC: '/bin/false', CXX: '/bin/false', CUDACXX: '/bin/false', ...extra });
}

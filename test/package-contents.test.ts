// What `npm pack` puts in the tarball, held to an allow-list of path
// patterns (so new builds under dist/ stay green) and a list of files that
// must be there. No tests, no TypeScript sources, no bench/, no .ci/, no
// build output, no source maps (the package ships none: they would point at
// lib/*.ts, which it does not ship), and a LICENSE.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { runSync } from './child';
import { repoRoot } from './helpers';

interface PackEntry {
  path: string;
  size: number;
}

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  scripts: Record<string, string>;
  license: string;
};

/**
 * The files `scripts.install` runs, and the local files they require, transitively:
 * an install from the tarball needs every one of them.
 */
function installScripts(): string[] {
  const start = [...(pkg.scripts.install ?? '').matchAll(/\bnode\s+([\w./-]+\.c?js)\b/g)].map((m) => path.posix.normalize(m[1]));
  const seen = new Set<string>();
  const queue = [...start, 'scripts/build-cuda.js'];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const abs = path.join(repoRoot, file);
    if (!fs.existsSync(abs)) continue; // the "required" check below reports it
    for (const m of fs.readFileSync(abs, 'utf8').matchAll(/require\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
      let dep = path.posix.join(path.posix.dirname(file), m[1]);
      if (!/\.(c?js|json)$/.test(dep)) dep += '.js';
      queue.push(dep);
    }
  }
  return [...seen].sort();
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Every path that may ship; anything else fails the test. */
function allowList(): RegExp[] {
  return [
    /^package\.json$/,
    /^README\.md$/,
    /^LICENSE$/,
    // Compiled TypeScript: CommonJS, the ESM entry, declarations, JSON schemas.
    /^dist\/(?:[\w.-]+\/)*[\w.-]+\.(?:js|cjs|mjs|d\.ts|d\.cts|d\.mts|json)$/,
    // What a build from source needs: the core addon (node-gyp) and the CUDA addon (cmake-js).
    /^binding\.gyp$/,
    /^CMakeLists\.txt$/,
    /^native\/(?:[\w.-]+\/)*[\w.-]+\.(?:cc|cpp|c|h|hpp|inc|def)$/,
    /^cuda\/(?:[\w.-]+\/)*[\w.-]+\.(?:cu|cuh|cc|cpp|h|hpp)$/,
    /^prebuilds\/[\w.-]+\/[\w.@+-]+\.node$/,
    /^examples\/.+$/,
    // Clients in other languages, as sources (never build output or caches).
    /^clients\/(?:[\w.-]+\/)*[\w.-]+\.(?:py|toml|md|txt|cfg|typed)$/,
    ...installScripts().map((f) => new RegExp(`^${escape(f)}$`)),
  ];
}

/** What must be in the tarball. */
function required(): string[] {
  const targets = new Set<string>(['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/mcp/index.js', ...installScripts()]);
  const add = (p: string): void => {
    if (!p.includes('*')) targets.add(path.posix.normalize(p));
  };
  add(pkg.main);
  add(pkg.types);
  for (const bin of Object.values(pkg.bin)) add(bin);
  // Every subpath export (the adapters included) resolves to a shipped file.
  for (const target of Object.values(pkg.exports)) {
    for (const p of typeof target === 'string' ? [target] : Object.values(target)) add(p);
  }
  return [...targets].sort();
}

let files: PackEntry[] = [];
let paths: string[] = [];

beforeAll(() => {
  // --ignore-scripts: list what is built now, without `prepare` rebuilding dist/.
  const r = runSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' } });
  expect(r.status, r.stderr).toBe(0);
  const parsed = JSON.parse(r.stdout) as Array<{ name: string; files: PackEntry[] }>;
  expect(parsed).toHaveLength(1);
  expect(parsed[0].name).toBe('guardkernel');
  files = parsed[0].files;
  paths = files.map((f) => f.path).sort();
}, 120_000);

describe('npm pack', () => {
  test('ships nothing outside the allow-list', () => {
    const allowed = allowList();
    expect(paths.filter((p) => !allowed.some((re) => re.test(p)))).toEqual([]);
  });

  test('ships every required file: entry points, every export target, the bin, the install scripts, LICENSE, README', () => {
    expect(required().filter((p) => !paths.includes(p))).toEqual([]);
  });

  test('ships no tests, TypeScript sources, benches, CI files, build output or source maps', () => {
    const forbidden = [/^test\//, /^lib\//, /(?<!\.d)\.(?:ts|mts|cts)$/, /^bench\//, /^\.ci\//, /^build(?:-cuda)?\//, /\.map$/, /(?:^|\/)node_modules\//, /(?:^|\/)__pycache__\//, /\.pyc$/, /\.egg-info\//, /\.tsbuildinfo$/];
    expect(paths.filter((p) => forbidden.some((re) => re.test(p)))).toEqual([]);
  });

  test('no shipped file points at a source map that is not shipped', () => {
    const shipped = new Set(paths);
    const dangling: string[] = [];
    for (const p of paths.filter((x) => /\.(?:c?js|mjs|d\.ts|d\.mts)$/.test(x))) {
      const text = fs.readFileSync(path.join(repoRoot, p), 'utf8');
      for (const m of text.matchAll(/^\/\/# sourceMappingURL=(\S+)\s*$/gm)) {
        if (m[1].startsWith('data:')) continue;
        const map = path.posix.normalize(path.posix.join(path.posix.dirname(p), m[1]));
        if (!shipped.has(map)) dangling.push(`${p} -> ${map}`);
      }
    }
    expect(dangling).toEqual([]);
  });

  test('every shipped source map (none today) resolves its sources inside the package', () => {
    const shipped = new Set(paths);
    const unresolved: string[] = [];
    for (const p of paths.filter((x) => x.endsWith('.map'))) {
      const map = JSON.parse(fs.readFileSync(path.join(repoRoot, p), 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null>; sourceRoot?: string };
      map.sources.forEach((source, i) => {
        if (typeof map.sourcesContent?.[i] === 'string') return; // inline source
        const file = path.posix.normalize(path.posix.join(path.posix.dirname(p), map.sourceRoot ?? '', source));
        if (!shipped.has(file)) unresolved.push(`${p}: ${source}`);
      });
    }
    expect(unresolved).toEqual([]);
  });

  test('the LICENSE is the Apache License 2.0 that package.json names', () => {
    expect(pkg.license).toBe('Apache-2.0');
    const text = fs.readFileSync(path.join(repoRoot, 'LICENSE'), 'utf8');
    expect(text).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(text).toMatch(/TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/);
    expect(text).toMatch(/END OF TERMS AND CONDITIONS/);
  });

  test('the allow-list is not vacuous: each kind of file it names is there', () => {
    for (const re of [/^dist\/.+\.js$/, /^dist\/.+\.d\.ts$/, /^native\/.+\.cc$/, /^cuda\/.+\.cu$/, /^CMakeLists\.txt$/, /^examples\//, /^clients\/python\/guardkernel_client\.py$/, /^clients\/python\/pyproject\.toml$/]) {
      expect(paths.some((p) => re.test(p)), String(re)).toBe(true);
    }
  });
});

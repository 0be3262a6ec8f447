/** `guardkernel doctor`: what runs, why, what the GPU side found, and how to fix it. */
import path from 'node:path';
import { type Backends, backends, cudaCandidates } from '../native/loader';
import { VERSION } from '../version';

const packageRoot = path.resolve(__dirname, '..', '..');

/**
 * Installed as a dependency (node_modules/guardkernel, npx's cache) or a
 * clone of the repository: the advice differs, since `npm run build:*`
 * exists only in the repository.
 */
export function installedAsDependency(root: string = packageRoot): boolean {
  return root.split(path.sep).includes('node_modules');
}

/** The loader's reasons end in repository advice ("run "npm run build:native""); a consumer gets its own below. */
function reasonFor(reason: string, consumer: boolean): string {
  return consumer ? reason.replace(/ \((?:run|built by|stale build: run) "npm run build:[a-z]+"[^)]*\)$/, '') : reason;
}

/** What to do about each fallback that is not a choice (GUARDKERNEL_*=0) or a missing GPU. */
export function doctorAdvice(b: Backends, consumer: boolean = installedAsDependency()): string[] {
  const out: string[] = [];
  const platform = `${process.platform}-${process.arch}`;
  if (b.core.kind === 'js' && !/GUARDKERNEL_NATIVE=0/.test(b.core.reason ?? '')) {
    out.push(
      consumer
        ? `core: no prebuilt addon for ${platform} loaded; to compile it (a C++17 compiler, make and python3 needed): npm rebuild guardkernel --foreground-scripts`
        : 'core: build the addon with: npm run build:native',
    );
  }
  if (b.gpu.kind === 'cpu' && b.gpu.path === undefined && !/GUARDKERNEL_GPU=0/.test(b.gpu.reason ?? '')) {
    out.push(
      consumer
        ? 'gpu: the CUDA addon is not built; with the CUDA toolkit (nvcc), cmake and a C++ compiler installed, and optional dependencies not omitted (it needs cmake-js): npm rebuild guardkernel --foreground-scripts (GUARDKERNEL_NVCC=/path/to/nvcc names the compiler)'
        : 'gpu: build the CUDA addon (nvcc and cmake needed) with: npm run build:cuda',
    );
  }
  if (consumer && out.length > 0) {
    out.push('(npm 12 runs a dependency\'s install script only once the project allows it: npm approve-scripts guardkernel)');
  }
  return out;
}

export function doctorReport(): string {
  const b = backends();
  const consumer = installedAsDependency();
  const lines: string[] = [];
  lines.push(`guardkernel ${VERSION} on Node ${process.version} (${process.platform}-${process.arch})`);
  lines.push('');
  lines.push(`core backend: ${b.core.kind}`);
  if (b.core.path) lines.push(`  addon:   ${b.core.path}`);
  if (b.core.sha256) lines.push(`  sha-256: ${b.core.sha256}`);
  if (b.core.reason) lines.push(`  fallback reason: ${reasonFor(b.core.reason, consumer)}`);
  lines.push('');
  lines.push(`gpu backend:  ${b.gpu.kind}`);
  if (b.gpu.path) lines.push(`  CUDA addon: ${b.gpu.path}`);
  if (b.gpu.reason) lines.push(`  fallback reason: ${reasonFor(b.gpu.reason, consumer)}`);
  lines.push(`  CUDA addon searched in: ${cudaCandidates().map((c) => c.slice(1, -1).join('/')).join(', ')}`);
  lines.push(`  devices found: ${b.gpu.devices.length}`);
  for (const d of b.gpu.devices) {
    const gib = (d.totalMemoryBytes / 2 ** 30).toFixed(1);
    lines.push(`  [${d.index}] ${d.name}, compute ${d.computeCapability}, ${gib} GiB, ${d.multiprocessors} SMs`);
  }
  const advice = doctorAdvice(b, consumer);
  if (advice.length > 0) {
    lines.push('');
    lines.push('to fix:');
    for (const a of advice) lines.push(`  ${a}`);
  }
  lines.push('');
  lines.push('switches: GUARDKERNEL_NATIVE=0 forces the TypeScript core; GUARDKERNEL_GPU=0 forces the CPU backend; GUARDKERNEL_SKIP_CUDA=1 skips the CUDA build at install.');
  return lines.join('\n');
}

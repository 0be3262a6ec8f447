/** `guardkernel doctor`: what runs, why, and what the GPU side found. */
import { backends, cudaCandidates } from '../native/loader';
import { VERSION } from '../version';

export function doctorReport(): string {
  const b = backends();
  const lines: string[] = [];
  lines.push(`guardkernel ${VERSION} on Node ${process.version} (${process.platform}-${process.arch})`);
  lines.push('');
  lines.push(`core backend: ${b.core.kind}`);
  if (b.core.path) lines.push(`  addon:   ${b.core.path}`);
  if (b.core.sha256) lines.push(`  sha-256: ${b.core.sha256}`);
  if (b.core.reason) lines.push(`  fallback reason: ${b.core.reason}`);
  lines.push('');
  lines.push(`gpu backend:  ${b.gpu.kind}`);
  if (b.gpu.path) lines.push(`  CUDA addon: ${b.gpu.path}`);
  if (b.gpu.reason) lines.push(`  fallback reason: ${b.gpu.reason}`);
  lines.push(`  CUDA addon searched in: ${cudaCandidates().map((c) => c.slice(1, -1).join('/')).join(', ')}`);
  lines.push(`  devices found: ${b.gpu.devices.length}`);
  for (const d of b.gpu.devices) {
    const gib = (d.totalMemoryBytes / 2 ** 30).toFixed(1);
    lines.push(`  [${d.index}] ${d.name}, compute ${d.computeCapability}, ${gib} GiB, ${d.multiprocessors} SMs`);
  }
  lines.push('');
  lines.push('switches: GUARDKERNEL_NATIVE=0 forces the TypeScript core; GUARDKERNEL_GPU=0 forces the CPU backend.');
  return lines.join('\n');
}

/**
 * Audit retention: which rotated files (`<file>.<n>`, as rotation names them)
 * are past the retention period. AuditLog deletes them and records each
 * deletion in the chain; the live file is never a candidate.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROTATION_SUFFIX = /^[1-9][0-9]*$/;

/** Rotated files of `file` last modified more than `retentionDays` before `nowMs`. */
export function expiredRotations(file: string, retentionDays: number, nowMs: number): string[] {
  const cutoff = nowMs - retentionDays * 86_400_000;
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    if (!name.startsWith(base + '.') || !ROTATION_SUFFIX.test(name.slice(base.length + 1))) continue;
    const rotated = path.join(dir, name);
    try {
      const st = fs.lstatSync(rotated); // a symlink is not a rotation of ours
      if (st.isFile() && st.mtimeMs < cutoff) out.push(rotated);
    } catch {
      // vanished meanwhile
    }
  }
  return out.sort();
}

/**
 * The number the next rotation of `file` takes: one above the highest
 * `<file>.<n>` present, so numeric order stays chronological after retention
 * deleted older files (filling a gap would put the newest file first).
 */
export function nextRotation(file: string): number {
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    names = [];
  }
  let max = 0;
  for (const name of names) {
    if (!name.startsWith(base + '.')) continue;
    const suffix = name.slice(base.length + 1);
    if (ROTATION_SUFFIX.test(suffix)) max = Math.max(max, Number(suffix));
  }
  return max + 1;
}

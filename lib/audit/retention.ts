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

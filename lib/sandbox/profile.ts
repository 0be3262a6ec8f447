/** Applying a quarantine's SandboxProfile (lib/gate/sandbox-profile.ts) to spawn options: the stricter setting wins. */
import { ErrorCodes, GuardError } from '../errors';
import type { SandboxSpawnOptions } from './process';
import type { SandboxProfile } from './types';

/** Options narrowed to what `profile` allows; throws ERR_FORBIDDEN when it allows nothing. */
export function applySandboxProfile(options: SandboxSpawnOptions, profile: SandboxProfile): SandboxSpawnOptions {
  if (!profile.allowed) throw new GuardError(ErrorCodes.FORBIDDEN, `process sandbox: refused: ${profile.reason ?? 'the quarantine allows nothing to run'}`);
  const out: SandboxSpawnOptions = { ...options };
  if (profile.network === 'none') out.network = 'none';
  else if (profile.network === 'loopback' && out.network !== 'none') out.network = 'loopback';
  if (profile.readOnly === true) {
    const f = options.filesystem;
    // Read-only: what was writable becomes readable; with no allow list at all, the whole tree is readable and nothing writable.
    out.filesystem = f === undefined ? { read: ['/'] } : { read: [...(f.read ?? []), ...(f.write ?? [])], write: [], system: f.system };
  }
  // A confinement the quarantine demands may not be lowered by the caller.
  if (out.allowWeaker !== undefined) {
    out.allowWeaker = out.allowWeaker.filter((w) => !(w === 'network' && profile.network !== undefined) && !(w === 'filesystem' && profile.readOnly === true));
  }
  return out;
}

/** `guardkernel doctor --redis URL`: can this host reach the fleet store, and what does it hold. */
import { FleetStore } from './store';

export interface FleetDoctorReport {
  url: string;
  prefix: string;
  ok: boolean;
  error?: string;
  redisVersion?: string;
  roundTripMs?: number;
  policyVersion?: number;
  quarantined?: number;
  status: ReturnType<FleetStore['status']>;
}

/** Connects (at most `timeoutMs`), measures a PING, reads the fleet's policy version and quarantine size. */
export async function fleetDoctor(url: string, prefix: string | undefined, timeoutMs = 3000): Promise<FleetDoctorReport> {
  const store = FleetStore.redis({ redis: url, prefix, commandTimeoutMs: timeoutMs });
  const shown = url.replace(/\/\/[^@/]*@/, '//***@'); // never print a password
  try {
    await store.ready(timeoutMs);
    const t0 = process.hrtime.bigint();
    await store.run((r) => r.ping());
    const roundTripMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const info = await store.run((r) => r.info('server'));
    const version = await store.run((r) => r.hget(store.key('policy', 'current'), 'version'));
    const quarantined = await store.run((r) => r.hlen(store.key('quarantine', 'agents')));
    return {
      url: shown,
      prefix: store.prefix,
      ok: true,
      redisVersion: /redis_version:([^\r\n]+)/.exec(info)?.[1],
      roundTripMs: Math.round(roundTripMs * 1000) / 1000,
      policyVersion: version === null ? 0 : Number(version),
      quarantined,
      status: store.status(),
    };
  } catch (err) {
    return { url: shown, prefix: store.prefix, ok: false, error: (err as Error).message, status: store.status() };
  } finally {
    await store.close();
  }
}

export function formatFleetDoctor(r: FleetDoctorReport): string {
  const lines = [`fleet store:  redis ${r.url} (prefix ${r.prefix})`];
  if (!r.ok) {
    lines.push(`  NOT REACHABLE: ${r.error}`);
    lines.push('  a gate with onStoreError "deny" denies every check that needs the store until it is back');
    return lines.join('\n');
  }
  lines.push(`  redis ${r.redisVersion}, PING round trip ${r.roundTripMs} ms`);
  lines.push(`  fleet policy version: ${r.policyVersion || 'none published yet'}; quarantined agents: ${r.quarantined}`);
  return lines.join('\n');
}

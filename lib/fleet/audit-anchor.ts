/**
 * RedisAuditAnchor: the audit log's head checkpoint kept in Redis, so that a
 * rollback of a host's log and head together (which nothing in the log's
 * directory reveals) fails `AuditLog.verify(file, key, { anchor })`.
 *
 * One hash per log (`<prefix>audit-anchor:<name>`: seq, mac, key_id). A
 * script stores a state only when its seq is above the stored one, so
 * writes that arrive out of order, or a writer restarted on a rolled-back
 * log, cannot move the anchor back. Its protection is Redis's access
 * control: whoever may write the key may also delete it.
 */
import type { AuditAnchor, AuditAnchorState } from '../audit/anchor';
import { checkAnchorState, parseAnchorState } from '../audit/anchor';
import { describe } from '../errors';
import type { FleetStore } from './store';

const ANCHOR_FORWARD_LUA = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'mac', ARGV[2], 'key_id', ARGV[3])
  return 1
end
return 0
`;

export class RedisAuditAnchor implements AuditAnchor {
  readonly store: FleetStore;
  readonly key: string;

  /** @param name which log this anchors (one per log, e.g. the host name and log path). */
  constructor(store: FleetStore, name: string) {
    if (typeof store !== 'object' || store === null || typeof store.run !== 'function' || typeof store.key !== 'function') {
      throw new TypeError(`Expected a FleetStore for store but received ${describe(store)}`);
    }
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw new TypeError(`Expected a name of 1 to 256 characters but received ${describe(name)}`);
    this.store = store;
    this.key = store.key('audit-anchor', name);
  }

  /** Stores `state` if its seq is above the stored one. Rejects with ERR_STORE_UNAVAILABLE when Redis does not answer. */
  async write(state: AuditAnchorState): Promise<void> {
    const s = checkAnchorState(state, 'the anchor state');
    await this.store.run((redis) => redis.eval(ANCHOR_FORWARD_LUA, 1, this.key, String(s.seq), s.mac, s.key_id ?? ''));
  }

  /** The stored state, or null when none is stored. Rejects when Redis does not answer or holds something else. */
  async read(): Promise<AuditAnchorState | null> {
    const h = await this.store.run((redis) => redis.hgetall(this.key));
    if (h === null || Object.keys(h).length === 0) return null;
    const state = parseAnchorState({ seq: Number(h.seq), mac: h.mac, key_id: h.key_id === '' || h.key_id === undefined ? undefined : h.key_id });
    // A damaged anchor is not "no anchor": that would switch the check off.
    if (state === null) throw new Error(`Redis key ${this.key} holds no valid audit anchor`);
    return state;
  }
}

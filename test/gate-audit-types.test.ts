// Every gate decision is recorded under the audit type of the stage that made
// it and what it decided (issue 25 item 13: a permit's allow was recorded as
// `permit_rejected`). One case per stage x decision the pipeline can produce.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, DecisionCache, Gate, Keyring, Quarantine, SECURITY_EVENT_TYPES, VelocityGuard } from '../lib/index';

const POLICY = {
  version: 1,
  mode: 'enforce',
  default: 'deny',
  actions: {
    file_read: { constraints: { resource: { glob: '/srv/**' } } },
    shell_exec: { require_approval: true },
  },
};
const read = (agent = 'agent-1', resource = '/srv/a.txt') => ({ action_type: 'file_read', agent_id: agent, resource });

function setup() {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-types-')), 'audit.log');
  const audit = new AuditLog({ file, key: crypto.randomBytes(32) });
  const keyring = new Keyring({ keys: { k: crypto.randomBytes(32) }, active: 'k' });
  const quarantine = new Quarantine({ audit });
  const gate = new Gate({ policy: POLICY, audit, keyring, quarantine, velocity: new VelocityGuard({ maxPerAgent: 2, windowMs: 60_000 }), cache: new DecisionCache() });
  /** The type, decision and source of the last gate_check record written. */
  const last = () => {
    audit.flush();
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const r = lines.filter((x) => 'decision' in x).pop();
    return { type: r.type, decision: r.decision, source: r.source };
  };
  return { gate, keyring, quarantine, last };
}

describe('audit type of every stage x decision', () => {
  test('each pair the pipeline produces is recorded under its own type', () => {
    const { gate, keyring, quarantine, last } = setup();
    const seen: string[] = [];
    const expectLast = (decision: string, source: string, type: string) => {
      expect(last()).toEqual({ type, decision, source });
      seen.push(`${source}/${decision}`);
    };

    gate.check({ car: { action_type: 'file_read' } }); // no agent_id
    expectLast('deny', 'validation', 'input_validation_failure');

    gate.check({ car: read() });
    expectLast('allow', 'policy', 'gate_decision');
    gate.check({ car: read() });
    expectLast('allow', 'cache', 'gate_decision');
    gate.check({ car: read('agent-2', '/etc/passwd') });
    expectLast('deny', 'policy', 'gate_decision');
    gate.check({ car: read('agent-2', '/etc/passwd') });
    expectLast('deny', 'cache', 'gate_decision');
    const shell = { action_type: 'shell_exec', agent_id: 'agent-3' };
    gate.check({ car: shell });
    expectLast('pending', 'policy', 'gate_decision');

    const { permit } = keyring.issue({ car: shell, agentId: 'agent-3', ttlMs: 60_000 });
    gate.check({ car: shell, permit });
    expectLast('allow', 'permit', 'permit_accepted');
    gate.check({ car: { action_type: 'shell_exec', agent_id: 'agent-4' }, permit: permit.slice(0, -4) + 'AAAA' });
    expectLast('deny', 'permit', 'permit_rejected');

    gate.check({ car: read('agent-5'), nonce: 'n-1' });
    gate.check({ car: read('agent-6'), nonce: 'n-1' });
    expectLast('deny', 'replay', 'replay_detected');

    for (let i = 0; i < 3; i++) gate.check({ car: read('agent-7') });
    expectLast('deny', 'velocity', 'rate_limited');

    quarantine.quarantine('agent-8', 'test');
    gate.check({ car: read('agent-8') });
    expectLast('deny', 'quarantine', 'gate_decision');

    // An internal error: a cache whose get throws.
    const broken = setup();
    (broken.gate.cache as DecisionCache).get = () => {
      throw new Error('boom');
    };
    broken.gate.check({ car: read() });
    expect(broken.last()).toEqual({ type: 'gate_decision', decision: 'deny', source: 'error' });
    seen.push('error/deny');

    expect(seen.sort()).toEqual(
      ['cache/allow', 'cache/deny', 'error/deny', 'permit/allow', 'permit/deny', 'policy/allow', 'policy/deny', 'policy/pending', 'quarantine/deny', 'replay/deny', 'validation/deny', 'velocity/deny'].sort(),
    );
  });

  test('permit_accepted is a listed security event type', () => {
    expect(SECURITY_EVENT_TYPES).toContain('permit_accepted');
    expect(SECURITY_EVENT_TYPES).toContain('permit_rejected');
  });
});

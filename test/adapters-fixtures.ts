// What the agent-SDK adapter tests share: one policy (an allowed tool with an
// argument constraint, a tool that needs approval), a gate that records the
// CARs it is asked about, and a GuardServer on a temp socket.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApprovalBook, AuditLog, Gate, GuardClient, GuardServer, type GateDecision } from '../lib/index';

export const POLICY = {
  version: 1,
  mode: 'enforce',
  default: 'deny',
  actions: {
    'tool.read_file': { allow_identities: ['agent-*'], constraints: { 'args.path': { glob: '/srv/data/**' }, 'args.mode': { one_of: ['r'] } } },
    'tool.shell': { allow_identities: ['agent-*'], require_approval: true },
  },
};

export const AGENT = 'agent-1';
const AGENT_TOKEN = 'agent-token-0123456789abc';
const OPERATOR_TOKEN = 'operator-token-0123456789';

/** A gate with POLICY whose every check's CAR lands in `cars`. */
export function recordingGate(): { gate: Gate; cars: Array<Record<string, unknown>>; book: ApprovalBook } {
  const gate = new Gate({ policy: POLICY });
  const cars: Array<Record<string, unknown>> = [];
  const checkAsync = gate.checkAsync.bind(gate);
  gate.checkAsync = async (req): Promise<GateDecision> => {
    cars.push(JSON.parse(JSON.stringify(req.car)) as Record<string, unknown>);
    return checkAsync(req);
  };
  return { gate, cars, book: gate.approvals as ApprovalBook };
}

/** A GuardServer (its own gate with POLICY) and an agent's client; close() stops both. */
export async function served(): Promise<{ gate: Gate; book: ApprovalBook; client: GuardClient; authToken: string; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-adapters-'));
  const socketPath = path.join(dir, 'core.sock');
  const audit = new AuditLog({ file: path.join(dir, 'audit.log'), key: crypto.randomBytes(32) });
  const gate = new Gate({ policy: POLICY, audit });
  const server = new GuardServer({ socketPath, context: { gate, metrics: {} }, operatorToken: Buffer.from(OPERATOR_TOKEN), agentToken: Buffer.from(AGENT_TOKEN) });
  await server.listen();
  const client = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
  return {
    gate,
    book: gate.approvals as ApprovalBook,
    client,
    authToken: AGENT_TOKEN,
    async close() {
      await client.close();
      await server.close();
      await gate.close();
      audit.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

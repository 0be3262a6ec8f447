/**
 * An upstream MCP server run in the process sandbox (lib/sandbox): the
 * proxy's `{ command, sandbox }` upstream. The SDK's stdio framing (its
 * StdioServerTransport over the child's pipes: it reads the child's stdout
 * and writes its stdin) carries the messages; nothing here frames JSON-RPC.
 *
 * The agent's quarantine profile narrows the caller's options (no network,
 * read-only, or refused), so a quarantined agent's tools run confined too.
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ProcessSandbox, applySandboxProfile, type SandboxProfile, type SandboxResult, type SandboxSpawnOptions } from '../sandbox';

export interface SandboxedUpstreamSpec {
  command: string;
  args?: string[];
  cwd?: string;
  /** Variables for the server on top of the sandbox's allow-listed ones. */
  env?: Record<string, string>;
  stderr?: 'inherit' | 'pipe' | 'ignore';
  /** The confinement (limits, filesystem, network, allowWeaker, ...); stdio is the proxy's. */
  sandbox: Omit<SandboxSpawnOptions, 'stdio' | 'cwd' | 'env'>;
}

/** The SDK's stdio server transport class, loaded with the optional peer dependency. */
type StdioServerTransportClass = new (stdin: Readable, stdout: Writable) => Transport;

/**
 * A Transport to a server spawned confined. `profile` is the agent's
 * quarantine profile (null: none to apply). Spawning happens in start(), so
 * a refusal (ERR_SANDBOX_UNSUPPORTED, ERR_FORBIDDEN) fails the proxy's start.
 */
export function sandboxedUpstream(spec: SandboxedUpstreamSpec, profile: SandboxProfile | null, Stdio: StdioServerTransportClass, onExit: (why: string) => void): Transport {
  const sandbox = new ProcessSandbox();
  let inner: Transport | null = null;
  let closed = false;
  const t: Transport = {
    async start() {
      let options: SandboxSpawnOptions = { ...spec.sandbox, stdio: ['pipe', 'pipe', spec.stderr ?? 'inherit'] };
      if (spec.cwd !== undefined) options.cwd = spec.cwd;
      if (spec.env !== undefined) options.env = spec.env;
      if (profile !== null) options = applySandboxProfile(options, profile);
      const proc = sandbox.spawn(spec.command, spec.args ?? [], options);
      proc.stdin!.on('error', () => {}); // a server that exits mid-write: its result says why
      inner = new Stdio(proc.stdout!, proc.stdin!);
      inner.onmessage = (m) => t.onmessage?.(m);
      inner.onerror = (e) => t.onerror?.(e);
      proc.result.then(
        (r) => {
          if (!closed) onExit(describeExit(r));
          closed = true;
          t.onclose?.();
        },
        () => {
          closed = true;
          t.onclose?.();
        },
      );
      await inner.start();
    },
    send: (m: JSONRPCMessage) => (inner === null ? Promise.reject(new Error('the upstream MCP server is not running')) : inner.send(m)),
    async close() {
      closed = true;
      await inner?.close().catch(() => {});
      sandbox.close();
    },
  };
  return t;
}

function describeExit(r: SandboxResult): string {
  if (r.reason === 'exit') return `the upstream MCP server exited (code ${r.code})`;
  if (r.reason === 'killed') return 'the upstream MCP server was killed';
  const v = r.violations[0] as { limit?: string } | undefined;
  return `the sandbox stopped the upstream MCP server (${r.reason}${v?.limit !== undefined ? `: ${v.limit}` : ''})`;
}

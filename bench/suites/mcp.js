// The MCP guard proxy's added latency: a trivial tools/call (server-everything's
// `echo`) from the SDK's Client, straight to the server over stdio (the
// baseline) and through `guardkernel mcp --policy` in front of the same server
// program, in the same paired rounds (bench/harness.js). Each sample is one
// call awaited to its reply; the reported ratio is the median of same-round
// p50 ratios (direct / proxied: 0.83 means the proxy takes 1.2x the direct
// round trip). The policy allows the call by an explicit rule; no audit log.
// A third case relays through a bare process with the same SDK transports and
// no gate, so the cost of the extra process hop shows apart from the gate's.
// A fourth runs the proxy in this process (guardMcp with its own Gate; the
// client talks to it over the SDK's InMemoryTransport, the proxy to the
// server over stdio): the form for a Node agent that embeds the proxy, with
// no extra process hop.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runCases } = require('../harness');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { InMemoryTransport } = require('@modelcontextprotocol/sdk/inMemory.js');
const gk = require('../../dist/index.js');
const { guardMcp } = require('../../dist/mcp/index.js');
const { Server } = require('@modelcontextprotocol/sdk/server/index.js');
const { CallToolRequestSchema, ListToolsRequestSchema } = require('@modelcontextprotocol/sdk/types.js');

const root = path.join(__dirname, '..', '..');
const everything = path.join(root, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const cli = path.join(root, 'dist', 'cli', 'main.js');

// A bare relay with the same SDK transports and no gate: what any stdio MCP
// proxy process costs, to tell the gate's share from the extra hop's.
const BARE_RELAY = `
const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const up = new StdioClientTransport({ command: process.execPath, args: [process.argv[1], 'stdio'], stderr: 'ignore' });
const down = new StdioServerTransport();
up.onmessage = (m) => void down.send(m);
down.onmessage = (m) => void up.send(m);
process.stdin.on('end', () => up.close().then(() => process.exit(0)));
up.start().then(() => down.start());
`;

/** An echo server in this process (the SDK's low-level Server), for the proxy's own cost without any process hop. */
async function echoServerTransport() {
  const server = new Server({ name: 'echo', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object', properties: { message: { type: 'string' } } } }] }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => ({ content: [{ type: 'text', text: `Echo: ${req.params.arguments.message}` }] }));
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  return clientSide;
}

async function connect(command, args) {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command, args, stderr: 'ignore' }));
  return client;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-bench-mcp-'));
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, 'version: 1\nmode: enforce\ndefault: deny\nactions:\n  mcp.tool.echo:\n    allow_identities: ["agent-*"]\n');
  const direct = await connect(process.execPath, [everything, 'stdio']);
  const proxied = await connect(process.execPath, [cli, 'mcp', '--policy', policy, '--agent-id', 'agent-bench', '--server-id', 'everything', '--', process.execPath, everything, 'stdio']);
  const bare = await connect(process.execPath, ['-e', BARE_RELAY, everything]);
  const [clientSide, proxySide] = InMemoryTransport.createLinkedPair();
  const proxy = await guardMcp({
    gate: new gk.Gate({ policy: fs.readFileSync(policy, 'utf8') }),
    agentId: 'agent-bench',
    serverId: 'everything',
    upstream: { command: process.execPath, args: [everything, 'stdio'], stderr: 'ignore' },
    transport: proxySide,
  });
  const embedded = new Client({ name: 'bench', version: '1.0.0' });
  await embedded.connect(clientSide);
  // All in this process: the client to an in-memory echo server, directly and through guardMcp.
  const memDirect = new Client({ name: 'bench', version: '1.0.0' });
  await memDirect.connect(await echoServerTransport());
  const [memClientSide, memProxySide] = InMemoryTransport.createLinkedPair();
  const memProxy = await guardMcp({ gate: new gk.Gate({ policy: fs.readFileSync(policy, 'utf8') }), agentId: 'agent-bench', serverId: 'echo', upstream: { transport: await echoServerTransport() }, transport: memProxySide });
  const memVia = new Client({ name: 'bench', version: '1.0.0' });
  await memVia.connect(memClientSide);
  const call = { name: 'echo', arguments: { message: 'hello' } };
  for (const c of [direct, bare, proxied, embedded, memDirect, memVia]) {
    const r = await c.callTool(call);
    if (r.isError || r.content[0].text !== 'Echo: hello') throw new Error(`unexpected echo result ${JSON.stringify(r)}`);
  }
  try {
    await runCases(
      'mcp',
      [
        { group: 'tools/call echo', name: 'direct to the server (stdio)', baseline: true, fn: async () => { await direct.callTool(call); } },
        { group: 'tools/call echo', name: 'through a bare SDK stdio relay (no gate)', fn: async () => { await bare.callTool(call); } },
        { group: 'tools/call echo', name: 'through guardkernel mcp --policy', fn: async () => { await proxied.callTool(call); } },
        { group: 'tools/call echo', name: 'through guardMcp in this process (InMemoryTransport to the proxy, stdio to the server)', fn: async () => { await embedded.callTool(call); } },
        { group: 'tools/call echo, everything in this process (SDK Server over InMemoryTransport)', name: 'direct to the server', baseline: true, fn: async () => { await memDirect.callTool(call); } },
        { group: 'tools/call echo, everything in this process (SDK Server over InMemoryTransport)', name: 'through guardMcp', fn: async () => { await memVia.callTool(call); } },
      ],
      { time: Number(process.env.GK_BENCH_MCP_MS) || 3000, warmupTime: 300, rounds: 5 },
    );
  } finally {
    await direct.close();
    await bare.close();
    await proxied.close();
    await embedded.close();
    await proxy.closed;
    await memDirect.close();
    await memVia.close();
    await memProxy.closed;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

/**
 * `guardkernel/mcp`: the MCP guard proxy. Needs the optional peer dependency
 * `@modelcontextprotocol/sdk`, loaded only when a proxy starts.
 */
export { guardMcp, MCP_DENIED } from './proxy';
export type { GuardMcpOptions, GuardMcpProxy, McpProxyExit, McpUpstream, McpTransport } from './proxy';
export { carFor, neverAllowed, GATED_METHODS } from './car-mapping';
export type { CarContext, CarResult } from './car-mapping';

// One error shape (issue 30 item 6): a GuardError in process, an
// RpcCallError from the Node client and an RpcError from the Python client
// all carry the stable `ERR_*` string as `.code`, and `.path` where the
// offending input has one (a policy error over the socket). The JSON-RPC
// number stays available as `.rpcCode` / `.rpc_code`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Gate, GuardClient, GuardError, GuardServer, Keyring, RpcCallError } from '../lib/index';
import { RPC_ERROR_CODES } from '../lib/ipc/client';
import { repoRoot } from './helpers';
import { startChild } from './child';
import { skipWithout, toolMissing } from './prerequisites';

const python = skipWithout('python3', toolMissing('python3')) ? null : 'python3';
const BAD_POLICY = { version: 2, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '' } } } } };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-errshape-'));
const socketPath = path.join(dir, 'core.sock');
let server: GuardServer;
let gate: Gate;

beforeAll(async () => {
  gate = new Gate({ policy: { version: 1, mode: 'enforce' }, keyring: new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1' }) });
  server = new GuardServer({ socketPath, context: { gate, metrics: {} } });
  await server.listen();
});
afterAll(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<RpcCallError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcCallError);
    return err as RpcCallError;
  }
  throw new Error('expected a rejection');
}

describe('one error shape: .code (ERR_*) and .path everywhere', () => {
  test('in process, a policy error is a GuardError with code and path', () => {
    let err: unknown;
    try {
      gate.policy.load(BAD_POLICY);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect(err).toMatchObject({ code: 'ERR_POLICY_INVALID', path: 'actions.file_read.constraints.resource.glob' });
  });

  test('the Node client: the same code and path over the socket; protocol errors get stable names', async () => {
    const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    try {
      const policy = await rejection(c.policyReload(BAD_POLICY));
      expect(policy).toMatchObject({ code: 'ERR_POLICY_INVALID', path: 'actions.file_read.constraints.resource.glob', rpcCode: -32000 });
      expect(await rejection(c.call('no_such_method'))).toMatchObject({ code: 'ERR_METHOD_NOT_FOUND', rpcCode: -32601 });
      const params = await rejection(c.call('hash_car', {}));
      expect(params).toMatchObject({ code: 'ERR_INVALID_PARAMS', rpcCode: -32602 });
      expect(params.path).toBeUndefined();
      expect(await rejection(c.approvalGet('apr_' + 'Z'.repeat(22)))).toMatchObject({ rpcCode: -32000 });
    } finally {
      await c.close();
    }
  });

  test('rejects bad input: a reply whose data is not an object, or names a non-string code, still gets a stable code', () => {
    expect(new RpcCallError(-32000, 'x', 'text')).toMatchObject({ code: 'ERR_APPLICATION' });
    expect(new RpcCallError(-32000, 'x', { code: 5, path: ['a'] })).toMatchObject({ code: 'ERR_APPLICATION' });
    expect(new RpcCallError(-32000, 'x', { code: 5, path: ['a'] }).path).toBeUndefined();
    expect(new RpcCallError(-1, 'x')).toMatchObject({ code: 'ERR_RPC' });
    expect(new RpcCallError(-32601, 'x', { code: '__proto__' }).code).toBe('__proto__');
    expect(RPC_ERROR_CODES[-32700]).toBe('ERR_PARSE');
  });

  test.runIf(python !== null)('the Python client: RpcError with the same .code and .path, .rpc_code the number', async () => {
    const script = `
import asyncio, json, sys
sys.path.insert(0, ${JSON.stringify(path.join(repoRoot, 'clients', 'python'))})
from guardkernel_client import GuardClient, RpcError

async def main():
    c = await GuardClient.connect(${JSON.stringify(socketPath)})
    out = {}
    for name, call in (("policy", lambda: c.call("policy_reload", policy=${JSON.stringify(BAD_POLICY)})),
                       ("method", lambda: c.call("no_such_method")),
                       ("params", lambda: c.call("hash_car"))):
        try:
            await call()
            out[name] = None
        except RpcError as err:
            out[name] = {"code": err.code, "path": err.path, "rpc_code": err.rpc_code}
    await c.close()
    print(json.dumps(out))

asyncio.run(main())
`;
    const file = path.join(dir, 'shape.py');
    fs.writeFileSync(file, script);
    // Asynchronously: the server answering it runs on this test's event loop.
    const child = startChild(python!, [file], { stdio: ['ignore', 'pipe', 'pipe'] }, 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      policy: { code: 'ERR_POLICY_INVALID', path: 'actions.file_read.constraints.resource.glob', rpc_code: -32000 },
      method: { code: 'ERR_METHOD_NOT_FOUND', path: null, rpc_code: -32601 },
      params: { code: 'ERR_INVALID_PARAMS', path: null, rpc_code: -32602 },
    });
  });
});

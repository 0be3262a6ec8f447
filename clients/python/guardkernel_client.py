"""A stdlib-only asyncio client for `guardkernel serve`.

JSON-RPC 2.0 over a Unix socket, one JSON value per line. Requests are
pipelined on one connection and matched to replies by id.

    import asyncio
    from guardkernel_client import GuardClient

    async def main():
        client = await GuardClient.connect("/run/user/1000/guardkernel/core.sock")
        print(await client.ping())
        decision = await client.call("gate_check", car={"action_type": "file_read", "agent_id": "agent-1"})
        print(decision["decision"], decision["reason"])
        await client.close()

    asyncio.run(main())
"""

import asyncio
import itertools
import json


class RpcError(Exception):
    """A JSON-RPC error reply: .code, .message, .data."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class GuardClient:
    def __init__(self, reader, writer, timeout):
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        # The role the server gave this connection ("agent" or "operator"), as
        # last reported by auth() or version(); None before either.
        self.role = None
        self._ids = itertools.count(1)
        self._pending = {}
        self._reader_task = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def connect(cls, socket_path, timeout=5.0, limit=16 * 1024 * 1024):
        reader, writer = await asyncio.open_unix_connection(socket_path, limit=limit)
        return cls(reader, writer, timeout)

    async def _read_replies(self):
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                message = json.loads(line)
                for reply in message if isinstance(message, list) else [message]:
                    future = self._pending.pop(reply.get("id"), None)
                    if future is None or future.done():
                        continue
                    if "error" in reply:
                        err = reply["error"]
                        future.set_exception(RpcError(err.get("code"), err.get("message"), err.get("data")))
                    else:
                        future.set_result(reply.get("result"))
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self._pending.clear()

    async def call(self, method, **params):
        """Calls `method` with params by name and returns its result (raises RpcError)."""
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            request["params"] = params
        self._writer.write((json.dumps(request) + "\n").encode())
        await self._writer.drain()
        try:
            return await asyncio.wait_for(future, self._timeout)
        finally:
            self._pending.pop(request_id, None)

    async def notify(self, method, **params):
        """Sends a notification: the server does the work and sends nothing back."""
        request = {"jsonrpc": "2.0", "method": method}
        if params:
            request["params"] = params
        self._writer.write((json.dumps(request) + "\n").encode())
        await self._writer.drain()

    async def ping(self):
        return await self.call("ping")

    async def version(self):
        """The server's version and backends, and (`role`) the role this connection has."""
        result = await self.call("version")
        self.role = result.get("role")
        return result

    async def auth(self, token):
        """Authenticates this connection; `role` then says which role the token gave ("agent" or "operator")."""
        result = await self.call("auth", token=token)
        self.role = result.get("role")
        return result

    async def gate_check(self, car, permit=None, nonce=None, session_id=None):
        params = {"car": car}
        for key, value in (("permit", permit), ("nonce", nonce), ("session_id", session_id)):
            if value is not None:
                params[key] = value
        return await self.call("gate_check", **params)

    async def close(self):
        self._reader_task.cancel()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


async def _example(socket_path):
    client = await GuardClient.connect(socket_path)
    print(json.dumps({
        "ping": await client.ping(),
        "role": (await client.version())["role"],
        "allow": await client.gate_check({"action_type": "file_read", "agent_id": "agent-prod-1",
                                          "resource": "/srv/data/q3.csv", "args": {"mode": "r"}}),
        "deny": await client.gate_check({"action_type": "file_read", "agent_id": "agent-prod-1",
                                         "resource": "/etc/shadow", "args": {"mode": "r"}}),
        "pipelined": len(await asyncio.gather(*(client.call("hash_car", car={"action_type": "x", "agent_id": f"a{i}"})
                                                for i in range(100)))),
    }))
    try:
        await client.call("no_such_method")
    except RpcError as err:
        print(json.dumps({"error": err.code}))
    await client.close()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python3 guardkernel_client.py SOCKET_PATH")
    asyncio.run(_example(sys.argv[1]))

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
import re
import time

# An approval request id: "apr_" and 22 base64url characters.
APPROVAL_ID = re.compile(r"apr_[A-Za-z0-9_-]{22}")
# The longest wait one approval_wait call may ask for (the server's cap), and its default, in ms.
APPROVAL_WAIT_MAX_MS = 3_600_000
APPROVAL_WAIT_DEFAULT_MS = 30_000
# wait_for_approval asks for at most this much per approval_wait call (ms): a long
# wait is many short calls, and a dropped connection costs at most one of them.
_APPROVAL_WAIT_SLICE_MS = 30_000


# Stable codes of the JSON-RPC protocol errors, where a reply names no
# guardkernel code of its own (error.data.code); the same as the Node client's.
RPC_ERROR_CODES = {
    -32700: "ERR_PARSE",
    -32600: "ERR_INVALID_REQUEST",
    -32601: "ERR_METHOD_NOT_FOUND",
    -32602: "ERR_INVALID_PARAMS",
    -32603: "ERR_INTERNAL",
    -32000: "ERR_APPLICATION",
    -32001: "ERR_UNAUTHORIZED",
    -32002: "ERR_AUTH_BLOCKED",
}


class RpcError(Exception):
    """A JSON-RPC error reply, shaped like the Node client's RpcCallError:
    .code is the stable "ERR_*" string (error.data.code, else the protocol
    error's name), .path the offending input's dotted path where the server
    named one, .rpc_code the JSON-RPC number, .message, .data as sent."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{code}: {message}")
        self.rpc_code = code
        self.message = message
        self.data = data
        named = data.get("code") if isinstance(data, dict) else None
        self.code = named if isinstance(named, str) else RPC_ERROR_CODES.get(code, "ERR_RPC")
        path = data.get("path") if isinstance(data, dict) else None
        self.path = path if isinstance(path, str) else None


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
        return await self._call_within(self._timeout, method, params)

    async def _call_within(self, timeout, method, params):
        """call() with its own time limit, in seconds (asyncio.TimeoutError past it)."""
        if self._reader_task.done():
            raise ConnectionError("connection closed")
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            request["params"] = params
        self._writer.write((json.dumps(request) + "\n").encode())
        await self._writer.drain()
        try:
            return await asyncio.wait_for(future, timeout)
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

    # Approvals (operator; approval_get and approval_wait also for the agent
    # credential that made the request). Requests are dicts in the wire form.

    async def approval_list(self, status=None):
        """The approval requests the server keeps, or those in one status: {"approvals": [...]}."""
        if status is None:
            return await self.call("approval_list")
        return await self.call("approval_list", status=status)

    async def approval_get(self, id):
        return await self.call("approval_get", id=_approval_id(id))

    async def approval_approve(self, id, reason=None):
        """Votes to grant a request (the server records this connection's credential); returns the request after the vote."""
        return await self.call("approval_approve", **_approval_params(id, reason))

    async def approval_deny(self, id, reason=None):
        return await self.call("approval_deny", **_approval_params(id, reason))

    async def approval_wait(self, id, timeout_ms=None):
        """One approval_wait call: the request once it is no longer pending, or, when
        timeout_ms (default 30000, at most 3600000) runs out first, the still-pending
        request with "timed_out": True. This call's own limit is timeout_ms plus the
        client's timeout (not the client's timeout alone)."""
        params = {"id": _approval_id(id)}
        if timeout_ms is not None:
            if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 0 <= timeout_ms <= APPROVAL_WAIT_MAX_MS:
                raise ValueError(f"timeout_ms must be an integer from 0 to {APPROVAL_WAIT_MAX_MS}, not {timeout_ms!r}")
            params["timeout_ms"] = timeout_ms
        wait_s = (APPROVAL_WAIT_DEFAULT_MS if timeout_ms is None else timeout_ms) / 1000
        return await self._call_within(wait_s + self._timeout, "approval_wait", params)

    async def wait_for_approval(self, id, timeout=300.0, token=None):
        """Waits until request `id` is no longer pending (granted, denied, expired or
        used) or `timeout` seconds have passed, as a series of approval_wait calls.
        A dropped connection, or a server that is restarting, is retried on a new
        connection to the same socket (authenticated again with `token` where the
        server requires tokens) until the time is up. Returns the request: final,
        or still pending with "timed_out": True. Raises RpcError for the server's
        refusals (not found, forbidden) and TimeoutError when no answer came at all."""
        _approval_id(id)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        deadline = time.monotonic() + timeout
        last = None
        last_error = None
        backoff = 0.05
        reconnect = False
        just_authenticated = False
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            try:
                if reconnect:
                    await self._reconnect()
                    reconnect = False
                    if token is not None:
                        await self.auth(token)
                        just_authenticated = True
                result = await self.approval_wait(id, min(left_ms, _APPROVAL_WAIT_SLICE_MS))
                just_authenticated = False
                backoff = 0.05
                if result.get("status") != "pending":
                    return result
                last = result
                continue
            except RpcError as err:
                unauthenticated = err.rpc_code == -32001 and err.code == "ERR_UNAUTHORIZED"
                if not (unauthenticated and token is not None and not just_authenticated):
                    raise
                await self.auth(token)
                just_authenticated = True
                continue
            except (ConnectionError, OSError, asyncio.TimeoutError) as err:
                # Refused, dropped, or no reply: a new connection, after a pause.
                last_error = err
                reconnect = True
            await asyncio.sleep(max(0.0, min(backoff, deadline - time.monotonic())))
            backoff = min(backoff * 2, 1.0)
        if last is not None:
            return dict(last, timed_out=True)
        raise TimeoutError(f"wait_for_approval {id}: no answer within {timeout} s" + (f": {last_error!r}" if last_error is not None else ""))

    async def _reconnect(self):
        """Replaces this client's connection with a new one to the same socket (what was pending fails)."""
        path = self._writer.get_extra_info("peername")
        if not path:
            raise ConnectionError("the socket path of this connection is unknown; cannot reconnect")
        reader, writer = await asyncio.open_unix_connection(path, limit=getattr(self._reader, "_limit", 16 * 1024 * 1024))
        old_writer, old_task = self._writer, self._reader_task
        old_task.cancel()
        # The old reader fails what was pending when it ends: let it end before new calls are pending.
        await asyncio.wait([old_task])
        old_writer.close()
        self._reader, self._writer = reader, writer
        self.role = None
        self._reader_task = asyncio.get_running_loop().create_task(self._read_replies())

    async def close(self):
        self._reader_task.cancel()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


def _approval_id(id):
    if not isinstance(id, str) or not APPROVAL_ID.fullmatch(id):
        raise ValueError(f"expected an approval id (apr_ and 22 base64url characters), not {id!r:.80}")
    return id


def _approval_params(id, reason):
    params = {"id": _approval_id(id)}
    if reason is not None:
        if not isinstance(reason, str):
            raise ValueError(f"reason must be a string, not {reason!r:.80}")
        params["reason"] = reason
    return params


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

// A real redis-server for the fleet tests: started on a free loopback port
// with no persistence, stopped by PID. Where the binary is missing the fleet
// tests skip, unless GUARDKERNEL_REQUIRE_REDIS=1 (.ci/run sets it after
// installing Debian's redis-server), which makes a missing server a failure.
import { runSync, startChild } from './child';
import net from 'node:net';

export const REDIS_BINARY = process.env.GUARDKERNEL_REDIS_SERVER || 'redis-server';
export const redisAvailable = runSync(REDIS_BINARY, ['--version'], { encoding: 'utf8' }).status === 0;
export const redisRequired = process.env.GUARDKERNEL_REQUIRE_REDIS === '1';

if (!redisAvailable && redisRequired) {
  throw new Error(`GUARDKERNEL_REQUIRE_REDIS=1 but "${REDIS_BINARY} --version" failed: install redis-server`);
}

/**
 * A free loopback port below Linux's ephemeral range (32768-60999), so no
 * socket another test binds to port 0 can take it while the server is down
 * between kill() and restart(); each start checks the server that answers is
 * its own child (see launch).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** The process id of the redis-server answering on `port`, or null (none, or not answering yet). */
async function serverPid(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (pid: number | null) => {
      s.destroy();
      resolve(pid);
    };
    s.once('error', () => done(null));
    s.once('connect', () => s.write('INFO server\r\n'));
    s.on('data', (d) => {
      text += d;
      const m = /process_id:(\d+)/.exec(text);
      if (m) done(Number(m[1]));
      else if (text.startsWith('-')) done(null);
    });
  });
}

export interface RedisProcess {
  port: number;
  url: string;
  pid: number;
  /** Kills it (SIGKILL: an outage, not a shutdown) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisProcess> {
  let port = await freePort();
  let child: ReturnType<typeof startChild>;
  // Ready when the server answering on the port is this child: a server of
  // another test that took the port would answer PING as well.
  const launch = async () => {
    child = startChild(REDIS_BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'], { stdio: 'ignore' }, 600_000);
    const deadline = Date.now() + 10_000;
    while ((await serverPid(port)) !== child.pid) {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode} (port taken?)`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 5 || child!.exitCode === null) throw err;
      port = await freePort(); // lost a race for the port: another one
    }
  }
  const handle: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child.pid!;
    },
    kill,
    restart: launch,
    stop: kill,
  };
  return handle;
}

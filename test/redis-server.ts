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

/** Free loopback port (bind to 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function pingable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
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
  const port = await freePort();
  let child: ReturnType<typeof startChild>;
  const launch = async () => {
    child = startChild(REDIS_BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'], { stdio: 'ignore' }, 600_000);
    const deadline = Date.now() + 10_000;
    while (!(await pingable(port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  await launch();
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

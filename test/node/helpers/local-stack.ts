import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * The local stack started the way a user starts it (`node scripts/start.mjs`, i.e. `npm start`),
 * on a free port. Its D1, R2 and Durable Object state lives in .wrangler/ and outlives it, as it
 * does for a user who stops and starts `npm start` again.
 */
export const ROOT = process.cwd();
export const ADMIN_KEY = 'local-admin-key'; // .dev.vars.example
export const BIN_PATH = `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;

/** `preferred` when it is free, else any free port. */
export function freePort(preferred: number): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => {
      const fallback = createServer();
      fallback.listen(0, '127.0.0.1', () => {
        const address = fallback.address();
        fallback.close(() => resolve(typeof address === 'object' && address ? address.port : preferred));
      });
    });
    server.listen(preferred, '127.0.0.1', () => server.close(() => resolve(preferred)));
  });
}

export interface LocalStack {
  base: string;
  /** The stack's recent output, for a failure message. */
  log(): string;
  stop(): Promise<void>;
}

/** Starts `npm start` on `port` and waits for /healthz. */
export async function startStack(port: number, timeoutMs = 180_000): Promise<LocalStack> {
  const base = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: String(port), WRANGLER_SEND_METRICS: 'false', PATH: BIN_PATH },
  });
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const stack: LocalStack = { base, log: () => output, stop: () => stopChild(child) };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${output.slice(-4000)}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) return stack;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await stack.stop();
  throw new Error(`the local stack did not answer /healthz in time:\n${output.slice(-4000)}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (!child.pid || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

/** Calls the stack's API with the admin key; throws on anything but 2xx. */
export async function callStack<T>(
  stack: LocalStack,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${stack.base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

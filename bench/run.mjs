// `npm run bench`: load figures against the local stack, then the operation meter.
//
// 1. copies the app (src, migrations, templates, scripts, config) into a temporary folder, so edits
//    made meanwhile cannot reload wrangler dev mid-run, and starts its `node scripts/start.mjs`
//    (wrangler dev, sandbox providers, a fresh local D1) on a free port of 127.0.0.1 in its own
//    process group, then waits for /healthz;
// 2. autocannon: GET /healthz (the baseline), POST /v1/notifications, POST /v1/notifications/batch;
// 3. drain: N notifications over every channel, from first accept to the last terminal status,
//    read from the local D1;
// 4. stops the stack (the whole group), runs the meter, and writes bench/results.md.
//
// Options: --duration <s> per load phase (default 20), --connections <n> (10), --drain <n>
// notifications (10000; 0 skips), --drain-timeout <s> (900), --meter-notifications <n> (1000),
// --no-meter.
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { ROOT, writeSection } from './lib/results.mjs';

const HOST = '127.0.0.1';
const CHANNELS = ['email', 'sms', 'push', 'chat', 'webhook'];
const PENDING = new Set(['created', 'queued', 'deferred']);
const FCM_TOKEN = `fcm-${'x'.repeat(40)}:APA91b${'Q'.repeat(120)}`;
const SLACK_URL = 'https://hooks.slack.com/services/T000/B000/XXXXXXXX';
/** How long the drain waits without any delivery finishing before it gives up. */
const STALL_MS = 60_000;
const WRANGLER_JS = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

function parseOptions(argv) {
  const options = {
    duration: 20,
    connections: 10,
    drain: 10_000,
    drainTimeout: 900,
    meterNotifications: 1000,
    meter: true,
  };
  const numeric = {
    '--duration': 'duration',
    '--connections': 'connections',
    '--drain': 'drain',
    '--drain-timeout': 'drainTimeout',
    '--meter-notifications': 'meterNotifications',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--no-meter') options.meter = false;
    else if (numeric[arg]) {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value) || value < 0) throw new Error(`${arg} needs a number`);
      options[numeric[arg]] = value;
    } else throw new Error(`unknown option ${arg}`);
  }
  if (options.duration > 60) throw new Error('--duration is at most 60 s per phase');
  return options;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the local stack needs to run; node_modules is linked, not copied. */
const APP_FILES = [
  'src',
  'migrations',
  'templates',
  'scripts',
  'wrangler.toml',
  'package.json',
  'tsconfig.json',
  '.dev.vars.example',
  '.dev.vars',
];

/** A copy of the app as it is now, with its own (empty) local state. */
function snapshotApp() {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-app-'));
  for (const entry of APP_FILES) {
    if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** The admin key `npm start` uses: .dev.vars (copied from .dev.vars.example on first start). */
function adminKey(app) {
  for (const file of ['.dev.vars', '.dev.vars.example']) {
    const path = join(app, file);
    if (!existsSync(path)) continue;
    const match = /^ADMIN_API_KEY=(.*)$/m.exec(readFileSync(path, 'utf8'));
    if (match) return match[1].trim();
  }
  throw new Error('no ADMIN_API_KEY in .dev.vars or .dev.vars.example');
}

/** Starts `npm start`'s script in its own process group; output goes to a log file. */
function startStack(app, port, logPath) {
  const log = createWriteStream(logPath);
  const child = spawn(process.execPath, [join(app, 'scripts', 'start.mjs')], {
    cwd: app,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: String(port),
      WRANGLER_SEND_METRICS: 'false',
      // start.mjs runs `wrangler` from the PATH: make it the project's, run by this Node.
      PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    },
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  return child;
}

async function stopStack(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitForHealth(base, child, timeoutMs = 180_000) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`the local stack exited (${child.exitCode}): see the log`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error('the local stack did not answer /healthz in time');
}

function cannon(options) {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

const summary = (r) => ({
  requestsPerSecond: r.requests.average,
  p50: r.latency.p50,
  p99: r.latency.p99,
  ok: r['2xx'],
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
});

/**
 * fetch for idempotent requests (PUT, or POST with ids): retried on a network error or a 5xx,
 * which wrangler dev's local proxy produces now and then under load.
 */
async function fetchIdempotent(url, init, attempts = 4) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const res = await fetch(url, init);
      if (res.status < 500 || attempt === attempts) return res;
      await res.body?.cancel();
    } catch (error) {
      if (attempt === attempts) {
        throw new Error(
          `${init.method} ${url}: ${error.message}${error.cause ? ` (${error.cause.message ?? error.cause})` : ''}`,
        );
      }
    }
    await sleep(1000 * attempt);
  }
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index], index);
    }
  });
  await Promise.all(workers);
}

/** One query against the local D1 that `wrangler dev` uses (read while it runs); 3 tries. */
function queryLocalD1(app, sql) {
  let failure = '';
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const result = spawnSync(
      process.execPath,
      [WRANGLER_JS, 'd1', 'execute', 'DB', '--local', '--json', '--command', sql],
      {
        cwd: app,
        encoding: 'utf8',
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    if (result.status === 0) return JSON.parse(result.stdout)[0]?.results ?? [];
    failure = result.error?.message ?? `${result.status ?? result.signal}: ${result.stderr || result.stdout}`;
  }
  throw new Error(`wrangler d1 execute failed: ${failure}`);
}

const percentile = (sorted, p) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function drain(app, base, headers, runId, count, timeoutSeconds) {
  const users = Array.from({ length: Math.ceil(count / CHANNELS.length) }, (_, i) => `bench_${runId}_d${i}`);
  await pool(users, 16, async (userId) => {
    const res = await fetchIdempotent(`${base}/v1/contacts/${userId}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({
        email: `${userId}@example.com`,
        phone: '+14155550123',
        deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
        externalChannels: [
          { platform: 'slack', url: SLACK_URL },
          { platform: 'webhook', url: 'https://hooks.example.com/herald' },
        ],
      }),
    });
    if (!res.ok) throw new Error(`PUT contact: ${res.status} ${await res.text()}`);
  });

  // Notification i goes to user i / 5 on channel i % 5: every user gets one per channel.
  const inputs = Array.from({ length: count }, (_, i) => ({
    // An id makes a retried request idempotent: the same notifications, not new ones.
    id: `bench-${runId}-${i}`,
    type: 'order_shipped',
    recipients: [users[Math.floor(i / CHANNELS.length)]],
    channels: [CHANNELS[i % CHANNELS.length]],
    data: { order_id: `B-${i}`, carrier: 'DHL', eta: 'Tuesday' },
  }));
  const batches = [];
  for (let i = 0; i < inputs.length; i += 100) batches.push(inputs.slice(i, i + 100));
  const acceptStarted = Date.now();
  await pool(batches, 4, async (notifications) => {
    const res = await fetchIdempotent(`${base}/v1/notifications/batch`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ notifications }),
    });
    if (res.status !== 202) throw new Error(`POST batch: ${res.status} ${await res.text()}`);
  });
  const acceptSeconds = (Date.now() - acceptStarted) / 1000;

  const where = `user_id LIKE 'bench\\_${runId}\\_d%' ESCAPE '\\'`;
  const deadline = Date.now() + timeoutSeconds * 1000;
  let statuses = {};
  let shown = '';
  let lastProgressAt = Date.now();
  let stalled = false;
  for (;;) {
    statuses = Object.fromEntries(
      queryLocalD1(app, `SELECT status, count(*) AS n FROM deliveries WHERE ${where} GROUP BY status`).map(
        (r) => [r.status, r.n],
      ),
    );
    const total = Object.values(statuses).reduce((s, n) => s + n, 0);
    const pending = Object.entries(statuses)
      .filter(([s]) => PENDING.has(s))
      .reduce((s, [, n]) => s + n, 0);
    const progress = `  drain: ${total - pending}/${count} terminal`;
    if (progress !== shown) {
      console.log(progress);
      shown = progress;
      lastProgressAt = Date.now();
    }
    if (total >= count && pending === 0) break;
    if (Date.now() > deadline) break;
    // Nothing moved for a minute: messages were lost (wrangler dev reloads on a file change and
    // drops its in-memory queues) or a consumer is stuck; report what finished.
    if (Date.now() - lastProgressAt > STALL_MS) {
      stalled = true;
      break;
    }
    await sleep(3000);
  }

  const [span] = queryLocalD1(
    app,
    `SELECT min(created_at) AS first, max(updated_at) AS last, count(*) AS n FROM deliveries WHERE ${where}`,
  );
  const latencies = queryLocalD1(
    app,
    `SELECT sent_at - created_at AS ms FROM deliveries WHERE ${where} AND status = 'sent' ORDER BY ms`,
  ).map((r) => r.ms);
  const pending = Object.entries(statuses)
    .filter(([s]) => PENDING.has(s))
    .reduce((s, [, n]) => s + n, 0);
  const seconds = (span.last - span.first) / 1000;
  return {
    notifications: count,
    contacts: users.length,
    acceptSeconds,
    acceptRate: count / acceptSeconds,
    seconds,
    deliveriesPerSecond: span.n / seconds,
    statuses,
    finished: pending === 0,
    stalled,
    pending,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

const n0 = (n) => (n === null || n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'));
const n2 = (n) => (n === null || n === undefined ? 'n/a' : n.toFixed(2));

function loadSection(options, load) {
  const { health, single, batch, drained, reloads, loadAtStart } = load;
  const lines = [
    '## Load against `wrangler dev` (127.0.0.1, sandbox providers)',
    '',
    `A copy of the app with a fresh local state; autocannon, ${options.connections} connections, ${options.duration} s per phase, on the same machine as workerd (they share the cores; 1-minute load average at the start: ${loadAtStart.toFixed(2)}). Ingest phases use a send time 23 h ahead, so their messages wait in the queue and the consumer does not compete with the measurement.`,
    '',
    ...(reloads > 0
      ? [
          `**Warning:** wrangler dev reloaded ${reloads} time(s) during this run (a source file changed), which drops its in-memory queue messages and disturbs the figures. Run the bench in a quiet checkout.`,
          '',
        ]
      : []),
    '| phase | requests/s | notifications/s | p50 ms | p99 ms | ratio to /healthz (rate, p50, p99) | non-2xx | errors |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
    `| GET /healthz (baseline) | ${n0(health.requestsPerSecond)} | | ${health.p50} | ${health.p99} | 1, 1, 1 | ${health.non2xx} | ${health.errors} |`,
    `| POST /v1/notifications (1 email) | ${n0(single.requestsPerSecond)} | ${n0(single.requestsPerSecond)} | ${single.p50} | ${single.p99} | ${n2(single.requestsPerSecond / health.requestsPerSecond)}, ${n2(single.p50 / Math.max(1, health.p50))}, ${n2(single.p99 / Math.max(1, health.p99))} | ${single.non2xx} | ${single.errors} |`,
    `| POST /v1/notifications/batch (100 emails) | ${n0(batch.requestsPerSecond)} | ${n0(batch.requestsPerSecond * 100)} | ${batch.p50} | ${batch.p99} | ${n2(batch.requestsPerSecond / health.requestsPerSecond)}, ${n2(batch.p50 / Math.max(1, health.p50))}, ${n2(batch.p99 / Math.max(1, health.p99))} | ${batch.non2xx} | ${batch.errors} |`,
  ];
  if (drained?.error) {
    lines.push('', `### Drain`, '', `**Failed:** ${drained.error}`);
  } else if (drained) {
    lines.push(
      '',
      `### Drain: ${n0(drained.notifications)} notifications over all channels`,
      '',
      `${n0(drained.contacts)} contacts (email, phone, FCM token, Slack, webhook); notification i goes to contact i/5 on channel i mod 5; accepted through \`POST /v1/notifications/batch\` (100 per request, 4 in flight); delivered by the local queues and consumers (batches of up to 100 messages). Times from the deliveries' own \`created_at\`, \`updated_at\` and \`sent_at\` in the local D1.`,
      '',
      '| figure | value |',
      '| --- | ---: |',
      `| accepted in | ${n2(drained.acceptSeconds)} s (${n0(drained.acceptRate)} notifications/s) |`,
      `| first accept to last terminal status | ${n2(drained.seconds)} s |`,
      `| deliveries per second, end to end | ${n0(drained.deliveriesPerSecond)} |`,
      `| accept to sent, p50 | ${n0(drained.p50)} ms |`,
      `| accept to sent, p99 | ${n0(drained.p99)} ms |`,
      `| statuses | ${Object.entries(drained.statuses)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')} |`,
      `| finished | ${drained.finished ? 'yes' : `**no**: ${drained.pending} still pending, ${drained.stalled ? 'nothing moved for 60 s' : `stopped after ${options.drainTimeout} s`}`} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  const port = await freePort();
  const base = `http://${HOST}:${port}`;
  const runId = Date.now().toString(36);
  // Other work on the machine skews every figure: say how busy it was when the run began.
  const loadAtStart = loadavg()[0];
  const logPath = join(tmpdir(), `herald-bench-${runId}.log`);
  const app = snapshotApp();
  console.log(`bench: starting a copy of the app (${app}) on ${base} (log: ${logPath})`);
  const child = startStack(app, port, logPath);
  const cleanUp = () => rmSync(app, { recursive: true, force: true });
  const stop = () =>
    stopStack(child)
      .then(cleanUp)
      .finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  let load;
  try {
    await waitForHealth(base, child);
    const key = adminKey(app);
    const headers = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
    const userId = `bench_${runId}_ingest`;
    const put = await fetch(`${base}/v1/contacts/${userId}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ email: `${userId}@example.com` }),
    });
    if (!put.ok) throw new Error(`PUT contact: ${put.status} ${await put.text()}`);
    const later = new Date(Date.now() + 23 * 3600 * 1000).toISOString();
    const one = {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['email'],
      data: { order_id: 'A-1' },
      sendAt: later,
    };
    // A batch of 100 can take seconds on a small machine: a 60 s timeout counts it instead of failing it.
    const common = { connections: options.connections, duration: options.duration, timeout: 60 };

    console.log('bench: warm-up');
    await cannon({ ...common, duration: 3, url: `${base}/healthz` });
    await cannon({
      ...common,
      duration: 3,
      url: `${base}/v1/notifications`,
      method: 'POST',
      headers,
      body: JSON.stringify(one),
    });

    console.log('bench: GET /healthz');
    const health = summary(await cannon({ ...common, url: `${base}/healthz` }));
    console.log('bench: POST /v1/notifications');
    const single = summary(
      await cannon({
        ...common,
        url: `${base}/v1/notifications`,
        method: 'POST',
        headers,
        body: JSON.stringify(one),
      }),
    );
    console.log('bench: POST /v1/notifications/batch');
    const batch = summary(
      await cannon({
        ...common,
        url: `${base}/v1/notifications/batch`,
        method: 'POST',
        headers,
        body: JSON.stringify({ notifications: Array.from({ length: 100 }, () => one) }),
      }),
    );
    let drained;
    if (options.drain > 0) {
      console.log(`bench: drain of ${options.drain} notifications`);
      try {
        drained = await drain(app, base, headers, runId, options.drain, options.drainTimeout);
      } catch (error) {
        // The load figures above stand on their own: keep them, say why the drain has none.
        drained = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    load = { health, single, batch, drained };
  } finally {
    await stopStack(child);
    cleanUp();
  }
  load.loadAtStart = loadAtStart;
  load.reloads = (readFileSync(logPath, 'utf8').match(/Reloading local server/g) ?? []).length;

  console.log(`bench: wrote ${writeSection('load', loadSection(options, load))}`);
  console.log(JSON.stringify(load, null, 2));

  if (options.meter) {
    console.log('bench: operation meter');
    const meter = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '-c', 'bench/meter/vitest.meter.config.ts'],
      {
        cwd: ROOT,
        stdio: 'inherit',
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: 'false',
          METER_NOTIFICATIONS: String(options.meterNotifications),
        },
      },
    );
    if (meter.status !== 0) throw new Error('the operation meter failed');
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});

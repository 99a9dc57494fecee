// `npm run bench`: load figures against the local stack, then the operation meter.
//
// 1. copies the app (src, migrations, templates, scripts, config) into a temporary folder, so edits
//    made meanwhile cannot reload wrangler dev mid-run, and starts its `node scripts/start.mjs`
//    (wrangler dev, sandbox providers, a fresh local D1) on a free port of 127.0.0.1 in its own
//    process group, then waits for /healthz;
// 2. autocannon: GET /healthz (the baseline), POST /v1/notifications, POST /v1/notifications/batch;
// 3. drain: N notifications over every channel, from first accept to the last terminal status,
//    read from the local D1 (every database: the home one and its shards);
// 4. topic fan-out: a topic with N subscribers, ONE notification to it, from its accept to the
//    last subscriber's delivery terminal (the expansion through the topics queue, then the channel
//    queue), read from the local D1 likewise. By default each subscriber has an email contact (made
//    first, outside the figures) and the sandbox email provider sends: what a real topic send does.
//    In-app needs no contact but touches two Durable Objects per subscriber (Recipient and Inbox,
//    each a new SQLite file locally) and ran about 2.5 times slower here;
// 5. stops the stack (the whole group), runs the meter, and writes bench/results.md.
//
// Options: --duration <s> per load phase (default 20), --connections <n> (10), --drain <n>
// notifications (10000; 0 skips), --drain-timeout <s> (900), --topic <n> subscribers (100000;
// 0 skips), --topic-channel <email|webhook|inapp> (email), --topic-timeout <s> (2700),
// --meter-notifications <n> (1000), --no-meter, --results <file> (bench/results.md; another file
// keeps a trial run out of the committed results; the meter always writes bench/results.md).
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
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { localD1, sumBy } from './lib/local-d1.mjs';
import { RESULTS_FILE, ROOT, writeSection } from './lib/results.mjs';

const HOST = '127.0.0.1';
const CHANNELS = ['email', 'sms', 'push', 'chat', 'webhook'];
const PENDING = new Set(['created', 'queued', 'deferred', 'scheduled']);
const FCM_TOKEN = `fcm-${'x'.repeat(40)}:APA91b${'Q'.repeat(120)}`;
const SLACK_URL = 'https://hooks.slack.com/services/T000/B000/XXXXXXXX';
/**
 * The topic phase's channels: the type sent, its data, and the contact each subscriber needs
 * (in-app needs none: the item goes to the user's inbox).
 */
const TOPIC_CHANNELS = {
  inapp: {
    type: 'new_comment',
    data: {
      author: 'Ada',
      subject: 'the roadmap',
      excerpt: 'Looks good',
      url: 'https://app.example.com/c/1',
    },
    contact: null,
  },
  email: {
    type: 'order_shipped',
    data: { order_id: 'T-1', carrier: 'DHL', eta: 'Tuesday' },
    contact: (userId) => ({ email: `${userId}@example.com` }),
  },
  webhook: {
    type: 'order_shipped',
    data: { order_id: 'T-1', carrier: 'DHL', eta: 'Tuesday' },
    contact: () => ({ externalChannels: [{ platform: 'webhook', url: 'https://hooks.example.com/herald' }] }),
  },
};
/** Users one subscribe call takes (the API's limit). */
const SUBSCRIBE_CHUNK = 1000;
/** Subscribers one expansion page plans (src/domain/topics.ts EXPANSION_PAGE). */
const EXPANSION_PAGE = 250;
/** How long the drain waits without any delivery finishing before it gives up. */
const STALL_MS = 60_000;

function parseOptions(argv) {
  const options = {
    duration: 20,
    connections: 10,
    drain: 10_000,
    drainTimeout: 900,
    topic: 100_000,
    topicChannel: 'email',
    topicTimeout: 2700,
    meterNotifications: 1000,
    meter: true,
    results: RESULTS_FILE,
  };
  const numeric = {
    '--duration': 'duration',
    '--connections': 'connections',
    '--drain': 'drain',
    '--drain-timeout': 'drainTimeout',
    '--topic': 'topic',
    '--topic-timeout': 'topicTimeout',
    '--meter-notifications': 'meterNotifications',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--no-meter') options.meter = false;
    else if (arg === '--results') options.results = resolve(argv[++i] ?? '');
    else if (arg === '--topic-channel') {
      const channel = argv[++i];
      if (!TOPIC_CHANNELS[channel])
        throw new Error(`--topic-channel is one of ${Object.keys(TOPIC_CHANNELS)}`);
      options.topicChannel = channel;
    } else if (numeric[arg]) {
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

/** The span of rows from several databases: the first `first`, the last `last`, the `n` summed. */
function spanOf(rows) {
  const firsts = rows.map((r) => r.first).filter((v) => v !== null);
  const lasts = rows.map((r) => r.last).filter((v) => v !== null);
  return {
    first: firsts.length > 0 ? Math.min(...firsts) : null,
    last: lasts.length > 0 ? Math.max(...lasts) : null,
    n: rows.reduce((sum, r) => sum + Number(r.n ?? 0), 0),
  };
}

const percentile = (sorted, p) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * Polls the local D1 until `expected` deliveries matching `where` exist and none is pending, the
 * timeout passes, or nothing moved for STALL_MS. Returns the statuses and how it ended.
 */
async function waitForTerminal(db, where, expected, timeoutSeconds, label) {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let statuses = {};
  let shown = '';
  let lastProgressAt = Date.now();
  let stalled = false;
  let total = 0;
  let pending = 0;
  for (;;) {
    statuses = sumBy(
      await db.query(`SELECT status, count(*) AS n FROM deliveries WHERE ${where} GROUP BY status`),
      'status',
    );
    total = Object.values(statuses).reduce((s, n) => s + n, 0);
    pending = Object.entries(statuses)
      .filter(([s]) => PENDING.has(s))
      .reduce((s, [, n]) => s + n, 0);
    const progress = `  ${label}: ${total - pending}/${expected} terminal (${total} written)`;
    if (progress !== shown) {
      console.log(progress);
      shown = progress;
      lastProgressAt = Date.now();
    }
    if (total >= expected && pending === 0) break;
    if (Date.now() > deadline) break;
    // Nothing moved for a minute: messages were lost (wrangler dev reloads on a file change and
    // drops its in-memory queues) or a consumer is stuck; report what finished.
    if (Date.now() - lastProgressAt > STALL_MS) {
      stalled = true;
      break;
    }
    await sleep(3000);
  }
  // Rows never written count as pending too: they did not reach a terminal status.
  const missing = Math.max(0, expected - total);
  return { statuses, finished: pending === 0 && missing === 0, stalled, pending: pending + missing };
}

async function drain(db, base, headers, runId, count, timeoutSeconds) {
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
  const waited = await waitForTerminal(db, where, count, timeoutSeconds, 'drain');
  const span = spanOf(
    await db.query(
      `SELECT min(created_at) AS first, max(updated_at) AS last, count(*) AS n FROM deliveries WHERE ${where}`,
    ),
  );
  const latencies = (
    await db.query(`SELECT sent_at - created_at AS ms FROM deliveries WHERE ${where} AND status = 'sent'`)
  )
    .map((r) => r.ms)
    .sort((a, b) => a - b);
  const seconds = span.n > 0 ? (span.last - span.first) / 1000 : null;
  return {
    notifications: count,
    contacts: users.length,
    acceptSeconds,
    acceptRate: count / acceptSeconds,
    seconds,
    deliveriesPerSecond: seconds ? span.n / seconds : null,
    ...waited,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/** PUTs a contact for each user (16 in flight), saying how far it got every 10,000. */
async function createContacts(base, headers, users, contactOf) {
  let done = 0;
  await pool(users, 16, async (userId) => {
    const res = await fetchIdempotent(`${base}/v1/contacts/${userId}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(contactOf(userId)),
    });
    if (!res.ok) throw new Error(`PUT contact: ${res.status} ${await res.text()}`);
    done += 1;
    if (done % 10_000 === 0) console.log(`  topic: ${done}/${users.length} contacts`);
  });
}

/**
 * The expansion as the stack logged it: one `topics.page_expanded` line per page done, a
 * `topics.page_failed` line per page retried; and when the last page was done.
 */
function expansionOf(logPath, notificationId) {
  const lines = readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((line) => line.includes(notificationId));
  const events = lines.flatMap((line) => {
    const start = line.indexOf('{');
    try {
      return start >= 0 ? [JSON.parse(line.slice(start))] : [];
    } catch {
      return [];
    }
  });
  const pages = events.filter((e) => e.event === 'topics.page_expanded');
  const last = pages.map((e) => Date.parse(e.at)).filter(Number.isFinite);
  return {
    pages: pages.length,
    failedPages: events.filter((e) => e.event === 'topics.page_failed').length,
    lastPageAt: last.length > 0 ? Math.max(...last) : null,
  };
}

/**
 * Topic fan-out: a topic with `count` subscribers (subscribed 1,000 a call, 4 calls in flight), then
 * ONE notification to it, polled in the local D1 until every subscriber's delivery is terminal.
 */
async function topicFanOut(db, base, headers, runId, options, logPath) {
  const count = options.topic;
  const spec = TOPIC_CHANNELS[options.topicChannel];
  const width = String(count - 1).length;
  const users = Array.from({ length: count }, (_, i) => `bench_${runId}_t${String(i).padStart(width, '0')}`);
  let contactSeconds = null;
  if (spec.contact) {
    const started = Date.now();
    await createContacts(base, headers, users, spec.contact);
    contactSeconds = (Date.now() - started) / 1000;
  }

  const topic = `bench_${runId}`;
  const put = await fetchIdempotent(`${base}/v1/topics/${topic}`, {
    method: 'PUT',
    headers,
    body: JSON.stringify({ name: 'bench fan-out' }),
  });
  if (put.status !== 201) throw new Error(`PUT topic: ${put.status} ${await put.text()}`);
  const chunks = [];
  for (let i = 0; i < users.length; i += SUBSCRIBE_CHUNK) chunks.push(users.slice(i, i + SUBSCRIBE_CHUNK));
  const subscribeStarted = Date.now();
  await pool(chunks, 4, async (userIds) => {
    const res = await fetchIdempotent(`${base}/v1/topics/${topic}/subscribers`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ userIds }),
    });
    if (!res.ok) throw new Error(`POST subscribers: ${res.status} ${await res.text()}`);
  });
  const subscribeSeconds = (Date.now() - subscribeStarted) / 1000;
  const described = await (await fetch(`${base}/v1/topics/${topic}`, { headers })).json();
  if (described.subscribers !== count) {
    throw new Error(`the topic has ${described.subscribers} subscribers, not ${count}`);
  }
  // The expansion reads each database's subscribers page by page: one page more than its full pages.
  const perDatabase = (
    await db.query(
      `SELECT count(*) AS n FROM topic_subscriptions WHERE topic_key = '${topic}' GROUP BY topic_key`,
    )
  ).map((r) => r.n);
  const expectedPages = perDatabase.reduce((sum, n) => sum + Math.floor(n / EXPANSION_PAGE) + 1, 0);
  console.log(
    `  topic: ${count} subscribers in ${subscribeSeconds.toFixed(1)} s (${perDatabase.join(' + ')})`,
  );

  // One request, not retried: without an id a repeat would be a second notification.
  const acceptStarted = Date.now();
  const res = await fetch(`${base}/v1/notifications`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      type: spec.type,
      recipients: [{ topic }],
      channels: [options.topicChannel],
      data: spec.data,
    }),
  });
  const acceptMs = Date.now() - acceptStarted;
  if (res.status !== 202) throw new Error(`POST notification: ${res.status} ${await res.text()}`);
  const accepted = await res.json();
  if (!accepted.topics?.includes(topic))
    throw new Error(`the answer names no topic: ${JSON.stringify(accepted)}`);

  // Every subscriber's delivery id is in the send's millisecond (its `ntf_` id's time): one key range.
  const prefix = `dlv_${accepted.id.slice(4, 14)}`;
  const where = `id >= '${prefix}' AND id < '${prefix}~' AND notification_id = '${accepted.id}'`;
  const waited = await waitForTerminal(db, where, count, options.topicTimeout, 'topic');
  const span = spanOf(
    await db.query(
      `SELECT min(created_at) AS first, max(updated_at) AS last, count(*) AS n FROM deliveries WHERE ${where}`,
    ),
  );
  const latencies = (
    await db.query(
      `SELECT updated_at - created_at AS ms FROM deliveries WHERE ${where} AND status NOT IN (${[...PENDING]
        .map((s) => `'${s}'`)
        .join(', ')})`,
    )
  )
    .map((r) => r.ms)
    .sort((a, b) => a - b);
  const expansion = expansionOf(logPath, accepted.id);
  const seconds = span.n > 0 ? (span.last - span.first) / 1000 : null;
  return {
    subscribers: count,
    channel: options.topicChannel,
    type: spec.type,
    contactSeconds,
    subscribeSeconds,
    subscribeRate: count / subscribeSeconds,
    acceptMs,
    directDeliveries: accepted.deliveries.length,
    seconds,
    deliveriesPerSecond: seconds ? span.n / seconds : null,
    expansionSeconds: expansion.lastPageAt && span.first ? (expansion.lastPageAt - span.first) / 1000 : null,
    pages: expansion.pages,
    failedPages: expansion.failedPages,
    expectedPages,
    databases: perDatabase.length,
    ...waited,
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
      `| statuses | ${statusText(drained.statuses)} |`,
      `| finished | ${finishedText(drained, options.drainTimeout)} |`,
    );
  }
  if (load.fanOut) lines.push('', ...topicSection(load.fanOut, options));
  return lines.join('\n');
}

const finishedText = (r, timeout) =>
  r.finished
    ? 'yes'
    : `**no**: ${r.pending} still pending, ${r.stalled ? 'nothing moved for 60 s' : `stopped after ${timeout} s`}`;

const statusText = (statuses) =>
  Object.entries(statuses)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');

/** The topic fan-out's subsection of the load section. */
function topicSection(t, options) {
  if (t.error) return ['### Topic fan-out', '', `**Failed** after ${n0(t.phaseSeconds)} s: ${t.error}`];
  const article = /^[aeiou]/.test(t.channel) ? 'an' : 'a';
  const needs =
    t.contactSeconds === null
      ? `the users have no contact (an in-app item goes to the user's Inbox object), type \`${t.type}\``
      : `each user has ${article} ${t.channel} contact, created first (${n0(t.subscribers)} \`PUT /v1/contacts\`, 16 in flight, ${n0(t.contactSeconds)} s, outside the figures), type \`${t.type}\`, the sandbox provider`;
  const pagesPerDatabase = t.pages / Math.max(1, t.databases);
  return [
    `### Topic fan-out: ${n0(t.subscribers)} subscribers, one notification (${t.channel})`,
    '',
    `A topic (\`PUT /v1/topics/{key}\`) and ${n0(t.subscribers)} subscribers (\`POST /v1/topics/{key}/subscribers\`, ${SUBSCRIBE_CHUNK.toLocaleString('en-US')} per call, 4 in flight); ${needs}. Then ONE \`POST /v1/notifications\` with \`recipients: [{ "topic": key }]\` and \`channels: ["${t.channel}"]\`: its 202 carries no delivery (${t.directDeliveries} here); the \`herald-topics\` queue expands it one page of ${EXPANSION_PAGE} subscribers of one database at a time (each page plans, enqueues and writes its rows, then enqueues that database's next page, so a database's pages run one after another), and the channel queue delivers them. Times from the deliveries' own \`created_at\` (the accept, for every subscriber's row) and \`updated_at\` in the local D1; pages from the stack's log. The whole phase, setup included, took ${n0(t.phaseSeconds)} s (1-minute load average at its start: ${t.loadAtStart.toFixed(2)}).`,
    '',
    `Locally one workerd runs the Worker and every consumer on the machine's shared cores: the pages wait for the channel batches running beside them, so the expansion, one page after another in each database, sets the pace. On the platform each consumer invocation runs on its own, and the topics queue takes batches of one page, so no page waits for a batch to fill.`,
    '',
    '| figure | value |',
    '| --- | ---: |',
    `| subscribers | ${n0(t.subscribers)} (over ${t.databases} databases) |`,
    `| subscribed in | ${n2(t.subscribeSeconds)} s (${n0(t.subscribeRate)} subscriptions/s) |`,
    `| accept latency (the one POST) | ${n0(t.acceptMs)} ms |`,
    `| **first accept to last delivery terminal** | **${n2(t.seconds)} s** |`,
    `| deliveries per second, end to end | ${n0(t.deliveriesPerSecond)} |`,
    `| accept to last page expanded | ${n2(t.expansionSeconds)} s |`,
    `| expansion pages | ${n0(t.pages)} (expected ${n0(t.expectedPages)}; ${t.failedPages} retried) |`,
    `| per page, in each database (pages run one after another) | ${n2(t.expansionSeconds === null ? null : t.expansionSeconds / pagesPerDatabase)} s |`,
    `| accept to terminal, p50 | ${n0(t.p50)} ms |`,
    `| accept to terminal, p99 | ${n0(t.p99)} ms |`,
    `| statuses | ${statusText(t.statuses)} |`,
    `| finished | ${finishedText(t, options.topicTimeout)} |`,
  ];
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
    const db = await localD1(app);
    let drained;
    if (options.drain > 0) {
      console.log(`bench: drain of ${options.drain} notifications`);
      try {
        drained = await drain(db, base, headers, runId, options.drain, options.drainTimeout);
      } catch (error) {
        // The load figures above stand on their own: keep them, say why the drain has none.
        drained = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    let fanOut;
    if (options.topic > 0) {
      console.log(`bench: topic fan-out to ${options.topic} subscribers (${options.topicChannel})`);
      const started = Date.now();
      const loadAtPhase = loadavg()[0];
      try {
        fanOut = await topicFanOut(db, base, headers, runId, options, logPath);
      } catch (error) {
        fanOut = { error: error instanceof Error ? error.message : String(error) };
      }
      fanOut.phaseSeconds = (Date.now() - started) / 1000;
      fanOut.loadAtStart = loadAtPhase;
    }
    load = { health, single, batch, drained, fanOut, reader: db.reader };
  } finally {
    await stopStack(child);
    cleanUp();
  }
  load.loadAtStart = loadAtStart;
  load.reloads = (readFileSync(logPath, 'utf8').match(/Reloading local server/g) ?? []).length;

  console.log(`bench: wrote ${writeSection('load', loadSection(options, load), options.results)}`);
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

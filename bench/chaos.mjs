// `npm run chaos`: notifications over every channel against the local stack (`npm start`'s
// wrangler dev) with every fault on: provider failures, throttling and timeouts, refused D1
// writes, failing template reads, Recipient objects losing their memory, and consumer crashes
// between a provider's answer and its record. Then the invariants: every delivery terminal, none
// lost, none sent twice beyond the injected crashes (a repeat the provider's idempotency key
// absorbs does not count). Writes its figures to the chaos section of bench/results.md.
//   node bench/chaos.mjs [--count 600] [--port 8798] [--timeout 900]
import '../scripts/lib/local-bin.mjs';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localD1, sumBy } from './lib/local-d1.mjs';
import { writeSection } from './lib/results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const count = arg('count', 600);
const port = arg('port', 8798);
const timeoutSeconds = arg('timeout', 900);
const base = `http://127.0.0.1:${port}`;
const key = 'local-admin-key';
const tag = `chaos-${Date.now().toString(36)}`;
// A phone area, exchange and APNs token prefix of this run's own (area codes 200-999, as E.164 allows).
const area = 200 + Math.floor(Math.random() * 800);
const exchange = Math.floor(Math.random() * 9_000_000);
const tokenPrefix = Array.from({ length: 56 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  PORT: String(port),
  CI: 'true',
};

const faults = {
  SANDBOX_FAIL_RATE: 0.1,
  SANDBOX_429_RATE: 0.05,
  SANDBOX_TIMEOUT_RATE: 0.05,
  SANDBOX_CRASH_RATE: 0.01,
  FAULT_D1_WRITE_RATE: 0.05,
  FAULT_R2_READ_RATE: 0.05,
  FAULT_EVICT_RATE: 0.1,
  RETRY_DELAY_SCALE: 0.005,
};
const server = spawn(
  'node',
  ['scripts/start.mjs', ...Object.entries(faults).flatMap(([k, v]) => ['--var', `${k}:${v}`])],
  { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
);
// The Worker logs each injected fault (`fault.injected`): the crashes bound the repeats allowed.
const injected = {};
// Warnings reach wrangler's stderr, the rest its stdout: both are read, stderr is passed on.
for (const stream of [server.stdout, server.stderr]) {
  let pending = '';
  stream.on('data', (chunk) => {
    if (stream === server.stderr) process.stderr.write(chunk);
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const fault = /"event":"fault\.injected".*?"fault":"([A-Za-z]+)"/.exec(line)?.[1];
      if (fault) injected[fault] = (injected[fault] ?? 0) + 1;
    }
  });
}
const stop = () => {
  try {
    process.kill(-server.pid, 'SIGTERM');
  } catch {}
};
process.on('exit', stop);
process.on('SIGINT', () => process.exit(130));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitForHealth() {
  for (let i = 0; i < 240; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    await sleep(500);
  }
  throw new Error('the local stack did not start');
}

// Every local database: deliveries and the outbox live in the shards, so one query reads them all.
const databases = await localD1(root);
const d1 = (sql) => databases.query(sql);

await waitForHealth();
console.log(`chaos: sending ${count} notifications (${count * 5} deliveries) tagged ${tag}`);
const started = Date.now();
let accepted = 0;
for (let i = 0; i < count; i += 100) {
  const notifications = [];
  for (let j = i; j < Math.min(count, i + 100); j++) {
    notifications.push({
      type: 'security_alert',
      source: tag,
      priority: 'high',
      recipients: [
        {
          // Fresh addresses each run: caps are durable, so a recipient of an earlier run within
          // the hour (5 SMS an hour, 10 pushes an hour) would rightly be deferred.
          email: `c${j}.${tag}@example.com`,
          phone: `+1${area}${String(exchange + j)
            .padStart(7, '0')
            .slice(-7)}`,
          // A token per recipient: a shared one would (rightly) hit the push rate limit.
          deviceTokens: [
            { deviceToken: `${tokenPrefix}${j.toString(16).padStart(8, '0')}`, platform: 'apns' },
          ],
          externalChannels: [
            { platform: 'slack', url: `https://hooks.slack.com/services/T0/B0/${tag}${j}` },
            { platform: 'webhook', url: `https://example.com/hooks/${tag}/${j}` },
          ],
        },
      ],
    });
  }
  const res = await fetch(`${base}/v1/notifications/batch`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ notifications }),
  });
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  const body = await res.json();
  accepted += body.results.reduce((n, r) => n + r.deliveries.length, 0);
}

const scope = `notification_id IN (SELECT notification_id FROM deliveries WHERE source = '${tag}')`;
const TERMINAL = ['sent', 'failed', 'rate_limited', 'duplicate', 'skipped', 'suppressed', 'unknown'];
const terminal = `(${TERMINAL.map((s) => `'${s}'`).join(',')})`;
for (;;) {
  const open = (
    await d1(`SELECT count(*) AS open FROM deliveries WHERE ${scope} AND status NOT IN ${terminal}`)
  ).reduce((n, row) => n + Number(row.open), 0);
  process.stdout.write(
    `\r  waiting: ${open} deliveries not terminal after ${Math.round((Date.now() - started) / 1000)} s   `,
  );
  if (open === 0 || Date.now() - started > timeoutSeconds * 1000) break;
  await sleep(5_000);
}
console.log('');

const byStatus = sumBy(
  await d1(`SELECT status, count(*) AS n FROM deliveries WHERE ${scope} GROUP BY status`),
  'status',
);
const stored = Object.values(byStatus).reduce((a, b) => a + b, 0);
const terminalCount = TERMINAL.reduce((n, s) => n + (byStatus[s] ?? 0), 0);
// A repeat a real provider drops (same idempotency key) is kept in the outbox, marked: not a second message.
const twice = Object.entries(
  sumBy(
    await d1(
      `SELECT channel, count(*) AS deliveries FROM (SELECT delivery_id, channel FROM outbox WHERE ${scope} AND idempotent_repeat = 0 GROUP BY delivery_id HAVING count(*) > 1) GROUP BY channel`,
    ),
    'channel',
    'deliveries',
  ),
).map(([channel, deliveries]) => ({ channel, deliveries }));
const absorbed = (
  await d1(`SELECT count(*) AS n FROM outbox WHERE ${scope} AND idempotent_repeat = 1`)
).reduce((n, row) => n + Number(row.n), 0);
const sentTwice = twice.reduce((n, t) => n + t.deliveries, 0);
const crashes = injected.InjectedCrash ?? 0;
const report = {
  accepted,
  terminal: terminalCount,
  lost: accepted - stored,
  notTerminal: stored - terminalCount,
  sentTwice,
  sentTwiceByChannel: Object.fromEntries(twice.map((t) => [t.channel, t.deliveries])),
  injectedCrashes: crashes,
  repeatsAbsorbedByIdempotencyKeys: absorbed,
  unknown: byStatus.unknown ?? 0,
  byStatus,
  faultsInjected: injected,
  seconds: Math.round((Date.now() - started) / 1000),
};
console.log(JSON.stringify(report, null, 2));
const ok = report.lost === 0 && report.notTerminal === 0 && sentTwice <= crashes;
writeSection('chaos', chaosMarkdown(report, ok));
stop();
process.exit(ok ? 0 : 1);

function chaosMarkdown(r, passed) {
  const rates = Object.entries(faults)
    .map(([k, v]) => `\`${k}=${v}\``)
    .join(', ');
  return [
    '## Chaos run (`npm run chaos`)',
    '',
    `${count} notifications to 5 channels each against \`wrangler dev\` with ${rates}.`,
    '',
    '| accepted | terminal | lost | not terminal | sent twice | injected crashes | repeats absorbed by idempotency keys | unknown | seconds | verdict |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    `| ${r.accepted} | ${r.terminal} | ${r.lost} | ${r.notTerminal} | ${r.sentTwice} | ${r.injectedCrashes} | ${r.repeatsAbsorbedByIdempotencyKeys} | ${r.unknown} | ${r.seconds} | ${passed ? 'passed' : '**failed**'} |`,
    '',
    `Statuses: ${Object.entries(r.byStatus)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}. Faults injected: ${
      Object.entries(r.faultsInjected)
        .map(([f, n]) => `${f} ${n}`)
        .join(', ') || 'none logged'
    }. Passing means lost 0, not terminal 0, and sent twice at most the injected crashes (a crash between a provider's answer and its record may repeat that one delivery).`,
  ].join('\n');
}

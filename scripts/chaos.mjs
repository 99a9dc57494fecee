// `npm run chaos`: thousands of notifications over every channel against the local stack
// (`npm start`'s wrangler dev) with 30% transient failures, 5% throttling and 2% consumer crashes,
// then the invariants: every delivery terminal, none lost, no delivery sent twice except in the
// crash window (and never where the provider takes an idempotency key).
//   node scripts/chaos.mjs [--count 2000] [--port 8798] [--timeout 900]
import './lib/local-bin.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const count = arg('count', 2000);
const port = arg('port', 8798);
const timeoutSeconds = arg('timeout', 900);
const base = `http://127.0.0.1:${port}`;
const key = 'local-admin-key';
const tag = `chaos-${Date.now().toString(36)}`;
const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  PORT: String(port),
  CI: 'true',
};

const faults = [
  'SANDBOX_FAIL_RATE:0.3',
  'SANDBOX_429_RATE:0.05',
  'SANDBOX_CRASH_RATE:0.02',
  'RETRY_DELAY_SCALE:0.005',
];
const server = spawn('node', ['scripts/start.mjs', ...faults.flatMap((v) => ['--var', v])], {
  env,
  detached: true,
  stdio: ['ignore', 'ignore', 'inherit'],
});
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

function d1(sql) {
  const out = spawnSync('wrangler', ['d1', 'execute', 'DB', '--local', '--json', '--command', sql], {
    env,
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`d1 execute failed: ${out.stderr}`);
  return JSON.parse(out.stdout)[0].results;
}

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
          email: `c${j}@example.com`,
          phone: `+1415${String(1_000_000 + j).slice(-7)}`,
          // A token per recipient: a shared one would (rightly) hit the push rate limit.
          deviceTokens: [{ deviceToken: j.toString(16).padStart(64, '0'), platform: 'apns' }],
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
const terminal = "('sent','failed','rate_limited','duplicate','skipped','suppressed')";
for (;;) {
  const [{ open }] = d1(
    `SELECT count(*) AS open FROM deliveries WHERE ${scope} AND status NOT IN ${terminal}`,
  );
  process.stdout.write(
    `\r  waiting: ${open} deliveries not terminal after ${Math.round((Date.now() - started) / 1000)} s   `,
  );
  if (open === 0 || Date.now() - started > timeoutSeconds * 1000) break;
  await sleep(3000);
}
console.log('');

const byStatus = Object.fromEntries(
  d1(`SELECT status, count(*) AS n FROM deliveries WHERE ${scope} GROUP BY status`).map((r) => [
    r.status,
    r.n,
  ]),
);
const stored = Object.values(byStatus).reduce((a, b) => a + b, 0);
const terminalCount = ['sent', 'failed', 'rate_limited', 'duplicate', 'skipped', 'suppressed'].reduce(
  (n, s) => n + (byStatus[s] ?? 0),
  0,
);
const twice = d1(
  `SELECT channel, count(*) AS deliveries FROM (SELECT delivery_id, channel FROM outbox WHERE ${scope} GROUP BY delivery_id HAVING count(*) > 1) GROUP BY channel`,
);
const report = {
  accepted,
  sent: byStatus.sent ?? 0,
  failed: byStatus.failed ?? 0,
  rate_limited: byStatus.rate_limited ?? 0,
  duplicate: byStatus.duplicate ?? 0,
  lost: accepted - stored,
  'not terminal': stored - terminalCount,
  'sent-twice': Object.fromEntries(twice.map((t) => [t.channel, t.deliveries])),
  seconds: Math.round((Date.now() - started) / 1000),
};
console.log(JSON.stringify(report, null, 2));
const idempotentTwice = twice.filter((t) => ['email', 'push', 'webhook'].includes(t.channel)).length;
stop();
process.exit(report.lost === 0 && report['not terminal'] === 0 && idempotentTwice === 0 ? 0 : 1);

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { escapeLabelValue, toPrometheus } from '../../src/api/routes/metrics';
import type { Channel } from '../../src/domain/channels';
import { bucketOfKey } from '../../src/domain/shards';
import type { DeliveryStatus } from '../../src/domain/status';
import { idSequence, newId } from '../../src/lib/ids';
import { createServices } from '../../src/services/container';
import {
  checkBacklog,
  collectMetrics,
  type Metrics,
  recordStatusChange,
} from '../../src/services/operations/metrics';
import { api, json, testEnv } from '../helpers/api';
import { dbOfDelivery, dbOfUser, everyDatabase, userInShard } from '../helpers/shards';

const MIN = 60_000;
const now = Date.now();
/** A type no other test uses, so `?type=` isolates this file's rows from the shared database. */
const TYPE = `metrics_${now.toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
const inserted: { deliveries: string[]; deadLetters: string[] } = {
  deliveries: [],
  deadLetters: [],
};

interface Row {
  channel: Channel;
  status: DeliveryStatus;
  /** Statuses the delivery went through before its current one. */
  before?: DeliveryStatus[];
  sentAfterMs?: number;
}

/** A recipient in each shard: this file's notifications are spread over both databases. */
const USERS = [userInShard(0, 'metrics'), userInShard(1, 'metrics')] as const;

/**
 * Inserts one notification of TYPE created at `createdAt` with these deliveries (SQL, for
 * control), to the user of shard `shard` (0 or 1): in that user's database, ids naming its bucket.
 */
async function seed(
  createdAt: number,
  rows: Row[],
  sendAt: number | null = null,
  shard: 0 | 1 = 0,
): Promise<string[]> {
  const userId = USERS[shard];
  const db = dbOfUser(userId);
  const ids = idSequence(newId('dlv', createdAt, bucketOfKey(userId)), rows.length);
  const notificationId = `ntf_${ids[0]?.slice(4)}`;
  const statements = rows.map((row, i) => {
    const at = new Date(createdAt).toISOString();
    const history = [...(row.before ?? []), row.status].map((status) => ({ status, at }));
    // The first row is the notification's head: it also carries the data and the request hash.
    return db
      .prepare(
        `INSERT INTO deliveries (id, notification_id, user_id, channel, status, history, created_at, updated_at, sent_at,
         type, priority, send_at, data, request_hash, head_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'normal', ?, ?, ?, ?)`,
      )
      .bind(
        ids[i],
        notificationId,
        userId,
        row.channel,
        row.status,
        JSON.stringify(history),
        createdAt,
        createdAt,
        row.sentAfterMs === undefined ? null : createdAt + row.sentAfterMs,
        TYPE,
        sendAt,
        i === 0 ? '{}' : null,
        i === 0 ? 'x' : null,
        ids[0],
      );
  });
  await db.batch(statements);
  inserted.deliveries.push(...ids);
  return ids;
}

async function deadLetter(deliveryId: string, channel: Channel, createdAt: number, replayed = false) {
  await dbOfDelivery(deliveryId)
    .prepare(
      'INSERT INTO dead_letters (delivery_id, channel, reason, created_at, replayed_at) VALUES (?, ?, ?, ?, ?)',
    )
    .bind(deliveryId, channel, 'test', createdAt, replayed ? createdAt + 1 : null)
    .run();
  inserted.deadLetters.push(deliveryId);
}

const SENT: DeliveryStatus[] = ['created', 'queued'];

beforeAll(async () => {
  // In the last hour: three emails sent 2, 4 and 6 s after creation (one opened, one clicked after
  // opening), a failed SMS that reached the dead-letter queue, a skipped webhook.
  const [, , , failedSms] = await seed(now - 10 * MIN, [
    { channel: 'email', status: 'sent', before: SENT, sentAfterMs: 2000 },
    { channel: 'email', status: 'opened', before: [...SENT, 'sent'], sentAfterMs: 4000 },
    { channel: 'email', status: 'clicked', before: [...SENT, 'sent', 'opened'], sentAfterMs: 6000 },
    { channel: 'sms', status: 'failed', before: SENT },
    { channel: 'webhook', status: 'skipped' },
  ]);
  // A push clicked, then the recipient complained: it still counts as clicked. (In the other
  // shard: what follows alternates, so every number below adds up rows of both databases.)
  await seed(
    now - 8 * MIN,
    [{ channel: 'push', status: 'complained', before: [...SENT, 'sent', 'clicked'], sentAfterMs: 1000 }],
    null,
    1,
  );
  // Waiting: a push queued 20 minutes ago (the oldest due), a chat deferred 30 minutes ago (waits
  // on purpose: backlog, not age), and a scheduled email not due for an hour.
  await seed(now - 20 * MIN, [{ channel: 'push', status: 'queued', before: ['created'] }], null, 1);
  await seed(now - 30 * MIN, [{ channel: 'chat', status: 'deferred', before: SENT }]);
  await seed(now - 6 * MIN, [{ channel: 'email', status: 'queued', before: ['created'] }], now + 60 * MIN, 1);
  // Two hours ago: outside the 1h window, inside 6h.
  const [oldFailed] = await seed(
    now - 120 * MIN,
    [
      { channel: 'email', status: 'failed', before: SENT },
      { channel: 'email', status: 'sent', before: SENT, sentAfterMs: 10_000 },
    ],
    null,
    1,
  );
  if (!failedSms || !oldFailed) throw new Error('seed failed');
  await deadLetter(failedSms, 'sms', now - 9 * MIN);
  await deadLetter(oldFailed, 'email', now - 119 * MIN, true);
});

afterAll(async () => {
  const del = (table: string, column: string, ids: string[]) =>
    Promise.all(
      ids.map((id) => dbOfDelivery(id).prepare(`DELETE FROM ${table} WHERE ${column} = ?`).bind(id).run()),
    );
  await del('dead_letters', 'delivery_id', inserted.deadLetters);
  await del('deliveries', 'id', inserted.deliveries);
});

async function getMetrics(query: string): Promise<Metrics> {
  const res = await api('GET', `/v1/metrics?${query}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('Cache-Control')).toBe('no-store');
  return json<Metrics>(res);
}

describe('GET /v1/metrics', () => {
  it('counts exactly the deliveries created in the window, per channel, type and status', async () => {
    const m = await getMetrics(`type=${TYPE}`);
    expect(m.window).toBe('1h');
    expect(m.windowSeconds).toBe(3600);
    expect(m.type).toBe(TYPE);
    expect(m.acceptedInWindow).toBe(5);
    expect(m.deliveries).toEqual([
      { channel: 'chat', type: TYPE, status: 'deferred', count: 1 },
      { channel: 'email', type: TYPE, status: 'clicked', count: 1 },
      { channel: 'email', type: TYPE, status: 'opened', count: 1 },
      { channel: 'email', type: TYPE, status: 'queued', count: 1 },
      { channel: 'email', type: TYPE, status: 'sent', count: 1 },
      { channel: 'push', type: TYPE, status: 'complained', count: 1 },
      { channel: 'push', type: TYPE, status: 'queued', count: 1 },
      { channel: 'sms', type: TYPE, status: 'failed', count: 1 },
      { channel: 'webhook', type: TYPE, status: 'skipped', count: 1 },
    ]);
    expect(m.channels.email.byStatus).toEqual({ sent: 1, opened: 1, clicked: 1, queued: 1 });
    expect(m.types[TYPE]).toEqual({
      total: 9,
      byStatus: {
        deferred: 1,
        clicked: 1,
        opened: 1,
        queued: 2,
        sent: 1,
        complained: 1,
        failed: 1,
        skipped: 1,
      },
    });
    expect(Object.keys(m.types)).toEqual([TYPE]);
  });

  it('reads the funnel and the rates from the history, not only the current status', async () => {
    const m = await getMetrics(`type=${TYPE}`);
    // A later stage implies the earlier ones: opened and clicked deliveries were delivered.
    expect(m.funnel).toEqual({ created: 9, queued: 8, sent: 4, delivered: 3, opened: 3, clicked: 2 });
    expect(m.channels.email.funnel).toEqual({
      created: 4,
      queued: 4,
      sent: 3,
      delivered: 2,
      opened: 2,
      clicked: 1,
    });
    // Email: opened-or-clicked / sent and clicked / sent.
    expect(m.channels.email.openRate).toBeCloseTo(2 / 3, 12);
    expect(m.channels.email.clickRate).toBeCloseTo(1 / 3, 12);
    // Other channels have no open rate; the push click counts although it later complained.
    expect(m.channels.push.openRate).toBeNull();
    expect(m.channels.push.clickRate).toBe(1);
    // Nothing sent: no rate rather than a division by zero.
    expect(m.channels.sms.clickRate).toBeNull();
    expect(m.channels.webhook.clickRate).toBeNull();
  });

  it('reports the backlog now, and the age of the oldest due delivery', async () => {
    const m = await getMetrics(`type=${TYPE}`);
    expect(m.queuedNow).toBe(3);
    expect(m.backlog.total).toBe(3);
    expect(m.backlog.byStatus).toEqual({ created: 0, queued: 2, deferred: 1 });
    expect(m.backlog.byChannel).toEqual({ email: 1, sms: 0, push: 1, chat: 1, webhook: 0, inapp: 0 });
    // The queued push (20 min), not the deferred chat (30 min) nor the scheduled email.
    expect(m.backlog.oldestQueuedSeconds).toBeGreaterThanOrEqual(1200);
    expect(m.backlog.oldestQueuedSeconds).toBeLessThan(1260);
  });

  it('counts dead letters not replayed, and nearest-rank latency percentiles of what was sent', async () => {
    const m = await getMetrics(`type=${TYPE}`);
    expect(m.deadLetters).toEqual({
      total: 1,
      byChannel: { email: 0, sms: 1, push: 0, chat: 0, webhook: 0, inapp: 0 },
    });
    // Sent in the window after 1, 2, 4 and 6 s: p50 = rank 2, p95 = rank 4.
    expect(m.latency).toEqual({ count: 4, sumSeconds: 13, p50Seconds: 2, p95Seconds: 6 });
  });

  it('a wider window takes in the older deliveries', async () => {
    const m = await getMetrics(`type=${TYPE}&window=6h`);
    expect(m.acceptedInWindow).toBe(6);
    expect(m.channels.email.byStatus).toEqual({ sent: 2, opened: 1, clicked: 1, queued: 1, failed: 1 });
    expect(m.latency.count).toBe(5);
    expect(m.latency.p95Seconds).toBe(10);
    // The backlog is "now", whatever the window.
    expect(m.queuedNow).toBe(3);
  });

  it('a 5 minute window holds nothing of this type but the backlog', async () => {
    const m = await getMetrics(`type=${TYPE}&window=5m`);
    expect(m.deliveries).toEqual([]);
    expect(m.acceptedInWindow).toBe(0);
    expect(m.latency).toEqual({ count: 0, sumSeconds: 0, p50Seconds: null, p95Seconds: null });
    expect(m.queuedNow).toBe(3);
  });

  it('refuses an unknown window naming the field, and needs the key', async () => {
    const res = await api('GET', '/v1/metrics?window=2h');
    expect(res.status).toBe(422);
    const body = await json<{ error: { message: string } }>(res);
    expect(body.error.message).toMatch(/^query\.window/);
    expect((await api('GET', '/v1/metrics', undefined, { key: null })).status).toBe(401);
  });

  it('appears in the OpenAPI document: one GET each, the same query, JSON and text answers', async () => {
    const doc = await json<{ paths: Record<string, Record<string, OpenApiOperation>> }>(
      await api('GET', '/openapi.json'),
    );
    const json200 = { 'application/json': { schema: { $ref: '#/components/schemas/Metrics' } } };
    const text200 = { 'text/plain': { schema: { type: 'string' } } };
    for (const [path, content] of [
      ['/v1/metrics', json200],
      ['/metrics', text200],
    ] as const) {
      const operations = doc.paths[path] ?? {};
      expect(Object.keys(operations), path).toEqual(['get']);
      const get = operations.get;
      expect(get?.tags, path).toEqual(['operations']);
      expect(get?.security, path).toEqual([{ bearerAuth: [] }]);
      expect(
        get?.parameters.map((p) => [p.in, p.name, p.required]),
        path,
      ).toEqual([
        ['query', 'window', false],
        ['query', 'type', false],
      ]);
      expect(get?.parameters[0]?.schema, path).toMatchObject({
        enum: ['5m', '15m', '1h', '6h', '24h', '7d'],
        default: '1h',
      });
      // The key errors every keyed route declares (KEY_ERRORS), and the query's validation.
      expect(Object.keys(get?.responses ?? {}), path).toEqual(['200', '401', '403', '422', '429']);
      expect(get?.responses['200']?.content, path).toEqual(content);
    }
  });
});

interface OpenApiOperation {
  tags: string[];
  security: Record<string, string[]>[];
  parameters: { in: string; name: string; required: boolean; schema: Record<string, unknown> }[];
  responses: Record<string, { content?: Record<string, unknown> }>;
}

// --- an independent parser for the Prometheus text format (version 0.0.4) ---

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE_LINE = new RegExp(
  `^(${METRIC_NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|NaN|\\+Inf|-Inf))$`,
);
const HELP_LINE = new RegExp(`^# HELP (${METRIC_NAME}) .+$`);
const TYPE_LINE = new RegExp(`^# TYPE (${METRIC_NAME}) (counter|gauge|summary|histogram|untyped)$`);

function unescapeLabel(value: string): string {
  return value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Parses strictly: every line must be HELP, TYPE or a sample of the family just declared. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  expect(text.endsWith('\n')).toBe(true);
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  let family: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = HELP_LINE.exec(line);
    if (help) {
      family = help[1];
      expect(types.has(family ?? '')).toBe(false);
      continue;
    }
    const type = TYPE_LINE.exec(line);
    if (type) {
      expect(type[1]).toBe(family);
      types.set(type[1] ?? '', type[2] ?? '');
      continue;
    }
    const sample = SAMPLE_LINE.exec(line);
    if (!sample) throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`);
    const name = sample[1] ?? '';
    const base = types.get(family ?? '') === 'summary' ? name.replace(/_(sum|count)$/, '') : name;
    expect(base).toBe(family);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1] ?? ''] = unescapeLabel(m[2] ?? '');
    }
    samples.push({ name, labels, value: Number(sample[3]) });
  }
  return { samples, types };
}

function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

describe('GET /metrics (Prometheus)', () => {
  it('needs the admin key', async () => {
    expect((await api('GET', '/metrics', undefined, { key: null })).status).toBe(401);
    expect((await api('GET', '/metrics', undefined, { key: 'wrong' })).status).toBe(401);
  });

  it('is valid text exposition whose numbers match the deliveries created here', async () => {
    const res = await api('GET', `/metrics?type=${TYPE}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const { samples, types } = parseExposition(await res.text());

    expect(types.get('herald_deliveries')).toBe('gauge');
    expect(types.get('herald_send_latency_seconds')).toBe('summary');
    const deliveries = samples.filter((s) => s.name === 'herald_deliveries');
    expect(deliveries).toHaveLength(9);
    expect(sampleValue(samples, 'herald_deliveries', { channel: 'email', type: TYPE, status: 'sent' })).toBe(
      1,
    );
    expect(sampleValue(samples, 'herald_deliveries', { channel: 'sms', type: TYPE, status: 'failed' })).toBe(
      1,
    );
    expect(deliveries.reduce((sum, s) => sum + s.value, 0)).toBe(9);
    expect(sampleValue(samples, 'herald_accepted_notifications')).toBe(5);
    expect(sampleValue(samples, 'herald_queue_backlog', { channel: 'push' })).toBe(1);
    expect(sampleValue(samples, 'herald_queue_backlog', { channel: 'sms' })).toBe(0);
    expect(sampleValue(samples, 'herald_oldest_queued_seconds')).toBeGreaterThanOrEqual(1200);
    expect(sampleValue(samples, 'herald_dead_letters', { channel: 'sms' })).toBe(1);
    expect(sampleValue(samples, 'herald_send_latency_seconds', { quantile: '0.5' })).toBe(2);
    expect(sampleValue(samples, 'herald_send_latency_seconds', { quantile: '0.95' })).toBe(6);
    expect(sampleValue(samples, 'herald_send_latency_seconds_count')).toBe(4);
    expect(sampleValue(samples, 'herald_send_latency_seconds_sum')).toBe(13);
    expect(sampleValue(samples, 'herald_open_rate', { channel: 'email' })).toBeCloseTo(2 / 3, 12);
    expect(sampleValue(samples, 'herald_open_rate', { channel: 'push' })).toBeUndefined();
    expect(sampleValue(samples, 'herald_funnel', { channel: 'email', stage: 'opened' })).toBe(2);
  });

  it('escapes label values', async () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const metrics = await collectMetrics(createServices(testEnv), { window: '1h', type: TYPE });
    const hostile = 'we"ird\\type\nname';
    const text = toPrometheus({
      ...metrics,
      deliveries: [{ channel: 'email', type: hostile, status: 'sent', count: 7 }],
    });
    const { samples } = parseExposition(text);
    expect(
      sampleValue(samples, 'herald_deliveries', { channel: 'email', type: hostile, status: 'sent' }),
    ).toBe(7);
  });
});

describe('recordStatusChange', () => {
  const change = {
    deliveryId: 'dlv_1',
    notificationId: 'ntf_1',
    channel: 'email' as const,
    type: 'payment_reminder',
    status: 'sent' as const,
    provider: 'resend',
  };

  it('writes one Analytics Engine data point when the binding exists', () => {
    const points: AnalyticsEngineDataPoint[] = [];
    const ANALYTICS = { writeDataPoint: (p?: AnalyticsEngineDataPoint) => p && points.push(p) };
    recordStatusChange({ ANALYTICS } as unknown as { ANALYTICS: AnalyticsEngineDataset }, change);
    expect(points).toEqual([
      {
        indexes: ['payment_reminder'],
        blobs: ['email', 'payment_reminder', 'sent', 'resend', 'dlv_1', 'ntf_1'],
        doubles: [1],
      },
    ]);
  });

  it('does nothing without the binding, and never throws', () => {
    expect(recordStatusChange({}, change)).toBeUndefined();
    const writeDataPoint = vi.fn(() => {
      throw new Error('analytics down');
    });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const env = { ANALYTICS: { writeDataPoint } } as unknown as { ANALYTICS: AnalyticsEngineDataset };
      expect(recordStatusChange(env, change)).toBeUndefined();
      expect(writeDataPoint).toHaveBeenCalledTimes(1);
      // The failure is logged as a warning naming the delivery, and goes no further.
      expect(warn.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
        {
          level: 'warn',
          event: 'analytics.write_failed',
          deliveryId: 'dlv_1',
          error: 'Error: analytics down',
          at: expect.any(String),
        },
      ]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('checkBacklog (minute cron)', () => {
  it('alerts when the oldest due delivery waited longer than BACKLOG_ALERT_SECONDS', async () => {
    // The push queued 20 minutes ago is older than any threshold below 1200 s.
    const services = createServices({ ...testEnv, BACKLOG_ALERT_SECONDS: '300' });
    const check = await checkBacklog(services, { scheduledTimeMs: Date.now() });
    expect(check?.oldestQueuedSeconds).toBeGreaterThanOrEqual(1200);
    expect(check?.alerts).toContain('backlog:oldest');
    const alert = await testEnv.DB.prepare("SELECT message FROM alerts WHERE key = 'backlog:oldest'").first<{
      message: string;
    }>();
    expect(alert?.message).toMatch(/oldest queued delivery has waited \d+s \(alert above 300s\)/);
  });

  it('stays quiet below the threshold', async () => {
    const services = createServices({ ...testEnv, BACKLOG_ALERT_SECONDS: String(10 * 365 * 86400) });
    const check = await checkBacklog(services, { scheduledTimeMs: Date.now() });
    expect(check?.alerts).not.toContain('backlog:oldest');
  });

  it('alerts on dead letters that arrived during the last minute, once', async () => {
    // A cron run in the future, so that this file's dead letter is the only one in its minute.
    const at = Date.now() + 365 * 86400_000;
    const [id] = await seed(Date.now(), [{ channel: 'webhook', status: 'failed', before: SENT }], null, 1);
    if (!id) throw new Error('seed failed');
    await deadLetter(id, 'webhook', at - 30_000);
    const services = createServices({ ...testEnv, BACKLOG_ALERT_SECONDS: String(10 * 365 * 86400) });
    const first = await checkBacklog(services, { scheduledTimeMs: at });
    expect(first?.newDeadLetters).toBe(1);
    expect(first?.alerts).toContain('dead-letters:new');
    // The next minute's run does not count it again.
    const next = await checkBacklog(services, { scheduledTimeMs: at + 60_000 });
    expect(next?.newDeadLetters).toBe(0);
    expect(next?.alerts).not.toContain('dead-letters:new');
    await dbOfDelivery(id).prepare('DELETE FROM dead_letters WHERE delivery_id = ?').bind(id).run();
  });

  it('never throws, so the cron goes on', async () => {
    // D1 down: every database, the home one and each shard.
    const broken = createServices({
      ...testEnv,
      ...everyDatabase(
        (db) =>
          ({
            batch: () => Promise.reject(new Error('D1 down')),
            prepare: db.prepare.bind(db),
          }) as unknown as D1Database,
      ),
    } as unknown as typeof testEnv);
    await expect(checkBacklog(broken)).resolves.toBeNull();
  });
});

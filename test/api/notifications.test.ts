import { describe, expect, it } from 'vitest';
import {
  APNS_TOKEN,
  api,
  FCM_TOKEN,
  json,
  newContact,
  SLACK_URL,
  seedEvent,
  uniqueUser,
} from '../helpers/api';
import { readDelivery } from '../helpers/deliveries';
import { type Accepted, envWithCapturedQueues, sendNotification } from '../helpers/queues';
import { countAll, homeDb } from '../helpers/shards';

interface ErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

const data = { amount: '42.00', currency: 'EUR', due_date: '2026-12-01' };
/** A security alert to one inline email address. */
const ALERT = { type: 'security_alert', recipients: [{ email: 'x@example.com' }] };

/** Producer key rows (the home database) and deliveries (every database, the home one included). */
async function rowCounts() {
  const keys = await homeDb().prepare('SELECT count(*) AS n FROM notification_keys').first<{ n: number }>();
  const home = await homeDb().prepare('SELECT count(*) AS n FROM deliveries').first<{ n: number }>();
  return { n: keys?.n ?? 0, d: (home?.n ?? 0) + (await countAll('SELECT count(*) AS n FROM deliveries')) };
}

describe('ingest: channel selection', () => {
  it('one delivery per channel that has both a template and an address', async () => {
    const captured = envWithCapturedQueues();
    const { queues } = captured;
    const userId = await newContact({
      email: 'ada@example.com',
      phone: '+14155550123',
      deviceTokens: [{ deviceToken: FCM_TOKEN, platform: 'fcm' }],
      externalChannels: [{ platform: 'slack', url: SLACK_URL }],
    });
    const body = await sendNotification(captured, { type: 'payment_reminder', recipients: [userId], data });
    expect(body.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['email', 'queued'],
      ['sms', 'queued'],
      ['push', 'queued'],
      ['chat', 'queued'],
    ]);
    // Each channel's queue got the ids, never personal data.
    expect(queues.email.ids()).toEqual([body.deliveries[0]?.id]);
    expect(queues.push.ids()).toEqual([body.deliveries[2]?.id]);
    expect(JSON.stringify(queues.email.sent)).not.toContain('ada@example.com');
    expect(queues.webhook.sent).toHaveLength(0);
  });

  it('the producer list is narrowed to channels with a template (payment_notification has no chat template)', async () => {
    const userId = await newContact({
      email: 'a@example.com',
      externalChannels: [{ platform: 'slack', url: SLACK_URL }],
    });
    const body = await sendNotification(envWithCapturedQueues(), {
      type: 'payment_notification',
      recipients: [userId],
      channels: ['email', 'chat'],
      data,
    });
    expect(body.deliveries.map((d) => d.channel)).toEqual(['email']);
  });

  it('one push delivery per device token', async () => {
    const userId = await newContact({
      deviceTokens: [
        { deviceToken: FCM_TOKEN, platform: 'fcm' },
        { deviceToken: APNS_TOKEN, platform: 'apns' },
      ],
    });
    const body = await sendNotification(envWithCapturedQueues(), {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['push'],
      data: { order_id: 'A1' },
    });
    expect(body.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['push', 'queued'],
      ['push', 'queued'],
    ]);
  });

  it('a named channel the recipient has no address for is skipped with a reason', async () => {
    const userId = await newContact({ email: 'a@example.com' });
    const body = await sendNotification(envWithCapturedQueues(), {
      type: 'payment_reminder',
      recipients: [userId],
      channels: ['email', 'sms'],
      data,
    });
    expect(body.deliveries).toEqual([
      expect.objectContaining({ channel: 'email', status: 'queued' }),
      expect.objectContaining({
        channel: 'sms',
        status: 'skipped',
        reason: 'no phone number for this recipient',
      }),
    ]);
  });

  it('an unknown recipient gets skipped deliveries, not an error', async () => {
    const captured = envWithCapturedQueues();
    const body = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [uniqueUser('ghost')],
    });
    expect(body.deliveries.map((d) => [d.channel, d.status, d.reason])).toEqual(
      ['email', 'sms', 'push', 'chat', 'webhook'].map((channel) => [channel, 'skipped', 'unknown recipient']),
    );
    expect(Object.values(captured.queues).map((q) => q.sent)).toEqual([[], [], [], [], [], []]);
  });

  it('inline recipients need no contact', async () => {
    const captured = envWithCapturedQueues();
    const body = await sendNotification(captured, ALERT);
    expect(body.deliveries).toEqual([
      expect.objectContaining({ channel: 'email', status: 'queued', userId: null }),
    ]);
    expect(captured.queues.email.ids()).toEqual([body.deliveries[0]?.id]);
  });

  it('inline fields override the stored contact for this notification', async () => {
    const userId = await newContact({ email: 'stored@example.com' });
    const body = await sendNotification(envWithCapturedQueues(), {
      type: 'security_alert',
      recipients: [{ userId, phone: '+14155550199' }],
    });
    expect(body.deliveries.map((d) => d.channel)).toEqual(['email', 'sms']);
  });

  it('a type without templates is a 422 naming type, and writes nothing', async () => {
    const before = await rowCounts();
    const res = await api('POST', '/v1/notifications', { type: 'no_such_type', recipients: ['u1'] });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.details?.[0]?.field).toBe('type');
    expect(await rowCounts()).toEqual(before);
  });

  it('a scheduled send within 12 hours is enqueued with delaySeconds', async () => {
    const captured = envWithCapturedQueues();
    const sendAt = new Date(Date.now() + 3600_000).toISOString();
    await sendNotification(captured, { ...ALERT, sendAt });
    const delay = captured.queues.email.sent[0]?.delaySeconds ?? 0;
    expect(delay).toBeGreaterThan(3590);
    expect(delay).toBeLessThanOrEqual(3600);
  });

  it('when the queue send fails the rows stay created and the API still answers', async () => {
    const captured = envWithCapturedQueues();
    captured.queues.email.fail = true;
    const body = await sendNotification(captured, ALERT);
    expect(body.deliveries[0]?.status).toBe('created');
    expect((await readDelivery(body.id)).status).toBe('created');
  });
});

describe('ingest: idempotency', () => {
  it('the same id and body returns the first answer and enqueues nothing', async () => {
    const captured = envWithCapturedQueues();
    const id = `evt-${uniqueUser()}`;
    const request = { id, ...ALERT };
    const first = await sendNotification(captured, request);
    const again = await api('POST', '/v1/notifications', { ...request }, { env: captured.env });
    expect(again.status).toBe(202);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    const second = await json<Accepted>(again);
    expect(second.id).toBe(id);
    expect(second.deliveries.map((d) => d.id)).toEqual(first.deliveries.map((d) => d.id));
    expect(captured.queues.email.sent).toHaveLength(1);
  });

  it('key order does not matter for the comparison', async () => {
    const captured = envWithCapturedQueues();
    const id = `evt-${uniqueUser()}`;
    const first = await sendNotification(captured, {
      id,
      type: 'security_alert',
      recipients: [{ email: 'x@example.com' }],
      data: { a: 1, b: 2 },
    });
    const again = await api(
      'POST',
      '/v1/notifications',
      { data: { b: 2, a: 1 }, recipients: [{ email: 'x@example.com' }], type: 'security_alert', id },
      { env: captured.env },
    );
    expect(again.status).toBe(202);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await json<Accepted>(again)).toEqual(first);
  });

  it('the same id with a different body is a 409 and writes nothing', async () => {
    const captured = envWithCapturedQueues();
    const id = `evt-${uniqueUser()}`;
    await sendNotification(captured, { id, ...ALERT });
    const before = await rowCounts();
    const res = await api(
      'POST',
      '/v1/notifications',
      { id, type: 'security_alert', recipients: [{ email: 'y@example.com' }] },
      { env: captured.env },
    );
    expect(res.status).toBe(409);
    expect((await json<ErrorBody>(res)).error.code).toBe('idempotency_conflict');
    expect(await rowCounts()).toEqual(before);
  });
});

describe('ingest: the seed EventBridge event', () => {
  it('detail-type payment_notification_sms is delivered by SMS', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'a@example.com', phone: '+14155550123' });
    const event = seedEvent(`eb-${uniqueUser()}`, { userId, ...data });
    const body = await sendNotification(captured, event);
    expect(body.id).toBe(event.id);
    expect(body.deliveries).toEqual([expect.objectContaining({ channel: 'sms', status: 'queued', userId })]);
    expect(captured.queues.sms.ids()).toEqual([body.deliveries[0]?.id]);
    const stored = await json<{ source: string; data: Record<string, unknown>; type: string }>(
      await api('GET', `/v1/notifications/${event.id}`),
    );
    expect(stored).toMatchObject({
      type: 'payment_notification',
      source: 'com.example.billing',
      data: { amount: '42.00' },
    });
  });

  it('a detail-type that is not <type>_<channel> is a 422 naming it', async () => {
    const res = await api('POST', '/v1/notifications', {
      id: 'eb-bad',
      source: 'x',
      'detail-type': ['payment_notification_fax'],
      detail: { userId: 'u1' },
    });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.details?.[0]?.field).toBe('detail-type[0]');
  });

  it('an event without detail.userId is a 422', async () => {
    const res = await api('POST', '/v1/notifications', {
      id: 'eb-x',
      source: 'x',
      'detail-type': 'payment_notification_sms',
      detail: {},
    });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.details?.[0]?.field).toBe('detail.userId');
  });
});

describe('ingest: validation', () => {
  const cases: [string, unknown, string][] = [
    ['missing type', { recipients: ['u1'] }, 'type'],
    ['type with spaces', { type: 'Payment Reminder', recipients: ['u1'] }, 'type'],
    ['no recipients', { type: 'security_alert', recipients: [] }, 'recipients'],
    [
      '101 recipients',
      { type: 'security_alert', recipients: Array.from({ length: 101 }, (_, i) => `u${i}`) },
      'recipients',
    ],
    ['bad channel', { type: 'security_alert', recipients: ['u1'], channels: ['fax'] }, 'channels[0]'],
    ['bad priority', { type: 'security_alert', recipients: ['u1'], priority: 'urgent' }, 'priority'],
    ['bad sendAt', { type: 'security_alert', recipients: ['u1'], sendAt: 'tomorrow' }, 'sendAt'],
    ['data not an object', { type: 'security_alert', recipients: ['u1'], data: [1, 2] }, 'data'],
    ['inline bad email', { type: 'security_alert', recipients: [{ email: 'nope' }] }, 'recipients[0].email'],
    ['inline empty recipient', { type: 'security_alert', recipients: [{}] }, 'recipients[0]'],
    ['unknown field', { type: 'security_alert', recipients: ['u1'], urgent: true }, '(body)'],
  ];
  for (const [name, body, field] of cases) {
    it(`${name} → 422 naming ${field}, nothing written`, async () => {
      const before = await rowCounts();
      const res = await api('POST', '/v1/notifications', body);
      expect(res.status).toBe(422);
      const err = await json<ErrorBody>(res);
      expect(err.error.code).toBe('validation_error');
      expect(err.error.details?.map((d) => d.field)).toEqual([field]);
      expect(await rowCounts()).toEqual(before);
    });
  }

  it('oversized bodies are 413', async () => {
    const res = await api('POST', '/v1/notifications', {
      type: 'security_alert',
      recipients: ['u1'],
      data: { blob: 'x'.repeat(120_000) },
    });
    expect(res.status).toBe(413);
    expect((await json<ErrorBody>(res)).error.code).toBe('payload_too_large');
  });
});

describe('batch and status', () => {
  it('batch accepts up to 100 and answers in order', async () => {
    const { env, queues } = envWithCapturedQueues();
    const notifications = Array.from({ length: 3 }, (_, i) => ({
      type: 'security_alert',
      recipients: [{ email: `u${i}@example.com` }],
    }));
    const res = await api('POST', '/v1/notifications/batch', { notifications }, { env });
    expect(res.status).toBe(202);
    const body = await json<{ results: Accepted[] }>(res);
    expect(body.results).toHaveLength(3);
    // Several deliveries of one channel travel in one queue message.
    expect(queues.email.sent).toHaveLength(1);
    expect(queues.email.sent[0]?.body.deliveryIds).toHaveLength(3);
  });

  it('a batch with one invalid notification is refused whole, naming it', async () => {
    const before = await rowCounts();
    const res = await api('POST', '/v1/notifications/batch', {
      notifications: [
        { type: 'security_alert', recipients: ['u1'] },
        { type: 'security_alert', recipients: [{ email: 'bad' }] },
      ],
    });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.details?.[0]?.field).toBe(
      'notifications[1].recipients[0].email',
    );
    expect(await rowCounts()).toEqual(before);
  });

  it('GET shows deliveries with their history; unknown id is 404', async () => {
    const accepted = await sendNotification(envWithCapturedQueues(), { ...ALERT, priority: 'critical' });
    const res = await api('GET', `/v1/notifications/${accepted.id}`);
    expect(res.status).toBe(200);
    const got = await json<{ priority: string; deliveries: { history: { status: string; at: string }[] }[] }>(
      res,
    );
    expect(got.priority).toBe('critical');
    expect(got.deliveries[0]?.history.map((h) => h.status)).toEqual(['created', 'queued']);
    expect((await api('GET', '/v1/notifications/ntf_missing')).status).toBe(404);
    // Shaped like a generated id, at the very top of the random space: still a plain 404.
    expect((await api('GET', '/v1/notifications/ntf_01m8gk5x0nzzzzzzzzzzzzzzzz')).status).toBe(404);
    expect((await api('GET', '/v1/notifications/ntf_zzzzzzzzzzzzzzzzzzzzzzzzzz')).status).toBe(404);
  });

  it('lists by userId, type, status and channel with a cursor', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'a@example.com', phone: '+14155550123' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await sendNotification(captured, { type: 'security_alert', recipients: [userId] })).id);
    }
    const page1 = await json<{ data: { id: string; createdAt: string }[]; nextCursor: string | null }>(
      await api('GET', `/v1/notifications?userId=${userId}&limit=2`),
    );
    expect(page1.data.map((n) => n.id)).toEqual([ids[2], ids[1]]);
    // The cursor names the last notification shown: its creation time and id, base64url (safe in a URL).
    const last = page1.data[1];
    expect(page1.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const standard = (page1.nextCursor ?? '').replace(/-/g, '+').replace(/_/g, '/');
    expect(atob(standard)).toBe(`${Date.parse(last?.createdAt ?? '')}|${ids[1]}`);
    const page2 = await json<{ data: { id: string }[]; nextCursor: string | null }>(
      await api('GET', `/v1/notifications?userId=${userId}&limit=2&cursor=${page1.nextCursor}`),
    );
    expect(page2.data.map((n) => n.id)).toEqual([ids[0]]);
    expect(page2.nextCursor).toBeNull();
    const bySms = await json<{ data: unknown[] }>(
      await api('GET', `/v1/notifications?userId=${userId}&channel=sms&status=queued&type=security_alert`),
    );
    expect(bySms.data).toHaveLength(3);
    const none = await json<{ data: unknown[] }>(
      await api('GET', `/v1/notifications?userId=${userId}&status=sent`),
    );
    expect(none.data).toHaveLength(0);
    expect((await api('GET', '/v1/notifications?status=bogus')).status).toBe(422);
    expect((await api('GET', '/v1/notifications?cursor=%%%')).status).toBe(422);
  });
});

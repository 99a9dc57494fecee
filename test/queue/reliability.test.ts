import { createExecutionContext, createScheduledController } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../src/index';
import { api, json, newContact } from '../helpers/api';
import { readDelivery } from '../helpers/deliveries';
import { fakeFetch } from '../helpers/fetch';
import {
  type CapturedEnv,
  consumeEnqueued,
  deadLetter,
  envWithCapturedQueues,
  resendSendgridEnv,
  sendNotification,
} from '../helpers/queues';
import { dbOfDelivery } from '../helpers/shards';

afterEach(() => vi.restoreAllMocks());

/** A security alert to one inline email address. */
const ALERT = { type: 'security_alert', recipients: [{ email: 'a@example.com' }] };

async function cron(env: CapturedEnv['env'], at = Date.now()) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: '* * * * *' }), env, ctx);
}

describe('provider switches', () => {
  it('a provider switched off is skipped without a deploy, and switched on again', async () => {
    const captured = resendSendgridEnv();
    const off = await api('PUT', '/v1/admin/providers/resend', { enabled: false }, { env: captured.env });
    expect(off.status).toBe(200);
    expect(await json(off)).toEqual({ name: 'resend', enabled: false });
    try {
      const accepted = await sendNotification(captured, ALERT);
      const calls = fakeFetch(() => new Response(null, { status: 202, headers: { 'X-Message-Id': 'sg-1' } }));
      await consumeEnqueued(captured, 'email');
      expect(calls.map((c) => new URL(c.url).host)).toEqual(['api.sendgrid.com']);
      expect(await readDelivery(accepted.id)).toMatchObject({ status: 'sent', provider: 'sendgrid' });

      const listed = await json<{
        data: {
          name: string;
          channel: string;
          enabled: boolean;
          listed: boolean;
          order: number | null;
          credentials: string;
        }[];
      }>(await api('GET', '/v1/admin/providers', undefined, { env: captured.env }));
      expect(listed.data.find((p) => p.name === 'resend')).toMatchObject({
        channel: 'email',
        enabled: false,
        listed: true,
        order: 1,
        credentials: 'ok',
      });
      expect(listed.data.find((p) => p.name === 'postmark')).toMatchObject({ listed: false, enabled: true });
    } finally {
      await api('PUT', '/v1/admin/providers/resend', { enabled: true }, { env: captured.env });
    }
  });

  it('the provider list names missing credentials', async () => {
    const captured = envWithCapturedQueues({ SMS_PROVIDERS: 'twilio' });
    const listed = await json<{ data: { name: string; credentials: string }[] }>(
      await api('GET', '/v1/admin/providers', undefined, { env: captured.env }),
    );
    expect(listed.data.find((p) => p.name === 'twilio')?.credentials).toMatch(
      /^missing: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN/,
    );
  });

  it('an unknown provider is 404 and a bad body 422', async () => {
    expect((await api('PUT', '/v1/admin/providers/carrier-pigeon', { enabled: false })).status).toBe(404);
    expect((await api('PUT', '/v1/admin/providers/resend', { enabled: 'no' })).status).toBe(422);
  });
});

describe('dead letters', () => {
  it('the DLQ consumer fails the delivery, lists it, alerts once, and replay re-enqueues it with fresh attempts', async () => {
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, ALERT);
    const id = accepted.deliveries[0]?.id ?? '';
    await dbOfDelivery(id)
      .prepare("UPDATE deliveries SET attempts = 8, reason = 'retry in 5s: resend: 503' WHERE id = ?")
      .bind(id)
      .run();
    await deadLetter(captured.env, 'email', [id]);
    expect(await readDelivery(accepted.id)).toMatchObject({
      status: 'failed',
      reason: 'dead-lettered: retry in 5s: resend: 503',
    });

    const listed = await json<{ data: { deliveryId: string; channel: string; reason: string }[] }>(
      await api('GET', '/v1/admin/dead-letters?channel=email&limit=1000'),
    );
    expect(listed.data.find((d) => d.deliveryId === id)).toMatchObject({ channel: 'email' });

    const replay = await api('POST', '/v1/admin/dead-letters/replay', { ids: [id] }, { env: captured.env });
    expect(replay.status).toBe(200);
    expect(await json(replay)).toEqual({ replayed: 1, ids: [id] });
    expect(captured.queues.email.ids()).toContain(id);
    const after = await readDelivery(accepted.id);
    expect(after).toMatchObject({ status: 'queued', attempts: 0 });
    expect(after.history.map((h) => h.status).slice(-3)).toEqual(['failed', 'created', 'queued']);

    // replayed once: a second replay finds nothing
    expect(
      await json(await api('POST', '/v1/admin/dead-letters/replay', { ids: [id] }, { env: captured.env })),
    ).toEqual({ replayed: 0, ids: [] });
  });

  it('replay needs ids or a channel', async () => {
    const res = await api('POST', '/v1/admin/dead-letters/replay', {});
    expect(res.status).toBe(422);
  });
});

describe('alerts', () => {
  it('a storm of the same alert is one digest message a minute', async () => {
    const captured = envWithCapturedQueues({
      ALERT_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/alerts',
    });
    const accepted = await sendNotification(captured, {
      type: 'security_alert',
      recipients: [{ email: 'a@example.com' }, { email: 'b@example.com' }],
    });
    for (const d of accepted.deliveries) await deadLetter(captured.env, 'email', [d.id]);
    const calls = fakeFetch(() => new Response('ok'));
    await cron(captured.env);
    const alertCalls = calls.filter((c) => c.url.startsWith('https://hooks.slack.com/services/T0/B0/alerts'));
    expect(alertCalls).toHaveLength(1);
    const text = (JSON.parse(String(alertCalls[0]?.init?.body)) as { text: string }).text;
    expect(text).toMatch(/email deliveries reached the dead-letter queue \(×\d+ since/);
    // The next minute's digest does not repeat what was already sent.
    await cron(captured.env);
    const later = calls.filter((c) => c.url.includes('/alerts')).slice(1);
    expect(later.map((c) => String(c.init?.body)).join('\n')).not.toContain('reached the dead-letter queue');
  });
});

describe('sweeper', () => {
  it('re-enqueues deliveries left created for over a minute, exactly once', async () => {
    const captured = envWithCapturedQueues();
    captured.queues.sms.fail = true;
    const userId = await newContact({ phone: '+14155550123' });
    const accepted = await sendNotification(captured, {
      type: 'payment_reminder',
      recipients: [userId],
      channels: ['sms'],
      data: {},
    });
    const id = accepted.deliveries[0]?.id ?? '';
    expect(accepted.deliveries[0]?.status).toBe('created');
    captured.queues.sms.fail = false;

    await cron(captured.env);
    expect(captured.queues.sms.ids()).not.toContain(id); // not a minute old yet

    await dbOfDelivery(id)
      .prepare('UPDATE deliveries SET updated_at = updated_at - 120000 WHERE id = ?')
      .bind(id)
      .run();
    const later = Date.now() + 120_000;
    vi.useFakeTimers({ now: later, toFake: ['Date'] });
    try {
      await cron(captured.env, later);
      await cron(captured.env, later);
    } finally {
      vi.useRealTimers();
    }
    expect(captured.queues.sms.ids().filter((x) => x === id)).toHaveLength(1);
    expect((await readDelivery(accepted.id)).history.at(-1)).toMatchObject({
      status: 'queued',
      reason: 're-enqueued by the sweeper',
    });
  });
});

describe('scheduled sends', () => {
  it('a send time beyond the queue delay limit hops until it is due, without counting as a retry', async () => {
    const captured = envWithCapturedQueues();
    const sendAt = new Date(Date.now() + 30 * 3600_000).toISOString();
    const accepted = await sendNotification(captured, { ...ALERT, sendAt });
    expect(captured.queues.email.sent[0]?.delaySeconds).toBe(43_200);
    const { result, messageIds } = await consumeEnqueued(captured, 'email');
    expect(result.explicitAcks).toEqual(messageIds);
    expect(captured.queues.email.sent[1]).toMatchObject({
      body: { deliveryIds: [accepted.deliveries[0]?.id], attempt: 0 },
    });
    expect(captured.queues.email.sent[1]?.delaySeconds).toBe(43_200);
    expect(await readDelivery(accepted.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });
});

describe('the recipient rules through the Recipient object', () => {
  /** Sends one SMS of `type` to the user and runs the consumer on it. */
  async function sendSms(
    captured: CapturedEnv,
    userId: string,
    extra: Record<string, unknown> = {},
    type = 'order_shipped',
  ) {
    const accepted = await sendNotification(captured, {
      type,
      recipients: [userId],
      channels: ['sms'],
      data: { order_id: 'A1' },
      ...extra,
    });
    const run = await consumeEnqueued(captured, 'sms', { index: -1 });
    return { accepted, run, delivery: await readDelivery(accepted.id) };
  }

  it('SMS: five an hour are sent, the sixth is deferred to when the window frees, a low one is dropped, a critical one is sent', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ phone: '+14155550123' });
    for (let i = 0; i < 5; i++) expect((await sendSms(captured, userId)).delivery.status).toBe('sent');
    const sixth = await sendSms(captured, userId);
    expect(sixth.delivery.status).toBe('deferred');
    expect(sixth.delivery.reason).toMatch(/^sms rate limit reached; next slot at /);
    expect(sixth.run.result.explicitAcks).toEqual(sixth.run.messageIds);
    const waiting = captured.queues.sms.sent.at(-1);
    expect(waiting?.body.deliveryIds).toEqual([sixth.accepted.deliveries[0]?.id]);
    expect(waiting?.delaySeconds).toBeGreaterThan(3500);
    expect(waiting?.delaySeconds).toBeLessThanOrEqual(3600);
    expect((await sendSms(captured, userId, { priority: 'low' })).delivery.status).toBe('rate_limited');
    expect((await sendSms(captured, userId, { priority: 'critical' })).delivery.status).toBe('sent');
  });

  it('a type override replaces the channel default (payment_reminder: 3 SMS a day)', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ phone: '+14155550123' });
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await sendSms(captured, userId, {}, 'payment_reminder')).delivery.status);
    }
    expect(statuses).toEqual(['sent', 'sent', 'sent', 'deferred']);
  });

  it('the same dedupe key for the same recipient and channel within the window is a duplicate', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'a@example.com' });
    const alert = { type: 'security_alert', recipients: [userId], dedupeKey: 'login-42' };
    const first = await sendNotification(captured, alert);
    const second = await sendNotification(captured, alert);
    await consumeEnqueued(captured, 'email', { index: 0 });
    await consumeEnqueued(captured, 'email', { index: 1 });
    expect((await readDelivery(first.id)).status).toBe('sent');
    expect(await readDelivery(second.id)).toMatchObject({
      status: 'duplicate',
      reason: expect.stringContaining(first.deliveries[0]?.id ?? '?'),
    });
  });
});
